/* alloc/mcard.h: the card table, the remembered set of generational
 * collection (gc/mgcgen.c): a byte for every CARD_BYTES of each arena,
 * in heap_arena.cards (mapped with the arena, faulted in where used).
 *
 * While generational collection is on, the write barrier dirties the card
 * of every slot it stores a pointer into (mcard_dirty), in or out of a
 * mark. A minor mark scans the old objects of the dirty cards (those that
 * survived the last mark) as roots, clearing each card before it reads
 * it; a major mark clears every card. Invariant at the start of a minor
 * mark: every pointer from an old object to a young one lies in a dirty
 * card. A store made during a mark may lose its card to the mark's
 * clearing: harmless, as the value stored is marked by that mark (it was
 * reachable when the mark began, or was allocated black), so it is old
 * once the mark ends (the argument in docs/design.md).
 *
 * Cards are written with byte stores and read and cleared a word (8
 * cards) at a time, all atomic. Arenas are never unmapped, so a card
 * never goes away. */
#ifndef GCHEAP_MCARD_H
#define GCHEAP_MCARD_H

#include "alloc/mheap.h"

/* CARD_SHIFT, CARD_BYTES and CARDS_PER_ARENA: alloc/pagealloc.h, beside
 * heap_arena. */

/* The card of heap address p, or NULL outside the heap. */
static inline volatile unsigned char *mcard_of(uintptr_t p)
{
	if (p >> ADDR_BITS)
		return NULL;
	uintptr_t b = aload_acq(&mcard_index[p >> ARENA_SHIFT]);
	return b ? (volatile unsigned char *)(b + (p >> CARD_SHIFT)) : NULL;
}

/* A pointer was stored at p: dirty its card (nothing outside the heap:
 * roots are scanned whole every mark). Tests the card first, so that
 * stores into one card do not write its line again and again. */
static inline void mcard_dirty(uintptr_t p)
{
	volatile unsigned char *c = mcard_of(p);
	if (c && !aload8_acq(c))
		astore8_rel(c, 1);
}

/* Dirty every card that [p, p + n) touches. */
void mcard_dirty_range(uintptr_t p, size_t n);

/* Is the card of p dirty (tests)? */
bool mcard_is_dirty(uintptr_t p);

#endif
