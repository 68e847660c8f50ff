/* alloc/mspan.h: the span, a run of pages holding objects of one span
 * class (Go's mspan, mheap.go and mbitmap.go).
 *
 * A span class is (size class << 1) | noscan. Class 0 is a large object:
 * one object per span. Noscan spans are never scanned by the collector.
 *
 * Allocation state. alloc_bits marks the objects that were live at the
 * last sweep; freeindex runs from 0 to nelems and every object below it is
 * allocated; alloc_cache holds ~alloc_bits starting at freeindex, so that
 * bit 0 of alloc_cache stands for object freeindex (1 = free), up to the
 * end of its 64-object word and never past nelems (0 at a word's start:
 * the fast path used up the last word, and the slow path loads this one):
 *
 *     alloc_count == freeindex + popcount(alloc_bits[freeindex, nelems))
 *
 * Only the owning mcache (or whoever holds the span while sweeping) writes
 * freeindex, alloc_cache and alloc_count. freeindex is read by other
 * threads (gc_base, conservative scanning) with relaxed atomics.
 *
 * Mark state lives in gcmark_bits, set atomically by the collector. Sweep
 * turns gcmark_bits into alloc_bits and clears the old alloc bits to be the
 * next gcmark_bits (swap and clear: nobody reads alloc bits while a span is
 * being swept, since marking never overlaps sweeping).
 *
 * Cached spans. When an mcache takes a span (mspan_prepare_cached), its
 * free slots are zeroed in bulk if they may hold stale bytes, so the
 * fast path never zeroes. The first typed allocation writes the heap bits
 * of its (type, size) into every free slot at once and records them in
 * freetype/freesize; later allocations of the same (type, size) write
 * nothing. A span that has held one (type, size) only, since a fill that
 * covered all its slots, remembers it (alltype/allsize): its next fill,
 * after a sweep, writes nothing either (binary-trees' nodes, a program
 * that keeps a few objects of one type in every span). While the
 * collector marks, the objects allocated from blackfrom on are black
 * without a mark bit each: the free slots in [blackfrom, freeindex) are
 * set in gcmark_bits in bulk
 * (mspan_mark_allocated) when the span leaves the cache and whenever the
 * collector flushes the thread, which it does before mark termination.
 *
 * Pointer layout. Scan spans of objects up to SMALL_SCAN_MAX bytes keep one
 * heap bit per word of the span (heap_bits, set at allocation from the
 * type); larger scan objects keep their gc_type in types[index]; a large
 * span keeps largetype and large_size. All of it is off the object memory.
 *
 * sweepgen, against mheap_.sweepgen (h), as in Go (the functions here
 * that need h take it from their caller):
 *   s == h - 2   the span needs sweeping
 *   s == h - 1   the span is being swept
 *   s == h       the span is swept and ready to use
 *   s == h + 1   the span was cached before sweep began, is still cached,
 *                and needs sweeping
 *   s == h + 3   the span was swept and then cached, and is still cached
 * h grows by 2 with every collection. */
#ifndef GCHEAP_MSPAN_H
#define GCHEAP_MSPAN_H

#include "alloc/fixalloc.h"
#include "alloc/gctype.h"
#include "alloc/sizeclasses.h"
#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

/* spanclass (a size class and scan or noscan): alloc/sizeclasses.h. */

enum mspan_state {
	MSPAN_DEAD = 0,  /* not in use: on no list, pages free */
	MSPAN_INUSE = 1, /* allocated from the heap for objects */
};

struct spanlist;

typedef struct mspan {
	/* Cache line 1: read by the marker for every pointer it follows,
	 * and by the allocator; written only when the span is set up or
	 * swept, and (blacking) when a cache takes or leaves it. */
	uintptr_t base;        /* address of the first page */
	uintptr_t limit;       /* end of the last object */
	uintptr_t elemsize;    /* object size (the span's size for large) */
	uint64_t *gcmark_bits; /* nelems bits, set atomically while marking */
	uint64_t *heap_bits;   /* small scan spans: a bit per word */
	uint64_t *alloc_bits;  /* nelems bits */
	uint32_t divmagic;     /* object index = (off * divmagic) >> 32 */
	uint8_t state;         /* enum mspan_state */
	spanclass spc;
	uint8_t needzero;      /* objects may hold stale bytes */
	/* 1 while blackfrom may be other than NO_BLACK: set before it is
	 * set, cleared after it is reset (mspan_set_blackfrom), so that a
	 * marker reads blackfrom's line only for the few spans that are
	 * cached in a mark (mspan_black_pending). */
	volatile unsigned char blacking;
	uint16_t *typeids;     /* small spans made while type recording
	                        * is on: the gc_type id of each object
	                        * (0: none), for heap dumps */

	/* Cache line 2: written by the owning thread on every allocation. */
	uint64_t alloc_cache ALIGNED_CACHE; /* ~alloc_bits from freeindex
	                                     * on; 1 = free */
	/* The layout key (alloc/gctype.h) of the free slots, from freetype,
	 * freesize, the class's noscan bit and typeids
	 * (mspan_set_freelayout): MSPAN_KEY_NONE unless an object of a
	 * type's own size needs nothing written at all. */
	uintptr_t freekey;
	atomic_word freeindex; /* objects below are allocated */
	uintptr_t nelems;      /* objects in the span */
	uintptr_t alloc_count; /* allocated objects */
	/* While cached (see "Cached spans" above): the free slots carry
	 * the heap bits of (freetype, freesize) when freetype is set; the
	 * objects allocated from blackfrom on are black. */
	const gc_type *freetype;
	uintptr_t freesize;
	atomic_word blackfrom; /* NO_BLACK: not allocating black */
	/* Every slot of the span, allocated or free, carries the layout of
	 * (alltype, allsize) when alltype is set: the span has only ever
	 * held that layout since its bits were last written in full. Owner
	 * thread (mspan_fill_type, mspan_set_type). */
	const gc_type *alltype;
	uintptr_t allsize;

	/* Span-batched marking (options_.greentea, gc/mgcspanq.h): small
	 * scan spans get scan bits, nelems bits beside gcmark_bits; an
	 * object is grey while its mark bit is set and its scan bit is
	 * not. Set only while marking (by the span's scanner, and for black
	 * allocations by mspan_mark_allocated), cleared by sweep. gcowned
	 * says whether a marker owns the span for scanning (0: no). NULL
	 * and 0 on every other span. Own cache line: markers write it. */
	uint64_t *gcscan_bits ALIGNED_CACHE;
	atomic_word gcowned;
	/* Large scan spans: a bit per OBLET_BYTES piece of the object, set
	 * by the marker once it has read every slot of the piece in this
	 * mark (a full-barrier or), cleared by sweep. The barrier need not
	 * shade the value a store overwrites in a piece already read
	 * (gcmark_slot_scanned). NULL on every other span, and on objects
	 * too big for the bits to fit the span's metadata block. */
	uint64_t *oblet_bits;
	/* The tiny allocator's span class (TINY_SPANCLASS), which 16-byte
	 * noscan objects share: a bit per slot that is a tiny block (the
	 * objects packed in it start anywhere inside), set by the owner
	 * when the block is taken, cleared by sweep with the slot. NULL on
	 * every other span. */
	uint64_t *tiny_bits;
	/* The collector's ephemeron table (gc/mephemeron.c): the generation
	 * of the mark in which an ephemeron waits for an object here; a
	 * marker that marks an object of a span stamped with the running
	 * mark's generation tells the table. Never cleared: a stamp of an
	 * ended mark matches no later one. */
	atomic_word eph_gen;

	/* Colder. */
	uintptr_t npages;
	atomic_word sweepgen;  /* see the table above */
	const gc_type **types; /* scan spans of objects over SMALL_SCAN_MAX */
	const gc_type *largetype; /* large spans: the object's type (noscan
	                           * ones: for its name only; may be NULL) */
	uintptr_t large_size;  /* requested size of a large object (or
	                        * the size gc_realloc last gave it in
	                        * place) */
	void *meta;            /* the block that holds the bitmaps */
	size_t meta_bytes;

	/* mcentral list membership (mcentral.c) */
	struct mspan *next, *prev;
	struct spanlist *list;
	/* Kept empty by its class's reserve and not cached since (the
	 * class's lock): a second sweep that finds it so frees it. */
	bool kept;

	/* Specials (finalizers, cleanups, weak handles, ephemerons): the
	 * records and their kinds belong to the collector (gc/mfinal.c),
	 * which keeps each object's together and guards them, and the list
	 * of spans that have any, with its own lock. Sweep hands a span
	 * with specials to alloc_hooks.sweep_specials before it frees
	 * anything; a span is never freed while it has specials. */
	struct special *specials;
	struct mspan *sp_next, *sp_prev;
	/* Of its specials, the finalizers and cleanups, and the ephemeron
	 * records: the root job walks only the spans that have one of the
	 * first, the ephemeron walk only those with one of the second, and
	 * sweep takes the finalizer queue's lock only with the first
	 * (specials' lock). */
	uint32_t sp_roots, sp_ephs;
	/* Nonzero once a weak cell has been allocated here (until the span
	 * is freed): sweep gives it to alloc_hooks.keep_weak_cells. */
	atomic_word weak_cells;
} mspan;

/* The head of a special record; gc/mfinal.c embeds it in its records
 * and links them (next, prev) into its span's list. */
typedef struct special {
	struct special *next, *prev;
	/* On the first record of an object's records (its group, gc/
	 * mfinal.c): the group's last record. */
	struct special *group_last;
	uintptr_t offset; /* of the address it is attached to, from base */
	uint8_t kind;
} special;

/* Generational collection (gc/mgcgen.c). While sticky is set, sweep
 * leaves the objects that survive it marked, and scanned, for the next
 * mark, which is then a minor one and starts with every old object
 * black; premarked adds up their bytes. The collector sets sticky at mark
 * termination with the sweepers held off, so that every sweep of a
 * generation sees the same value, and reads premarked when the next mark
 * starts, every span swept. */
typedef struct mspan_gen {
	atomic_word sticky;
	atomic_word premarked;
} mspan_gen;

extern mspan_gen mspan_gen_;

/* The most objects a span holds: 8-byte objects in a 32 KiB span
 * (alloc/mksizeclasses.c; mspan_init checks it). */
#define MSPAN_MAX_NELEMS 4096

/* Spans of more objects than this many bitmap words get no scan bits
 * (the span scanner keeps a copy of a span's words on its stack): 64
 * covers every small class, 4096 objects of 8 bytes in a 32 KiB span. */
#define SCANBITS_MAX_WORDS 64

/* Large objects are scanned in pieces of this size (Go's oblets), all
 * queued when the first is scanned, so that no single scan runs long (an
 * assist's drain stops between pieces) and every marker can take one.
 * 16 KiB: 2,048 pointer slots, each a likely cache and TLB miss when they
 * point at random objects (about 0.4 ms); Go's 128 KiB took the probe's
 * assists 3-7 ms each over its 12 MB slot table (640-712 assists over 1
 * ms of CPU a run, 19-21 at 16 KiB). */
#define OBLET_BYTES ((uintptr_t)16 << 10)

/* Oblets of a large span of npages pages: the last may be partial. */
static inline size_t mspan_oblets(uintptr_t npages)
{
	return (npages * PAGE_SIZE + OBLET_BYTES - 1) / OBLET_BYTES;
}

/* Words of a large span's oblet bits: a bit for every oblet. */
static inline size_t mspan_oblet_words(uintptr_t npages)
{
	return (mspan_oblets(npages) + 63) / 64;
}

/* Words of one of a span's object bitmaps. */
static inline size_t mspan_bitmap_words(uintptr_t nelems)
{
	return (nelems + 63) / 64;
}

/* Words of a span's heap bitmap: a bit per word of its pages. */
static inline size_t mspan_heapbits_words(uintptr_t npages)
{
	return npages * PAGE_SIZE / WORD_SIZE / 64;
}

/* Does the span keep a heap bit per word? */
static inline bool span_has_heapbits(spanclass spc)
{
	unsigned sc = spanclass_sizeclass(spc);
	return !spanclass_noscan(spc) && sc != 0 &&
	       class_to_size[sc] <= SMALL_SCAN_MAX;
}

static inline bool bitmap_get(const uint64_t *bm, uintptr_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

/* The index of the object that contains p (no divide). */
static inline uintptr_t mspan_object_index(const mspan *s, uintptr_t p)
{
	return (uintptr_t)(((uint64_t)(p - s->base) * s->divmagic) >> 32);
}

/* Is object i free? Go's isFree. Any thread may ask while the span is
 * not being swept (mheap_find_object retries around sweeps). */
static inline bool mspan_is_free(const mspan *s, uintptr_t i)
{
	/* Acquire loads: a reader's later check of sweepgen cannot move
	 * above them (mheap_find_object's sequence lock). */
	if (i < aload_acq(&s->freeindex))
		return false;
	const atomic_word *bits = (const atomic_word *)aload_acq(
		(const atomic_word *)&s->alloc_bits);
	return !((aload_acq(&bits[i / 64]) >> (i % 64)) & 1);
}

/* Is object i of s a tiny block (TINY_SPANCLASS: packed objects), not a
 * 16-byte object of its own? Any thread, as mspan_is_free. */
static inline bool mspan_is_tiny_block(const mspan *s, uintptr_t i)
{
	return s->tiny_bits &&
	       ((aload((const atomic_word *)&s->tiny_bits[i / 64]) >>
	         (i % 64)) & 1);
}

/* The owner took the slot at p for a tiny block. Only the owner writes
 * the bits of a cached span (sweep, the other writer, runs when no
 * thread caches it): a load and a store, atomic for lookups. */
static inline void mspan_set_tiny_block(mspan *s, uintptr_t p)
{
	uintptr_t i = mspan_object_index(s, p);
	atomic_word *w = (atomic_word *)&s->tiny_bits[i / 64];
	astore(w, aload(w) | (uint64_t)1 << (i % 64));
}

/* The allocation fast path (Go's nextFreeFast, less two of its tests):
 * the next object of a span whose alloc_cache is not 0, which the caller
 * has tested. No test of nelems: the cache has no bits past it
 * (mspan_refill_alloc_cache). No refill at the end of a window: using its
 * last object leaves alloc_cache 0 with freeindex at the next window's
 * start, which the slow path loads (mspan_next_free_index). Owner thread
 * only. */
static ALWAYS_INLINE uintptr_t mspan_take_cached(mspan *s)
{
	uint64_t c = s->alloc_cache;
	unsigned bit = ctz64(c);
	uintptr_t i = aload(&s->freeindex) + bit;

	s->alloc_cache = (c >> bit) >> 1;
	astore(&s->freeindex, i + 1);
	s->alloc_count++;
	return s->base + i * s->elemsize;
}

/* The free slots carry the layout of (t, size) (t NULL: none, or a noscan
 * span's): set freetype, freesize and the key the fast path compares.
 * Owner thread. */
static inline void mspan_set_freelayout(mspan *s, const gc_type *t,
                                        size_t size)
{
	s->freetype = t;
	s->freesize = size;
	if (s->typeids)
		s->freekey = MSPAN_KEY_NONE;
	else if (spanclass_noscan(s->spc))
		s->freekey = spanclass_sizeclass(s->spc) ? GCTYPE_KEY_NOSCAN
		                                         : MSPAN_KEY_NONE;
	else
		s->freekey = t && size == t->size ? t->key : MSPAN_KEY_NONE;
}

/* An object address, or 0 when the span's cached window is used up. */
static ALWAYS_INLINE uintptr_t mspan_next_free_fast(mspan *s)
{
	return s->alloc_cache ? mspan_take_cached(s) : 0;
}

/* The next free object index from freeindex on, advancing freeindex past
 * it (Go's nextFreeIndex); nelems if the span is full. */
uintptr_t mspan_next_free_index(mspan *s);

/* Load alloc_cache from alloc bits word w (Go's refillAllocCache), with
 * no bits past nelems. */
void mspan_refill_alloc_cache(mspan *s, uintptr_t w);

/* Set up a span of class spc over [base, base + npages pages) and allocate
 * its bitmaps from `meta` (the heap's, which calls this under its lock).
 * False if metadata memory cannot be had. */
bool mspan_init(mspan *s, uintptr_t base, uintptr_t npages, spanclass spc,
                metaalloc *meta);
/* Give back the span's bitmaps to `meta` (as mspan_init). */
void mspan_release_meta(mspan *s, metaalloc *meta);

/* Type recording (heap dumps): spans of small objects made while
 * options_.record_types is on get a typeids array, and allocation writes
 * each object's type id. */

static inline void mspan_set_typeid(mspan *s, uintptr_t p, const gc_type *t)
{
	s->typeids[mspan_object_index(s, p)] =
		t && t->id <= GCTYPE_MAX_ID ? (uint16_t)t->id : 0;
}

/* Record the pointer layout of a freshly allocated scan object at p. */
void mspan_set_type(mspan *s, uintptr_t p, const gc_type *t, size_t size);

/* The heap-bits fast case of mspan_set_type: objects of <= 512 bytes.
 * Writes the object's heap bits with its map (bits), whole words cleared
 * beyond. Owner thread only; whole words are stored atomically because
 * the marker may read a neighbour's bits in the same word. */
static ALWAYS_INLINE void mspan_set_heapbits(mspan *s, uintptr_t p,
                                             uint64_t bits)
{
	uintptr_t w = (p - s->base) / WORD_SIZE;
	unsigned n = (unsigned)(s->elemsize / WORD_SIZE);
	atomic_word *hb = (atomic_word *)s->heap_bits;
	unsigned sh = w % 64;
	uint64_t m = low_mask(n);
	bits &= m;
	atomic_word *a = &hb[w / 64];
	astore(a, (aload(a) & ~(m << sh)) | (bits << sh));
	if (sh + n > 64) {
		unsigned lo = 64 - sh;
		astore(a + 1, (aload(a + 1) & ~(m >> lo)) | (bits >> lo));
	}
}

/* blackfrom when the span is not allocating black. */
#define NO_BLACK UINTPTR_MAX

/* Set blackfrom, keeping the blacking hint above it: the owner thread,
 * or the collector for it while it is stopped (mcache_start_black). */
static inline void mspan_set_blackfrom(mspan *s, uintptr_t from)
{
	if (from != NO_BLACK)
		astore8_rel(&s->blacking, 1);
	astore_rel(&s->blackfrom, from);
	if (from == NO_BLACK)
		astore8_rel(&s->blacking, 0);
}

/* Is object i allocated black and not yet in gcmark_bits? Any thread,
 * while marking. The owner sets the bits before it moves blackfrom
 * (release), so a reader that finds i outside the range finds its bit.
 * The blacking hint is stored (release) before blackfrom is set, and
 * cleared only after it is reset: a reader that got a pointer to an
 * object allocated in the range got it after both stores, as it would
 * have found blackfrom set. */
static inline bool mspan_black_pending(const mspan *s, uintptr_t i)
{
	if (!aload8_acq(&s->blacking))
		return false;
	uintptr_t from = aload_acq(&s->blackfrom);
	return i >= from && i < aload(&s->freeindex) &&
	       !bitmap_get(s->alloc_bits, i);
}

/* An mcache has just taken s: zero its free slots if they may hold stale
 * bytes (checking the poison first in poison mode), forget the heap-bits
 * pattern, and start allocating black at freeindex if `black`. */
void mspan_prepare_cached(mspan *s, bool black);

/* Record the layout of an object of `size` bytes of scan type t (heap
 * bits, or the type array of larger objects) in every free slot from
 * object index `from` on, and remember (t, size) as freetype/freesize.
 * Owner thread only; s is a small scan span. */
void mspan_fill_type(mspan *s, uintptr_t from, const gc_type *t,
                     size_t size);

/* Set the mark bits of the objects allocated in [from, to): those free
 * at the last sweep (alloc bit clear), and first their scan bits, if the
 * span has them (black objects are never scanned). Safe beside
 * concurrent marking; returns how many mark bits this call set (exact: a
 * bit the marker set first is not counted). */
uintptr_t mspan_mark_allocated(mspan *s, uintptr_t from, uintptr_t to);

/* The gc_type of object i of s where the span records it (a type array,
 * a large span's type, or per-object ids while type recording is on),
 * else NULL. Any thread; for messages and checks, not for scanning. */
const gc_type *mspan_object_type(const mspan *s, uintptr_t i);

/* The heap bits of the object at obj (a span with heap_bits): bit w set
 * means its word w is a pointer slot. */
uint64_t mspan_object_heapbits(const mspan *s, uintptr_t obj);

/* Iterate the pointer slots of the object at `obj` in span s. */
void mspan_ptriter(const mspan *s, uintptr_t obj, ptriter *it);

/* ---- Sweeping (mechanics; the collector decides when) -------------------- */

/* Hooks the collector registers so that sweeping, which lives here, can
 * call up without an upward include. Any hook may be NULL. */
typedef struct alloc_hooks {
	/* An object about to be freed by sweep (test instrumentation). */
	void (*object_freed)(mspan *s, uintptr_t obj);
	/* Sweep is about to free the unmarked objects of s, which has
	 * specials: run them (queue finalizers and cleanups, clear weak
	 * handles); it may set the mark bit of an object to keep it (a
	 * finalizer's object survives until the finalizer has run). */
	void (*sweep_specials)(mspan *s);
	/* Sweep is about to free the unmarked objects of s, which has held
	 * weak cells (weak_cells): set the mark bit of each unmarked
	 * allocated object (index below fi, or in alloc_bits) that is a
	 * cell to keep (runtime/weak.c). Called before sweep_specials. */
	void (*keep_weak_cells)(mspan *s, uintptr_t fi);
} alloc_hooks;

/* The hooks, set by the collector at start-up (tests set them too). */
extern alloc_hooks mspan_hooks;

/* Poison mode (options_.poison, GCHEAP_DEBUG=poison): free small-object
 * slots and freed pages are kept filled with POISON_BYTE, checked at
 * reuse. */
#define POISON_BYTE 0xdb

/* Poison mode: the offset of the first byte of [p, p + n) that is not
 * POISON_BYTE, or n. */
size_t poison_mismatch(const void *p, size_t n);

/* Poison mode: fatal() unless [p, p + n) of a free slot holds the pattern
 * (something wrote to the object after it was freed). */
void mspan_check_poison(const mspan *s, uintptr_t p, size_t n);

/* What became of a span in its sweep. */
typedef enum mspan_swept {
	MSPAN_SWEPT_FREE = 0, /* nothing survived: its pages can go back */
	MSPAN_SWEPT_PARTIAL,  /* survivors and free slots */
	MSPAN_SWEPT_FULL,     /* every slot holds a survivor */
} mspan_swept;

/* Sweep span s, which the caller owns (sweepgen moved from h-2 to h-1 by
 * mspan_try_acquire, or h+1 via uncache), h being the heap's sweepgen
 * `sg`: free the unmarked objects, turn mark bits into alloc bits,
 * publish sweepgen h, set *nfreed to the objects freed, and say what
 * became of the span. It touches no list, no counter of the heap, and
 * frees nothing: the span stays the caller's, to use or to hand to
 * mcentral_sweep's placement. */
mspan_swept mspan_sweep(mspan *s, uintptr_t sg, uintptr_t *nfreed);

/* Try to take span s for sweeping: sweepgen h-2 -> h-1. */
static inline bool mspan_try_acquire(mspan *s, uintptr_t sg)
{
	return aload(&s->sweepgen) == sg - 2 && acas(&s->sweepgen, sg - 2,
	                                              sg - 1);
}

/* Check every invariant of a span that the span alone can tell, with heap
 * sweepgen sg; fatal() with a message on failure. mheap_verify_span adds
 * the page table, mcentral_verify the list the span sits on. */
void mspan_verify(const mspan *s, uintptr_t sg);

/* The empty span every mcache slot starts with: no free objects, so the
 * fast path fails without testing for NULL. */
extern mspan mspan_empty;

#endif
