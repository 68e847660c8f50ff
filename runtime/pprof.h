/* runtime/pprof.h: what the heap profiler (runtime/mprof.c) shares with
 * the code that gathers its profile (runtime/pprof.c): the buckets of
 * sampled stacks; and the gathered profile, for its writers
 * (gc_write_heap_profile, runtime/heapdump.c). */
#ifndef GCHEAP_RUNTIME_PPROF_H
#define GCHEAP_RUNTIME_PPROF_H

#include "format/pprof.h"
#include "runtime/runtime.h"

#define MPROF_MAX_DEPTH 32

/* One distinct allocation stack. stk[0] is the return address into the
 * function that called gc_alloc; the counters are of sampled objects and
 * the bytes asked for them. */
typedef struct mprof_bucket {
	struct mprof_bucket *next;     /* hash chain */
	struct mprof_bucket *all_next; /* the list of every bucket */
	uint64_t hash;
	atomic_word allocs, alloc_bytes, frees, free_bytes;
	unsigned nstk;
	uintptr_t stk[];
} mprof_bucket;

/* The sampling rate in bytes (0: off), read from the environment once. */
intptr_t mprof_rate(void);
/* Every bucket so far (a list by all_next that only grows at its head,
 * so a reader may walk it without the lock) and how many. */
mprof_bucket *mprof_buckets(size_t *n);
/* ln x for x in (0, 1], without libm. */
double mprof_ln(double x);
/* The profile now (buckets, mappings, dladdr names; runtime/pprof.c);
 * false if out of memory. Not with the world stopped. The caller frees
 * it with pprof_free. */
bool mprof_snapshot(pprof_profile *p);

#endif
