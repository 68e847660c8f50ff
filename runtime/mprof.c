/* runtime/mprof.c: the heap profiler (Go's MemProfileRate): allocation
 * sites sampled on average once per GCHEAP_MEMPROFILERATE bytes, their
 * frees noticed by sweep, written by gc_write_heap_profile in pprof's
 * format (runtime/pprof.c gathers, format/pprof.c encodes).
 *
 * Sampling: each thread counts down the bytes it allocates
 * (its mcache.prof_left, runtime/mprof.h); the allocation that takes it
 * below zero is sampled and a new distance drawn from an exponential
 * distribution of mean `rate` bytes, so that every byte has the same
 * chance 1/rate of being the one sampled, whatever the sizes. A small
 * object's bytes are its class size (as in Go's mallocgc): they are
 * charged with its window, off the fast path (alloc/mcache.h). Rate 1
 * samples every allocation, 0 none (the countdown is then set out of
 * reach).
 *
 * A sample records the call stack above gc_alloc (backtrace(), trimmed
 * to the first frame outside the allocation entry points) in a bucket,
 * one per distinct stack, and puts a PROFILE special carrying the bucket
 * on the object; sweep calls mprof_free when it frees the object.
 * Buckets live in a hash table under one lock (taken only when sampling
 * and writing) and are never freed;
 * their four counters are atomic, since sweep counts frees under the
 * specials' locks without the table's. Recording allocates nothing from
 * the gc heap and is no safepoint: no cycle can start between the
 * allocation and its special. */
#include "runtime/mprof.h"

#include "runtime/pprof.h"
#include "runtime/runtime.h"

#include <execinfo.h>
#include <unwind.h> /* _Unwind_FindEnclosingFunction (libgcc) */
#include <math.h> /* frexp: in the C library, not libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread uint64_t rng_state __attribute__((tls_model("initial-exec")));

#define NBUCKETS 4096 /* hash chains */

static struct {
	pthread_once_t once;
	intptr_t rate;          /* bytes; 0 off */
	gc_mutex lock;
	mprof_bucket *table[NBUCKETS];
	mprof_bucket *all;      /* every bucket, newest first */
	atomic_word nbuckets;
} mprof_ = {.once = PTHREAD_ONCE_INIT,
            .lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

/* Sweep freed a sampled object. */
static void mprof_free(void *bucket, size_t size)
{
	mprof_bucket *b = bucket;
	afetch_add(&b->frees, 1);
	afetch_add(&b->free_bytes, size);
}

static void mprof_init(void)
{
	/* GCHEAP_MEMPROFILERATE, read by runtime/options.c. */
	mprof_.rate = (intptr_t)options_.memprofilerate;
	specials_profile_free = mprof_free;
}

intptr_t mprof_rate(void)
{
	pthread_once(&mprof_.once, mprof_init);
	return mprof_.rate;
}

/* ln(x) for x in (0, 1], without libm: x = m 2^e with m in [0.5, 1), and
 * ln m = 2 atanh(z), z = (m - 1) / (m + 1) in (-1/3, 0]; the series to
 * z^17 is good to about 1e-10. */
double mprof_ln(double x)
{
	int e;
	double m = frexp(x, &e);
	double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;

	for (int k = 1; k <= 17; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return 2 * sum + e * 0.69314718055994530942;
}

/* A uniform double in (0, 1] (xorshift64*, seeded per thread). */
static double uniform(void)
{
	uint64_t x = rng_state;

	if (!x) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = ((uint64_t)(uintptr_t)&rng_state * 0x9e3779b97f4a7c15ULL) ^
		    (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
		x |= 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return (double)(((x * 0x2545F4914F6CDD1DULL) >> 11) + 1) /
	       9007199254740992.0;
}

/* Bytes until the next sample: exponential with mean `rate`. */
static intptr_t next_sample(intptr_t rate)
{
	if (rate == 1)
		return 0;
	double d = -mprof_ln(uniform()) * (double)rate;
	if (d > (double)((intptr_t)1 << 50))
		d = (double)((intptr_t)1 << 50);
	return (intptr_t)d;
}

static uint64_t stack_hash(const uintptr_t *pc, unsigned n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (unsigned i = 0; i < n; i++)
		h = (h ^ pc[i]) * 0x100000001b3ULL;
	return h ^ n;
}

/* The bucket of this stack, made if new; NULL if no memory. */
static mprof_bucket *bucket_of(const uintptr_t *pc, unsigned n)
{
	uint64_t h = stack_hash(pc, n);
	mprof_bucket *b;

	mutex_lock(&mprof_.lock);
	for (b = mprof_.table[h % NBUCKETS]; b; b = b->next)
		if (b->hash == h && b->nstk == n &&
		    !memcmp(b->stk, pc, n * sizeof(*pc)))
			goto out;
	b = calloc(1, sizeof(*b) + n * sizeof(*pc));
	if (!b)
		goto out;
	b->hash = h;
	b->nstk = n;
	memcpy(b->stk, pc, n * sizeof(*pc));
	b->next = mprof_.table[h % NBUCKETS];
	mprof_.table[h % NBUCKETS] = b;
	b->all_next = mprof_.all;
	mprof_.all = b;
	afetch_add(&mprof_.nbuckets, 1);
out:
	mutex_unlock(&mprof_.lock);
	return b;
}

/* Is pc (a return address) in one of the allocation entry points? The
 * public calls that allocate on the caller's behalf are, so that their
 * objects are charged to the caller, as gc_alloc's are. */
static bool in_entry(uintptr_t pc)
{
	static void (*const entries[])(void) = {
		(void (*)(void))gc_alloc,
		(void (*)(void))gc_alloc_array,
		(void (*)(void))gc_alloc_uninit,
		(void (*)(void))gc_realloc,
		(void (*)(void))gc_strdup,
		(void (*)(void))gc_strndup,
		(void (*)(void))gc_alloc_uncollectable,
		(void (*)(void))gc_weak_new,
		(void (*)(void))gc_ephemeron_new,
		(void (*)(void))gc_weakmap_new,
		(void (*)(void))runtime_new,
		(void (*)(void))runtime_new_array,
	};
	uintptr_t f = (uintptr_t)_Unwind_FindEnclosingFunction(
		(void *)(pc - 1));
	for (size_t i = 0; f && i < ARRAY_LEN(entries); i++)
		if (f == (uintptr_t)entries[i])
			return true;
	return false;
}

/* Record a sample of the object at p (size bytes asked); ra is
 * mprof_alloc's return address. */
static NOINLINE void record(void *p, size_t size, void *ra)
{
	void *frames[MPROF_MAX_DEPTH + 8];
	uintptr_t pc[MPROF_MAX_DEPTH];
	unsigned n = 0;
	mspan *s = NULL;

	if (!mheap_find_object((uintptr_t)p, &s))
		return;
	int got = backtrace(frames, MPROF_MAX_DEPTH + 8);
	int from = -1;
	for (int i = 0; i < got; i++)
		if (frames[i] == ra) {
			from = i;
			break;
		}
	if (from < 0) {
		/* No unwind information up to the caller: its return
		 * address alone. */
		pc[n++] = (uintptr_t)ra;
	} else {
		while (from + 1 < got && in_entry((uintptr_t)frames[from]))
			from++;
		for (int i = from; i < got && n < MPROF_MAX_DEPTH; i++)
			pc[n++] = (uintptr_t)frames[i];
	}
	mprof_bucket *b = bucket_of(pc, n);
	if (!b)
		return;
	if (!specials_add_profile(s, (uintptr_t)p, b, size))
		return;
	afetch_add(&b->allocs, 1);
	afetch_add(&b->alloc_bytes, size);
}

NOINLINE void *mprof_alloc(gc_thread *th, size_t size, const gc_type *t)
{
	void *ra = __builtin_return_address(0);
	intptr_t rate = mprof_rate();

	if (rate <= 0) {
		th->mcache.prof_left = INTPTR_MAX / 2;
		return gc_alloc(size, t);
	}
	/* gc_alloc takes size off again (a tiny or large object; a small
	 * one is charged with its window): `next` is left. */
	th->mcache.prof_left = next_sample(rate) + (intptr_t)size;
	void *p = gc_alloc(size, t);
	if (p && size)
		record(p, size, ra);
	return p;
}

intptr_t mprof_first_distance(void)
{
	intptr_t rate = mprof_rate();
	return rate <= 0 ? INTPTR_MAX / 2 : next_sample(rate);
}

void mprof_sample_due(gc_thread *th, void *p, void *ra)
{
	mcache *c = &th->mcache;
	size_t size = c->prof_span->elemsize; /* set: the caller's test */
	intptr_t rate = mprof_rate();

	if (rate <= 0) {
		c->prof_left = INTPTR_MAX / 2;
		mcache_prof_sampled(c);
		return;
	}
	mcache_prof_sampled(c);
	record(p, size, ra);
}

mprof_bucket *mprof_buckets(size_t *n)
{
	mutex_lock(&mprof_.lock);
	mprof_bucket *b = mprof_.all;
	*n = aload(&mprof_.nbuckets);
	mutex_unlock(&mprof_.lock);
	return b;
}
