/* alloc/mcache.h: a thread's allocation cache (Go's mcache, mcache.go).
 *
 * One cached span per span class, from which the owning thread allocates
 * with no lock and no atomic read-modify-write (mspan_next_free_fast);
 * and MCACHE_TYPED_SLOTS more, the typed slots, for objects of a scan
 * type's own size: type t's slot (t->cslot, chosen from its place in the
 * type region) holds a span of t's class whose free slots carry t's heap
 * bits (freetype == t), so that programs which interleave types of one
 * size class still allocate without writing layouts (a single class span
 * would be refilled with one type's bits and rewritten per object for
 * the others). Two types whose slots collide share it in turn: the slot
 * keeps its span until that is full (mcache_typed_slot), and the other
 * type meanwhile allocates from its class span;
 * the tiny block for packing noscan objects under TINY_SIZE bytes (the
 * bump is mcache_tiny_alloc, inline here). When a span runs out, refill
 * returns it to its mcentral and caches another.
 *
 * Statistics follow Go: at refill the whole remainder of the new span is
 * counted as allocated, and release corrects for what was not used, so the
 * fast path counts nothing.
 *
 * Allocate-black in bulk: from the start of a mark (mcache_start_black,
 * world stopped, or at attach during a mark), every span the cache
 * holds or takes allocates black from its freeindex at that moment on
 * (mspan.blackfrom). The mark bits of those objects are set in bulk when
 * a span leaves the cache and at mcache_flush_black, which the collector
 * calls for every thread before mark termination; the bytes so marked are
 * handed to the collector there. Until then the marker treats them as
 * black (mspan_black_pending): it never greys or scans them.
 *
 * The heap profiler's countdown (prof_left: bytes the thread may still
 * allocate before the next sample; runtime/mprof.h) is charged a window
 * at a time, off the fast path: every free slot in a cached span's
 * alloc_cache has been charged its class size already, when the slow
 * path loaded its window (mcache_next_free) or the cache took the span
 * (mcache_refill); uncache refunds what is left. When the countdown
 * would run out inside a window, the window is cut short before the
 * object that takes it below zero, and that object is due (its slot's
 * bit in prof_due): the next distance starts at once (mcache_prof_draw),
 * so that what other classes charge meanwhile counts against it and may
 * make objects of theirs due too, as in the order the bytes were
 * charged; the due object comes to the slow path, which sets prof_span
 * (the runtime samples it, then mcache_prof_sampled charges the rest of
 * its window). (The cut object used to be left to whatever charged next,
 * often another class: 64-byte objects came out 25-34% under beside 4 KiB
 * ones.) A due span uncached first drops its sample, as if its bytes had
 * not been charged: the distances are exponential, memoryless, so which
 * countdown goes on does not matter. The tiny block's allocations are
 * counted one by one on their own fast path instead (tiny spans are not
 * charged).
 *
 * The collector's allocation count (the assists, the sweep pace and the
 * pacer's rate go by it) is kept the same way: `handed` counts the bytes
 * of the objects the slow path takes and of the slots it gives the fast
 * path, less those given back, and the runtime's slow path reports them
 * (mcache_take_handed). Charging each slow path a whole window instead
 * counted a window's free slots as 64 objects: in spans that sweep left
 * half full (the pause probe, heap growth) the count ran at 1.9x what
 * was allocated, and the assists with it.
 *
 * An mcache belongs to one attached thread; release_all (on detach, and
 * when sweepgen moves) hands every span back. */
#ifndef GCHEAP_MCACHE_H
#define GCHEAP_MCACHE_H

#include "alloc/mspan.h"

typedef struct mcache {
	/* Slot i < NUM_SPANCLASSES: span class i; then the typed slots.
	 * Never NULL: &mspan_empty. */
	mspan *alloc[MCACHE_SLOTS];
	/* Bit i: alloc[i] is a real span. The walks done for every thread
	 * inside a pause (start_black, flush_black) visit these only. */
	uint64_t cached[(MCACHE_SLOTS + 63) / 64];
	uintptr_t tiny;                /* current tiny block, or 0 */
	uintptr_t tinyoffset;          /* bytes of it used */
	uintptr_t tiny_allocs;         /* tiny objects not yet counted */
	uintptr_t layout_writes;       /* per-object layouts, not yet counted */
	uintptr_t flushgen;            /* sweepgen at the last release_all */
	bool black;                    /* allocating black (this mark) */
	uintptr_t black_bytes;         /* marked in bulk, not yet reported */
	/* The objects of the last span this cache took empty while
	 * allocating black: every object there is black for this mark
	 * (mcache_fresh_black). fresh_len 0: none. */
	uintptr_t fresh_lo, fresh_len;
	/* The heap profiler's countdown (above). mcache_init sets it out
	 * of reach (no sampling); the runtime sets it. prof_span, when
	 * set: the object the last mcache_next_free returned (from this
	 * span) is to be sampled (it ran the countdown out, or was due),
	 * and the rest of its window (the span's alloc_cache) is not
	 * charged until mcache_prof_sampled. */
	intptr_t prof_left;
	mspan *prof_span;
	unsigned prof_slot; /* prof_span's slot */
	uint64_t prof_due[(MCACHE_SLOTS + 63) / 64]; /* slots whose next
	                      * slow-path object is to be sampled */
	/* Bytes handed out since the last mcache_take_handed (above); may
	 * fall below 0 when a span gives back slots counted earlier. */
	intptr_t handed;
} mcache;

void mcache_init(mcache *c);

/* The bytes handed out since the last call, if more than were given
 * back (a deficit waits for the next call). */
uintptr_t mcache_take_handed(mcache *c);

/* The next distance of the heap profiler's countdown (runtime/mprof.c
 * sets it; NULL: out of reach, no sampling). */
extern intptr_t (*mcache_prof_draw)(void);

/* After the runtime sampled the object that set prof_span: the rest of
 * that object's window is charged (cut short again if the countdown runs
 * out there). */
void mcache_prof_sampled(mcache *c);

/* Is p in the last span this cache took empty during this mark, at or
 * after the slot it started allocating black from? Then p, if it points
 * to an object at all, points to one this thread allocated black: the
 * span had no object when it was taken, it is not swept (so none is
 * freed and reallocated by another cache) until the mark ends, and
 * release_all, which every cache goes through before the next mark
 * (mcache_prepare_for_sweep), forgets the range. The barrier need not
 * shade such a value (runtime/barrier.c); binary-trees stores every
 * fresh node into its parent through it. */
static ALWAYS_INLINE bool mcache_fresh_black(const mcache *c, uintptr_t p)
{
	return p - c->fresh_lo < c->fresh_len;
}

/* Replace the span in slot `slot` (spc itself, or a typed slot) with
 * one of class spc that has a free object. False (and *err) when memory
 * runs out. */
bool mcache_refill(mcache *c, unsigned slot, spanclass spc, int *err);

/* The slow path of small allocation (Go's nextFree): an object of class
 * spc from slot `slot`, refilling as needed; 0 and *err on out-of-memory.
 * *sp receives the span. Charges the profiler's countdown for the object
 * and the rest of its window when they were not charged yet, and sets
 * prof_span when the object runs it out or was due. */
uintptr_t mcache_next_free(mcache *c, unsigned slot, spanclass spc,
                           mspan **sp, int *err);

/* The slot an object of scan type t, of t's own size and class spc, is
 * taken from: t's typed slot, unless a span there still has room and is
 * another type's (its free slots carry another layout, or it is of
 * another class): then the class slot spc, until that span is full. A
 * span in a typed slot always carries a layout: the slow path that caches
 * it there takes its first object and writes the layout at once. */
static inline unsigned mcache_typed_slot(const mcache *c, const gc_type *t,
                                         spanclass spc)
{
	const mspan *s = c->alloc[t->cslot];

	if (s == &mspan_empty || s->alloc_count == s->nelems)
		return t->cslot;
	return s->spc == spc && s->freetype == t ? t->cslot : spc;
}

/* The offset of a tiny object of `size` bytes at or after `off`, aligned
 * as a C object of that size must be. */
static ALWAYS_INLINE uintptr_t mcache_tiny_align(uintptr_t off, size_t size)
{
	if ((size & 7) == 0)
		return align_up(off, 8);
	if ((size & 3) == 0)
		return align_up(off, 4);
	if ((size & 1) == 0)
		return align_up(off, 2);
	return off;
}

/* The tiny allocator (Go's tiny block): pack a noscan object of `size` <
 * TINY_SIZE bytes into the current block, at *p; false when there is no
 * block or it does not fit. The allocation fast path's and slow path's
 * one bump. */
static ALWAYS_INLINE bool mcache_tiny_alloc(mcache *c, size_t size,
                                           uintptr_t *p)
{
	uintptr_t off = mcache_tiny_align(c->tinyoffset, size);

	if (c->tiny && off + size <= TINY_SIZE) {
		c->tinyoffset = off + size;
		c->tiny_allocs++;
		*p = c->tiny + off;
		return true;
	}
	return false;
}

/* After a tiny object of `size` was put at the start of a fresh block p:
 * keep whichever block has more room left. */
static inline void mcache_tiny_refill(mcache *c, uintptr_t p, size_t size)
{
	if (!c->tiny || size < c->tinyoffset) {
		c->tiny = p;
		c->tinyoffset = size;
	}
}

/* Return every cached span to its mcentral and drop the tiny block. */
void mcache_release_all(mcache *c);

/* A mark has started: allocate black from now on (once per mark; later
 * calls do nothing). World stopped, or the owner. */
void mcache_start_black(mcache *c);

/* Set the mark bits of everything allocated black so far and return the
 * bytes marked in bulk since the last call (they count as marked). Owner,
 * or a collector that claimed or stopped it. */
uintptr_t mcache_flush_black(mcache *c);

/* Called by the owner at a safe point after sweepgen moved: flush if the
 * cached spans belong to the previous cycle (Go's prepareForSweep). */
void mcache_prepare_for_sweep(mcache *c);

#endif
