/* alloc/mheap.h: the heap (Go's mheap, mheap.go).
 *
 * Address space comes in 64 MiB arenas, reserved with mmap (PROT_NONE) and
 * committed in 2 MiB steps as pages are first used. Arenas are aligned to
 * their size, so arena_index(p) = p >> ARENA_SHIFT indexes a flat table of
 * arena pointers covering the 48-bit address space (32 MiB of virtual
 * memory, touched only where arenas live). Each arena has off-heap metadata
 * (struct heap_arena): the span of each of its 8192 pages and the page
 * allocator's bitmaps. So spanof(p), for any p, interior pointers
 * included, is two dependent loads.
 *
 * The page allocator (alloc/pagealloc.h, below this file) keeps each
 * arena's in-use bitmap and its free-run summaries; the heap owns the
 * arena list and index, and calls it under mheap_.lock.
 *
 * Zeroing. A page is dirty if it may hold non-zero bytes (it was used since
 * it came from the OS or was released). A new span needs zeroing only if
 * one of its pages is dirty (needzero); fresh memory is not zeroed twice.
 *
 * Locking: mheap_.lock guards arenas, page bitmaps, summaries, spans[] and
 * the metadata allocators. spans[] and the arena table are also read
 * without the lock (spanof) with acquire loads; they are published with
 * release stores after the span is initialised. */
#ifndef GCHEAP_MHEAP_H
#define GCHEAP_MHEAP_H

#include "alloc/fixalloc.h"
#include "alloc/mspan.h"
#include "alloc/pagealloc.h"
#include "alloc/sys/lock.h"

/* Counters kept under mheap_.lock, plus atomics updated at refill. */
typedef struct heap_stats {
	size_t reserved;      /* bytes of arenas reserved */
	size_t committed;     /* bytes committed */
	size_t released;      /* committed bytes madvised away */
	size_t released_ever; /* bytes ever madvised away (a count) */
	size_t prefaulted;    /* bytes faulted in by mheap_prefault */
	size_t prefault_pauses; /* its pauses between populate calls */
	size_t inuse_pages;   /* pages in in-use spans */
	size_t inuse_peak;    /* the most inuse_pages since the scavenger
	                       * last read it (gc/mgc.c scavenge) */
	size_t spans_inuse;
	size_t spans_allocated; /* spans ever cut from the pages */
	size_t meta_sys;      /* OS bytes taken for metadata */
	size_t arenas;
	size_t large_objects; /* live large spans */
	size_t large_bytes;
	/* Atomics: objects handed out per size class (counted at refill for
	 * a whole span and corrected at release), tiny allocations, and
	 * large objects ever allocated. */
	atomic_word nmalloc[NUM_SIZE_CLASSES];
	atomic_word tiny_allocs;
	/* Bytes in use or cached for use since the last mark (Go's
	 * heapLive): refill adds a span's free bytes, release takes back the
	 * unused ones, large allocations add theirs; the collector resets it
	 * to the marked bytes at mark termination. */
	atomic_word heap_live;
	atomic_word large_allocs;
	atomic_word large_alloc_bytes;
	atomic_word large_zeroed; /* bytes of new large objects zeroed */
	atomic_word layout_writes; /* small objects whose layout was written
	                            * per object (runtime/malloc.c): each
	                            * thread's count, added when its cache
	                            * is released or it reads the stats */
	/* Observability (gc_read_stats): objects freed by sweep per size
	 * class (atomic), and spans in use per size class (class 0: large),
	 * under the lock. */
	atomic_word nfree[NUM_SIZE_CLASSES];
	size_t class_spans[NUM_SIZE_CLASSES];
} heap_stats;

typedef enum heap_err {
	HEAP_OK = 0,
	HEAP_NOMEM,  /* the OS refused */
	HEAP_LIMIT,  /* the memory limit would be passed */
} heap_err;

typedef struct mheap {
	gc_mutex lock;
	atomic_word sweepgen;        /* see mspan.h */
	/* A sequence lock over span frees for lookups without the lock
	 * (mheap_find_object): odd while a span is being freed. */
	atomic_word free_seq;
	atomic_word pages_swept;     /* pages and spans swept, ever (by */
	atomic_word spans_swept;     /* mcentral.c; for the sweep pace) */
	atomic_word *arena_index;    /* heap_arena * by p >> ARENA_SHIFT */
	heap_arena *arenas;          /* by address */
	fixalloc spanalloc;          /* mspan structs */
	fixalloc arenaalloc;         /* heap_arena structs */
	metaalloc meta;              /* span bitmaps */
	atomic_word limit;           /* max held bytes, 0 = none; written
	                              * under lock, read without */
	/* [prefault_lo, prefault_hi): what mheap_prefault is faulting in
	 * without the lock (mheap_release_free leaves it alone); empty
	 * when none. prefault_off: the OS could not, never again. */
	uintptr_t prefault_lo, prefault_hi;
	bool prefault_off;
	void (*prefault_test_hook)(void); /* tests: called while faulting in,
	                                   * without the lock */
	heap_stats stats;
	/* mheap_release_aged's calls, ever: a free page's age (now less
	 * its arena's freed_at, modulo 2^16) is counted in them. */
	atomic_word scav_epoch;
	atomic_word init;            /* set last (release): mheap_ready */
} mheap;

extern mheap mheap_;

/* Is the heap initialised? Any thread: what mheap_init set up is visible
 * once this says so. */
static inline bool mheap_ready(void)
{
	return aload_acq(&mheap_.init) != 0;
}

/* By p >> ARENA_SHIFT: the arena's card table less (base >> CARD_SHIFT),
 * so that p's card is at that plus p >> CARD_SHIFT (alloc/mcard.h); 0
 * outside the heap. */
extern atomic_word *mcard_index;

/* Set up the heap (not the central lists: mcentral_init_all). Idempotent;
 * not thread-safe (runtime calls it once). */
heap_err mheap_init(void);

/* Allocate a span of npages for class spc. Sets *needzero if any page may
 * hold stale bytes. Returns NULL and sets *err on failure. Takes
 * mheap_.lock. For large spans (spc sizeclass 0) the caller sets the
 * object size. */
mspan *mheap_alloc_span(uintptr_t npages, spanclass spc, heap_err *err);

/* Return a span's pages to the heap. Takes mheap_.lock. */
void mheap_free_span(mspan *s);

/* madvise free committed pages away (dirty ones, and clean ones faulted
 * in ahead by mheap_prefault: resident all the same), from the top of
 * each arena down and the highest arena first (first-fit allocation
 * reuses the low ones soonest; past 64 arenas, lowest arena first), until
 * `max` bytes are released; returns the bytes released. A run the OS
 * refuses (locked memory) is tried a page at a time: the pages it refuses
 * are pinned, left dirty, and not tried again until reused. Nothing is
 * released where the OS page is larger than a heap page (one would take
 * its neighbours with it). */
size_t mheap_release_free(size_t max);
/* The scavenger's mheap_release_free (once a cycle): the same, but only
 * pages freed at least SCAV_AGE calls ago (counted by scav_epoch, which
 * each call moves on): a page a cycle frees is often taken back within a
 * few (large objects of churning sizes on fragmented free pages: released
 * at every cycle, each faulted in again at ~5-10 us a page). bdwgc waits
 * 6 collections before it unmaps a free block. */
#define SCAV_AGE 4
size_t mheap_release_aged(size_t max);

/* The most one populate call faults in, and the pause after it (see
 * mheap_prefault in alloc/mheap.c). */
#define PREFAULT_PIECE ((size_t)256 << 10)
#define PREFAULT_PAUSE_NS 20000

/* Fault memory in ahead of the allocator, for a thread beside the
 * mutators (the background sweeper): first committed pages not yet
 * faulted in and not released, lowest first (where first-fit allocation
 * takes pages); then, until the heap holds `target` bytes committed and
 * not released, released pages (no longer counted as released) and newly
 * committed ones, COMMIT_PAGES at a time and within the memory limit;
 * at most `max` bytes per call. Returns the bytes faulted in (0: nothing
 * left to do, another thread is at it, or the OS cannot). One range is
 * faulted in at a time, without mheap_.lock, marked in prefault_lo/hi so
 * that no release drops it meanwhile. The first time the OS cannot (a
 * kernel without MADV_POPULATE_WRITE, or no memory to populate with),
 * and where the OS page is larger than a heap page, faulting in ahead
 * stops for good; the range claimed then may be left partly faulted in:
 * counted as resident, which errs on the side of the limit. */
size_t mheap_prefault(size_t target, size_t max);

/* The arena that contains p, or NULL. */
static inline heap_arena *arena_of(uintptr_t p)
{
	if (p >> ADDR_BITS)
		return NULL;
	return (heap_arena *)aload_acq(&mheap_.arena_index[p >> ARENA_SHIFT]);
}

/* The span that owns the page of p, or NULL. Any thread; lock-free. */
static inline mspan *spanof(uintptr_t p)
{
	heap_arena *a = arena_of(p);
	if (!a)
		return NULL;
	return (mspan *)aload_acq(
		&a->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)]);
}

/* The in-use span whose objects cover p, or NULL. */
static inline mspan *spanof_heap(uintptr_t p)
{
	mspan *s = spanof(p);
	if (!s || s->state != MSPAN_INUSE || p < s->base || p >= s->limit)
		return NULL;
	return s;
}

/* Call fn on every in-use span, by address, under mheap_.lock (fn must
 * not take it). */
void mheap_each_span(void (*fn)(mspan *s, void *arg), void *arg);

/* The slow recount of what the heap holds: bytes (and, if nobjs, objects)
 * allocated in every in-use span, alloc_count * elemsize. Exact when no
 * thread allocates or sweeps meanwhile. Takes mheap_.lock. */
uintptr_t mheap_recount_allocated(uintptr_t *nobjs);

/* The slow recount of every size class for gc_read_stats at check level
 * 3, in one walk: spans[sc] in use, and objs[sc] counted as the fast
 * counters count them (a span cached by a thread counts as full, as at
 * refill); both arrays have NUM_SIZE_CLASSES entries. Exact when no
 * thread allocates or sweeps meanwhile. Takes mheap_.lock. */
void mheap_recount_classes(uintptr_t *spans, uintptr_t *objs);

/* The start of the allocated object that contains p, or 0; any thread,
 * any p, without a lock: what it reads of the span is thrown away and
 * read again if a sweep or a free of a span ran meanwhile (sweepgen and
 * free_seq); a sweep of it is waited out. A caller that holds
 * mheap_.lock or has stopped the world (heap dumps) may call it too: no
 * free runs then, so free_seq stays even. */
uintptr_t mheap_find_object(uintptr_t p, mspan **sp);

/* At mark start every in-use span must be swept for this generation:
 * sweepgen h, or h + 3 (swept, then cached). fatal() otherwise. */
void mheap_verify_swept(void);

/* The heap-wide verifier: arenas, page bitmaps against spans[] and
 * recomputed summaries, every span (mheap_verify_span), and the counters.
 * fatal() on the first broken invariant. Call with the world quiet. The
 * central lists are above the heap: mcentral_verify_all checks them and
 * then calls this. */
void mheap_verify(void);

/* Every invariant of one in-use span: mspan_verify against the heap's
 * sweepgen, and every page of it mapped to it. */
void mheap_verify_span(const mspan *s);

#endif
