/* tests/stress/harness.h: what the stand-alone stress programs (model.c,
 * stress.c) share: a seeded xorshift generator and a 64-bit mixer for
 * payload hashes. (The check-based tests use tests/testing.h.) */
#ifndef GCHEAP_STRESS_HARNESS_H
#define GCHEAP_STRESS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
	uint64_t s;
} rng;

static inline uint64_t rnext(rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

/* Uniform in [0, n). */
static inline uint64_t rbelow(rng *r, uint64_t n)
{
	return n ? rnext(r) % n : 0;
}

/* Uniform in [lo, hi]. */
static inline size_t rrange(rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)rbelow(r, hi - lo + 1);
}

/* splitmix64's finaliser. */
static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif
