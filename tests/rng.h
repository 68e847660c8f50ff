/* tests/rng.h: the one pseudo-random generator of the tests (xorshift64*:
 * deterministic from its seed, good enough to drive tests) and a 64-bit
 * mixer for seeds and payload hashes. The check-based tests reach it
 * through tests/testing.h (which seeds it from GCHEAP_SEED), the
 * stand-alone stress programs directly. A generator's state is never 0. */
#ifndef GCHEAP_TESTS_RNG_H
#define GCHEAP_TESTS_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct test_rng {
	uint64_t s;
} test_rng;

static inline uint64_t rng_next(test_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(test_rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(test_rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)rng_below(r, hi - lo + 1);
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
