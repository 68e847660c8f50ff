/* alloc/mcache.h: a thread's allocation cache (Go's mcache, mcache.go).
 *
 * One cached span per span class, from which the owning thread allocates
 * with no lock and no atomic read-modify-write (mspan_next_free_fast);
 * the tiny block for packing noscan objects under TINY_SIZE bytes. When a
 * span runs out, refill returns it to its mcentral and caches another.
 *
 * Statistics follow Go: at refill the whole remainder of the new span is
 * counted as allocated, and release corrects for what was not used, so the
 * fast path counts nothing.
 *
 * An mcache belongs to one attached thread; release_all (on detach, and
 * when sweepgen moves) hands every span back. */
#ifndef GCHEAP_MCACHE_H
#define GCHEAP_MCACHE_H

#include "alloc/mspan.h"

typedef struct mcache {
	mspan *alloc[NUM_SPANCLASSES]; /* never NULL: &mspan_empty */
	uintptr_t tiny;                /* current tiny block, or 0 */
	uintptr_t tinyoffset;          /* bytes of it used */
	uintptr_t tiny_allocs;         /* tiny objects not yet counted */
	uintptr_t flushgen;            /* sweepgen at the last release_all */
} mcache;

void mcache_init(mcache *c);

/* Replace the span of class spc with one that has a free object. False
 * (and *err) when memory runs out. */
bool mcache_refill(mcache *c, spanclass spc, int *err);

/* The slow path of small allocation (Go's nextFree): an object of class
 * spc, refilling as needed; 0 and *err on out-of-memory. *sp receives the
 * span. */
uintptr_t mcache_next_free(mcache *c, spanclass spc, mspan **sp, int *err);

/* Return every cached span to its mcentral and drop the tiny block. */
void mcache_release_all(mcache *c);

/* Called by the owner at a safe point after sweepgen moved: flush if the
 * cached spans belong to the previous cycle (Go's prepareForSweep). */
void mcache_prepare_for_sweep(mcache *c);

#endif
