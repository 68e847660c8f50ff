/* runtime/realloc.c: gc_realloc, gc_strdup and gc_strndup, the calls bdwgc
 * users reach for, on top of gc_alloc.
 *
 * gc_realloc keeps the object where it is when the new size fits in its
 * slot and its pointer layout does not change (noscan objects; heap-bits
 * objects whose bits are the same for the new size, or run to the slot's
 * end, as a moved array's do: slot_layout; objects scanned through their
 * type, small or large, at a size of whole words): the
 * bytes past the new size are zeroed (through the barrier where they may
 * hold pointers), so that growing again later finds zeros. A large
 * object shrunk below half its slot moves, so that the slot is freed.
 * Anything else moves: a new object of the same type, the common prefix
 * copied with the bulk barrier (gc_copy), the old one left to the
 * collector; a large one grown by a small step gets room in its slot for
 * the steps after (growth_room).
 * A new large noscan object's prefix is not zeroed before the copy (a
 * second pass over memory): nothing reads a noscan object's bytes but
 * the program, which sees it only once the copy is done. A scan object
 * is zeroed in full: the copy's barrier reads the slots it overwrites.
 * Both objects are held (runtime_hold) while the new one is allocated, so
 * the call is safe in precise mode as long as the caller roots the old
 * object as for any allocating call. */
#include "runtime/runtime.h"

#include <string.h>

/* Does the object at base (index i of s) have the layout of `type`, as
 * far as the span records it? */
static bool layout_matches(const mspan *s, uintptr_t base, uintptr_t i,
                           const gc_type *type)
{
	bool noscan = spanclass_noscan(s->spc);

	if (noscan || !type || type->noscan)
		return noscan && (!type || type->noscan);
	const gc_type *known = mspan_object_type(s, i);
	if (known)
		return known == type;
	if (!s->heap_bits)
		return false;
	/* The object's bits are the type's map cut at its size in whole
	 * words, which its size class bounds: from the words of the class
	 * below (a size just past it, not a word multiple, has no more) to
	 * the slot's end (an object is made in the class its size picks;
	 * gc_realloc keeps one in place only with its bits as they were, or
	 * moves it into the class of its new size). Cut at the highest set
	 * bit instead, a type whose map merely began with the object's
	 * pointers passed: all-pointers for {ptr, long, long, long}. The
	 * bits cannot tell such a type from the object's when a cut the
	 * class allows makes them agree: {ptr, ptr, long} and all-pointers
	 * at 17-24 bytes. */
	uint64_t bits = mspan_object_heapbits(s, base);
	unsigned sc = spanclass_sizeclass(s->spc);
	unsigned lo = sc ? (unsigned)(class_to_size[sc - 1] / WORD_SIZE) : 1;
	unsigned hi = (unsigned)(s->elemsize / WORD_SIZE);
	for (unsigned nw = lo; nw <= hi && nw <= 64; nw++)
		if ((type->small_bits & low_mask(nw)) == bits)
			return true;
	return false;
}

/* The heap bits of `type` over a whole slot of `have` bytes. */
static uint64_t slot_bits(const gc_type *type, size_t have)
{
	return type->small_bits & low_mask((unsigned)(have / WORD_SIZE));
}

/* Keep p (in its slot of `have` bytes, of the right type) where it is
 * for the new size if its layout allows; the bytes past size are zero
 * afterwards. False if it must move. */
static bool in_place(gc_thread *t, mspan *s, void *p, size_t size,
                     size_t have, const gc_type *type)
{
	char *c = p;

	if (spanclass_noscan(s->spc)) {
		size_t end = have;
		if (spanclass_sizeclass(s->spc) == 0) {
			/* A large one is zero past its size (large_size)
			 * but for what the program wrote in the slot's
			 * tail: clear only what a shrink drops, and on
			 * growth that tail's bytes (growth is zeroed). */
			uintptr_t known = aload((atomic_word *)&s->large_size);
			end = known;
			if (size > known)
				memset(c + known, 0, size - known);
			astore((atomic_word *)&s->large_size, size);
		}
		if (size < end)
			memset(c + size, 0, end - size);
		return true;
	}
	if (s->heap_bits) {
		uint64_t bits = mspan_object_heapbits(s, (uintptr_t)p);
		/* The same bits for the new size: no pointer slot past it. */
		if (bits == (type->small_bits &
		             low_mask((unsigned)(size / WORD_SIZE)))) {
			memset(c + size, 0, have - size);
			return true;
		}
		/* The type's bits over the whole slot (a moved object, below):
		 * any size of whole words fits them; the tail's pointer slots
		 * are cleared through the barrier. */
		if (size % WORD_SIZE || bits != slot_bits(type, have))
			return false;
		runtime_wipe(t, c + size, have - size, 0, true);
		return true;
	}
	/* Scanned through its type: a small object over its whole slot, a
	 * large one up to large_size. The tail is cleared word by word
	 * through the barrier (it may hold pointers); a size that ends
	 * inside a word would cut a pointer slot, so such objects move. */
	if (size % WORD_SIZE)
		return false;
	if (spanclass_sizeclass(s->spc) != 0) {
		runtime_wipe(t, c + size, have - size, 0, true);
		return true;
	}
	/* Past large_size the slot is zero already (a scan object is
	 * zeroed when allocated): clear only what a shrink drops. A marker
	 * that read the old extent scans zeros past the new one; one that
	 * read it before a growth misses nothing, since the program stores
	 * into the grown part with gc_write. */
	uintptr_t old = aload((atomic_word *)&s->large_size);
	if (size < old)
		runtime_wipe(t, c + size, old - size, 0, true);
	/* Growth: past large_size the marker did not look since the last
	 * extent it read, so a pointer the program stored there (against
	 * the rules, but gc_size said the slot) may name a freed object:
	 * cleared, and not shaded, before the new extent is published (it
	 * became a scanned slot, and the next mark aborted on it). With
	 * word stores: a marker that read a larger extent before a shrink
	 * in this mark may still be reading these words (ThreadSanitizer
	 * saw a memset race it); a partial word at old is past every extent
	 * a marker scans (whole words only). */
	if (old && size > old) {
		uintptr_t w = align_up(old, WORD_SIZE);
		memset(c + old, 0, MIN(w, size) - old);
		for (; w < size; w += WORD_SIZE)
			astore((atomic_word *)(c + w), 0);
		astore_rel((atomic_word *)&s->large_size, size);
		return true;
	}
	astore((atomic_word *)&s->large_size, size);
	return true;
}

/* A moved object of a type whose map goes on past its size (an array
 * of pointers, GCHEAP_TAIL_REPEAT) takes the type's bits over its whole
 * slot, where heap bits record its layout (up to 512 bytes), so that
 * growing it again within the slot keeps it in place (in_place): with
 * the bits cut at its size, a vector grown a word at a time moved at
 * every call, 63 times in 64 (bdwgc: 26). The words past its size are
 * zero, and later stores into them go through gc_write. The object is
 * new, in a span this thread's cache holds, and black or unscanned
 * while marking: this thread may write its bits (as alloc_finish). */
static void slot_layout(void *q, size_t size, const gc_type *type)
{
	if (!type || type->noscan || size % WORD_SIZE)
		return;
	/* In this thread's cache: spanof needs no sweep-proof lookup. */
	mspan *s = spanof((uintptr_t)q);
	if (!s->heap_bits || s->elemsize == size ||
	    slot_bits(type, s->elemsize) == slot_bits(type, size))
		return;
	mspan_set_type(s, (uintptr_t)q, type, s->elemsize);
}

/* Room for a large object that moves to grow by a step under an eighth
 * of its size: an eighth more, in its slot (gc_size), so that the steps
 * after it grow in place. A buffer or array grown a few bytes at a time
 * (an append loop) moved every 8 KiB, copying its whole length each time
 * and allocating a new large object each time, each a share of a cycle:
 * O(n^2) bytes copied and hundreds of cycles, 2-3x bdwgc's CPU (which
 * frees the old copy at once). Geometric growth (doubling) gets none:
 * its objects already have the room they will take. */
static size_t growth_room(size_t size, size_t have)
{
	if (size <= MAX_SMALL_SIZE || size <= have || size - have >= size / 8)
		return 0;
	return size / 8;
}

/* A new object returned to the caller (rooted by the caller from then
 * on), or NULL with the error reported. */
/* Inlined: the profiler's stacks start at the caller of the entry point
 * (runtime/mprof.c, in_entry), and this is no entry point. */
static ALWAYS_INLINE void *new_object(gc_thread *t, size_t size,
                                      const gc_type *type)
{
	size_t mark = runtime_held_mark(t);
	void *p = runtime_new(t, size, type);
	runtime_unhold(t, mark);
	return p;
}

static void *realloc_error(gc_status code, const void *p, size_t size,
                           const gc_type *type, const char *what)
{
	runtime_error(code, "gc_realloc(%p, %zu, %s%s%p): %s", p, size,
	              type && gctype_valid(type) ? type->name : "",
	              type && gctype_valid(type) ? " " : "", (const void *)type,
	              what);
	return NULL;
}

void *gc_realloc(void *p, size_t size, const gc_type *type)
{
	gc_thread *t = thread_current;
	mspan *s = NULL;

	if (!t) {
		runtime_not_attached("gc_realloc");
		return NULL;
	}
	if (type && !gctype_valid(type))
		return realloc_error(GCHEAP_ERR_TYPE, p, size, type,
		                     "not a gc_type (made by gc_type_new)");
	if (!p || p == new_object(t, 0, NULL))
		return new_object(t, size, type);
	uintptr_t base = mheap_find_object((uintptr_t)p, &s);
	if (!base)
		return realloc_error(GCHEAP_ERR_ARG, p, size, type,
		                     "not an allocated heap object");
	/* As gc_free: its record is the collector's (a cleared tag broke
	 * the handle, and a weak map's entry with the same key). */
	if (runtime_is_handle((void *)base, s))
		return realloc_error(GCHEAP_ERR_ARG, p, size, type,
		                     "a weak handle (gc_weak, gc_ephemeron or "
		                     "gc_weakmap)");
	bool tiny = mspan_is_tiny_block(s, mspan_object_index(s, base));
	if (base != (uintptr_t)p && !tiny) {
		runtime_error(GCHEAP_ERR_ARG, "gc_realloc(%p, %zu): an "
		              "interior pointer; its object starts at %p", p,
		              size, (void *)base);
		return NULL;
	}
	if (runtime_is_uncollectable(p))
		return realloc_error(GCHEAP_ERR_ARG, p, size, type,
		                     "an uncollectable object (allocate a "
		                     "new one and free the old)");
	uintptr_t i = mspan_object_index(s, base);
	if (!layout_matches(s, base, i, type))
		return realloc_error(GCHEAP_ERR_TYPE, p, size, type,
		                     spanclass_noscan(s->spc) ?
		                     "not the object's type (a noscan object "
		                     "takes NULL or a noscan type)" :
		                     "not the object's type (a scan object "
		                     "takes the type it was made with)");
	if (size > GCHEAP_MAX_ALLOC)
		return realloc_error(GCHEAP_ERR_SIZE, p, size, type,
		                     "over GCHEAP_MAX_ALLOC");
	if (size == 0) /* the zero-size address, as for a new object */
		return new_object(t, 0, type);
	if (type && size < type->size)
		return realloc_error(GCHEAP_ERR_SIZE, p, size, type,
		                     "smaller than the type's size");

	size_t have = tiny ? TINY_SIZE - ((uintptr_t)p - base) : s->elemsize;
	/* A large object shrunk below half its slot moves: its pages go
	 * back to the heap, and no later call clears a tail far bigger
	 * than the object. */
	if (!tiny && size <= have &&
	    !(spanclass_sizeclass(s->spc) == 0 && size < have / 2) &&
	    in_place(t, s, p, size, have, type))
		return p;
	size_t mark = runtime_held_mark(t);
	size_t n = MIN(size, have);
	runtime_hold(t, p);
	/* A large noscan object: the prefix about to be copied is not
	 * zeroed first (runtime/malloc.c alloc_large). */
	if (spanclass_noscan(s->spc) && size > MAX_SMALL_SIZE)
		t->nozero = n;
	t->slack = growth_room(size, have);
	void *q = runtime_new(t, size, type);
	t->nozero = t->slack = 0;
	if (q) {
		/* A new size inside a word cuts the old object's pointer
		 * there: not carried over (the new object does not scan that
		 * word, and growing it back would bring the stale pointer
		 * back as a pointer). */
		if (!spanclass_noscan(s->spc) && n % WORD_SIZE &&
		    gctype_word_is_ptr(type, n / WORD_SIZE))
			n -= n % WORD_SIZE;
		/* memmove: a tiny object's bytes run to its block's end
		 * (have), and the new object may lie there, just past the
		 * old one. */
		if (spanclass_noscan(s->spc))
			memmove(q, p, n);
		else
			gc_copy(q, p, n);
		slot_layout(q, size, type);
	}
	runtime_unhold(t, mark);
	return q;
}

/* gc_strndup, its messages naming fn (the call the program made). */
static char *strndup_as(const char *fn, const char *str, size_t n)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached(fn);
		return NULL;
	}
	if (!str && n) {
		runtime_error(GCHEAP_ERR_ARG, "%s(NULL): NULL string", fn);
		return NULL;
	}
	size_t len = n ? strnlen(str, n) : 0;
	/* len < SIZE_MAX: strnlen stops at n, and no object is that big. */
	char *p = new_object(t, len + 1, NULL);
	if (p) {
		if (len)
			memcpy(p, str, len);
		p[len] = 0;
	}
	return p;
}

char *gc_strndup(const char *str, size_t n)
{
	return strndup_as("gc_strndup", str, n);
}

char *gc_strdup(const char *str)
{
	return strndup_as("gc_strdup", str, SIZE_MAX);
}
