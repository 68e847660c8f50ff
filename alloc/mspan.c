/* alloc/mspan.c: span set-up, the allocation-bitmap walk (nextFreeIndex),
 * pointer-layout records, the sweeping of one span's objects and bitmaps
 * and the span verifier. The invariants are stated in mspan.h. A sweep
 * only reports what became of the span (mspan_swept); the lists and the
 * heap are mcentral's business (mcentral_sweep). Nothing here includes
 * the heap: what it needs of it (sweepgen, the metadata allocator) comes
 * in as arguments. */
#include "alloc/mspan.h"

#include "alloc/sys/options.h"

#include <string.h>

/* nelems 0, alloc_cache 0, no layout key: every fast path misses. */
mspan mspan_empty = {.freekey = MSPAN_KEY_NONE};
alloc_hooks mspan_hooks;

void mspan_refill_alloc_cache(mspan *s, uintptr_t w)
{
	uint64_t c = ~s->alloc_bits[w];

	if ((w + 1) * 64 > s->nelems)
		c &= low_mask((unsigned)(s->nelems - w * 64));
	s->alloc_cache = c;
}

uintptr_t mspan_next_free_index(mspan *s)
{
	uintptr_t fi = aload(&s->freeindex);
	uintptr_t n = s->nelems;

	if (fi == n)
		return fi;
	/* The fast path used up its window: load the rest of the word
	 * from freeindex on (the next window, or, when the window was cut
	 * short for the heap profiler, its remainder: alloc/mcache.h). */
	if (!s->alloc_cache) {
		mspan_refill_alloc_cache(s, fi / 64);
		s->alloc_cache >>= fi % 64;
	}
	uint64_t cache = s->alloc_cache;
	unsigned bit = ctz64(cache);
	while (bit == 64) {
		/* Move to the start of the next bitmap word. */
		fi = (fi + 64) & ~(uintptr_t)63;
		if (fi >= n) {
			astore(&s->freeindex, n);
			return n;
		}
		mspan_refill_alloc_cache(s, fi / 64);
		cache = s->alloc_cache;
		bit = ctz64(cache);
	}
	uintptr_t result = fi + bit;
	if (result >= n) {
		astore(&s->freeindex, n);
		return n;
	}
	s->alloc_cache = (cache >> bit) >> 1;
	fi = result + 1;
	if (fi % 64 == 0 && fi != n)
		mspan_refill_alloc_cache(s, fi / 64);
	astore(&s->freeindex, fi);
	return result;
}

bool mspan_init(mspan *s, uintptr_t base, uintptr_t npages, spanclass spc,
                metaalloc *meta)
{
	unsigned sc = spanclass_sizeclass(spc);

	s->base = base;
	s->npages = npages;
	s->spc = spc;
	s->next = s->prev = NULL;
	s->list = NULL;
	s->kept = false;
	/* Not cached, so not allocating black (large spans never are). */
	mspan_set_blackfrom(s, NO_BLACK);
	s->freetype = NULL;
	s->freesize = 0;
	s->freekey = MSPAN_KEY_NONE;
	s->alltype = NULL;
	s->allsize = 0;
	s->specials = NULL;
	s->sp_next = s->sp_prev = NULL;
	s->sp_roots = s->sp_ephs = 0;
	astore(&s->weak_cells, 0);
	if (sc == 0) {
		s->elemsize = npages * PAGE_SIZE;
		s->nelems = 1;
		s->divmagic = 0;
	} else {
		s->elemsize = class_to_size[sc];
		s->nelems = npages * PAGE_SIZE / s->elemsize;
		s->divmagic = class_to_divmagic[sc];
		gc_assert(s->nelems <= MSPAN_MAX_NELEMS);
	}
	s->limit = base + s->nelems * s->elemsize;

	size_t nw = mspan_bitmap_words(s->nelems);
	size_t hbw = span_has_heapbits(spc) ? mspan_heapbits_words(npages) : 0;
	bool typed = !spanclass_noscan(spc) && sc != 0 && !hbw;
	size_t ntypes = typed ? s->nelems : 0;
	size_t nids = aload(&options_.record_types) && sc ?
	              (s->nelems + 3) / 4 : 0;
	bool scanbits = options_.greentea && hbw && nw <= SCANBITS_MAX_WORDS;
	size_t nsw = scanbits ? nw : 0;
	size_t nob = sc == 0 && !spanclass_noscan(spc)
	                     ? mspan_oblet_words(npages) : 0;
	if ((2 * nw + nob) * sizeof(uint64_t) > METAALLOC_MAX)
		nob = 0; /* an object over 2 GiB: no oblet bits */
	size_t ntb = spc == TINY_SPANCLASS ? nw : 0;
	size_t bytes = (2 * nw + hbw + nids + nsw + nob + ntb) *
	               sizeof(uint64_t) + ntypes * sizeof(gc_type *);
	uint64_t *m = metaalloc_alloc(meta, bytes);
	if (!m)
		return false;
	s->meta = m;
	s->meta_bytes = bytes;
	s->alloc_bits = m;
	s->gcmark_bits = m + nw;
	s->heap_bits = hbw ? m + 2 * nw : NULL;
	s->types = typed ? (const gc_type **)(m + 2 * nw + hbw) : NULL;
	s->typeids = nids ? (uint16_t *)(m + 2 * nw + hbw) + ntypes * 4
	                  : NULL;
	/* nsw implies hbw, so no types array lies in between. */
	s->gcscan_bits = nsw ? m + 2 * nw + hbw + nids : NULL;
	/* nob implies a large span: nothing but the two bitmaps before. */
	s->oblet_bits = nob ? m + 2 * nw : NULL;
	/* Last (the tiny class is noscan and small: after the ids). */
	s->tiny_bits = ntb ? m + 2 * nw + hbw + nids + nsw + nob : NULL;
	astore(&s->gcowned, 0);
	s->largetype = NULL;
	s->large_size = 0;
	astore(&s->freeindex, 0);
	s->alloc_count = 0;
	mspan_refill_alloc_cache(s, 0);
	if (options_.poison && sc)
		memset((void *)base, POISON_BYTE, npages * PAGE_SIZE);
	return true;
}

void mspan_release_meta(mspan *s, metaalloc *meta)
{
	metaalloc_free(meta, s->meta, s->meta_bytes);
	s->meta = NULL;
	s->alloc_bits = s->gcmark_bits = s->heap_bits = NULL;
	s->gcscan_bits = NULL;
	s->oblet_bits = NULL;
	s->tiny_bits = NULL;
	s->types = NULL;
	s->typeids = NULL;
}

void mspan_set_type(mspan *s, uintptr_t p, const gc_type *t, size_t size)
{
	s->alltype = NULL;
	if (s->heap_bits) {
		uint64_t bits = t->small_bits & low_mask((unsigned)(size /
		                                                    WORD_SIZE));
		mspan_set_heapbits(s, p, bits);
	} else if (s->types) {
		uintptr_t i = mspan_object_index(s, p);
		astore((atomic_word *)&s->types[i], (uintptr_t)t);
	} else {
		s->largetype = t;
		s->large_size = size;
	}
}

/* ---- Cached spans -------------------------------------------------------- */

/* The first index in [i, n) whose bit in bm equals `set`, or n. */
static uintptr_t find_bit(const uint64_t *bm, uintptr_t i, uintptr_t n,
                          bool set)
{
	while (i < n) {
		uint64_t w = set ? bm[i / 64] : ~bm[i / 64];
		w &= ~low_mask((unsigned)(i % 64));
		if (w)
			return MIN(n, (i & ~(uintptr_t)63) + ctz64(w));
		i = (i & ~(uintptr_t)63) + 64;
	}
	return n;
}

/* The free slots from index `from` on, as runs [i, j): calls fn for each
 * run of consecutive free objects (alloc bit clear). */
static void each_free_run(mspan *s, uintptr_t from,
                          void (*fn)(mspan *, uintptr_t, uintptr_t,
                                     const void *),
                          const void *arg)
{
	uintptr_t n = s->nelems;

	for (uintptr_t i = find_bit(s->alloc_bits, from, n, false); i < n;) {
		uintptr_t j = find_bit(s->alloc_bits, i, n, true);
		fn(s, i, j, arg);
		i = find_bit(s->alloc_bits, j, n, false);
	}
}

static void zero_run(mspan *s, uintptr_t i, uintptr_t j, const void *arg)
{
	uintptr_t p = s->base + i * s->elemsize, len = (j - i) * s->elemsize;

	if (options_.poison)
		mspan_check_poison(s, p, len);
	memset((void *)p, 0, len);
}

void mspan_prepare_cached(mspan *s, bool black)
{
	if (s->needzero && spanclass_sizeclass(s->spc)) {
		each_free_run(s, aload(&s->freeindex), zero_run, NULL);
		s->needzero = 0;
	}
	mspan_set_freelayout(s, NULL, 0);
	mspan_set_blackfrom(s, black ? aload(&s->freeindex) : NO_BLACK);
}

struct fill {
	const gc_type *t;
	size_t size;
};

/* Heap bits of objects i..j-1 of n words each (n <= 64), every one with
 * map `bits`: a repeated word when n divides 64, else streamed a word at a
 * time; the bits of other objects that share the first and last words are
 * kept. */
static void fill_heapbits(mspan *s, uintptr_t i, uintptr_t j, uint64_t bits,
                          unsigned n)
{
	atomic_word *hb = (atomic_word *)s->heap_bits;
	uintptr_t w = i * n / 64;
	unsigned off = (unsigned)(i * n % 64);

	if (64 % n == 0) {
		/* Every word holds whole objects: one repeated pattern. */
		uint64_t pat = 0;
		for (unsigned k = 0; k < 64; k += n)
			pat |= bits << k;
		for (uintptr_t b0 = i * n, b1 = j * n; w * 64 < b1; w++) {
			uint64_t m = ~(uint64_t)0;
			if (w == b0 / 64)
				m &= ~low_mask((unsigned)(b0 % 64));
			if ((w + 1) * 64 > b1)
				m &= low_mask((unsigned)(b1 - w * 64));
			astore(&hb[w], m == ~(uint64_t)0 ? pat :
			               (aload(&hb[w]) & ~m) | (pat & m));
		}
		return;
	}
	uint64_t acc = aload(&hb[w]) & low_mask(off);

	for (uintptr_t k = i; k < j; k++) {
		unsigned end = off + n;
		acc |= bits << off;
		if (end < 64) {
			off = end;
			continue;
		}
		astore(&hb[w++], acc);
		/* end > 64 only if off > 0: the shift is 1..63. */
		acc = end > 64 ? bits >> (64 - off) : 0;
		off = end - 64;
	}
	if (off)
		astore(&hb[w], (aload(&hb[w]) & ~low_mask(off)) | acc);
}

static void fill_run(mspan *s, uintptr_t i, uintptr_t j, const void *arg)
{
	const struct fill *f = arg;
	unsigned n = (unsigned)(s->elemsize / WORD_SIZE);

	if (!s->heap_bits) {
		for (; i < j; i++)
			mspan_set_type(s, s->base + i * s->elemsize, f->t,
			               f->size);
		return;
	}
	fill_heapbits(s, i, j, f->t->small_bits &
	                       low_mask((unsigned)(f->size / WORD_SIZE)) &
	                       low_mask(n), n);
}

void mspan_fill_type(mspan *s, uintptr_t from, const gc_type *t,
                     size_t size)
{
	struct fill f = {t, size};

	if (s->alltype != t || s->allsize != size) {
		each_free_run(s, from, fill_run, &f);
		/* Every slot written: none below from, none allocated. */
		bool all = from == 0 &&
		           find_bit(s->alloc_bits, 0, s->nelems, true) ==
		           s->nelems;
		s->alltype = all ? t : NULL;
		s->allsize = all ? size : 0;
	}
	mspan_set_freelayout(s, t, size);
}

uintptr_t mspan_mark_allocated(mspan *s, uintptr_t from, uintptr_t to)
{
	uintptr_t n = 0;

	for (uintptr_t w = from / 64; w * 64 < to; w++) {
		uint64_t m = ~s->alloc_bits[w];
		if (w == from / 64)
			m &= ~low_mask((unsigned)(from % 64));
		if ((w + 1) * 64 > to)
			m &= low_mask((unsigned)(to - w * 64));
		/* Scan bits first: a span scanner that sees the mark bit
		 * (after this release) sees the scan bit too. */
		if (s->gcscan_bits && m)
			aor((atomic_word *)&s->gcscan_bits[w], m);
		atomic_word *a = (atomic_word *)&s->gcmark_bits[w];
		uintptr_t old = aload(a);
		while ((m & ~old) && !acas(a, old, old | m))
			old = aload(a);
		n += popcount64(m & ~old);
	}
	return n;
}

void mspan_ptriter(const mspan *s, uintptr_t obj, ptriter *it)
{
	if (spanclass_noscan(s->spc)) {
		ptriter_init_typed(it, obj, 0, NULL);
	} else if (s->heap_bits) {
		ptriter_init_heapbits(it, obj, s->elemsize, s->heap_bits,
		                      (obj - s->base) / WORD_SIZE);
	} else if (s->types) {
		uintptr_t i = mspan_object_index(s, obj);
		const gc_type *t = (const gc_type *)aload(
			(atomic_word *)&s->types[i]);
		ptriter_init_typed(it, obj, t ? s->elemsize : 0, t);
	} else {
		const gc_type *t = s->largetype;
		/* gc_realloc may change it in place: an acquire load, paired
		 * with its release store after it zeroed the growth, so that
		 * a marker that reads the new extent reads zeros past the old
		 * one (ThreadSanitizer saw the pair unordered). */
		ptriter_init_typed(it, obj, t ? aload_acq((const atomic_word *)
		                                          &s->large_size) : 0,
		                   t);
	}
}

const gc_type *mspan_object_type(const mspan *s, uintptr_t i)
{
	if (s->types)
		return (const gc_type *)aload((atomic_word *)&s->types[i]);
	if (spanclass_sizeclass(s->spc) == 0)
		return s->largetype;
	if (s->typeids && s->typeids[i])
		return gctype_by_id(s->typeids[i]);
	return NULL;
}

uint64_t mspan_object_heapbits(const mspan *s, uintptr_t obj)
{
	const atomic_word *hb = (const atomic_word *)s->heap_bits;
	uintptr_t wi = (obj - s->base) / WORD_SIZE;
	unsigned nw = (unsigned)(s->elemsize / WORD_SIZE);
	unsigned sh = wi % 64;
	uint64_t bits = aload(&hb[wi / 64]) >> sh;

	if (sh + nw > 64)
		bits |= aload(&hb[wi / 64 + 1]) << (64 - sh);
	return bits & low_mask(nw);
}

/* ---- Sweeping ------------------------------------------------------------ */

static NOINLINE void report_zombie(const mspan *s, uintptr_t i,
                                   uintptr_t sg)
{
	fatal("sweep found a marked object that is free (zombie): object %p "
	      "(index %zu) of span %p [%p, %p) class %u%s, freeindex %zu, "
	      "sweepgen %zu/%zu",
	      (void *)(s->base + i * s->elemsize), (size_t)i, (void *)s,
	      (void *)s->base, (void *)s->limit, spanclass_sizeclass(s->spc),
	      spanclass_noscan(s->spc) ? " noscan" : "",
	      (size_t)aload(&s->freeindex), (size_t)aload(&s->sweepgen),
	      (size_t)sg);
}

/* Walk the objects that die in this sweep: allocated (below freeindex or
 * alloc bit set) and unmarked. Also find zombies: marked but free. */
static void sweep_objects(mspan *s, uintptr_t fi, uintptr_t sg)
{
	const alloc_hooks *h = &mspan_hooks;
	size_t nw = mspan_bitmap_words(s->nelems);

	for (size_t w = 0; w < nw; w++) {
		uint64_t mark = s->gcmark_bits[w];
		uint64_t alloc = s->alloc_bits[w];
		/* Objects below freeindex are allocated. */
		if (fi > w * 64)
			alloc |= low_mask((unsigned)MIN(64, fi - w * 64));
		alloc &= low_mask((unsigned)MIN(64, s->nelems - w * 64));
		uint64_t zombie = mark & ~alloc;
		if (zombie)
			report_zombie(s, w * 64 + ctz64(zombie), sg);
		uintptr_t first = s->base + w * 64 * s->elemsize;
		if (h->object_freed)
			for (uint64_t d = alloc & ~mark; d; d &= d - 1)
				h->object_freed(s, first + ctz64(d) *
				                          s->elemsize);
		/* Poison mode keeps every free slot poisoned, so that
		 * allocation can check the pattern (mspan_check_poison). */
		uint64_t free = ~mark & low_mask((unsigned)MIN(
		                            64, s->nelems - w * 64));
		if (options_.poison && spanclass_sizeclass(s->spc))
			for (; free; free &= free - 1)
				memset((void *)(first + ctz64(free) *
				                        s->elemsize),
				       POISON_BYTE, s->elemsize);
	}
}

size_t poison_mismatch(const void *p, size_t n)
{
	const uint8_t *b = p;
	const uint64_t pat = 0x0101010101010101ULL * POISON_BYTE;
	size_t i = 0;

	/* A word at a time (the checks cover every freed byte; under the
	 * sanitizers a byte loop was most of a checked test's time). */
	for (; i < n && (uintptr_t)(b + i) % sizeof(pat); i++)
		if (b[i] != POISON_BYTE)
			return i;
	for (uint64_t w; i + sizeof(pat) <= n; i += sizeof(pat))
		if (memcpy(&w, b + i, sizeof(w)), w != pat)
			break;
	for (; i < n; i++)
		if (b[i] != POISON_BYTE)
			return i;
	return n;
}

void mspan_check_poison(const mspan *s, uintptr_t p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	size_t i = poison_mismatch(b, n);

	if (i < n)
		fatal("write after free: byte %zu of free object %p "
		      "(span %p class %u, size %zu) is %#x, not the "
		      "poison %#x", i, (void *)p, (void *)s,
		      spanclass_sizeclass(s->spc), (size_t)s->elemsize,
		      b[i], POISON_BYTE);
}

/* Objects marked in s (Go's countAlloc). */
static uintptr_t count_marked(const mspan *s)
{
	uintptr_t n = 0;
	for (size_t w = 0; w < mspan_bitmap_words(s->nelems); w++)
		n += popcount64(s->gcmark_bits[w]);
	return n;
}

mspan_gen mspan_gen_;

mspan_swept mspan_sweep(mspan *s, uintptr_t sg, uintptr_t *nfreedp)
{
	if (s->state != MSPAN_INUSE || aload(&s->sweepgen) != sg - 1)
		fatal("mspan_sweep: span %p state %u sweepgen %zu, heap %zu",
		      (void *)s, s->state, (size_t)aload(&s->sweepgen),
		      (size_t)sg);
	uintptr_t fi = aload(&s->freeindex);
	size_t nw = mspan_bitmap_words(s->nelems);
	uintptr_t nalloc = count_marked(s);
	/* Weak cells the program dropped live on while their targets do:
	 * nothing marks them (the collector walks no list of them). */
	if (nalloc != s->alloc_count && aload_acq(&s->weak_cells) &&
	    mspan_hooks.keep_weak_cells) {
		mspan_hooks.keep_weak_cells(s, fi);
		nalloc = count_marked(s);
	}
	/* Specials concern only objects that die: with every object
	 * marked there is nothing for them to do (a span of long-lived
	 * objects with a finalizer each is not walked every cycle). */
	if (nalloc != s->alloc_count &&
	    aload_acq((const atomic_word *)&s->specials) &&
	    mspan_hooks.sweep_specials) {
		mspan_hooks.sweep_specials(s);
		nalloc = count_marked(s); /* it may have kept objects */
	}
	sweep_objects(s, fi, sg);

	if (nalloc > s->alloc_count)
		fatal("sweep increased the allocation count of span %p: "
		      "%zu > %zu", (void *)s, (size_t)nalloc,
		      (size_t)s->alloc_count);
	uintptr_t nfreed = s->alloc_count - nalloc;
	s->alloc_count = nalloc;
	*nfreedp = nfreed;
	/* Readers on other threads (mheap_find_object) retry while the span
	 * is at h-1, and read with atomics; publish with atomics too. The
	 * release store orders this sweep's plain writes to the mark bits
	 * (sweep_specials' kept objects, the popcounts above) before a
	 * reader that acquires the new alloc_bits pointer. */
	uint64_t *old = s->alloc_bits, *live = s->gcmark_bits;
	astore_rel((atomic_word *)&s->alloc_bits, (uintptr_t)live);
	astore((atomic_word *)&s->gcmark_bits, (uintptr_t)old);
	astore(&s->freeindex, 0);
	/* The next mark's bits: clear, or for a minor mark the survivors,
	 * black (marked and scanned). */
	bool sticky = aload(&mspan_gen_.sticky);
	for (size_t w = 0; w < nw; w++)
		astore((atomic_word *)&old[w], sticky ? live[w] : 0);
	/* A freed slot is no tiny block any more. */
	for (size_t w = 0; s->tiny_bits && w < nw; w++)
		astore((atomic_word *)&s->tiny_bits[w],
		       aload((atomic_word *)&s->tiny_bits[w]) & live[w]);
	if (s->gcscan_bits) {
		if (sticky)
			memcpy(s->gcscan_bits, live, nw * sizeof(uint64_t));
		else
			memset(s->gcscan_bits, 0, nw * sizeof(uint64_t));
	}
	if (sticky && nalloc)
		afetch_add(&mspan_gen_.premarked, nalloc * s->elemsize);
	if (s->oblet_bits)
		memset(s->oblet_bits, 0,
		       mspan_oblet_words(s->npages) * sizeof(uint64_t));
	mspan_refill_alloc_cache(s, 0);
	/* Poison mode refilled every free slot with the pattern. */
	if (nfreed || options_.poison)
		s->needzero = 1;
	astore_rel(&s->sweepgen, sg);

	/* A large span is empty when its object died. */
	bool is_large = spanclass_sizeclass(s->spc) == 0;
	if (is_large ? nfreed != 0 : nalloc == 0)
		return MSPAN_SWEPT_FREE;
	return nalloc == s->nelems ? MSPAN_SWEPT_FULL : MSPAN_SWEPT_PARTIAL;
}

/* ---- Verification -------------------------------------------------------- */

void mspan_verify(const mspan *s, uintptr_t sg)
{
	unsigned sc = spanclass_sizeclass(s->spc);
	uintptr_t fi = aload(&s->freeindex);

#define bad(...) fatal("mspan_verify: span %p: " __VA_ARGS__)
	if (s->state != MSPAN_INUSE)
		bad("state %u", (void *)s, s->state);
	if (s->base % PAGE_SIZE || s->npages == 0)
		bad("base %p npages %zu", (void *)s, (void *)s->base,
		    (size_t)s->npages);
	if (sc && (s->elemsize != class_to_size[sc] ||
	           s->npages != class_to_npages[sc] ||
	           s->nelems != s->npages * PAGE_SIZE / s->elemsize))
		bad("class %u geometry elemsize %zu npages %zu nelems %zu",
		    (void *)s, sc, (size_t)s->elemsize, (size_t)s->npages,
		    (size_t)s->nelems);
	if (!sc && (s->nelems != 1 || s->elemsize != s->npages * PAGE_SIZE))
		bad("large geometry", (void *)s);
	if (s->limit != s->base + s->nelems * s->elemsize)
		bad("limit", (void *)s);
	if (fi > s->nelems)
		bad("freeindex %zu > nelems %zu", (void *)s, (size_t)fi,
		    (size_t)s->nelems);
	/* The oblet bits cover every oblet, inside the metadata block. */
	if (s->oblet_bits &&
	    (sc != 0 || (uintptr_t)(s->oblet_bits + mspan_oblet_words(
	                     s->npages)) > (uintptr_t)s->meta + s->meta_bytes))
		bad("oblet bits outside the metadata block", (void *)s);
	/* Without the hint the marker would grey black objects. */
	if (aload(&s->blackfrom) != NO_BLACK && !aload8_acq(&s->blacking))
		bad("blackfrom %zu without the blacking hint", (void *)s,
		    (size_t)aload(&s->blackfrom));
	uintptr_t above = 0;
	for (uintptr_t i = fi; i < s->nelems; i++)
		above += bitmap_get(s->alloc_bits, i);
	if (s->alloc_count != fi + above)
		bad("alloc_count %zu != freeindex %zu + %zu allocated above it",
		    (void *)s, (size_t)s->alloc_count, (size_t)fi,
		    (size_t)above);
	if (fi < s->nelems) {
		/* alloc_cache mirrors ~alloc_bits from freeindex to the end
		 * of its word, with no bits past nelems, or a prefix of that
		 * (its lowest bits): a window cut short for the heap
		 * profiler (alloc/mcache.h), or none, when the fast path
		 * used up its window and the slow path loads the rest. */
		unsigned n = (unsigned)MIN(64 - fi % 64, s->nelems - fi);
		uint64_t want = (~s->alloc_bits[fi / 64] >> (fi % 64)) &
		                low_mask(n);
		if (n < 64 && (s->alloc_cache >> n))
			bad("alloc_cache %#llx has bits past object %zu (the "
			    "end of its word, or the last object)", (void *)s,
			    (unsigned long long)s->alloc_cache,
			    (size_t)(fi + n - 1));
		uint64_t cut = want & ~s->alloc_cache;
		if ((s->alloc_cache & ~want) ||
		    (s->alloc_cache && cut &&
		     63 - clz64(s->alloc_cache) > ctz64(cut)))
			bad("alloc_cache %#llx, alloc bits say %#llx",
			    (void *)s, (unsigned long long)s->alloc_cache,
			    (unsigned long long)want);
	}
	if (span_has_heapbits(s->spc) != (s->heap_bits != NULL))
		bad("heap bits", (void *)s);
	if (s->gcscan_bits && !s->heap_bits)
		bad("scan bits without heap bits", (void *)s);
	uintptr_t ssg = aload(&s->sweepgen);
	if (ssg != sg && ssg != sg - 2 && ssg != sg - 1 && ssg != sg + 1 &&
	    ssg != sg + 3)
		bad("sweepgen %zu with heap sweepgen %zu (class %u%s, on %s, "
		    "%zu/%zu allocated)", (void *)s, (size_t)ssg, (size_t)sg,
		    spanclass_sizeclass(s->spc),
		    spanclass_noscan(s->spc) ? " noscan" : "",
		    s->list ? "a central list" : "no list",
		    (size_t)s->alloc_count, (size_t)s->nelems);
#undef bad
}
