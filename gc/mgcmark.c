/* gc/mgcmark.c: marking: greying objects, scanning them through their
 * pointer maps, conservative scanning of native stacks, the drain loop,
 * allocate-black, and the checkmark verification (Go's mgcmark.go and
 * mcheckmark.go).
 *
 * Mark bits: a marker first tests the bit with a plain (relaxed) load,
 * which is all it does for the common case late in a mark, an object
 * already marked. Only a clear bit is set, with one atomic fetch-or on
 * its bitmap word (`lock bts` on x86: no compare-and-swap, no retry when
 * another bit of the word changes meanwhile). The fetch-or's result says
 * whether this marker's OR changed the bit; exactly one of several
 * markers racing for an object (background workers, assists, barrier
 * flushes, allocate-black) sees it clear, and only that one counts the
 * object (bytes_marked, nmarked) and queues it. So every object is
 * greyed once, and bytes_marked is exact: the pacer's heap_marked and the
 * ephemeron fixpoint's nmarked count each object once. A racing marker
 * that loses pays one locked instruction and moves on. Noscan objects are
 * marked and never queued. Slots are read with relaxed atomic loads
 * because mutators write them concurrently through the barrier.
 *
 * Prefetching: the drain passes each object it pops through a small FIFO
 * (pfifo) that prefetches the object and its heap-bits word and scans it
 * PREFETCH_AHEAD pops later, unless it lies near the object scanned last
 * (then it is scanned at once). Objects in the FIFO are grey and held by
 * the drain alone, which puts them back in its gcw before it returns.
 *
 * Ephemerons: whoever sets an object's mark bit (greyobject, or a span's
 * owner publishing its local marks in scan_marked) then looks at the
 * span's eph_gen stamp (ephemeron_check): an object that ephemerons wait
 * for releases them to the next ephemeron pass (gc/mephemeron.c). The
 * mark bit's fetch-or is a full barrier before the look, as the pass's
 * stamp is before its look at the mark bit.
 *
 * Checkmark mode: with the world stopped after the concurrent mark, a
 * second mark from all roots (its root walk is gc/mgc.c's) sets bits in a
 * separate per-arena bitmap and insists that every object it reaches
 * through a precise slot already has its gcmark bit. Objects reached only
 * through conservative stack words are not insisted on: a dead stack slot
 * may hold a stale pointer that the concurrent scan legitimately never
 * saw. */
#include "gc/mgc.h"
#include "gc/mgcspanq.h"

#include <stdio.h>
#include <string.h>

/* Set during checkmark: greyobject marks checkmark bits instead. */
static bool checkmark_active;
static uintptr_t checkmark_conservative_misses;

/* Set bit i of a bitmap atomically; true if this call set it (the bit
 * was clear before this fetch-or, whoever else races for it). */
static ALWAYS_INLINE bool mark_bit(uint64_t *bm, uintptr_t i)
{
	atomic_word *w = (atomic_word *)&bm[i / 64];
	uintptr_t bit = (uintptr_t)1 << (i % 64);

	return !(afetch_or(w, bit) & bit);
}

/* The checkmark bit of the object at obj: one bit per heap word, in a
 * bitmap per arena allocated on first use. */
static bool checkmark_set(uintptr_t obj)
{
	heap_arena *a = arena_of(obj);
	if (!a->gc_data) {
		a->gc_data = os_alloc_meta(ARENA_BYTES / WORD_SIZE / 8);
		if (!a->gc_data)
			fatal("checkmark: out of memory for the bitmap");
	}
	return mark_bit(a->gc_data, (obj - a->base) / WORD_SIZE);
}

static bool checkmark_get(uintptr_t obj)
{
	heap_arena *a = arena_of(obj);
	return a->gc_data && bitmap_get(a->gc_data,
	                                (obj - a->base) / WORD_SIZE);
}

/* Where the slot is: "a root (slot S)", or "an object of type T at O,
 * field +N (slot S)" (types are known for objects over 512 bytes, large
 * ones, and every object while type recording is on: types=1, which
 * checkmark and rootcheck turn on). */
static void holder_desc(char *buf, size_t n, uintptr_t from, uintptr_t slot)
{
	mspan *fs = from ? spanof_heap(from) : NULL;

	if (!fs) {
		snprintf(buf, n, "a root (slot %p)", (void *)slot);
		return;
	}
	const gc_type *t = mspan_object_type(fs,
	                                     mspan_object_index(fs, from));
	char type[96];
	if (t)
		snprintf(type, sizeof(type), "type %s", t->name);
	else
		snprintf(type, sizeof(type), "%zu bytes (type not recorded)",
		         (size_t)fs->elemsize);
	snprintf(buf, n, "an object of %s at %p, field +%zu (slot %p)", type,
	         (void *)from, (size_t)(slot - from), (void *)slot);
}

static NOINLINE void checkmark_missed(uintptr_t obj, mspan *s,
                                      uintptr_t from, uintptr_t slot)
{
	char holder[224];
	const gc_type *t = mspan_object_type(s, mspan_object_index(s, obj));

	holder_desc(holder, sizeof(holder), from, slot);
	fatal("checkmark found an unmarked reachable object %p (type %s, "
	      "span %p class %u%s, size %zu, sweepgen %zu/%zu, freeindex "
	      "%zu, allocated %zu/%zu) held by %s: the concurrent mark "
	      "missed it, so a store into that %s (or the one that took the "
	      "pointer from where it was before) probably lacked gc_write; "
	      "every pointer store into a heap object or a registered root "
	      "needs it", (void *)obj,
	      t ? t->name : spanclass_noscan(s->spc) ? "none: noscan" :
	                                               "not recorded",
	      (void *)s, spanclass_sizeclass(s->spc),
	      spanclass_noscan(s->spc) ? " noscan" : "",
	      (size_t)s->elemsize, (size_t)aload(&s->sweepgen),
	      (size_t)aload(&mheap_.sweepgen), (size_t)aload(&s->freeindex),
	      (size_t)s->alloc_count, (size_t)s->nelems, holder,
	      from ? "field" : "slot");
}

static NOINLINE void checkmark_freed(uintptr_t obj, uintptr_t from,
                                     uintptr_t slot)
{
	char holder[224];

	holder_desc(holder, sizeof(holder), from, slot);
	fatal("use after gc_free: object %p was freed with gc_free but is "
	      "still reachable, held by %s", (void *)obj, holder);
}

static NOINLINE void bad_free_page(uintptr_t p, uintptr_t from,
                                   uintptr_t slot)
{
	fatal("invalid pointer %p in a precise slot %p of %p: it points into "
	      "the heap at a page that is free (a pointer to freed memory; "
	      "GCHEAP_DEBUG=invalidptr=0 ignores this)", (void *)p,
	      (void *)slot, (void *)from);
}

static NOINLINE void bad_pointer(uintptr_t p, mspan *s, uintptr_t from,
                                 uintptr_t slot)
{
	fatal("invalid pointer %p in a precise slot %p of %p: it points into "
	      "span %p [%p, %p) class %u but at no allocated object "
	      "(GCHEAP_DEBUG=invalidptr=0 ignores this)", (void *)p,
	      (void *)slot, (void *)from, (void *)s, (void *)s->base,
	      (void *)s->limit, spanclass_sizeclass(s->spc));
}

/* Mark object i of the span v visits locally (gc/mgcspanq.h): in mine,
 * and in the visit's queue while it has room. The caller has found its
 * mark bit clear and the object not allocated black. */
static ALWAYS_INLINE void visit_mark(span_visit *v, uintptr_t i)
{
	mspan *s = v->s;
	uint64_t bit = (uint64_t)1 << (i % 64);

	if (v->mine[i / 64] & bit)
		return;
	v->mine[i / 64] |= bit;
	v->again = true;
	if (v->qtail < VISIT_QUEUE) {
		v->done[i / 64] |= bit;
		v->q[v->qtail++] = (uint16_t)i;
		__builtin_prefetch((const void *)(s->base + i * s->elemsize));
	}
}

/* Grey object `obj` (index i of span s). */
static inline void greyobject(gcw *w, uintptr_t obj, mspan *s, uintptr_t i,
                              bool precise, uintptr_t from, uintptr_t slot)
{
	if (unlikely(checkmark_active)) {
		if (!bitmap_get(s->gcmark_bits, i)) {
			if (!precise) {
				checkmark_conservative_misses++;
				return;
			}
			checkmark_missed(obj, s, from, slot);
		}
		if (!checkmark_set(obj))
			return;
		if (precise && from && mfree_is_freed(obj))
			checkmark_freed(obj, from, slot);
	} else if (w->visit && w->visit->s == s) {
		/* On the span this marker is scanning: a local mark, made
		 * atomic a word at a time by the next pass (scan_marked). */
		visit_mark(w->visit, i);
		return;
	} else if (!mark_bit(s->gcmark_bits, i)) {
		/* Already marked (black allocations never come here:
		 * mark_value turned them away). */
		return;
	} else {
		/* counted here, never by checkmark's re-mark */
		w->bytes_marked += s->elemsize;
		/* From another span, a root or the barrier (from 0): the
		 * misses GCMARK_FAR_WORK stands for. */
		if (from - s->base >= s->limit - s->base)
			w->far_marks++;
	}
	w->nmarked++;
	ephemeron_check(s, obj);
	if (s->gcscan_bits && likely(!checkmark_active)) {
		/* Span-batched (gc/mgcspanq.h): the span's owner scans it,
		 * often at once (an object on the span being scanned). No
		 * prefetch of obj here: the visit that scans it may come
		 * long after, and prefetches it then (scan_marked); on
		 * scattered objects (the pause probe) a prefetch now was a
		 * second trip to memory for each, and the marking CPU per
		 * cycle fell by 40% without it. */
		if (span_try_acquire(s))
			gcw_put_span(w, obj);
	} else if (!spanclass_noscan(s->spc)) {
		/* It will be scanned soon (the queue is LIFO). */
		__builtin_prefetch((const void *)obj);
		gcw_put(w, obj);
	}
}

/* The heart of marking: p is a value read from a slot, s its span
 * (spanof(p)). Already-marked objects (the common case late in a mark)
 * cost two loads and a test. */
static ALWAYS_INLINE void mark_in_span(gcw *w, mspan *s, uintptr_t p,
                                       bool precise, uintptr_t from,
                                       uintptr_t slot)
{
	if (!s) {
		/* Inside an arena, on a page no span owns: a precise slot
		 * holding a pointer to memory that was freed. */
		if (precise && options_.invalidptr && arena_of(p))
			bad_free_page(p, from, slot);
		return;
	}
	if (unlikely(s->state != MSPAN_INUSE || p < s->base ||
	             p >= s->limit)) {
		if (precise && options_.invalidptr &&
		    s->state == MSPAN_INUSE && p >= s->base)
			bad_pointer(p, s, from, slot);
		return;
	}
	uintptr_t i = mspan_object_index(s, p);
	/* Marked, or allocated black (its bit comes in bulk, alloc/
	 * mcache.h): most of what the barrier shades is a new object. */
	if (likely(!checkmark_active) &&
	    (((aload((atomic_word *)&s->gcmark_bits[i / 64]) >> (i % 64)) &
	      1) ||
	     mspan_black_pending(s, i)))
		return;
	/* A conservative word may point at a free slot: ignore it. A
	 * precise one must not; checking costs a load per pointer, so it
	 * is a debug level (a marked free slot is also caught at sweep). */
	if ((!precise || options_.invalidptr > 1) && mspan_is_free(s, i)) {
		if (precise)
			bad_pointer(p, s, from, slot);
		return;
	}
	greyobject(w, s->base + i * s->elemsize, s, i, precise, from, slot);
}

/* mark_in_span with p's span looked up. */
static ALWAYS_INLINE void mark_value(gcw *w, uintptr_t p, bool precise,
                                     uintptr_t from, uintptr_t slot)
{
	mark_in_span(w, spanof(p), p, precise, from, slot);
}

void gcmark_value(gcw *w, uintptr_t p, bool precise, uintptr_t from,
                   uintptr_t slot)
{
	mark_value(w, p, precise, from, slot);
}

void gcmark_scan_slots(gcw *w, void *const *slots, size_t n, uintptr_t from)
{
	for (size_t i = 0; i < n; i++) {
		uintptr_t v = aload((const atomic_word *)&slots[i]);
		if (v)
			gcmark_value(w, v, true, from, (uintptr_t)&slots[i]);
	}
}

/* Reads words the sanitizers consider off limits: stack redzones (ASan)
 * and frames of a blocked thread that may still change them (TSan). The
 * words are only compared against the heap, never dereferenced. */
__attribute__((no_sanitize_address, no_sanitize_thread, noinline))
void gcmark_scan_conservative(gcw *w, uintptr_t lo, uintptr_t hi)
{
	lo = align_up(lo, sizeof(uintptr_t));
	for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi;
	     p += sizeof(uintptr_t)) {
		uintptr_t v = *(volatile uintptr_t *)p;
		if (v)
			gcmark_value(w, v, false, 0, p);
	}
}

/* A pointer p into the objects of the span v visits: mark it locally,
 * as mark_value then greyobject would, without looking its span up (in
 * a structure laid out in one span, most pointers are such). */
static ALWAYS_INLINE void mark_local(span_visit *v, uintptr_t p)
{
	mspan *s = v->s;
	uintptr_t i = mspan_object_index(s, p);

	if (((aload((atomic_word *)&s->gcmark_bits[i / 64]) >> (i % 64)) &
	     1) ||
	    mspan_black_pending(s, i))
		return;
	visit_mark(v, i);
}

/* The pointer bits of the nw-word object at word wi of a span's heap
 * bits hb: bit k set when word k holds a pointer. */
static ALWAYS_INLINE uint64_t object_ptr_bits(const atomic_word *hb,
                                              uintptr_t wi, unsigned nw)
{
	unsigned sh = wi % 64;
	uint64_t bits = aload(&hb[wi / 64]) >> sh;

	if (sh + nw > 64)
		bits |= aload(&hb[wi / 64 + 1]) << (64 - sh);
	return bits & low_mask(nw);
}

/* Scan an object of a span with heap bits; returns the words of work. */
static ALWAYS_INLINE uintptr_t scan_small(gcw *w, mspan *s, uintptr_t obj)
{
	const atomic_word *hb = (const atomic_word *)s->heap_bits;
	uintptr_t wi = (obj - s->base) / WORD_SIZE;
	unsigned nw = (unsigned)(s->elemsize / WORD_SIZE);
	uintptr_t n = 0;
	uint64_t bits = object_ptr_bits(hb, wi, nw);
	/* The span being visited, if obj is on it: pointers within it are
	 * marked locally (never under checkmark, which visits no span; not
	 * when invalidptr>1 asks mark_value to check for free slots). */
	span_visit *v = w->visit;
	uintptr_t vlen = 0;

	if (v && v->s == s && options_.invalidptr <= 1 &&
	    likely(!checkmark_active))
		vlen = s->limit - s->base;
	for (; bits; bits &= bits - 1, n++) {
		uintptr_t *slot = (uintptr_t *)obj + ctz64(bits);
		uintptr_t x = aload((atomic_word *)slot);
		if (x - s->base < vlen)
			mark_local(v, x);
		else if (x)
			mark_value(w, x, true, obj, (uintptr_t)slot);
	}
	return n + 1;
}

/* Mark the values v[0..k) (k <= 64, none zero), read from the slots
 * at[0..k) of the object at `from` (at NULL: from no slot, as the
 * barrier's). Their targets are scattered (a table of pointers, an oblet
 * of one, a barrier buffer): a first pass prefetches the spans of all of
 * them, a second the words of their mark bits, so that the third, the
 * marking proper, finds them in the cache and the misses of up to 64
 * values overlap instead of following one another. (Prefetching also
 * the lines of blackfrom and gcowned for the objects found unmarked, in
 * a pass of its own, made the probe's marking no faster.) */
static NOINLINE void mark_batch(gcw *w, uintptr_t from, const uintptr_t *v,
                                uintptr_t *const *at, unsigned k)
{
	mspan *sp[64];

	for (unsigned j = 0; j < k; j++) {
		mspan *s = spanof(v[j]);
		if (s) {
			__builtin_prefetch(s);
			__builtin_prefetch(&s->gcscan_bits);
		}
		sp[j] = s;
	}
	for (unsigned j = 0; j < k; j++) {
		mspan *s = sp[j];
		if (s && s->state == MSPAN_INUSE && v[j] >= s->base &&
		    v[j] < s->limit)
			__builtin_prefetch(s->gcmark_bits +
			                   mspan_object_index(s, v[j]) / 64);
	}
	/* The spans looked up in the first pass are those of the third:
	 * no span is freed between sweep termination and the flip at mark
	 * termination, and only sweeping frees spans. */
	for (unsigned j = 0; j < k; j++)
		mark_in_span(w, sp[j], v[j], true, from,
		             at ? (uintptr_t)at[j] : 0);
}

/* Mark what the slots first[b] (bit b of bits set) of the object at
 * `from` point to (mark_batch); returns the slots. Work: one unit per
 * slot, null or not, as ptriter_next's loop counted. */
static NOINLINE uintptr_t mark_chunk(gcw *w, uintptr_t from,
                                     uintptr_t *first, uint64_t bits)
{
	uintptr_t v[64];
	uintptr_t *at[64];
	unsigned k = 0;
	uintptr_t n = 0;

	for (; bits; bits &= bits - 1, n++) {
		uintptr_t *slot = first + ctz64(bits);
		uintptr_t x = aload((atomic_word *)slot);
		if (!x)
			continue;
		v[k] = x;
		at[k++] = slot;
	}
	if (k)
		mark_batch(w, from, v, at, k);
	return n;
}

void gcmark_values(gcw *w, const uintptr_t *vals, size_t n)
{
	uintptr_t v[64];
	unsigned k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!vals[i])
			continue;
		v[k++] = vals[i];
		if (k == 64) {
			mark_batch(w, 0, v, NULL, k);
			k = 0;
		}
	}
	if (k)
		mark_batch(w, 0, v, NULL, k);
}

/* Scan one grey object through its pointer map; returns the words of
 * work done. Objects with heap bits (<= 512 bytes: most objects) read
 * their bits straight from the span, everything else goes through the
 * general iterator. */
static uintptr_t scanobject(gcw *w, uintptr_t obj)
{
	mspan *s = spanof(obj);
	uintptr_t n = 0;

	if (likely(s->heap_bits != NULL))
		return scan_small(w, s, obj);
	ptriter it;
	uintptr_t *slot;
	uintptr_t oblet = UINTPTR_MAX; /* the oblet read whole, if any */
	if (spanclass_sizeclass(s->spc) == 0) {
		/* A large object is scanned an oblet at a time (Go's
		 * oblets): the first queues all the others, by address, so
		 * that no single scan (an assist's, say) runs long, every
		 * marker can take one, and the object is read early in the
		 * mark (which lets the barrier skip its deletion half,
		 * gcmark_slot_scanned). */
		uintptr_t off = obj - s->base;
		mspan_ptriter(s, s->base, &it);
		size_t end = MIN(it.nwords, (off + OBLET_BYTES) / WORD_SIZE);
		for (uintptr_t o = OBLET_BYTES;
		     off == 0 && o / WORD_SIZE < it.nwords; o += OBLET_BYTES)
			gcw_put(w, obj + o);
		it.w = off / WORD_SIZE;
		it.nwords = end;
		obj = s->base;
		if (s->oblet_bits && off % OBLET_BYTES == 0)
			oblet = off / OBLET_BYTES;
	} else {
		mspan_ptriter(s, obj, &it);
	}
	uint64_t bits;
	while ((bits = ptriter_next_chunk(&it, &slot)))
		n += mark_chunk(w, obj, slot, bits);
	if (oblet != UINTPTR_MAX) {
		/* Every slot of the oblet read: the barrier may stop shading
		 * what a store overwrites in it (gcmark_slot_scanned). aor is
		 * a full barrier, so the reads above come before the bit. */
		aor((atomic_word *)&s->oblet_bits[oblet / 64],
		    (uintptr_t)1 << (oblet % 64));
	}
	return n + 1;
}

/* Publish the scan bits of the objects done, before giving up the span
 * (the next owner must not scan them again). */
static void visit_publish(span_visit *v)
{
	size_t nw = mspan_bitmap_words(v->s->nelems);
	atomic_word *sb = (atomic_word *)v->s->gcscan_bits;

	for (size_t k = 0; k < nw; k++)
		if (v->done[k]) {
			aor(&sb[k], v->done[k]);
			v->done[k] = 0;
		}
}

/* Scan the objects in the visit's queue, and those their scans queue,
 * until it is empty. The loop is scan_small and mark_local with the
 * span's fields and the queue's ends in locals: through the visit's own
 * stores the compiler would reload every one of them per pointer (116
 * instructions per object on binary-trees' nodes, callgrind). Pointers
 * out of the span go to mark_value, which never touches this visit (its
 * span is another one, or the pointer is past the span's objects and
 * refused). Under checkmark or invalidptr > 1, the general path. */
static uintptr_t visit_drain(gcw *w, span_visit *v)
{
	mspan *s = v->s;
	uintptr_t n = 0;

	if (unlikely(checkmark_active) || options_.invalidptr > 1) {
		while (v->qhead < v->qtail)
			n += scan_small(w, s, s->base + v->q[v->qhead++] *
			                                s->elemsize);
		v->qhead = v->qtail = 0;
		return n;
	}
	/* The loop keeps v's queue ends in locals: only a mark through
	 * w->visit (greyobject) could move them behind its back, and that
	 * never happens for a pointer out of this span. */
	if (GCHEAP_CHECK_LEVEL >= 2 && w->visit != v)
		fatal("visit_drain: the marker visits another span");
	const uintptr_t base = s->base, size = s->elemsize;
	const uintptr_t vlen = s->limit - base;
	const uint64_t magic = s->divmagic;
	const atomic_word *hb = (const atomic_word *)s->heap_bits;
	const atomic_word *mb = (const atomic_word *)s->gcmark_bits;
	const unsigned nw = (unsigned)(size / WORD_SIZE);
	unsigned head = v->qhead, tail = v->qtail;
	bool again = false;

	while (head < tail) {
		uintptr_t off = v->q[head++] * size, obj = base + off;
		uint64_t bits = object_ptr_bits(hb, off / WORD_SIZE, nw);
		n++;
		for (; bits; bits &= bits - 1, n++) {
			uintptr_t *slot = (uintptr_t *)obj + ctz64(bits);
			uintptr_t x = aload((atomic_word *)slot);
			if (x - base >= vlen) {
				if (x)
					mark_value(w, x, true, obj,
					           (uintptr_t)slot);
				continue;
			}
			uintptr_t i = (uintptr_t)(((x - base) * magic) >> 32);
			uint64_t bit = (uint64_t)1 << (i % 64);
			if ((v->mine[i / 64] & bit) ||
			    (aload(&mb[i / 64]) & bit) ||
			    mspan_black_pending(s, i))
				continue;
			v->mine[i / 64] |= bit;
			again = true;
			if (tail < VISIT_QUEUE) {
				v->done[i / 64] |= bit;
				v->q[tail++] = (uint16_t)i;
				__builtin_prefetch((const void *)(base +
				                                  i * size));
			}
		}
	}
	if (again)
		v->again = true;
	v->qhead = v->qtail = 0;
	return n;
}

/* How many grey objects ahead of its scan scan_marked prefetches, across
 * bitmap words. A word's grey objects prefetched just before their scans
 * were too few to overlap when a span holds a few scattered live objects
 * per word (the allocation ring: ~4, each scan stalled on its own miss):
 * the ring's marking CPU fell 12% with this window, binary-trees' and
 * the probe's did not move. */
#define SCAN_PREFETCH 32

/* A cursor over the set bits of a span's grey words, in order. */
typedef struct grey_cursor {
	const uint64_t *grey;
	size_t k, nw;
	uint64_t bits;
} grey_cursor;

/* The next grey object's index, or -1 when none is left. */
static ALWAYS_INLINE intptr_t grey_next(grey_cursor *c)
{
	while (!c->bits) {
		if (++c->k >= c->nw)
			return -1;
		c->bits = c->grey[c->k];
	}
	intptr_t i = (intptr_t)(c->k * 64 + ctz64(c->bits));
	c->bits &= c->bits - 1;
	return i;
}

/* One pass of a span's owner over its bitmaps: publish its own marks
 * (mine), counting those that are new, then scan every object marked and
 * neither scanned nor done, prefetching SCAN_PREFETCH ahead. Marks its
 * scans make on the span itself go to mine and the visit's queue
 * (visit_mark), never to this pass's grey words. */
static uintptr_t scan_marked(gcw *w, span_visit *v)
{
	mspan *s = v->s;
	atomic_word *mb = (atomic_word *)s->gcmark_bits;
	const atomic_word *sb = (const atomic_word *)s->gcscan_bits;
	size_t nw = mspan_bitmap_words(s->nelems);
	uint64_t grey[VISIT_WORDS];
	uintptr_t n = 0;
	bool any = false;

	for (size_t k = 0; k < nw; k++) {
		uint64_t mark;
		if (v->mine[k]) {
			uint64_t old = afetch_or(&mb[k], v->mine[k]);
			uint64_t fb = v->mine[k] & ~old;
			unsigned fresh = popcount64(fb);
			w->bytes_marked += fresh * s->elemsize;
			w->nmarked += fresh;
			/* The fresh marks, for ephemerons waiting on them. */
			if (unlikely(aload(&s->eph_gen)))
				for (; fb; fb &= fb - 1)
					ephemeron_check(s, s->base +
					    (k * 64 + ctz64(fb)) * s->elemsize);
			mark = old | v->mine[k];
			v->mine[k] = 0;
		} else {
			mark = aload_acq(&mb[k]);
		}
		grey[k] = mark & ~aload(&sb[k]) & ~v->done[k];
		v->done[k] |= grey[k];
		any |= grey[k] != 0;
	}
	if (any) {
		const uintptr_t base = s->base, size = s->elemsize;
		grey_cursor scan = {grey, 0, nw, grey[0]};
		grey_cursor ahead = scan;
		intptr_t i, p;
		unsigned inflight = 0;

		while ((i = grey_next(&scan)) >= 0) {
			while (inflight < SCAN_PREFETCH &&
			       (p = grey_next(&ahead)) >= 0) {
				__builtin_prefetch((const void *)(base +
				                   (uintptr_t)p * size));
				inflight++;
			}
			inflight--;
			n += scan_small(w, s, base + (uintptr_t)i * size);
		}
	}
	return n + visit_drain(w, v);
}

/* The work a span visit counts beyond its objects' (its ownership
 * swaps, queue entry and bitmap passes). Assists are bounded in these
 * units (ASSIST_CHUNK): on the pause probe, whose visits mostly find one
 * scattered object, uncounted visits made an assist chunk take 2-3x as
 * long as with object-at-a-time marking, and gaps over 1 ms twice as
 * frequent. */
#define SPAN_VISIT_WORK 16

/* Scan the span that the entry obj stands for, which this marker owns
 * (gc/mgcspanq.h), until no grey object is left in it, and give it up.
 * The objects this scan marks on the span itself are scanned in the same
 * visit, through its queue (span_visit): a structure laid out in one
 * span is closed in one visit, with one more pass to publish its marks. */
static uintptr_t scanspan(gcw *w, uintptr_t obj)
{
	mspan *s = spanof(obj);
	uintptr_t n = SPAN_VISIT_WORK;
	span_visit v;

	v.s = s;
	v.again = false;
	v.qhead = v.qtail = 0;
	memset(v.done, 0, mspan_bitmap_words(s->nelems) * sizeof(v.done[0]));
	memset(v.mine, 0, mspan_bitmap_words(s->nelems) * sizeof(v.mine[0]));
	w->visit = &v;
	if (aload_acq(&s->gcowned) == SPAN_OWNED_ONE) {
		/* Only obj was marked from outside since the span was
		 * taken: skip the bitmaps (Go's one-mark case). */
		uintptr_t i = mspan_object_index(s, obj);
		uint64_t bit = (uint64_t)1 << (i % 64);
		if (!(aload((atomic_word *)&s->gcscan_bits[i / 64]) & bit)) {
			v.done[i / 64] = bit;
			n += scan_small(w, s, obj);
			n += visit_drain(w, &v);
		}
		while (v.again) {
			v.again = false;
			n += scan_marked(w, &v);
		}
		visit_publish(&v);
		if (acas(&s->gcowned, SPAN_OWNED_ONE, SPAN_UNOWNED)) {
			w->visit = NULL;
			return n;
		}
	}
	do {
		/* MANY -> ONE: marks that arrive from here on move it back,
		 * and the swap below fails. */
		acas(&s->gcowned, SPAN_OWNED_MANY, SPAN_OWNED_ONE);
		do {
			v.again = false;
			n += scan_marked(w, &v);
		} while (v.again);
		visit_publish(&v);
	} while (!acas(&s->gcowned, SPAN_OWNED_ONE, SPAN_UNOWNED));
	w->visit = NULL;
	return n;
}

/* Objects popped and prefetched, waiting their turn to be scanned: the
 * work queue is LIFO, so an object prefetched when it was greyed may be
 * popped a megabyte of marking later, long evicted; a prefetch at pop
 * time, PREFETCH_AHEAD scans before its own, overlaps its miss with
 * the scans in between (Boehm's and Cher et al.'s prefetch-on-grey
 * FIFO). Lives only inside one gcmark_drain call, which empties it
 * before it returns: a marker between drains holds nothing here. */
#define PREFETCH_AHEAD 8
/* An object within NEAR_BYTES / 2 of the last one scanned skips the
 * FIFO: see gcmark_drain. */
#define NEAR_BYTES 1024

typedef struct pfifo {
	uintptr_t obj[PREFETCH_AHEAD];
	unsigned head, n;
} pfifo;

/* Add p; if the FIFO was full, return its oldest object to scan now. */
static ALWAYS_INLINE uintptr_t pfifo_push(pfifo *f, uintptr_t p)
{
	mspan *s = spanof(p);

	__builtin_prefetch((const void *)p);
	if (s->heap_bits)
		__builtin_prefetch(&s->heap_bits[(p - s->base) / WORD_SIZE /
		                                 64]);
	if (f->n < PREFETCH_AHEAD) {
		f->obj[(f->head + f->n++) % PREFETCH_AHEAD] = p;
		return 0;
	}
	uintptr_t q = f->obj[f->head];
	f->obj[f->head] = p;
	f->head = (f->head + 1) % PREFETCH_AHEAD;
	return q;
}

static ALWAYS_INLINE uintptr_t pfifo_pop(pfifo *f)
{
	uintptr_t q = f->obj[f->head];
	f->head = (f->head + 1) % PREFETCH_AHEAD;
	f->n--;
	return q;
}

intptr_t gcmark_drain(gcw *w, intptr_t budget)
{
	intptr_t done = 0, next_look = 0, flushed = 0;
	pfifo f = {.head = 0, .n = 0};
	uintptr_t p, q, last = 0, far = w->far_marks;

	/* Local objects (through the FIFO), local spans, then the global
	 * lists; the FIFO is emptied before a span or the global list is
	 * looked at, since its scans may find local work. */
	while (budget < 0 || done < budget) {
		p = gcw_get_local(w);
		if (!p && !f.n) {
			uintptr_t sp = gcw_get_span_local(w);
			if (!sp && !(p = gcw_get(w)))
				sp = gcw_get_span(w);
			if (sp)
				done += (intptr_t)scanspan(w, sp);
			else if (!p)
				break;
		}
		if (p) {
			/* Near the last object scanned: likely in the cache
			 * already, or streaming in (a structure laid out in
			 * allocation order): scan it now. */
			if (p - last + NEAR_BYTES / 2 < NEAR_BYTES) {
				q = p;
			} else if (!(q = pfifo_push(&f, p))) {
				continue;
			}
		} else if (f.n) {
			q = pfifo_pop(&f);
		} else {
			q = 0; /* a span was scanned */
		}
		if (q) {
			last = q;
			done += (intptr_t)scanobject(w, q);
		}
		/* Marks from outside a span cost their misses (see
		 * GCMARK_FAR_WORK). */
		done += (intptr_t)(w->far_marks - far) * GCMARK_FAR_WORK;
		far = w->far_marks;
		if (done >= next_look) {
			next_look = done + 1024;
			/* The work so far counts now: for the pacer's
			 * debts (scan_done) and, a worker's, as credit. */
			uintptr_t d = (uintptr_t)(done - flushed);
			if (d) {
				afetch_add(&gcwork_.scan_done, d);
				if (w->credit)
					afetch_add(w->credit, d);
				flushed = done;
			}
			if (w->preempt && aload_acq(w->preempt))
				break;
			if (w->deadline_ns &&
			    gcstats_now_ns() >= w->deadline_ns) {
				w->expired = true;
				break;
			}
			if (gcwork_starved())
				gcw_balance(w);
		}
	}
	/* Stopped early (budget, preemption): what is prefetched goes back
	 * to the queue, still grey. */
	while (f.n)
		gcw_put(w, pfifo_pop(&f));
	w->scan_work += (uintptr_t)done;
	if (done > flushed) {
		afetch_add(&gcwork_.scan_done, (uintptr_t)(done - flushed));
		if (w->credit)
			afetch_add(w->credit, (uintptr_t)(done - flushed));
	}
	return done;
}

void gcmark_scan_object(gcw *w, uintptr_t obj)
{
	mspan *s = spanof(obj);
	if (!spanclass_noscan(s->spc))
		w->scan_work += scanobject(w, obj);
}

uintptr_t gcmark_scan_old(gcw *w, mspan *s, uintptr_t lo, uintptr_t hi)
{
	const uint64_t *ab = (const uint64_t *)aload_acq(
		(const atomic_word *)&s->alloc_bits);
	uintptr_t n = 0;

	lo = MAX(lo, s->base);
	hi = MIN(hi, s->limit);
	if (lo >= hi)
		return 0;
	if (spanclass_sizeclass(s->spc) == 0) {
		/* The range's slots only, as an oblet's. */
		if (!(aload((const atomic_word *)ab) & 1))
			return 0;
		ptriter it;
		uintptr_t *slot;
		uint64_t bits;
		mspan_ptriter(s, s->base, &it);
		size_t end = MIN(it.nwords, (hi - s->base + WORD_SIZE - 1) /
		                            WORD_SIZE);
		if ((lo - s->base) / WORD_SIZE >= end)
			return 0;
		it.w = (lo - s->base) / WORD_SIZE;
		it.nwords = end;
		while ((bits = ptriter_next_chunk(&it, &slot)))
			n += mark_chunk(w, s->base, slot, bits);
		return n;
	}
	/* The objects that overlap the range, a bitmap word at a time: a
	 * card of young objects only (most of them, as every store dirties
	 * a card) costs a load or two. */
	uintptr_t i = mspan_object_index(s, lo);
	uintptr_t end = MIN(s->nelems, mspan_object_index(s, hi - 1) + 1);
	while (i < end) {
		unsigned k = (unsigned)MIN(64 - i % 64, end - i);
		uint64_t old = (aload((const atomic_word *)&ab[i / 64]) >>
		                (i % 64)) & low_mask(k);
		for (; old; old &= old - 1)
			n += scanobject(w, s->base + (i + ctz64(old)) *
			                           s->elemsize);
		i += k;
	}
	return n;
}

bool gcmark_is_marked(uintptr_t p)
{
	mspan *s = spanof_heap(p);
	if (!s)
		return true; /* not a heap object: never collected */
	uintptr_t i = mspan_object_index(s, p);
	if (unlikely(checkmark_active))
		return checkmark_get(s->base + i * s->elemsize);
	return mspan_black_pending(s, i) ||
	       ((aload((atomic_word *)&s->gcmark_bits[i / 64]) >> (i % 64)) &
	        1);
}

void gcmark_new(gcw *w, mspan *s, uintptr_t obj)
{
	if (mark_bit(s->gcmark_bits, mspan_object_index(s, obj)))
		w->bytes_marked += s->elemsize;
}

/* ---- Checkmark ----------------------------------------------------------- */

void gcmark_checkmark_begin(void)
{
	checkmark_active = true;
	checkmark_conservative_misses = 0;
	/* Objects lie below their arena's commit line, which never moves
	 * down: the bits above it were never set. (The whole bitmap, a MiB
	 * an arena, was most of a small heap's checkmark.) */
	mutex_lock(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next)
		if (a->gc_data)
			memset(a->gc_data, 0,
			       a->committed * (PAGE_SIZE / WORD_SIZE / 8));
	mutex_unlock(&mheap_.lock);
}

void gcmark_checkmark_end(void)
{
	checkmark_active = false;
	if (options_.gctrace && checkmark_conservative_misses) {
		int cs = cancel_off(); /* world stopped (alloc/sys/lock.h) */
		fprintf(stderr, "gcheap: checkmark: %zu stale conservative "
		        "words pointed at unmarked objects\n",
		        (size_t)checkmark_conservative_misses);
		cancel_restore(cs);
	}
}
