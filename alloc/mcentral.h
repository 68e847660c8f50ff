/* alloc/mcentral.h: the central free lists of one span class (Go's
 * mcentral, mcentral.go).
 *
 * Spans of the class that no mcache holds sit on one of four lists:
 * partial (has free objects) or full, each swept or unswept. Which of the
 * two sets of a kind is "swept" flips with sweepgen parity: with heap
 * sweepgen sg, partial[sg/2 % 2] is swept and partial[1 - sg/2 % 2] is
 * unswept, so advancing sweepgen by 2 makes every swept list unswept in
 * O(1). Each list remembers its spans (span->list), so membership is
 * checkable.
 *
 * The lock (padded to its own cache line) guards the lists only; sweeping
 * and growing happen outside it. Lock order: mcentral.lock -> mheap_.lock.
 *
 * Sweeping a span (mspan_sweep) only reports what became of it; the list
 * work, the heap's freed-object counters and the freeing to the heap are
 * done here (mcentral_sweep).
 *
 * Layering: the centrals sit above the heap (Go keeps them in mheap_; here
 * they are their own array, mcentral_, so that the heap's header does not
 * include this one). This file may use mheap_; mheap.c never calls here. */
#ifndef GCHEAP_MCENTRAL_H
#define GCHEAP_MCENTRAL_H

#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/sys/lock.h"

typedef struct spanlist {
	mspan *first, *last;
	uintptr_t n;
} spanlist;

typedef struct mcentral {
	gc_mutex lock;
	spanclass spc;
	spanlist partial[2];
	spanlist full[2];
	/* The empty-span reserve (mcentral_sweep), under the lock: in the
	 * sweep of generation keep_gen, up to `keep` spans found empty stay
	 * with the class (kept so far: `kept`) instead of going back to the
	 * heap. `demand` counts spans handed to mcaches (atomic);
	 * demand_base is its value at the last roll-over (the class's
	 * first mcentral_sweep of a generation). */
	uintptr_t keep_gen, keep, kept, demand_base;
	atomic_word demand;
} ALIGNED_CACHE mcentral;

/* Whether sweeps of the current generation may keep empty spans with
 * their class (set at each sweepgen flip: off after a forced or
 * out-of-memory collection, so that those hand every empty span back). */
void mcentral_set_reserve(bool on);

/* One per span class, indexed by it. */
extern mcentral mcentral_[NUM_SPANCLASSES];

void mcentral_init(mcentral *c, spanclass spc);

/* Set up every class's central (after mheap_init). Idempotent; not
 * thread-safe (the runtime calls it once). */
void mcentral_init_all(void);

static inline spanlist *mcentral_partial_swept(mcentral *c, uintptr_t sg)
{
	return &c->partial[sg / 2 % 2];
}

static inline spanlist *mcentral_partial_unswept(mcentral *c, uintptr_t sg)
{
	return &c->partial[1 - sg / 2 % 2];
}

static inline spanlist *mcentral_full_swept(mcentral *c, uintptr_t sg)
{
	return &c->full[sg / 2 % 2];
}

static inline spanlist *mcentral_full_unswept(mcentral *c, uintptr_t sg)
{
	return &c->full[1 - sg / 2 % 2];
}

/* A span with at least one free object for an mcache, swept, off every
 * list, its sweepgen h + 3 and its alloc_cache loaded; NULL and *err on
 * out-of-memory. Sweeps unswept spans of the class on the way (Go's
 * cacheSpan). */
mspan *mcentral_cache_span(mcentral *c, int *err);

/* Take back a span from an mcache (Go's uncacheSpan). */
void mcentral_uncache_span(mcentral *c, mspan *s);

/* Put a swept span on the partial or full swept list. */
void mcentral_push_swept(mcentral *c, mspan *s);

/* Sweep span s, which the caller owns (see mspan_sweep), and place it by
 * what became of it: off any list it still sits on (a sweeper may take a
 * span through its sweepgen without popping it), then on its class's
 * swept partial or full list, or, when nothing survived, its pages back
 * to the heap; but a small span found empty stays on the partial list
 * while the class's reserve allows: as many as the class handed to
 * mcaches since the reserve last rolled over (normally one generation
 * before), so that a class allocating at a
 * steady rate reuses its own spans without a trip through the page
 * heap and its lock (mimalloc keeps a page with its size class too). A
 * class that stops allocating gets a reserve of zero at the next
 * generation, and its empty spans go back to the heap then; and a span
 * kept that no cache takes before its next sweep goes back then (a class
 * whose caches find partial spans first would otherwise keep the empties
 * of a burst for good). Returns false if the span was freed. */
bool mcentral_sweep(mspan *s);

/* Sweep up to max (at most MCENTRAL_SWEEP_BATCH) unswept spans of class c
 * at heap sweepgen sg and place each as mcentral_sweep does; returns how
 * many it swept, 0 when the class has none left. The batch costs two
 * round trips through the lock and one update of each heap counter
 * instead of two and one per span: with two threads sweeping one class
 * (a forced collection's caller and the background sweeper), the lock
 * and the counters were most of a full span's sweep. */
#define MCENTRAL_SWEEP_BATCH 32
size_t mcentral_sweep_some(mcentral *c, uintptr_t sg, size_t max);
/* Tests: called by mcentral_sweep_some with its batch of n spans taken
 * and none yet swept (a sweep in the middle of its spans). */
extern void (*mcentral_sweep_test_hook)(size_t n);

/* Pop any unswept span of this class (for the background sweeper), or
 * NULL. */
mspan *mcentral_pop_unswept(mcentral *c, uintptr_t sg);

/* Check list membership, classes and sweep states, and every listed span
 * (mheap_verify_span); returns the number of spans on the lists. fatal()
 * on a broken invariant. */
uintptr_t mcentral_verify(mcentral *c);

/* The whole allocator below the thread caches: every central
 * (mcentral_verify), then the heap (mheap_verify). Call with the world
 * quiet. */
void mcentral_verify_all(void);

/* List primitives; caller holds c->lock. */
void spanlist_push(spanlist *l, mspan *s);
void spanlist_push_back(spanlist *l, mspan *s);
void spanlist_remove(spanlist *l, mspan *s);
mspan *spanlist_pop(spanlist *l);

#endif
