/* alloc/mcache.c: refill and release of a thread's cached spans (see
 * mcache.h). Only the owning thread touches an mcache. */
#include "alloc/mcache.h"

#include "alloc/mcentral.h"
#include "alloc/mheap.h"

#include <string.h>

/* Visit the slots with a real cached span: i is set to each in turn. */
#define for_each_cached(c, i, w, bits)                                      \
	for (unsigned w = 0; w < ARRAY_LEN((c)->cached); w++)               \
		for (uint64_t bits = (c)->cached[w];                        \
		     bits && ((i) = w * 64 + ctz64(bits), 1);               \
		     bits &= bits - 1)

void mcache_init(mcache *c)
{
	for (unsigned i = 0; i < MCACHE_SLOTS; i++)
		c->alloc[i] = &mspan_empty;
	memset(c->cached, 0, sizeof(c->cached));
	c->tiny = 0;
	c->tinyoffset = 0;
	c->tiny_allocs = 0;
	c->layout_writes = 0;
	c->flushgen = aload(&mheap_.sweepgen);
	c->black = false;
	c->black_bytes = 0;
	c->fresh_lo = c->fresh_len = 0;
	c->handed = 0;
	c->prof_left = INTPTR_MAX / 2;
	c->prof_span = NULL;
	c->prof_slot = 0;
	memset(c->prof_due, 0, sizeof(c->prof_due));
}

intptr_t (*mcache_prof_draw)(void);

static intptr_t prof_draw(void)
{
	return mcache_prof_draw ? mcache_prof_draw() : INTPTR_MAX / 2;
}

static void prof_set_due(mcache *c, unsigned slot, bool due)
{
	uint64_t bit = (uint64_t)1 << (slot % 64);
	c->prof_due[slot / 64] = due ? c->prof_due[slot / 64] | bit
	                             : c->prof_due[slot / 64] & ~bit;
}

/* Mark what span s allocated black since the last flush. */
static void flush_black(mcache *c, mspan *s)
{
	uintptr_t fi = aload(&s->freeindex), from = aload(&s->blackfrom);

	if (from < fi)
		c->black_bytes += mspan_mark_allocated(s, from, fi) *
		                  s->elemsize;
	if (from != NO_BLACK)
		mspan_set_blackfrom(s, fi);
}

/* Are the allocations from s charged to the profiler a window at a
 * time? All but the tiny block's (counted one by one). */
static bool prof_by_window(const mspan *s)
{
	return s->spc != TINY_SPANCLASS;
}

/* Charge every slot in s's alloc_cache (the span in slot `slot`) to the
 * countdown, cutting the window short before the slot that would take it
 * below zero, which is then due, and the next distance drawn. */
static void charge_window(mcache *c, unsigned slot, mspan *s)
{
	uint64_t bits = s->alloc_cache;
	intptr_t e = (intptr_t)s->elemsize;
	intptr_t n = (intptr_t)popcount64(bits);

	if (!n || !prof_by_window(s))
		return;
	if (c->prof_left >= n * e) {
		c->prof_left -= n * e;
		return;
	}
	/* Keep the k lowest slots, which leave the countdown >= 0. */
	intptr_t k = c->prof_left > 0 ? c->prof_left / e : 0;
	uint64_t keep = 0;
	for (intptr_t j = 0; j < k; j++) {
		uint64_t low = bits & (~bits + 1);
		keep |= low;
		bits ^= low;
	}
	s->alloc_cache = keep;
	/* The slots cut off are handed out again when reloaded. */
	c->handed -= (n - k) * e;
	prof_set_due(c, slot, true);
	c->prof_left = prof_draw();
}

uintptr_t mcache_take_handed(mcache *c)
{
	intptr_t n = c->handed > 0 ? c->handed : 0;

	c->handed -= n;
	return (uintptr_t)n;
}

void mcache_prof_sampled(mcache *c)
{
	if (c->prof_span)
		charge_window(c, c->prof_slot, c->prof_span);
	c->prof_span = NULL;
}

/* Give a span back to its mcentral, correcting the allocation counter for
 * the objects that were counted at refill but never handed out. */
static void uncache(mcache *c, unsigned slot)
{
	mspan *s = c->alloc[slot];
	c->alloc[slot] = &mspan_empty;
	if (s == &mspan_empty)
		return;
	spanclass spc = s->spc;
	c->cached[slot / 64] &= ~((uint64_t)1 << (slot % 64));
	prof_set_due(c, slot, false);
	/* The slots charged and not taken go back to the countdown and
	 * the count of bytes handed out. */
	intptr_t left = (intptr_t)(popcount64(s->alloc_cache) * s->elemsize);
	c->handed -= left;
	if (prof_by_window(s))
		c->prof_left += left;
	flush_black(c, s);
	mspan_set_blackfrom(s, NO_BLACK);
	uintptr_t unused = s->nelems - s->alloc_count;
	afetch_add(&mheap_.stats.nmalloc[spanclass_sizeclass(spc)],
	           (uintptr_t)0 - unused);
	/* A stale span was cached before heap_live was reset at mark
	 * termination, so its unused bytes are no longer counted. */
	if (aload(&s->sweepgen) != aload(&mheap_.sweepgen) + 1)
		afetch_add(&mheap_.stats.heap_live,
		           (uintptr_t)0 - unused * s->elemsize);
	mcentral_uncache_span(&mcentral_[spc], s);
}

bool mcache_refill(mcache *c, unsigned slot, spanclass spc, int *err)
{
	mspan *s = c->alloc[slot];

	if (s != &mspan_empty) {
		if (s->alloc_count != s->nelems)
			fatal("mcache_refill: span %p still has free objects",
			      (void *)s);
		uintptr_t sg = aload(&mheap_.sweepgen);
		if (aload(&s->sweepgen) != sg + 3)
			fatal("mcache_refill: span %p has sweepgen %zu, heap "
			      "%zu", (void *)s, (size_t)aload(&s->sweepgen),
			      (size_t)sg);
		uncache(c, slot);
	}
	s = mcentral_cache_span(&mcentral_[spc], err);
	if (!s)
		return false;
	mspan_prepare_cached(s, c->black);
	/* Its window may hold slots from an earlier owner (refunded
	 * there). */
	c->handed += (intptr_t)(popcount64(s->alloc_cache) * s->elemsize);
	charge_window(c, slot, s);
	if (c->black && s->alloc_count == 0) {
		c->fresh_lo = s->base + aload(&s->blackfrom) * s->elemsize;
		c->fresh_len = s->limit - c->fresh_lo;
	}
	afetch_add(&mheap_.stats.nmalloc[spanclass_sizeclass(spc)],
	           s->nelems - s->alloc_count);
	afetch_add(&mheap_.stats.heap_live,
	           (s->nelems - s->alloc_count) * s->elemsize);
	c->alloc[slot] = s;
	c->cached[slot / 64] |= (uint64_t)1 << (slot % 64);
	return true;
}

uintptr_t mcache_next_free(mcache *c, unsigned slot, spanclass spc,
                           mspan **sp, int *err)
{
	mspan *s = c->alloc[slot];
	/* A slot taken from a loaded window was charged with it. */
	bool charged = s->alloc_cache != 0;
	uintptr_t i = mspan_next_free_index(s);

	if (i == s->nelems) {
		if (!mcache_refill(c, slot, spc, err))
			return 0;
		s = c->alloc[slot];
		charged = s->alloc_cache != 0;
		i = mspan_next_free_index(s);
	}
	if (i >= s->nelems)
		fatal("mcache_next_free: span %p gave index %zu of %zu",
		      (void *)s, (size_t)i, (size_t)s->nelems);
	s->alloc_count++;
	if (!charged) {
		/* The object and the window it came with are new to this
		 * cache's counts. */
		c->handed += (intptr_t)((1 + popcount64(s->alloc_cache)) *
		                        s->elemsize);
		if (prof_by_window(s) && bitmap_get(c->prof_due, slot)) {
			/* The object its window was cut before: sampled. */
			prof_set_due(c, slot, false);
			c->prof_span = s;
			c->prof_slot = slot;
		} else if (prof_by_window(s)) {
			c->prof_left -= (intptr_t)s->elemsize;
			if (c->prof_left < 0) {
				c->prof_left = prof_draw();
				c->prof_span = s;
				c->prof_slot = slot;
			} else {
				charge_window(c, slot, s);
			}
		}
	} else if (i % 64 == 63) {
		/* The object ended a charged window at its word's end (a
		 * span that came back with one slot free there), and the
		 * take loaded the next word's: new to the counts. */
		if (prof_by_window(s) && bitmap_get(c->prof_due, slot)) {
			/* The window starts at its due object: cut it all,
			 * for the slow path to take that (loaded again). */
			s->alloc_cache = 0;
		} else {
			c->handed += (intptr_t)(popcount64(s->alloc_cache) *
			                        s->elemsize);
			charge_window(c, slot, s);
		}
	}
	*sp = s;
	return s->base + i * s->elemsize;
}

void mcache_release_all(mcache *c)
{
	unsigned i;

	for_each_cached(c, i, w, bits)
		uncache(c, i);
	if (c->tiny_allocs) {
		afetch_add(&mheap_.stats.tiny_allocs, c->tiny_allocs);
		c->tiny_allocs = 0;
	}
	if (c->layout_writes) {
		afetch_add(&mheap_.stats.layout_writes, c->layout_writes);
		c->layout_writes = 0;
	}
	c->tiny = 0;
	c->tinyoffset = 0;
	c->flushgen = aload(&mheap_.sweepgen);
	c->black = false;
	c->fresh_lo = c->fresh_len = 0;
}

void mcache_start_black(mcache *c)
{
	if (c->black)
		return; /* once per mark: a second start would lose a range */
	c->black = true;
	c->fresh_lo = c->fresh_len = 0;
	unsigned i;
	for_each_cached(c, i, w, bits)
		mspan_set_blackfrom(c->alloc[i],
		                    aload(&c->alloc[i]->freeindex));
}

uintptr_t mcache_flush_black(mcache *c)
{
	unsigned i;
	for_each_cached(c, i, w, bits)
		flush_black(c, c->alloc[i]);
	uintptr_t b = c->black_bytes;
	c->black_bytes = 0;
	return b;
}

void mcache_prepare_for_sweep(mcache *c)
{
	if (c->flushgen != aload(&mheap_.sweepgen))
		mcache_release_all(c);
}
