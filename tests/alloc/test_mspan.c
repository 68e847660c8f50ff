/* tests/alloc/test_mspan.c: tests spans (alloc/mspan.c, alloc/mspan.h):
 * the free-object walk (mspan_next_free_index and the fast path
 * mspan_next_free_fast) against a naive model of alloc_bits, object
 * indices for every offset of every size class, heap bits and typed
 * pointer records read back through mspan_ptriter against the naive
 * gctype_word_is_ptr, and the sweeping mechanics: freeing unmarked
 * objects, what a sweep reports (mspan_swept) and that it leaves the span
 * to its caller, the placement on the swept lists and the freeing of empty
 * spans (mcentral_sweep), poisoning, zombies. */
#include "tests/testing.h"

#include "alloc/alloc.h"

#include <string.h>

static void heap_setup(void)
{
	ck_assert_int_eq(mheap_init(), HEAP_OK);
	mcentral_init_all();
}

static mspan *must_alloc(uintptr_t npages, spanclass spc)
{
	heap_err err = HEAP_OK;
	mspan *s = mheap_alloc_span(npages, spc, &err);

	ck_assert_msg(s != NULL, "mheap_alloc_span(%zu, %u) failed with %d",
	              (size_t)npages, spc, (int)err);
	return s;
}

static mspan *class_span(unsigned sc, bool noscan)
{
	return must_alloc(class_to_npages[sc], make_spanclass(sc, noscan));
}

static void set_bit(uint64_t *bm, uintptr_t i, bool v)
{
	if (v)
		bm[i / 64] |= (uint64_t)1 << (i % 64);
	else
		bm[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* ---- (a) the free-object walk ------------------------------------------- */

/* alloc_count == freeindex + popcount(alloc_bits[freeindex, nelems)), and
 * alloc_cache mirrors the alloc bits from freeindex to its word's end,
 * with no bits past nelems; or, at a word's start, it is 0 (the fast path
 * used up a window, and the slow path loads the next). */
static void naive_invariant(const mspan *s)
{
	uintptr_t fi = aload(&s->freeindex), above = 0;

	REQUIRE(fi <= s->nelems, "freeindex %zu > nelems %zu", (size_t)fi,
	        (size_t)s->nelems);
	for (uintptr_t i = fi; i < s->nelems; i++)
		above += bitmap_get(s->alloc_bits, i);
	REQUIRE(s->alloc_count == fi + above,
	        "alloc_count %zu != freeindex %zu + %zu",
	        (size_t)s->alloc_count, (size_t)fi, (size_t)above);
	if (fi < s->nelems) {
		unsigned n = (unsigned)MIN(64 - fi % 64, s->nelems - fi);
		REQUIRE(n == 64 || !(s->alloc_cache >> n),
		        "alloc_cache %#llx has bits past object %zu",
		        (unsigned long long)s->alloc_cache,
		        (size_t)(fi + n - 1));
	}
	if (s->alloc_cache == 0 && fi % 64 == 0)
		return;
	for (uintptr_t i = fi; i < s->nelems && (i == fi || i % 64); i++)
		REQUIRE(((s->alloc_cache >> (i - fi)) & 1) ==
		              !bitmap_get(s->alloc_bits, i),
		        "alloc_cache bit %zu (object %zu) is stale",
		        (size_t)(i - fi), (size_t)i);
}

/* The class whose spans hold exactly n objects, or 0. */
static unsigned class_with_nelems(uintptr_t n)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
		if (class_to_npages[c] * PAGE_SIZE / class_to_size[c] == n)
			return c;
	return 0;
}

static void walk_trial(test_rng *r, mspan *s, bool real)
{
	uintptr_t n = s->nelems, nw = mspan_bitmap_words(n);
	static uintptr_t want[1024];
	uintptr_t nwant = 0, got = 0, last = 0;
	bool any = false;
	static const unsigned dens[] = {0, 1, 8, 32, 56, 63, 64};
	unsigned d = dens[rng_below(r, ARRAY_LEN(dens))];

	/* Random alloc bits; those past nelems are sometimes set. */
	for (uintptr_t w = 0; w < nw; w++)
		for (unsigned b = 0; b < 64; b++)
			set_bit(s->alloc_bits, w * 64 + b,
			        w * 64 + b < n ? rng_below(r, 64) < d
			                       : rng_below(r, 2));
	uintptr_t fi = rng_below(r, 3) ? 0 : rng_below(r, n + 1);
	uintptr_t count = fi;
	for (uintptr_t i = fi; i < n; i++) {
		if (bitmap_get(s->alloc_bits, i))
			count++;
		else
			want[nwant++] = i;
	}
	astore(&s->freeindex, fi);
	s->alloc_count = count;
	/* As mcentral_cache_span loads it. */
	s->alloc_cache = 0;
	if (fi < n) {
		mspan_refill_alloc_cache(s, fi / 64);
		s->alloc_cache >>= fi % 64;
	}
	naive_invariant(s);
	if (real)
		mheap_verify_span(s);

	unsigned fast_pct = (unsigned)rng_below(r, 101);
	for (;;) {
		uintptr_t i, p = 0, before = s->alloc_count;
		uintptr_t fi0 = aload(&s->freeindex);
		if (rng_below(r, 100) < fast_pct) {
			p = mspan_next_free_fast(s);
			REQUIRE(p || (s->alloc_count == before &&
			            aload(&s->freeindex) == fi0),
			        "a failed fast path changed the span");
		}
		if (p) {
			REQUIRE(p >= s->base && p < s->limit &&
			        (p - s->base) % s->elemsize == 0,
			        "fast path gave bad address %p", (void *)p);
			i = (p - s->base) / s->elemsize;
			REQUIRE(s->alloc_count == before + 1,
			        "fast path did not count");
		} else {
			i = mspan_next_free_index(s);
			if (i == n)
				break;
			s->alloc_count++;
		}
		REQUIRE(got < nwant, "object %zu handed out; all %zu free "
		        "ones were already", (size_t)i, (size_t)nwant);
		REQUIRE(i == want[got], "object %zu handed out, next free is "
		        "%zu (n %zu, start %zu)", (size_t)i,
		        (size_t)want[got], (size_t)n, (size_t)fi);
		REQUIRE(!any || i > last, "indices do not increase");
		REQUIRE(aload(&s->freeindex) > i, "freeindex %zu not past %zu",
		        (size_t)aload(&s->freeindex), (size_t)i);
		any = true;
		last = i;
		got++;
		if (n <= 128 || rng_below(r, 8) == 0) {
			naive_invariant(s);
			if (real)
				mheap_verify_span(s);
		}
	}
	REQUIRE(got == nwant, "%zu of %zu free objects handed out (n %zu)",
	        (size_t)got, (size_t)nwant, (size_t)n);
	REQUIRE(aload(&s->freeindex) == n, "freeindex %zu at the end",
	        (size_t)aload(&s->freeindex));
	REQUIRE(s->alloc_count == n, "alloc_count %zu at the end",
	        (size_t)s->alloc_count);
	REQUIRE(mspan_next_free_index(s) == n, "a full span gave an index");
	REQUIRE(mspan_next_free_fast(s) == 0, "a full span gave an object");
	naive_invariant(s);
}

/* The bit helpers the allocator counts with (alloc/sys/base.h), against
 * a bit at a time: every single bit, the edges, and random words. */
static unsigned bits_one_by_one(uint64_t x)
{
	unsigned n = 0;

	for (unsigned b = 0; b < 64; b++)
		n += (unsigned)(x >> b & 1);
	return n;
}

START_TEST(test_bit_helpers)
{
	test_rng r = rng_make(29);
	uint64_t edges[] = {0, 1, ~0ULL, 1ULL << 63, ~0ULL >> 1,
	                    0x5555555555555555ULL, 0xaaaaaaaaaaaaaaaaULL,
	                    0x0f0f0f0f0f0f0f0fULL, 0xff00ff00ff00ff00ULL};

	for (unsigned b = 0; b < 64; b++) {
		ck_assert_uint_eq(popcount64(1ULL << b), 1);
		ck_assert_uint_eq(popcount64(~(1ULL << b)), 63);
		ck_assert_uint_eq(popcount64(low_mask(b)), b);
		ck_assert_uint_eq(ctz64(1ULL << b), b);
	}
	ck_assert_uint_eq(popcount64(low_mask(64)), 64);
	ck_assert_uint_eq(ctz64(0), 64);
	for (size_t i = 0; i < ARRAY_LEN(edges); i++)
		ck_assert_uint_eq(popcount64(edges[i]),
		                  bits_one_by_one(edges[i]));
	for (int i = 0; i < 100000; i++) {
		/* Sparse, dense and uniform words. */
		uint64_t x = rng_next(&r);
		uint64_t y = i % 3 == 0 ? x & rng_next(&r) & rng_next(&r) :
		             i % 3 == 1 ? x | rng_next(&r) | rng_next(&r) : x;
		ck_assert_uint_eq(popcount64(y), bits_one_by_one(y));
	}
}
END_TEST

START_TEST(test_next_free)
{
	static const uintptr_t sizes[] = {1, 7, 63, 64, 65, 127, 128, 1024};
	test_rng r = rng_make(10);

	heap_setup();
	for (unsigned k = 0; k < ARRAY_LEN(sizes); k++) {
		uintptr_t n = sizes[k];
		unsigned c = class_with_nelems(n);
		/* No class holds n: a span of 1024 8-byte objects, cut. */
		mspan *s = class_span(c ? c : 1, true);
		uintptr_t nelems = s->nelems, limit = s->limit;
		s->nelems = n;
		s->limit = s->base + n * s->elemsize;
		for (int t = 0; t < (n > 128 ? 100 : 400); t++)
			walk_trial(&r, s, c != 0);
		s->nelems = nelems;
		s->limit = limit;
		memset(s->alloc_bits, 0, mspan_bitmap_words(nelems) * 8);
		astore(&s->freeindex, 0);
		s->alloc_count = 0;
		mspan_refill_alloc_cache(s, 0);
		mheap_free_span(s);
	}
	mcentral_verify_all();
}
END_TEST

/* The fast path alone never crosses a 64-object boundary with a stale
 * cache: it uses up a word's window, leaves the cache empty, and the slow
 * path loads the next word and hands out its first object. */
START_TEST(test_fast_path_word_edges)
{
	heap_setup();
	mspan *s = class_span(1, true);
	uintptr_t n = s->nelems, i = 0, fast = 0;

	while (i < n) {
		uintptr_t p = mspan_next_free_fast(s);
		if (p) {
			ck_assert_uint_eq(p, s->base + i * s->elemsize);
			fast++;
		} else {
			/* Only at the first object of a word after the
			 * first, with the cache used up. */
			ck_assert_uint_eq(i % 64, 0);
			ck_assert_uint_ne(i, 0);
			ck_assert_uint_eq(s->alloc_cache, 0);
			ck_assert_uint_eq(mspan_next_free_index(s), i);
			s->alloc_count++;
		}
		i++;
		naive_invariant(s);
	}
	ck_assert_uint_eq(fast, n - (n - 1) / 64);
	ck_assert_uint_eq(s->alloc_count, n);
	mheap_verify_span(s);
}
END_TEST

/* ---- (b) object indices ------------------------------------------------- */

START_TEST(test_object_index)
{
	heap_setup();
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		mspan *s = class_span(c, true);
		uintptr_t bytes = s->npages * PAGE_SIZE;

		ck_assert_uint_eq(s->elemsize, class_to_size[c]);
		ck_assert_uint_eq(s->nelems, bytes / class_to_size[c]);
		for (uintptr_t off = 0; off < bytes; off++) {
			uintptr_t i = mspan_object_index(s, s->base + off);
			REQUIRE(i == off / s->elemsize,
			        "class %u offset %zu: index %zu, want %zu", c,
			        (size_t)off, (size_t)i,
			        (size_t)(off / s->elemsize));
		}
		mheap_free_span(s);
	}
	/* A large span is one object. */
	mspan *s = must_alloc(5, make_spanclass(0, true));
	for (uintptr_t off = 0; off < 5 * PAGE_SIZE; off += 7)
		REQUIRE(mspan_object_index(s, s->base + off) == 0,
		        "large span offset %zu", (size_t)off);
	mheap_free_span(s);
}
END_TEST

/* ---- (c) pointer records ------------------------------------------------ */

/* A random type of 1..maxsize bytes; REPEAT types with pointers get a
 * multiple of 8 bytes. */
static gc_type *random_type(test_rng *r, size_t maxsize)
{
	unsigned tail = (unsigned)rng_below(r, 3);
	size_t size = 1 + rng_below(r, maxsize);
	uint64_t bm[64] = {0};
	static const unsigned dens[] = {0, 8, 32, 60, 64};
	unsigned d = dens[rng_below(r, ARRAY_LEN(dens))];
	gc_status st;
	char err[200];

	if (tail == GCHEAP_TAIL_REPEAT && d && size >= 8)
		size &= ~(size_t)7;
	else if (tail == GCHEAP_TAIL_REPEAT)
		d = 0;
	ck_assert_uint_le(size / 8, 64 * 64);
	for (size_t w = 0; w < size / 8; w++)
		if (rng_below(r, 64) < d)
			set_bit(bm, w, true);
	gc_type *t = gctype_make("rnd", size, bm, tail, &st, err, sizeof err);
	ck_assert_msg(t != NULL, "gctype_make: %s", err);
	return t;
}

/* The pointer slots the iterator yields for the object at p equal the
 * words w < nwords with model(w). */
static void check_slots(const mspan *s, uintptr_t p, const gc_type *t,
                        size_t nwords, const char *what)
{
	ptriter it;
	uintptr_t *slot;
	size_t w = 0;

	mspan_ptriter(s, p, &it);
	while ((slot = ptriter_next(&it)) != NULL) {
		uintptr_t a = (uintptr_t)slot;
		REQUIRE(a >= p && a < p + s->elemsize && (a - p) % 8 == 0,
		        "%s: slot %p outside object %p", what, (void *)a,
		        (void *)p);
		size_t sw = (a - p) / 8;
		REQUIRE(sw >= w, "%s: slots not increasing", what);
		for (; w < sw; w++)
			REQUIRE(!(t && w < nwords && gctype_word_is_ptr(t, w)),
			        "%s: object %p word %zu is a pointer, not "
			        "yielded", what, (void *)p, w);
		REQUIRE(t && sw < nwords && gctype_word_is_ptr(t, sw),
		        "%s: object %p word %zu yielded, not a pointer", what,
		        (void *)p, sw);
		w = sw + 1;
	}
	for (; t && w < nwords; w++)
		REQUIRE(!gctype_word_is_ptr(t, w),
		        "%s: object %p word %zu is a pointer, not yielded",
		        what, (void *)p, w);
}

/* mspan_fill_type writes the layout of (t, size) into exactly the free
 * slots from `from` on (alloc bit clear), word-filling included, and leaves
 * allocated slots' layouts alone; mspan_mark_allocated marks exactly the
 * slots in [from, to) that were free, counting only the bits it set. */
START_TEST(test_cached_span_fill_and_mark)
{
	test_rng r = rng_make(13);

	heap_setup();
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		if (class_to_size[c] > 1024)
			break;
		mspan *s = class_span(c, false);
		uintptr_t n = s->nelems, esz = s->elemsize;
		gc_type *old = random_type(&r, esz), *t;
		do
			t = random_type(&r, esz);
		while (t->noscan);
		bool *alloc = calloc(n, sizeof(*alloc));
		for (uintptr_t i = 0; i < n; i++) {
			alloc[i] = rng_below(&r, 3) == 0;
			set_bit(s->alloc_bits, i, alloc[i]);
			mspan_set_type(s, s->base + i * esz, old, old->size);
		}
		uintptr_t from = rng_below(&r, n);
		size_t size = t->size + rng_below(&r, esz - t->size + 1);
		mspan_fill_type(s, from, t, size);
		REQUIRE(s->freetype == t && s->freesize == size,
		        "class %u: (type, size) not recorded", c);
		for (uintptr_t i = 0; i < n; i++) {
			bool filled = i >= from && !alloc[i];
			/* Type-array spans lay an object out over its
			 * whole slot, whatever the size asked for. */
			size_t bytes = !s->heap_bits ? esz :
			               filled ? size : old->size;
			check_slots(s, s->base + i * esz, filled ? t : old,
			            bytes / 8,
			            filled ? "filled slot" : "untouched slot");
		}
		/* Some bits already set by "the marker". */
		for (uintptr_t i = 0; i < n; i++)
			set_bit(s->gcmark_bits, i, rng_below(&r, 4) == 0);
		uint64_t *before = calloc(mspan_bitmap_words(n), 8);
		memcpy(before, s->gcmark_bits, mspan_bitmap_words(n) * 8);
		uintptr_t lo = rng_below(&r, n);
		uintptr_t hi = lo + rng_below(&r, n - lo + 1);
		uintptr_t want = 0;
		for (uintptr_t i = lo; i < hi; i++)
			want += !alloc[i] && !bitmap_get(before, i);
		uintptr_t got = mspan_mark_allocated(s, lo, hi);
		REQUIRE(got == want, "class %u: marked %zu in [%zu, %zu), want "
		      "%zu", c, (size_t)got, (size_t)lo, (size_t)hi,
		      (size_t)want);
		for (uintptr_t i = 0; i < n; i++) {
			bool m = bitmap_get(before, i) ||
			         (i >= lo && i < hi && !alloc[i]);
			REQUIRE(bitmap_get(s->gcmark_bits, i) == m,
			        "class %u: mark bit %zu is %d", c, (size_t)i,
			        !m);
		}
		memset(s->gcmark_bits, 0, mspan_bitmap_words(n) * 8);
		memset(s->alloc_bits, 0, mspan_bitmap_words(n) * 8);
		free(before);
		free(alloc);
	}
}
END_TEST

/* The blacking hint follows blackfrom: set while a cached span allocates
 * black, so that mspan_black_pending finds the objects allocated since,
 * and clear once blackfrom is reset, so that markers skip reading it. */
START_TEST(test_black_pending_hint)
{
	heap_setup();
	mspan *s = class_span(3, false);
	ck_assert_uint_eq(s->blacking, 0);
	uintptr_t a = mspan_next_free_fast(s);
	mspan_prepare_cached(s, true);
	ck_assert_uint_eq(s->blacking, 1);
	mspan_verify(s, aload(&s->sweepgen));
	uintptr_t b = mspan_next_free_fast(s);
	ck_assert(a && b);
	ck_assert(!mspan_black_pending(s, mspan_object_index(s, a)));
	ck_assert(mspan_black_pending(s, mspan_object_index(s, b)));
	mspan_set_blackfrom(s, NO_BLACK);
	ck_assert_uint_eq(s->blacking, 0);
	ck_assert(!mspan_black_pending(s, mspan_object_index(s, b)));
	mspan_prepare_cached(s, true);
	mspan_prepare_cached(s, false);
	ck_assert_uint_eq(s->blacking, 0);
	ck_assert_uint_eq(aload(&s->blackfrom), NO_BLACK);
}
END_TEST

/* A span that has held one layout only (alltype) skips its next fill; a
 * slot written with another layout (mspan_set_type), or a fill that did
 * not cover the whole span, ends that, and the next fill rewrites every
 * free slot. Each case checks the slots' layouts, which a skipped fill
 * would leave wrong. */
START_TEST(test_fill_uniform_span)
{
	test_rng r = rng_make(17);

	heap_setup();
	/* Every class with heap bits or a type array. */
	for (unsigned c = 1; class_to_size[c] <= 1024; c++) {
		mspan *s = class_span(c, false);
		uintptr_t n = s->nelems, esz = s->elemsize;
		/* Two scan layouts that differ in word 0. */
		gc_type *a = NULL, *b = NULL;
		while (!a || a->noscan)
			a = random_type(&r, esz);
		while (!b || b->noscan || gctype_word_is_ptr(b, 0) ==
		                          gctype_word_is_ptr(a, 0))
			b = random_type(&r, esz);
		size_t asz = !s->heap_bits ? esz : a->size;
		size_t bsz = !s->heap_bits ? esz : b->size;

		/* A fresh span filled from slot 0: uniform. */
		mspan_fill_type(s, 0, a, a->size);
		REQUIRE(s->alltype == a, "class %u: a full fill not recorded",
		        c);
		/* Slot k allocated as b, then freed by a sweep. */
		uintptr_t k = rng_below(&r, n);
		mspan_set_type(s, s->base + k * esz, b, b->size);
		REQUIRE(s->alltype == NULL, "class %u: set_type kept alltype",
		        c);
		mspan_fill_type(s, 0, a, a->size);
		check_slots(s, s->base + k * esz, a, asz / 8,
		            "slot refilled after another type");
		/* A fill of b over a span with allocated slots (a's) is
		 * not uniform: once those are freed, a fill of b must reach
		 * them. */
		uintptr_t kept = rng_below(&r, n);
		set_bit(s->alloc_bits, kept, true);
		mspan_fill_type(s, 0, b, b->size);
		REQUIRE(s->alltype == NULL, "class %u: a partial fill taken "
		        "for a full one", c);
		set_bit(s->alloc_bits, kept, false);
		mspan_fill_type(s, 0, b, b->size);
		for (uintptr_t i = 0; i < n; i++)
			check_slots(s, s->base + i * esz, b, bsz / 8,
			            "slot after a partial fill");
		REQUIRE(s->alltype == b, "class %u: full fill not recorded", c);
	}
}
END_TEST

START_TEST(test_heapbits)
{
	test_rng r = rng_make(11);

	heap_setup();
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		if (class_to_size[c] > SMALL_SCAN_MAX)
			break;
		mspan *s = class_span(c, false);
		uintptr_t n = s->nelems, esz = s->elemsize;
		const gc_type **ty = calloc(n, sizeof(*ty));
		size_t *nw = calloc(n, sizeof(*nw));
		gc_type *pool[64];

		ck_assert_ptr_nonnull(s->heap_bits);
		ck_assert(span_has_heapbits(s->spc));
		for (unsigned k = 0; k < ARRAY_LEN(pool); k++)
			pool[k] = random_type(&r, esz);
		for (uintptr_t i = 0; i < n; i++)
			check_slots(s, s->base + i * esz, NULL, 0, "fresh");
		for (uintptr_t round = 0; round < 3 * n; round++) {
			uintptr_t i = rng_below(&r, n);
			uintptr_t p = s->base + i * esz;
			gc_type *t = pool[rng_below(&r, ARRAY_LEN(pool))];
			size_t size = t->size +
			              rng_below(&r, esz - t->size + 1);
			uint64_t bits = t->small_bits &
			                low_mask((unsigned)(size / 8));
			if (rng_below(&r, 2))
				mspan_set_type(s, p, t, size);
			else
				mspan_set_heapbits(s, p, bits);
			ty[i] = t;
			nw[i] = size / 8;
			for (uintptr_t j = i ? i - 1 : 0; j <= i + 1 && j < n;
			     j++)
				check_slots(s, s->base + j * esz, ty[j], nw[j],
				            "heap bits");
		}
		for (uintptr_t i = 0; i < n; i++)
			check_slots(s, s->base + i * esz, ty[i], nw[i],
			            "heap bits, all");
		free(ty);
		free(nw);
		mheap_free_span(s);
	}
	mcentral_verify_all();
}
END_TEST

/* Objects over SMALL_SCAN_MAX keep their type; large spans theirs; noscan
 * spans have no pointers at all. */
START_TEST(test_typed_records)
{
	test_rng r = rng_make(12);

	heap_setup();
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		if (class_to_size[c] <= SMALL_SCAN_MAX)
			continue;
		mspan *s = class_span(c, false);
		uintptr_t n = s->nelems, esz = s->elemsize;
		const gc_type **ty = calloc(n, sizeof(*ty));

		ck_assert_ptr_null(s->heap_bits);
		ck_assert_ptr_nonnull(s->types);
		for (uintptr_t round = 0; round < 4 * n; round++) {
			uintptr_t i = rng_below(&r, n);
			gc_type *t = random_type(&r, MIN(esz, 4096));
			mspan_set_type(s, s->base + i * esz, t, esz);
			ty[i] = t;
		}
		for (uintptr_t i = 0; i < n; i++)
			check_slots(s, s->base + i * esz, ty[i], esz / 8,
			            "typed");
		free(ty);
		mheap_free_span(s);
	}
	for (int k = 0; k < 20; k++) {
		uintptr_t npages = 5 + rng_below(&r, 20);
		mspan *s = must_alloc(npages, make_spanclass(0, false));
		size_t size = npages * PAGE_SIZE - rng_below(&r, PAGE_SIZE);
		gc_type *t = random_type(&r, 4096);
		mspan_set_type(s, s->base, t, size);
		check_slots(s, s->base, t, size / 8, "large");
		mheap_free_span(s);
	}
	mspan *s = class_span(5, true);
	for (uintptr_t i = 0; i < s->nelems; i++)
		check_slots(s, s->base + i * s->elemsize, NULL, 0, "noscan");
	mheap_free_span(s);
}
END_TEST

/* ---- (d) sweeping ------------------------------------------------------- */

static uintptr_t *freed_log;
static size_t nfreed_log;

static void on_freed(mspan *s, uintptr_t obj)
{
	(void)s;
	freed_log[nfreed_log++] = obj;
}

static mcentral *central_of(const mspan *s)
{
	return &mcentral_[s->spc];
}

static uintptr_t flip(void)
{
	uintptr_t sg = aload(&mheap_.sweepgen) + 2;

	astore(&mheap_.sweepgen, sg);
	return sg;
}

/* Allocate about `want` objects through the slow path, as an mcache does;
 * returns how many. */
static uintptr_t alloc_objects(mspan *s, uintptr_t want, bool *allocd,
                               uint8_t *pat, test_rng *r)
{
	uintptr_t k = 0;

	for (; k < want; k++) {
		uintptr_t i = mspan_next_free_index(s);
		if (i == s->nelems)
			break;
		REQUIRE(!allocd[i], "object %zu handed out while allocated",
		        (size_t)i);
		s->alloc_count++;
		allocd[i] = true;
		pat[i] = (uint8_t)(1 + rng_below(r, 200));
		memset((void *)(s->base + i * s->elemsize), pat[i],
		       s->elemsize);
	}
	return k;
}

static void sweep_cycles(unsigned sc, bool noscan, bool poison, test_rng *r)
{
	mspan *s = class_span(sc, noscan);
	uintptr_t n = s->nelems, base = s->base;
	bool *allocd = calloc(n, 1), *marked = calloc(n, 1);
	uint8_t *pat = calloc(n, 1);
	mcentral *c = central_of(s);

	freed_log = calloc(n, sizeof(uintptr_t));
	mspan_hooks.object_freed = on_freed;
	options_.poison = poison;
	for (int cycle = 0;; cycle++) {
		uintptr_t want = rng_below(r, 4) ? rng_below(r, n + 1) : n;
		alloc_objects(s, want, allocd, pat, r);
		mheap_verify_span(s);
		/* Mark a random subset of the allocated objects; last time
		 * none, so that the span empties. */
		unsigned q = cycle >= 6 ? 0 : (unsigned)rng_below(r, 101);
		uintptr_t nmarked = 0;
		for (uintptr_t i = 0; i < n; i++) {
			marked[i] = allocd[i] && rng_below(r, 100) < q;
			if (marked[i]) {
				set_bit(s->gcmark_bits, i, true);
				nmarked++;
			}
		}
		uintptr_t sg = flip();
		ck_assert_uint_eq(aload(&s->sweepgen), sg - 2);
		ck_assert(mspan_try_acquire(s, sg));
		ck_assert(!mspan_try_acquire(s, sg));
		ck_assert_uint_eq(aload(&s->sweepgen), sg - 1);
		nfreed_log = 0;
		bool kept = mcentral_sweep(s);

		uintptr_t ndead = 0;
		for (uintptr_t i = 0; i < n; i++)
			ndead += allocd[i] && !marked[i];
		ck_assert_uint_eq(nfreed_log, ndead);
		for (size_t k = 0; k < nfreed_log; k++) {
			uintptr_t i = (freed_log[k] - base) / class_to_size[sc];
			REQUIRE(freed_log[k] == base + i * class_to_size[sc] &&
			        i < n && allocd[i] && !marked[i],
			        "object_freed(%p) for a live object",
			        (void *)freed_log[k]);
			REQUIRE(k == 0 || freed_log[k] > freed_log[k - 1],
			        "object_freed twice or out of order");
		}
		if (nmarked == 0) {
			ck_assert(!kept);
			ck_assert_ptr_null(spanof(base));
			ck_assert_uint_eq(mcentral_verify(c), 0);
			break;
		}
		ck_assert(kept);
		ck_assert_uint_eq(s->alloc_count, nmarked);
		ck_assert_uint_eq(aload(&s->sweepgen), sg);
		ck_assert_uint_eq(aload(&s->freeindex), 0);
		if (ndead)
			ck_assert_uint_eq(s->needzero, 1);
		for (uintptr_t i = 0; i < n; i++) {
			uint8_t *o = (uint8_t *)(base + i * s->elemsize);
			REQUIRE(mspan_is_free(s, i) == !marked[i],
			        "cycle %d object %zu: free %d, marked %d",
			        cycle, (size_t)i, mspan_is_free(s, i),
			        marked[i]);
			REQUIRE(!bitmap_get(s->gcmark_bits, i),
			        "mark bit %zu survived the sweep", (size_t)i);
			if (marked[i])
				REQUIRE(o[0] == pat[i] &&
				        o[s->elemsize - 1] == pat[i],
				        "live object %zu overwritten",
				        (size_t)i);
			else if (allocd[i] && poison)
				for (uintptr_t b = 0; b < s->elemsize; b++)
					REQUIRE(o[b] == POISON_BYTE,
					        "freed object %zu byte %zu "
					        "%#x", (size_t)i, (size_t)b,
					        o[b]);
			else if (allocd[i])
				REQUIRE(o[0] == pat[i], "poisoned without "
				        "the hook");
			allocd[i] = marked[i];
		}
		spanlist *want_list = nmarked == n ?
		                      mcentral_full_swept(c, sg) :
		                      mcentral_partial_swept(c, sg);
		ck_assert_ptr_eq(s->list, want_list);
		ck_assert_uint_eq(want_list->n, 1);
		ck_assert_uint_eq(mcentral_verify(c), 1);
		mcentral_verify_all();
		/* Take the span back, as cache_span would. */
		mutex_lock(&c->lock);
		spanlist_remove(s->list, s);
		mutex_unlock(&c->lock);
	}
	mcentral_verify_all();
	mspan_hooks.object_freed = NULL;
	options_.poison = false;
	free(allocd);
	free(marked);
	free(pat);
	free(freed_log);
}

START_TEST(test_sweep)
{
	static const unsigned classes[] = {1, 2, 5, 10, 26, 33, 40, 51, 67};
	test_rng r = rng_make(13);

	heap_setup();
	for (unsigned k = 0; k < ARRAY_LEN(classes); k++)
		for (int rep = 0; rep < 6; rep++)
			sweep_cycles(classes[k], rep % 2, rep >= 2, &r);
	ck_assert_uint_eq(mheap_.stats.spans_inuse, 0);
}
END_TEST

/* A large span survives a sweep if marked and is freed if not. */
START_TEST(test_sweep_large)
{
	heap_setup();
	for (int marked = 0; marked < 2; marked++) {
		mspan *s = must_alloc(7, make_spanclass(0, true));
		uintptr_t base = s->base;
		mcentral *c = central_of(s);

		astore(&s->freeindex, 1);
		s->alloc_count = 1;
		s->alloc_cache = 0;
		mcentral_push_swept(c, s);
		ck_assert_ptr_eq(s->list, mcentral_full_swept(c,
		                 aload(&mheap_.sweepgen)));
		memset((void *)base, 0x11, 7 * PAGE_SIZE);
		if (marked)
			set_bit(s->gcmark_bits, 0, true);
		uintptr_t sg = flip();
		mcentral_verify_all();
		ck_assert(mspan_try_acquire(s, sg));
		options_.poison = true;
		bool kept = mcentral_sweep(s);
		options_.poison = false;
		ck_assert_int_eq(kept, marked);
		if (marked) {
			ck_assert_ptr_eq(s->list, mcentral_full_swept(c, sg));
			ck_assert(!mspan_is_free(s, 0));
			ck_assert_uint_eq(*(uint8_t *)base, 0x11);
			mutex_lock(&c->lock);
			spanlist_remove(s->list, s);
			mutex_unlock(&c->lock);
			mheap_free_span(s);
		} else {
			ck_assert_ptr_null(spanof(base));
			ck_assert_uint_eq(*(uint8_t *)(base + 5 * PAGE_SIZE),
			                  POISON_BYTE);
		}
		ck_assert_uint_eq(mcentral_verify(c), 0);
		mcentral_verify_all();
	}
	ck_assert_uint_eq(mheap_.stats.large_objects, 0);
}
END_TEST

/* mspan_sweep says what became of the span and leaves the span to its
 * caller: on no list, still the heap's, whatever the outcome. Loop index:
 * 0 nothing marked (free), 1 some (partial), 2 all (full), 3 a large span
 * whose object died (free), 4 one whose object lived (full). */
START_TEST(test_sweep_result)
{
	static const mspan_swept want[] = {
		MSPAN_SWEPT_FREE, MSPAN_SWEPT_PARTIAL, MSPAN_SWEPT_FULL,
		MSPAN_SWEPT_FREE, MSPAN_SWEPT_FULL,
	};
	heap_setup();
	bool large = _i >= 3;
	mspan *s = large ? must_alloc(3, make_spanclass(0, true)) :
	                   class_span(5, true);
	mcentral *c = central_of(s);
	uintptr_t n = s->nelems;

	for (uintptr_t i = 0; i < n; i++) {
		ck_assert_uint_eq(mspan_next_free_index(s), i);
		s->alloc_count++;
		if (_i == 2 || _i == 4 || (_i == 1 && i % 3 == 0))
			set_bit(s->gcmark_bits, i, true);
	}
	mcentral_push_swept(c, s);
	uintptr_t sg = flip();
	mutex_lock(&c->lock);
	spanlist_remove(s->list, s); /* as a sweeper that popped it */
	mutex_unlock(&c->lock);
	ck_assert(mspan_try_acquire(s, sg));
	uintptr_t nfreed = 12345;
	ck_assert_int_eq(mspan_sweep(s, sg, &nfreed), want[_i]);
	/* 0 and 3: all died; 1: every third lived; 2 and 4: all lived. */
	ck_assert_uint_eq(nfreed, _i == 0 || _i == 3 ? n :
	                          _i == 1 ? n - (n + 2) / 3 : 0);
	ck_assert_uint_eq(aload(&s->sweepgen), sg);
	ck_assert_ptr_null(s->list);
	ck_assert_ptr_eq(spanof(s->base), s);
	ck_assert_uint_eq(mcentral_verify(c), 0);
	mheap_verify_span(s);
	mheap_free_span(s);
	mcentral_verify_all();
}
END_TEST

/* A marked object that is free is fatal: at freeindex, in a later bitmap
 * word, and the last object. */
START_TEST(test_zombie)
{
	heap_setup();
	mspan *s = class_span(5, true);
	uintptr_t n = s->nelems;
	uintptr_t zombie[] = {3, 130, n - 1};

	sys_fatal_exit_code = 70;
	for (int k = 0; k < 3; k++) {
		ck_assert_uint_eq(mspan_next_free_index(s), (uintptr_t)k);
		s->alloc_count++;
	}
	/* Objects 0 and 1 are live; 2 dies; one free object is marked. */
	set_bit(s->gcmark_bits, 0, true);
	set_bit(s->gcmark_bits, 1, true);
	set_bit(s->gcmark_bits, zombie[_i], true);
	uintptr_t sg = flip();
	ck_assert(mspan_try_acquire(s, sg));
	mcentral_sweep(s);
	ck_abort_msg("sweep did not notice zombie %zu", (size_t)zombie[_i]);
}
END_TEST

/* The same sweep without the zombie is fine (the death test's control). */
START_TEST(test_zombie_control)
{
	heap_setup();
	mspan *s = class_span(5, true);

	sys_fatal_exit_code = 70;
	for (int k = 0; k < 3; k++) {
		ck_assert_uint_eq(mspan_next_free_index(s), (uintptr_t)k);
		s->alloc_count++;
	}
	set_bit(s->gcmark_bits, 0, true);
	set_bit(s->gcmark_bits, 1, true);
	uintptr_t sg = flip();
	ck_assert(mspan_try_acquire(s, sg));
	ck_assert(mcentral_sweep(s));
	ck_assert_uint_eq(s->alloc_count, 2);
	ck_assert(mspan_is_free(s, 2));
	mcentral_verify_all();
}
END_TEST

/* ---- (e) verification -------------------------------------------------- */

/* mheap_verify_span's page-table check: a page of the span that no longer
 * maps to it is fatal (the sound span passes first). */
START_TEST(test_verify_unmapped_page)
{
	heap_setup();
	mspan *s = must_alloc(3, make_spanclass(0, true));
	uintptr_t p = s->base + 2 * PAGE_SIZE;
	heap_arena *a = arena_of(p);

	sys_fatal_exit_code = 70;
	mheap_verify_span(s);
	astore(&a->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], 0);
	mheap_verify_span(s);
	ck_abort_msg("mheap_verify_span missed page 2 of span %p", (void *)s);
}
END_TEST

/* mspan_verify judges the span's sweepgen by the heap sweepgen it is
 * given: h and h + 2 (the span needs sweeping) pass, h + 4 is fatal. */
START_TEST(test_verify_sweepgen)
{
	heap_setup();
	mspan *s = must_alloc(3, make_spanclass(0, true));
	uintptr_t sg = aload(&mheap_.sweepgen);

	sys_fatal_exit_code = 70;
	mspan_verify(s, sg);
	mspan_verify(s, sg + 2);
	mspan_verify(s, sg + 4);
	ck_abort_msg("mspan_verify took sweepgen %zu at heap sweepgen %zu",
	             (size_t)sg, (size_t)(sg + 4));
}
END_TEST

/* poison_mismatch compares a word at a time where it can: every start
 * alignment, every length up to a few words, and a wrong byte at every
 * place (or none) must give the offset of the first wrong byte. */
START_TEST(test_poison_mismatch)
{
	static uint64_t buf[8];
	unsigned char *b = (unsigned char *)buf;

	for (size_t off = 0; off < 16; off++)
		for (size_t n = 0; n <= 40; n++)
			for (size_t bad = 0; bad <= n; bad++) {
				memset(buf, POISON_BYTE, sizeof(buf));
				if (bad < n)
					b[off + bad] = POISON_BYTE ^ 1;
				if (off + n < sizeof(buf))
					b[off + n] = 0; /* past the end */
				size_t got = poison_mismatch(b + off, n);
				REQUIRE(got == bad, "at +%zu, %zu bytes, wrong "
				        "byte at %zu: got %zu", off, n, bad,
				        got);
			}
}
END_TEST

static Suite *mspan_suite(void)
{
	Suite *s = suite_create("mspan");
	TCase *tc = tcase_create("walk");

	tcase_add_test(tc, test_bit_helpers);
	tcase_add_test(tc, test_next_free);
	tcase_add_test(tc, test_fast_path_word_edges);
	tcase_add_test(tc, test_object_index);
	suite_add_tcase(s, tc);

	tc = tcase_create("pointers");
	tcase_add_test(tc, test_heapbits);
	tcase_add_test(tc, test_typed_records);
	suite_add_tcase(s, tc);

	tc = tcase_create("sweep");
	tcase_add_test(tc, test_cached_span_fill_and_mark);
	tcase_add_test(tc, test_black_pending_hint);
	tcase_add_test(tc, test_fill_uniform_span);
	tcase_add_test(tc, test_sweep);
	tcase_add_test(tc, test_sweep_large);
	tcase_add_loop_test(tc, test_sweep_result, 0, 5);
	tcase_add_loop_exit_test(tc, test_zombie, 70, 0, 3);
	tcase_add_test(tc, test_zombie_control);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_exit_test(tc, test_verify_unmapped_page, 70);
	tcase_add_exit_test(tc, test_verify_sweepgen, 70);
	tcase_add_test(tc, test_poison_mismatch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(mspan_suite());
}
