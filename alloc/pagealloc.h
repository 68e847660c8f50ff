/* alloc/pagealloc.h: the page allocator (Go's pageAlloc, mpagealloc.go)
 * and the arena metadata it works on.
 *
 * A bitmap of in-use pages per arena, with a (start, max, end) summary of
 * free runs per 512-page chunk and per arena, as Go's radix summaries but
 * two levels deep. A search for n pages skips arenas and chunks whose
 * summaries cannot fit n, and finds runs that cross chunk and arena
 * boundaries from the end/start summaries; it never walks a free list.
 * Freeing clears bits, so free runs coalesce by construction. Allocation
 * is first fit by address, which keeps the heap compact, but committed
 * runs come before any that would move a commit line (mheap.c).
 *
 * struct heap_arena is defined here because most of it is the page
 * allocator's (the bitmaps and summaries); the heap (alloc/mheap.h) owns
 * the rest of it (spans[], the commit line, the arena list and index) and
 * calls everything here under mheap_.lock. Nothing here knows spans. */
#ifndef GCHEAP_PAGEALLOC_H
#define GCHEAP_PAGEALLOC_H

#include "alloc/sizeclasses.h"
#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

#define ARENA_SHIFT 26
#define ARENA_BYTES ((uintptr_t)1 << ARENA_SHIFT)
#define PAGES_PER_ARENA (ARENA_BYTES / PAGE_SIZE)      /* 8192 */
#define ARENA_BITMAP_WORDS (PAGES_PER_ARENA / 64)      /* 128 */
#define CHUNK_PAGES 512                                /* a summary each */
#define CHUNKS_PER_ARENA (PAGES_PER_ARENA / CHUNK_PAGES) /* 16 */
#define ADDR_BITS 48
#define ARENA_INDEX_LEN ((size_t)1 << (ADDR_BITS - ARENA_SHIFT))
#define COMMIT_PAGES 256                               /* 2 MiB steps */
#define CARD_SHIFT 9                  /* a card byte per 512 bytes */
#define CARD_BYTES ((uintptr_t)1 << CARD_SHIFT)   /* (alloc/mcard.h) */
#define CARDS_PER_ARENA (ARENA_BYTES / CARD_BYTES) /* 131072 */

/* Free runs of a bitmap range: at its start, the longest, at its end. */
typedef struct pagesum {
	uint32_t start, max, end;
} pagesum;

typedef struct heap_arena {
	atomic_word spans[PAGES_PER_ARENA]; /* mspan * of each in-use page */
	uint64_t alloc[ARENA_BITMAP_WORDS];    /* 1 = page in use */
	uint64_t dirty[ARENA_BITMAP_WORDS];    /* 1 = page may be non-zero */
	uint64_t released[ARENA_BITMAP_WORDS]; /* 1 = free page madvised */
	uint64_t pinned[ARENA_BITMAP_WORDS];   /* 1 = free page the OS
	                                        * refused to release (locked
	                                        * memory): not tried again
	                                        * until it is reused */
	/* Each free page's mheap_.scav_epoch when it was last freed
	 * (mheap.c's set_pages): the scavenger releases it only SCAV_AGE
	 * releases later (mheap_release_aged). */
	uint16_t freed_at[PAGES_PER_ARENA];
	pagesum chunk[CHUNKS_PER_ARENA];
	pagesum sum;
	uintptr_t base;
	uintptr_t committed;   /* pages [0, committed) are read-write */
	uintptr_t prefaulted;  /* mheap_prefault has been over pages
	                        * [0, prefaulted): faulted in, skipped as
	                        * released, or (once, when the OS could
	                        * not) claimed and left as they were */
	uintptr_t free_pages;  /* pages not in use */
	void *gc_data;         /* the collector's (checkmark bitmap) */
	volatile unsigned char *cards; /* a byte per card (alloc/mcard.h) */
	struct heap_arena *next; /* all arenas, by address */
} heap_arena;

/* Find npages free pages in the arenas of the list `arenas` (by address),
 * first fit by address; 0 if none. */
uintptr_t pagealloc_find(heap_arena *arenas, uintptr_t npages);
/* The lowest run of npages free pages that lies below its arena's commit
 * line, within one arena, or 0: what mheap_alloc_span takes before it
 * moves a commit line, since an arena reserved later may lie below the
 * others (the address above them was taken) and first-fit would then
 * commit fresh memory there while committed pages sit free above. */
uintptr_t pagealloc_find_committed(heap_arena *arenas, uintptr_t npages);
/* The lowest run of npages free pages, within one arena, below its commit
 * line and none of them released, or 0: pages that cost nothing against
 * the memory limit, for when first fit's choice would pass it. A bitmap
 * walk, for that rare path only. */
uintptr_t pagealloc_find_resident(heap_arena *arenas, uintptr_t npages);
/* Mark pages [first, first + npages) of arena a in use or free and update
 * its free count and summaries. The range is inside the arena. */
void pagealloc_set(heap_arena *a, uintptr_t first, uintptr_t npages,
                   bool inuse);
/* Recompute one arena's summaries from its bitmap. */
void pagealloc_update(heap_arena *a, unsigned first_chunk,
                      unsigned last_chunk);
/* Summaries of a bitmap range, computed the slow way (tests, verify). */
pagesum pagealloc_summarize(const uint64_t *bm, unsigned nwords);

#endif
