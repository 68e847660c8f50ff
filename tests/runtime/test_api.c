/* tests/runtime/test_api.c: the public allocation API of include/gcheap.h
 * against its documented contract: zeroed memory (fresh and reused), the
 * usable size and alignment of every request size 1..32768, gc_base of every
 * interior offset, pointers outside the heap, the tiny allocator's packing,
 * the shared zero-size address, types, large objects (one crossing an arena
 * boundary), array layouts, statistics, error strings, the handler
 * gcheap's SIGURG displaced still called, and a heap that verifies after
 * heavy use. Internals are inspected where the contract is
 * about them (spanof, span classes, mheap_verify, mcentral lists). */
#include "tests/testing.h"

#include "runtime/runtime.h"

#include <signal.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static gc_type *t_tailptr; /* 1 byte, every word past it a pointer */
static gc_type *t_ptr8;    /* one pointer word, repeating */
static gc_type *t_pair;    /* {pointer, word}: 16 bytes, repeating */

static void setup(void)
{
	size_t zero = 0;

	sys_fatal_exit_code = 86;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	/* These tests hold objects where the collector cannot see them
	 * (malloc'd arrays) and test the allocator alone: no collections. */
	gc_disable();
	t_tailptr = gc_type_new("tailptr", 1, NULL, 0, GCHEAP_TAIL_POINTERS);
	t_ptr8 = gc_type_new("ptr8", 8, &zero, 1, GCHEAP_TAIL_REPEAT);
	t_pair = gc_type_new("pair", 16, &zero, 1, GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(t_tailptr);
	ck_assert_ptr_nonnull(t_ptr8);
	ck_assert_ptr_nonnull(t_pair);
}

static void teardown(void)
{
}

/* ---- Helpers ------------------------------------------------------------- */

static const unsigned char zeros[64 << 10];

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n) {
		size_t k = MIN(n, sizeof(zeros));
		if (memcmp(b, zeros, k))
			return false;
		b += k;
		n -= k;
	}
	return true;
}

/* The first non-zero byte offset, for messages. */
static size_t first_nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return i;
	return n;
}

static bool is_tiny(size_t size, bool scan)
{
	return !scan && size < TINY_SIZE;
}

/* The usable size the contract gives a request. */
static size_t usable_size(size_t size, bool scan)
{
	if (is_tiny(size, scan))
		return TINY_SIZE;
	if (size <= MAX_SMALL_SIZE)
		return class_to_size[size_to_class(size)];
	return align_up(size, PAGE_SIZE);
}

/* The alignment the contract promises a request. */
static uintptr_t contract_align(size_t size, bool scan)
{
	if (is_tiny(size, scan)) {
		if (size % 8 == 0)
			return 8;
		if (size % 4 == 0)
			return 4;
		if (size % 2 == 0)
			return 2;
		return 1;
	}
	uintptr_t a = 8;
	if (size % 16 == 0)
		a = 16;
	if (is_pow2(size) && size <= 8192 && size > a)
		a = size;
	return a;
}

/* The type a scan request of `size` bytes is made with. */
static const gc_type *scan_type(size_t size)
{
	if (size < 8 || size % 2)
		return t_tailptr;
	return size % 16 == 0 ? t_pair : t_ptr8;
}

typedef struct range {
	uintptr_t lo, hi;
} range;

static int range_cmp(const void *a, const void *b)
{
	const range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and check that no two [lo, hi) ranges overlap. */
static void check_disjoint(range *r, size_t n)
{
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++)
		REQUIRE(r[i - 1].hi <= r[i].lo,
		        "objects [%p, %p) and [%p, %p) overlap",
		        (void *)r[i - 1].lo, (void *)r[i - 1].hi,
		        (void *)r[i].lo, (void *)r[i].hi);
}

/* Every span is on exactly one mcentral list once no thread caches any. */
static void check_spans_on_lists(void)
{
	uintptr_t n = 0;

	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		n += mcentral_verify(&mcentral_[i]);
	mutex_lock(&mheap_.lock);
	size_t inuse = mheap_.stats.spans_inuse;
	mutex_unlock(&mheap_.lock);
	ck_assert_msg(n == inuse, "mcentral lists hold %zu spans, %zu in use",
	              (size_t)n, inuse);
}

/* ---- Every size ---------------------------------------------------------- */

/* One object of every size 1..MAX_SMALL_SIZE: non-NULL, zeroed, usable
 * size equal to the class size (16 for tiny), aligned as promised, its own
 * start (or its tiny block's) as base, the right span class, and no two
 * objects overlap. */
static void every_size(bool scan)
{
	range *r = malloc(MAX_SMALL_SIZE * sizeof(*r));

	ck_assert_ptr_nonnull(r);
	for (size_t size = 1; size <= MAX_SMALL_SIZE; size++) {
		const gc_type *t = scan ? scan_type(size) : NULL;
		unsigned char *p = gc_alloc(size, t);
		uintptr_t a = (uintptr_t)p;

		REQUIRE(p, "gc_alloc(%zu, %s) = NULL (%s)", size,
		        scan ? "scan" : "NULL", gc_strerror(gc_last_error()));
		size_t us = gc_size(p), want = usable_size(size, scan);
		REQUIRE(us == want && us >= size,
		        "gc_size of a %zu-byte %s object is %zu, want %zu",
		        size, scan ? "scan" : "noscan", us, want);
		uintptr_t al = contract_align(size, scan);
		REQUIRE(a % al == 0, "%zu-byte %s object %p not aligned to %zu",
		        size, scan ? "scan" : "noscan", (void *)p, (size_t)al);
		uintptr_t base = is_tiny(size, scan) ? align_down(a, TINY_SIZE)
		                                     : a;
		REQUIRE((uintptr_t)gc_base(p) == base,
		        "gc_base(%p) of a %zu-byte object is %p, want %p",
		        (void *)p, size, gc_base(p), (void *)base);
		REQUIRE(a + size <= base + us,
		        "%zu-byte object %p runs past its block", size,
		        (void *)p);
		/* The whole usable size of a fresh object is zero. */
		size_t zlen = is_tiny(size, scan) ? size : us;
		REQUIRE(all_zero(p, zlen),
		        "%zu-byte object %p has byte %zu non-zero", size,
		        (void *)p, first_nonzero(p, zlen));
		mspan *s = spanof(a);
		spanclass spc = make_spanclass(is_tiny(size, scan) ?
		                               TINY_SIZE_CLASS :
		                               size_to_class(size), !scan);
		REQUIRE(s && s->spc == spc,
		        "%zu-byte %s object in span class %u, want %u", size,
		        scan ? "scan" : "noscan", s ? s->spc : 255, spc);
		r[size - 1] = (range){a, a + size};
	}
	check_disjoint(r, MAX_SMALL_SIZE);
	free(r);
	mcentral_verify_all();
}

START_TEST(test_every_size_noscan)
{
	every_size(false);
}
END_TEST

START_TEST(test_every_size_scan)
{
	every_size(true);
}
END_TEST

/* ---- Zeroing of reused memory -------------------------------------------- */

#define DIRTY_PAGES 2048

/* Pages scribbled on and given back must be zeroed when the allocator
 * hands them out again: tiny blocks, every class (the first object of a
 * span comes from the slow path, the rest from the fast path), scan and
 * noscan, and large objects. The dirty span is the heap's first, so first
 * fit puts every later span inside it. */
START_TEST(test_zero_reused)
{
	heap_err err = HEAP_OK;
	mspan *d = mheap_alloc_span(DIRTY_PAGES, make_spanclass(0, true),
	                            &err);

	ck_assert_ptr_nonnull(d);
	uintptr_t lo = d->base, hi = lo + DIRTY_PAGES * PAGE_SIZE;
	memset((void *)lo, 0xA5, hi - lo);
	mheap_free_span(d);

	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		for (int scan = 0; scan < 2; scan++) {
			size_t size = class_to_size[c];
			size_t n = class_to_npages[c] * PAGE_SIZE / size;
			const gc_type *t = scan ? scan_type(size) : NULL;

			if (!scan && size < TINY_SIZE)
				continue; /* tiny, below */
			for (size_t i = 0; i < n; i++) {
				unsigned char *p = gc_alloc(size, t);
				uintptr_t a = (uintptr_t)p;
				REQUIRE(p, "gc_alloc(%zu) = NULL", size);
				REQUIRE(a >= lo && a < hi,
				        "class %u object %p outside the dirty "
				        "pages [%p, %p)", c, (void *)p,
				        (void *)lo, (void *)hi);
				REQUIRE(all_zero(p, size),
				        "reused class %u %s object %zu (%p) "
				        "has byte %zu non-zero", c,
				        scan ? "scan" : "noscan", i, (void *)p,
				        first_nonzero(p, size));
				memset(p, 0x5A, size);
			}
		}
	}
	/* Tiny objects of every size, each in reused blocks. */
	for (int round = 0; round < 64; round++) {
		for (size_t size = 1; size < TINY_SIZE; size++) {
			unsigned char *p = gc_alloc(size, NULL);
			REQUIRE(p && (uintptr_t)p >= lo && (uintptr_t)p < hi,
			        "tiny %zu: %p outside the dirty pages", size,
			        (void *)p);
			REQUIRE(all_zero(p, size),
			        "reused tiny %zu-byte object %p has byte %zu "
			        "non-zero", size, (void *)p,
			        first_nonzero(p, size));
			memset(p, 0x5A, size);
		}
	}
	size_t large[] = {MAX_SMALL_SIZE + 1, 100000, MiB};
	for (size_t i = 0; i < ARRAY_LEN(large); i++) {
		for (int scan = 0; scan < 2; scan++) {
			unsigned char *p = gc_alloc(large[i],
			                            scan ? t_pair : NULL);
			ck_assert_ptr_nonnull(p);
			ck_assert_msg((uintptr_t)p >= lo &&
			              (uintptr_t)p + large[i] <= hi,
			              "large object %p outside the dirty pages",
			              (void *)p);
			ck_assert_msg(all_zero(p, gc_size(p)),
			              "reused large object of %zu bytes has "
			              "byte %zu non-zero", large[i],
			              first_nonzero(p, gc_size(p)));
			memset(p, 0x5A, large[i]);
		}
	}
	mcentral_verify_all();
}
END_TEST

/* ---- Interior pointers --------------------------------------------------- */

/* gc_base and gc_size of every byte of the object at p. */
static size_t next_probe(size_t k, size_t n)
{
	size_t off = k % PAGE_SIZE;

	if (n <= 4 * PAGE_SIZE || k + 1 < PAGE_SIZE || k + 1 >= n - PAGE_SIZE ||
	    off + 1 >= PAGE_SIZE - 8 || off + 1 <= 8)
		return k + 1;
	/* Jump to the next page boundary's neighbourhood or a stride on. */
	size_t next = MIN(k + 1021, (k - off) + PAGE_SIZE - 8);
	return MIN(next, n - PAGE_SIZE);
}

static void check_interior(const unsigned char *p, const char *what)
{
	size_t n = gc_size(p);
	const unsigned char *base = gc_base(p);

	REQUIRE(n > 0 && base, "%s: %p is not an object", what, (void *)p);
	/* Every byte of small objects; of a large one, every byte of its
	 * first and last pages and around each page boundary, and a stride
	 * of a prime number of bytes between them (all of a 64 MiB object
	 * took half a minute under TSan). */
	for (size_t k = 0; k < n; k = next_probe(k, n)) {
		const unsigned char *q = base + k;
		void *b = gc_base(q);
		REQUIRE(b == base, "%s: gc_base(base + %zu) = %p, want %p",
		        what, k, b, (void *)base);
		REQUIRE(gc_size(q) == n, "%s: gc_size(base + %zu) = %zu, want "
		        "%zu", what, k, gc_size(q), n);
	}
	REQUIRE(gc_base(base + n) != base,
	        "%s: gc_base one past the end (%p) is the object", what,
	        (void *)(base + n));
	REQUIRE(gc_base(base - 1) != base,
	        "%s: gc_base one before the start is the object", what);
}

START_TEST(test_interior_classes)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		size_t size = class_to_size[c];
		char what[64];

		snprintf(what, sizeof(what), "class %u noscan", c);
		check_interior(gc_alloc(size, NULL), what);
		snprintf(what, sizeof(what), "class %u scan", c);
		check_interior(gc_alloc(size, scan_type(size)), what);
		/* An object in the middle of a span, and its neighbours. */
		unsigned char *a = gc_alloc(size, NULL);
		unsigned char *b = gc_alloc(size, NULL);
		if (size >= TINY_SIZE && b == a + size) {
			snprintf(what, sizeof(what), "class %u second", c);
			check_interior(b, what);
			ck_assert_ptr_eq(gc_base(b - 1), a);
		}
	}
	/* Tiny objects: every byte of the block belongs to it. */
	unsigned char *t = gc_alloc(3, NULL);
	check_interior(t, "tiny");
}
END_TEST

START_TEST(test_interior_large)
{
	size_t sizes[] = {MAX_SMALL_SIZE + 1, MiB, 64 * MiB + 1};

	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		char what[64];
		snprintf(what, sizeof(what), "large %zu", sizes[i]);
		check_interior(gc_alloc(sizes[i], NULL), what);
		snprintf(what, sizeof(what), "large scan %zu", sizes[i]);
		check_interior(gc_alloc(sizes[i], t_pair), what);
	}
}
END_TEST

/* The object after a fresh one in its span is not allocated yet: no base.
 * The tail of a span past its last object is no object either. */
START_TEST(test_unallocated_slots)
{
	unsigned char *p = gc_alloc(48, NULL);
	mspan *s = spanof((uintptr_t)p);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(gc_base(p + 48));
	ck_assert_uint_eq(gc_size(p + 48), 0);
	ck_assert_ptr_null(gc_base(p + 100));
	/* 8192 / 48 = 170 objects; 32 bytes of tail. */
	ck_assert_uint_lt(s->limit, s->base + s->npages * PAGE_SIZE);
	ck_assert_ptr_null(gc_base((void *)s->limit));
	ck_assert_ptr_null(gc_base((void *)(s->base + s->npages * PAGE_SIZE -
	                                    1)));
	/* Fill the span: now every object has a base, the tail still not. */
	for (size_t i = 1; i < s->nelems; i++)
		ck_assert_ptr_nonnull(gc_alloc(48, NULL));
	for (size_t i = 0; i < s->nelems; i++) {
		unsigned char *o = (unsigned char *)s->base + i * 48;
		ck_assert_ptr_eq(gc_base(o + 47), o);
	}
	ck_assert_ptr_null(gc_base((void *)s->limit));
	ck_assert_uint_eq(gc_size((void *)s->limit), 0);
}
END_TEST

/* ---- Outside the heap ---------------------------------------------------- */

static int a_global;

static void check_outside(const void *p, const char *what)
{
	ck_assert_msg(gc_base(p) == NULL, "gc_base(%s %p) = %p", what, p,
	              gc_base(p));
	ck_assert_msg(gc_size(p) == 0, "gc_size(%s %p) = %zu", what, p,
	              gc_size(p));
}

static void check_all_outside(void)
{
	int local = 0;
	void *m = malloc(64);

	check_outside(&local, "stack");
	check_outside(m, "malloc");
	check_outside(&a_global, "global");
	check_outside(NULL, "NULL");
	check_outside((void *)1, "1");
	check_outside((void *)~(uintptr_t)0, "~0");
	check_outside((void *)((uintptr_t)1 << ADDR_BITS), "2^48");
	check_outside((void *)(((uintptr_t)1 << ADDR_BITS) - 1), "2^48-1");
	check_outside((void *)(uintptr_t)check_outside, "code");
	free(m);
}

START_TEST(test_outside_heap)
{
	unsigned char *p = gc_alloc(64, NULL);

	ck_assert_ptr_nonnull(p);
	check_all_outside();
	/* Free pages of a heap arena. */
	heap_arena *a = arena_of((uintptr_t)p);
	ck_assert_ptr_nonnull(a);
	check_outside((void *)(a->base + ARENA_BYTES - 1), "free page");
	check_outside((void *)(a->base + ARENA_BYTES / 2), "free page");
	check_outside(gc_alloc(0, NULL), "zero-size");
}
END_TEST

/* Before the heap exists nothing is an object, and stats are empty. */
START_TEST(test_before_init)
{
	gc_stats st;

	check_all_outside();
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	ck_assert_uint_eq(gc_memory_limit(), 0);
	memset(&st, 0xAB, sizeof(st));
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.version, GCHEAP_STATS_VERSION);
	ck_assert_uint_eq(st.size, sizeof(st));
	ck_assert_uint_eq(st.alloc_objects, 0);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_eq(st.os_committed, 0);
	ck_assert_int_eq(gc_init(), GCHEAP_OK);
	ck_assert_int_eq(gc_init(), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	check_all_outside();
}
END_TEST

/* ---- Alignment ----------------------------------------------------------- */

/* Every object of a span and the next (so not only span starts), for each
 * class and request sizes on its edge, honours the alignment contract. */
START_TEST(test_alignment_all_slots)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		size_t reqs[] = {class_to_size[c], class_to_size[c - 1] + 1,
		                 class_to_size[c] - 8};
		for (size_t r = 0; r < ARRAY_LEN(reqs); r++) {
			size_t size = reqs[r];
			size_t n = class_to_npages[c] * PAGE_SIZE /
			           class_to_size[c] + 1;
			if (size == 0 || size_to_class(size) != c)
				continue;
			for (int scan = 0; scan < 2; scan++) {
				uintptr_t al = contract_align(size, scan);
				const gc_type *t =
					scan ? scan_type(size) : NULL;
				for (size_t i = 0; i < n; i++) {
					void *p = gc_alloc(size, t);
					REQUIRE(p && (uintptr_t)p % al == 0,
					        "object %zu of %zu bytes (%s) "
					        "at %p not aligned to %zu", i,
					        size, scan ? "scan" : "noscan",
					        p, (size_t)al);
				}
			}
		}
	}
	/* Tiny objects in random order, so each size meets every offset. */
	test_rng rng = rng_make(3);
	for (int i = 0; i < 100000; i++) {
		size_t size = 1 + rng_below(&rng, TINY_SIZE - 1);
		void *p = gc_alloc(size, NULL);
		REQUIRE(p && (uintptr_t)p % contract_align(size, false) == 0,
		        "tiny object of %zu bytes at %p not aligned to %zu",
		        size, p, (size_t)contract_align(size, false));
	}
	/* Large objects are page aligned. */
	for (size_t size = MAX_SMALL_SIZE + 1; size < 200000; size += 9999) {
		void *p = gc_alloc(size, NULL);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % PAGE_SIZE, 0);
	}
}
END_TEST

/* ---- Tiny allocator ------------------------------------------------------ */

static uintptr_t tiny_model_align(uintptr_t off, size_t size)
{
	if (size % 8 == 0)
		return align_up(off, 8);
	if (size % 4 == 0)
		return align_up(off, 4);
	if (size % 2 == 0)
		return align_up(off, 2);
	return off;
}

/* Fixed sequences first: a block fills by alignment, then a new one. */
START_TEST(test_tiny_packing)
{
	unsigned char *a = gc_alloc(1, NULL);
	unsigned char *b = gc_alloc(2, NULL);
	unsigned char *c = gc_alloc(4, NULL);
	unsigned char *d = gc_alloc(8, NULL);
	unsigned char *e = gc_alloc(1, NULL);

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq((uintptr_t)a % TINY_SIZE, 0);
	ck_assert_ptr_eq(b, a + 2);
	ck_assert_ptr_eq(c, a + 4);
	ck_assert_ptr_eq(d, a + 8);
	ck_assert_ptr_eq(gc_base(b), a);
	ck_assert_ptr_eq(gc_base(c), a);
	ck_assert_ptr_eq(gc_base(d + 7), a);
	ck_assert_uint_eq(gc_size(d), TINY_SIZE);
	/* The block is full: a new one. */
	ck_assert_ptr_ne(gc_base(e), a);
	ck_assert_ptr_eq(gc_base(e), e);
	/* Three 5-byte objects share a block; a fourth does not fit. */
	unsigned char *f = gc_alloc(5, NULL);
	unsigned char *g = gc_alloc(5, NULL);
	unsigned char *h = gc_alloc(5, NULL);
	ck_assert_ptr_eq(f, e + 1);
	ck_assert_ptr_eq(g, e + 6);
	ck_assert_ptr_eq(h, e + 11);
	/* Two 8-byte objects per block, 8-aligned after an odd one. */
	unsigned char *i = gc_alloc(1, NULL); /* new block (16 used) */
	unsigned char *j = gc_alloc(8, NULL);
	ck_assert_ptr_eq(j, i + 8);
	/* A 6-byte object is 2-aligned, a 12-byte one 4-aligned. */
	unsigned char *k = gc_alloc(3, NULL);
	unsigned char *l = gc_alloc(6, NULL);
	unsigned char *m = gc_alloc(12, NULL);
	ck_assert_ptr_eq(l, k + 4);
	ck_assert_uint_eq((uintptr_t)m % 4, 0);
	ck_assert_ptr_eq(gc_base(m), m); /* 10 + 12 > 16: a new block */
}
END_TEST

/* A random mix against a model of Go's tiny allocator: an object goes at
 * the aligned offset of the current block if it fits; otherwise it gets a
 * fresh block, which becomes current if it has more room left. Scan
 * objects and noscan objects of 16 bytes or more never touch the tiny
 * block. Every tiny object lies inside its 16-byte block, aligned, and no
 * two overlap. */
START_TEST(test_tiny_model)
{
	enum { N = 20000 };
	test_rng rng = rng_make(1);
	range *r = malloc(N * sizeof(*r));
	uintptr_t block = 0, off = 0;
	size_t nr = 0, packed = 0;
	gc_stats s0, s1;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(gc_read_stats(&s0, sizeof(s0)), GCHEAP_OK);
	for (int n = 0; n < N; n++) {
		unsigned kind = (unsigned)rng_below(&rng, 10);
		if (kind == 0) {
			/* An 8-byte pointer object: its own slot. */
			void *q = gc_alloc(8, t_ptr8);
			REQUIRE(q && gc_base(q) == q && gc_size(q) == 8,
			        "8-byte scan object %p base %p size %zu", q,
			        gc_base(q), gc_size(q));
			REQUIRE(spanof((uintptr_t)q)->spc ==
			        make_spanclass(1, false),
			        "8-byte scan object in span class %u",
			        spanof((uintptr_t)q)->spc);
			r[nr++] = (range){(uintptr_t)q, (uintptr_t)q + 8};
			continue;
		}
		if (kind == 1) {
			size_t sz = TINY_SIZE + rng_below(&rng, 100);
			void *q = gc_alloc(sz, NULL);
			REQUIRE(q && gc_base(q) == q, "noscan %zu not alone",
			        sz);
			r[nr++] = (range){(uintptr_t)q, (uintptr_t)q + sz};
			continue;
		}
		if (kind == 2) {
			/* Small scan objects under 16 bytes are not tiny. */
			size_t sz = 1 + rng_below(&rng, TINY_SIZE - 1);
			void *q = gc_alloc(sz, t_tailptr);
			REQUIRE(q && gc_base(q) == q &&
			        gc_size(q) == usable_size(sz, true),
			        "scan %zu-byte object %p: base %p size %zu",
			        sz, q, gc_base(q), gc_size(q));
			r[nr++] = (range){(uintptr_t)q, (uintptr_t)q + sz};
			continue;
		}
		size_t size = 1 + rng_below(&rng, TINY_SIZE - 1);
		uintptr_t p = (uintptr_t)gc_alloc(size, NULL);
		REQUIRE(p, "tiny gc_alloc(%zu) = NULL", size);
		uintptr_t o = tiny_model_align(off, size);
		if (block && o + size <= TINY_SIZE) {
			REQUIRE(p == block + o,
			        "tiny %zu-byte object #%d at %p, want block "
			        "%p + %zu", size, n, (void *)p, (void *)block,
			        (size_t)o);
			off = o + size;
			packed++;
		} else {
			REQUIRE(p % TINY_SIZE == 0 && p != block,
			        "tiny %zu-byte object #%d at %p, want a fresh "
			        "block", size, n, (void *)p);
			if (!block || size < off) {
				block = p;
				off = size;
			}
		}
		REQUIRE(p % tiny_model_align(1, size) == 0,
		        "tiny %zu at %p misaligned", size, (void *)p);
		uintptr_t b = (uintptr_t)gc_base((void *)p);
		REQUIRE(b == align_down(p, TINY_SIZE) &&
		        p + size <= b + TINY_SIZE,
		        "tiny %zu-byte object %p straddles its block %p",
		        size, (void *)p, (void *)b);
		REQUIRE(spanof(p)->spc == TINY_SPANCLASS,
		        "tiny object %p in span class %u", (void *)p,
		        spanof(p)->spc);
		r[nr++] = (range){p, p + size};
	}
	check_disjoint(r, nr);
	free(r);
	ck_assert_int_eq(gc_read_stats(&s1, sizeof(s1)), GCHEAP_OK);
	ck_assert_uint_eq(s1.tiny_allocs - s0.tiny_allocs, packed);
}
END_TEST

/* A noscan type under 16 bytes is tiny like type NULL. */
START_TEST(test_tiny_noscan_type)
{
	gc_type *bytes4 = gc_type_new("bytes4", 4, NULL, 0,
	                              GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(bytes4);
	unsigned char *a = gc_alloc(4, bytes4);
	unsigned char *b = gc_alloc(4, bytes4);
	unsigned char *c = gc_alloc_array(2, bytes4);
	ck_assert_ptr_eq(b, a + 4);
	ck_assert_ptr_eq(c, a + 8);
	ck_assert_ptr_eq(gc_base(c + 7), a);
}
END_TEST

/* ---- Zero-size allocations ----------------------------------------------- */

START_TEST(test_zero_size)
{
	void *z = gc_alloc(0, NULL);

	ck_assert_ptr_nonnull(z);
	ck_assert_ptr_eq(gc_alloc(0, t_pair), z);
	ck_assert_ptr_eq(gc_alloc(0, t_tailptr), z);
	ck_assert_ptr_eq(gc_alloc_array(0, t_pair), z);
	ck_assert_uint_eq(gc_size(z), 0);
	ck_assert_ptr_null(gc_base(z));
	for (int i = 0; i < 1000; i++)
		ck_assert_ptr_nonnull(gc_alloc((size_t)i * 40 + 1, NULL));
	ck_assert_ptr_nonnull(gc_alloc(MiB, NULL));
	ck_assert_ptr_eq(gc_alloc(0, NULL), z);
	ck_assert_uint_eq(gc_size(z), 0);
	ck_assert_ptr_null(gc_base(z));
	ck_assert_int_eq(gc_last_error(), GCHEAP_OK);
}
END_TEST

/* ---- Types --------------------------------------------------------------- */

START_TEST(test_types)
{
	char name[] = "node";
	size_t offs[] = {16, 0};
	gc_type *t = gc_type_new(name, 24, offs, 2, GCHEAP_TAIL_REPEAT);

	ck_assert_ptr_nonnull(t);
	name[0] = 'X'; /* the name was copied */
	ck_assert_str_eq(gc_type_name(t), "node");
	ck_assert_uint_eq(gc_type_size(t), 24);
	gc_type *anon = gc_type_new(NULL, 5, NULL, 0, GCHEAP_TAIL_NOSCAN);
	ck_assert_ptr_nonnull(anon);
	ck_assert_ptr_nonnull(gc_type_name(anon));
	ck_assert_uint_eq(gc_type_size(anon), 5);
	uint64_t bm[2] = {0x5, 0x1}; /* words 0, 2 and 64 */
	gc_type *wide = gc_type_new_bitmap("wide", 520, bm,
	                                   GCHEAP_TAIL_NOSCAN);
	ck_assert_ptr_nonnull(wide);
	ck_assert_str_eq(gc_type_name(wide), "wide");
	ck_assert_uint_eq(gc_type_size(wide), 520);
	gc_type *big = gc_type_new("big", GCHEAP_MAX_TYPE_SIZE, NULL, 0, 0);
	ck_assert_ptr_nonnull(big);
	ck_assert_uint_eq(gc_type_size(big), GCHEAP_MAX_TYPE_SIZE);
	gc_type *nob = gc_type_new_bitmap("nobits", 64, NULL, 0);
	ck_assert_ptr_nonnull(nob);
	ck_assert_uint_eq(gc_type_size(nob), 64);

	/* Objects of each land in span classes of the right kind. */
	void *p = gc_alloc(24, t);
	ck_assert(!spanclass_noscan(spanof((uintptr_t)p)->spc));
	p = gc_alloc(40, anon);
	ck_assert(spanclass_noscan(spanof((uintptr_t)p)->spc));
	p = gc_alloc(520, wide);
	ck_assert(!spanclass_noscan(spanof((uintptr_t)p)->spc));
	p = gc_alloc(64, nob);
	ck_assert(spanclass_noscan(spanof((uintptr_t)p)->spc));
	/* Types work from a thread that never attached (this one detached). */
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	gc_type *late = gc_type_new("late", 8, NULL, 0, 0);
	ck_assert_ptr_nonnull(late);
	ck_assert_str_eq(gc_type_name(late), "late");
}
END_TEST

/* ---- Large objects ------------------------------------------------------- */

static void check_large(size_t size, const gc_type *t)
{
	unsigned char *p = gc_alloc(size, t);
	uintptr_t a = (uintptr_t)p;

	ck_assert_msg(p != NULL, "gc_alloc(%zu) = NULL (%s)", size,
	              gc_strerror(gc_last_error()));
	ck_assert_uint_eq(a % PAGE_SIZE, 0);
	size_t us = gc_size(p);
	ck_assert_uint_eq(us, align_up(size, PAGE_SIZE));
	ck_assert_msg(all_zero(p, us), "large %zu: byte %zu non-zero", size,
	              first_nonzero(p, us));
	mspan *s = spanof(a);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(spanof(a + size - 1), s);
	ck_assert_ptr_eq(spanof(a + us - 1), s);
	ck_assert_uint_eq(spanclass_sizeclass(s->spc), 0);
	ck_assert_int_eq(spanclass_noscan(s->spc), t == NULL || t->noscan);
	ck_assert_uint_eq(s->base, a);
	ck_assert_uint_eq(s->npages, us / PAGE_SIZE);
	for (uintptr_t pg = 0; pg < s->npages; pg++)
		REQUIRE(spanof(a + pg * PAGE_SIZE) == s,
		        "page %zu of a %zu-byte object maps to %p, not %p",
		        (size_t)pg, size, (void *)spanof(a + pg * PAGE_SIZE),
		        (void *)s);
	ck_assert_ptr_ne(spanof(a + us), s);
	if (t && !t->noscan) {
		ck_assert_ptr_eq(s->largetype, t);
		ck_assert_uint_eq(s->large_size, size);
	}
	/* Writable end to end, and it keeps what was written. */
	for (size_t i = 0; i < us; i += 4096)
		p[i] = (unsigned char)(i >> 12);
	memset(p + us - 4096, 0xEE, 4096);
	p[size - 1] = 0x77;
	for (size_t i = 0; i < us - 4096; i += 4096)
		REQUIRE(p[i] == (unsigned char)(i >> 12) || i == size - 1,
		        "byte %zu lost", i);
	ck_assert_uint_eq(p[size - 1], 0x77);
	ck_assert_ptr_eq(gc_base(p + size - 1), p);
	ck_assert_ptr_eq(gc_base(p + us - 1), p);
}

START_TEST(test_large)
{
	check_large(MAX_SMALL_SIZE + 1, NULL);
	check_large(MAX_SMALL_SIZE + 1, t_pair);
	check_large(MiB, NULL);
	check_large(MiB, t_ptr8);
	check_large(3 * MiB + 5, t_tailptr);
	mcentral_verify_all();
}
END_TEST

/* 64 MiB + 1 needs 8193 pages: more than an arena, so the span crosses an
 * arena boundary, once in a fresh heap and once after small objects. */
static void check_arena_crossing(void)
{
	size_t size = 64 * MiB + 1;
	unsigned char *p = gc_alloc(size, NULL);
	uintptr_t a = (uintptr_t)p;

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_ne(arena_of(a), arena_of(a + size - 1));
	ck_assert_ptr_nonnull(arena_of(a + size - 1));
	ck_assert_ptr_eq(spanof(a), spanof(a + size - 1));
	check_large(size, NULL);
	check_large(size, t_pair);
	memset(p, 0x3C, size);
	ck_assert_uint_eq(p[0], 0x3C);
	ck_assert_uint_eq(p[size - 1], 0x3C);
	ck_assert(all_zero(p + size, gc_size(p) - size));
	mcentral_verify_all();
}

START_TEST(test_large_arena_crossing_fresh)
{
	check_arena_crossing();
}
END_TEST

START_TEST(test_large_arena_crossing_used)
{
	for (int i = 0; i < 3000; i++)
		ck_assert_ptr_nonnull(gc_alloc(1000, NULL));
	ck_assert_ptr_nonnull(gc_alloc(20 * MiB, NULL));
	check_arena_crossing();
}
END_TEST

/* ---- Arrays -------------------------------------------------------------- */

/* The pointer slots the allocator recorded for an array of `count`
 * elements of `stride` bytes at p (below its `bytes`) are exactly one per
 * element, at `ptr_off` inside it. */
static void check_slots(void *p, size_t bytes, size_t stride,
                        size_t ptr_off, size_t count)
{
	mspan *s = spanof((uintptr_t)p);
	ptriter it;
	size_t n = 0;
	uintptr_t *slot;

	ck_assert_ptr_nonnull(s);
	mspan_ptriter(s, (uintptr_t)p, &it);
	while ((slot = ptriter_next(&it)) != NULL) {
		size_t off = (uintptr_t)slot - (uintptr_t)p;
		if (off >= bytes)
			break;
		REQUIRE(off % stride == ptr_off && off / stride == n,
		        "array of %zu: slot %zu at offset %zu, want %zu",
		        count, n, off, n * stride + ptr_off);
		n++;
	}
	ck_assert_msg(n == count, "array of %zu elements has %zu pointer "
	              "slots", count, n);
}

/* The slots recorded for an object of `bytes` bytes of type t at p are
 * exactly the words the type's map (gctype_word_is_ptr, the slow
 * definition) makes pointers, among the object's whole words. */
static void check_layout(void *p, size_t bytes, const gc_type *t)
{
	mspan *s = spanof((uintptr_t)p);
	size_t nw = bytes / WORD_SIZE, n = 0, want = 0;
	ptriter it;
	uintptr_t *slot;

	ck_assert_ptr_nonnull(s);
	for (size_t w = 0; w < nw; w++)
		want += gctype_word_is_ptr(t, w);
	mspan_ptriter(s, (uintptr_t)p, &it);
	while ((slot = ptriter_next(&it)) != NULL) {
		size_t w = ((uintptr_t)slot - (uintptr_t)p) / WORD_SIZE;
		if (w >= nw)
			break;
		REQUIRE(gctype_word_is_ptr(t, w),
		        "%zu bytes of %s: word %zu recorded as a pointer",
		        bytes, t->name, w);
		n++;
	}
	ck_assert_msg(n == want, "%zu bytes of %s: %zu pointer slots, the "
	              "map has %zu", bytes, t->name, n, want);
}

START_TEST(test_arrays)
{
	size_t o8 = 8;
	gc_type *rev = gc_type_new("rev", 16, &o8, 1, GCHEAP_TAIL_REPEAT);
	size_t counts[] = {1, 2, 7, 10, 32, 33, 100, 1000, 2048, 2049, 5000,
	                   100000};

	ck_assert_ptr_nonnull(rev);
	for (size_t i = 0; i < ARRAY_LEN(counts); i++) {
		size_t n = counts[i], bytes = n * 16;
		unsigned char *p = gc_alloc_array(n, t_pair);
		unsigned char *q = gc_alloc_array(n, rev);

		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq(gc_size(p), usable_size(bytes, true));
		ck_assert_uint_eq((uintptr_t)p % 16, 0);
		ck_assert(all_zero(p, gc_size(p)));
		ck_assert(all_zero(q, gc_size(q)));
		check_slots(p, bytes, 16, 0, n);
		check_slots(q, bytes, 16, 8, n);
	}
	/* Other maps and tails, at sizes on every layout path. */
	size_t two[] = {16, 0}, one = 8;
	gc_type *maps[] = {
		gc_type_new("t24", 24, two, 2, GCHEAP_TAIL_REPEAT),
		gc_type_new("hdr", 12, &one, 0, GCHEAP_TAIL_POINTERS),
		gc_type_new("hdrp", 16, &one, 1, GCHEAP_TAIL_POINTERS),
		gc_type_new("bytes", 16, &one, 1, GCHEAP_TAIL_NOSCAN),
		gc_type_new("tail", 1, NULL, 0, GCHEAP_TAIL_POINTERS),
	};
	for (size_t m = 0; m < ARRAY_LEN(maps); m++) {
		ck_assert_ptr_nonnull(maps[m]);
		size_t tsz = gc_type_size(maps[m]);
		size_t sizes[] = {tsz, tsz + 5, 100, 512, 520, 4000, 40000,
		                  200000};
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
			if (sizes[i] < tsz)
				continue;
			void *o = gc_alloc(sizes[i], maps[m]);
			ck_assert_ptr_nonnull(o);
			check_layout(o, sizes[i], maps[m]);
		}
		for (size_t n = 1; n < 3000; n = n * 3 + 1) {
			void *o = gc_alloc_array(n, maps[m]);
			ck_assert_ptr_nonnull(o);
			check_layout(o, n * tsz, maps[m]);
		}
	}
	/* Noscan element types make noscan arrays, tiny when small. */
	gc_type *u16 = gc_type_new("u16", 2, NULL, 0, GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(u16);
	unsigned char *a = gc_alloc_array(3, u16);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(gc_size(a), TINY_SIZE);
	ck_assert_uint_eq((uintptr_t)a % 2, 0);
	unsigned char *b = gc_alloc_array(3000, u16);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(gc_size(b), usable_size(6000, false));
	ck_assert(spanclass_noscan(spanof((uintptr_t)b)->spc));
	/* A type that is not a multiple of 8 (no pointers) in arrays. */
	gc_type *b3 = gc_type_new("b3", 3, NULL, 0, GCHEAP_TAIL_REPEAT);
	unsigned char *c = gc_alloc_array(11000, b3);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(gc_size(c), usable_size(33000, false));
}
END_TEST

/* ---- Statistics ---------------------------------------------------------- */

static gc_stats stats(void)
{
	gc_stats s;

	ck_assert_int_eq(gc_read_stats(&s, sizeof(s)), GCHEAP_OK);
	ck_assert_uint_eq(s.version, GCHEAP_STATS_VERSION);
	ck_assert_uint_eq(s.size, sizeof(s));
	ck_assert_uint_ge(s.os_committed, s.heap_inuse);
	ck_assert_uint_ge(s.os_reserved, s.os_committed);
	ck_assert_uint_eq(s.heap_free,
	                  s.os_committed - s.os_released - s.heap_inuse);
	return s;
}

START_TEST(test_stats_move)
{
	gc_stats s0 = stats();

	ck_assert_uint_eq(s0.threads, 1);
	ck_assert_uint_eq(s0.alloc_objects, 0);
	ck_assert_uint_eq(s0.large_objects, 0);

	void *p = gc_alloc(100, NULL);
	ck_assert_ptr_nonnull(p);
	gc_stats s1 = stats();
	ck_assert_uint_gt(s1.alloc_objects, s0.alloc_objects);
	ck_assert_uint_ge(s1.alloc_bytes - s0.alloc_bytes, gc_size(p));
	ck_assert_uint_ge(s1.heap_inuse, s0.heap_inuse + PAGE_SIZE);
	ck_assert_uint_eq(s1.spans_inuse, s0.spans_inuse + 1);
	ck_assert_uint_ge(s1.arenas, 1);
	ck_assert_uint_ge(s1.os_reserved, s1.arenas * ARENA_BYTES);
	ck_assert_uint_gt(s1.metadata_bytes, 0);

	void *l = gc_alloc(MiB + 1, NULL);
	ck_assert_ptr_nonnull(l);
	gc_stats s2 = stats();
	ck_assert_uint_eq(s2.large_objects, s1.large_objects + 1);
	ck_assert_uint_eq(s2.large_bytes, s1.large_bytes + gc_size(l));
	ck_assert_uint_eq(s2.heap_inuse, s1.heap_inuse + gc_size(l));
	ck_assert_uint_eq(s2.alloc_objects, s1.alloc_objects + 1);
	ck_assert_uint_eq(s2.alloc_bytes, s1.alloc_bytes + gc_size(l));
	ck_assert_uint_eq(s2.spans_inuse, s1.spans_inuse + 1);

	/* Tiny objects: 16 one-byte objects are one block plus 15 packed. */
	ck_assert_uint_eq(s2.tiny_allocs, 0);
	for (int i = 0; i < 16; i++)
		ck_assert_ptr_nonnull(gc_alloc(1, NULL));
	gc_stats s3 = stats();
	ck_assert_uint_eq(s3.tiny_allocs, 15);

	/* A second thread shows in the count. */
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	ck_assert_uint_eq(stats().threads, 0);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_uint_eq(stats().threads, 1);
}
END_TEST

/* After the thread's cache is released, objects are counted exactly:
 * the unused remainder of each cached span is taken back. */
/* alloc_layout_writes counts the small allocations that wrote their
 * layout per object: one per span for a span of one type. Each scan type
 * has a typed slot in the thread's cache (alloc/mcache.h), so that two
 * types of one size class allocated in turn still write one layout per
 * span; two types whose typed slots collide take turns at the slot, and
 * never write more than one layout per object. */
/* A heap dump's stop of the world is a pause like the collector's: the
 * other threads waited through it (a second thread's longest gap was
 * 1,056 ms while the pause figures said 1.16). It counts in
 * pause_total_ns, pause_count, the ring and the histogram, outside the
 * phases. */
START_TEST(test_stats_dump_pause)
{
	char path[] = "/tmp/test_api_dump.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	for (int i = 0; i < 1000; i++)
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	gc_stats s0 = stats();
	uint64_t other0 = s0.pause_total_ns - s0.phase_total_ns[0] -
	                  s0.phase_total_ns[2];
	ck_assert_uint_eq(other0, 0);
	ck_assert_int_eq(gc_heap_dump(path), GCHEAP_OK);
	gc_stats s1 = stats();
	uint64_t other1 = s1.pause_total_ns - s1.phase_total_ns[0] -
	                  s1.phase_total_ns[2];
	ck_assert_uint_gt(other1, 0);
	ck_assert_uint_ge(s1.pause_max_ns, other1);
	ck_assert_uint_gt(s1.pause_count, s0.pause_count + 1);
	unlink(path);
}
END_TEST

/* n objects of each of two types of one size, in turn. */
static void alloc_in_turn(const gc_type *a, const gc_type *b, int n)
{
	for (int i = 0; i < n; i++) {
		REQUIRE(gc_alloc(a->size, a), "gc_alloc failed");
		REQUIRE(gc_alloc(b->size, b), "gc_alloc failed");
	}
}

START_TEST(test_stats_layout_writes)
{
	size_t off0 = 0, off1 = 8, off2 = 16;
	gc_type *ta = gc_type_new("la", 32, &off0, 1, GCHEAP_TAIL_NOSCAN);
	gc_type *tb = gc_type_new("lb", 32, &off1, 1, GCHEAP_TAIL_NOSCAN);
	ck_assert_ptr_nonnull(ta);
	ck_assert_ptr_nonnull(tb);
	ck_assert_uint_eq(ta->spc, tb->spc);
	ck_assert_uint_ne(ta->cslot, tb->cslot);
	/* A type whose typed slot is ta's: at most one in
	 * MCACHE_TYPED_SLOTS consecutive types of the region. */
	gc_type *tc = NULL;
	for (int i = 0; i < MCACHE_TYPED_SLOTS && !tc; i++) {
		gc_type *t = gc_type_new("lc", 32, &off2, 1,
		                         GCHEAP_TAIL_NOSCAN);
		ck_assert_ptr_nonnull(t);
		if (t->cslot == ta->cslot)
			tc = t;
	}
	ck_assert_ptr_nonnull(tc);
	/* Type recording (on with checkmark or rootcheck) writes every
	 * object's type: off, whatever GCHEAP_DEBUG says. */
	gc_set_record_types(0);
	gc_disable();
	uint64_t w0 = stats().alloc_layout_writes;
	for (int i = 0; i < 10000; i++)
		ck_assert_ptr_nonnull(gc_alloc(32, ta));
	uint64_t w1 = stats().alloc_layout_writes;
	/* 10,000 objects of 32 B fill 40 spans of 8 KiB: one write each
	 * (a span cached with the type's layout already in place writes
	 * none). */
	ck_assert_uint_ge(w1 - w0, 1);
	ck_assert_uint_le(w1 - w0, 45);
	alloc_in_turn(ta, tb, 10000);
	uint64_t w2 = stats().alloc_layout_writes;
	/* Alternating layouts: each type fills its own spans (a span per
	 * 256 objects, 80 in all, and a few more). */
	ck_assert_uint_ge(w2 - w1, 1);
	ck_assert_uint_le(w2 - w1, 90);
	alloc_in_turn(ta, tc, 10000);
	uint64_t w3 = stats().alloc_layout_writes;
	ck_assert_uint_le(w3 - w2, 10000 + 90);
	gc_enable();
}
END_TEST

/* Objects of types that share a size class, allocated in turn, keep
 * their own layouts: each points to a child through its one pointer
 * word, and holds a word that looks like a pointer to another child in
 * the next word. Of four types, the first three share a size class, and
 * the third and fourth (of another class) share the first's typed slot. A
 * wrong layout would keep the wrong children (checked by weak
 * references: the children reachable only through a plain word must die)
 * or lose the right ones (checked by their payload, overwritten once
 * freed); an object of the wrong class would overlap its neighbours.
 * All-pointer arrays of the same sizes, allocated in between, keep the
 * class slots' spans carrying another layout. */
enum { TS_N = 4000, TS_T = 4 };
static const size_t ts_offs[TS_T] = {0, 8, 16, 24};
static const size_t ts_sizes[TS_T] = {32, 32, 32, 48};

static void typed_slots_round(gc_type *const *t, gc_type *tp)
{
	/* No cycle while the objects are made; precise stacks for the
	 * collections, so that no stale word on the stack keeps a child. */
	gc_disable();
	uint64_t **par = gc_alloc_array(TS_N, tp);
	gc_weak **dead = gc_alloc_array(TS_N, tp);
	uint64_t *plain = gc_alloc(TS_N * sizeof(uint64_t), NULL);
	ck_assert(par && dead && plain);
	ck_assert_int_eq(gc_add_roots(&par, 1), GCHEAP_OK);
	ck_assert_int_eq(gc_add_roots(&dead, 1), GCHEAP_OK);
	ck_assert_int_eq(gc_add_roots(&plain, 1), GCHEAP_OK);
	for (int i = 0; i < TS_N; i++) {
		unsigned k = (unsigned)i % TS_T;
		size_t pw = ts_offs[k] / 8, nw = ts_sizes[k] / 8;
		uint64_t *o = gc_alloc(ts_sizes[k], t[k]);
		/* Garbage of another layout in the class slot that a type
		 * whose typed slot is taken shares (all pointers). */
		void *g = gc_alloc_array(ts_sizes[k] / 8, tp);
		uint64_t *live = gc_alloc(24, NULL);
		uint64_t *gone = gc_alloc(24, NULL);
		REQUIRE(o && g && live && gone, "object %d: an allocation "
		        "failed", i);
		live[0] = (uint64_t)i;
		gone[0] = (uint64_t)i;
		gc_weak *w = gc_weak_new(gone);
		REQUIRE(w, "object %d: gc_weak_new failed", i);
		gc_write(&dead[i], w);
		/* The pointer word holds live; the next word (a plain
		 * word in this layout) holds gone. */
		gc_write(&o[pw], live);
		o[(pw + 1) % nw] = (uint64_t)(uintptr_t)gone;
		plain[i] = (uint64_t)(uintptr_t)gone;
		gc_write(&par[i], o);
	}
	gc_enable();
	gc_set_conservative_stacks(0);
	gc_collect();
	gc_collect();
	/* Reuse what was freed, so that a lost child shows. */
	for (int i = 0; i < 4 * TS_N; i++)
		memset(gc_alloc(24, NULL), 0x5a, 24);
	for (int i = 0; i < TS_N; i++) {
		unsigned k = (unsigned)i % TS_T;
		size_t pw = ts_offs[k] / 8, nw = ts_sizes[k] / 8;
		uint64_t *live = (uint64_t *)(uintptr_t)par[i][pw];
		REQUIRE(live[0] == (uint64_t)i, "object %d (type %u): "
		        "its child holds %#llx", i, k,
		        (unsigned long long)live[0]);
		REQUIRE(gc_weak_get(dead[i]) == NULL, "object %d (type "
		        "%u): a plain word kept its value alive", i, k);
		/* Nothing else wrote into the object. */
		for (size_t j = 0; j < nw; j++) {
			uint64_t want = j == (pw + 1) % nw ? plain[i] : 0;
			REQUIRE(j == pw || par[i][j] == want,
			        "object %d (type %u): word %zu holds %#llx",
			        i, k, j, (unsigned long long)par[i][j]);
		}
	}
	gc_set_conservative_stacks(1);
	ck_assert_int_eq(gc_remove_roots(&plain), GCHEAP_OK);
	ck_assert_int_eq(gc_remove_roots(&dead), GCHEAP_OK);
	ck_assert_int_eq(gc_remove_roots(&par), GCHEAP_OK);
}

START_TEST(test_typed_slots_layouts)
{
	gc_type *t[TS_T] = {NULL, NULL, NULL, NULL};
	t[0] = gc_type_new("ya", 32, &ts_offs[0], 1, GCHEAP_TAIL_NOSCAN);
	t[1] = gc_type_new("yb", 32, &ts_offs[1], 1, GCHEAP_TAIL_NOSCAN);
	ck_assert(t[0] && t[1]);
	for (int k = 2; k < TS_T; k++)
		for (int i = 0; i < MCACHE_TYPED_SLOTS && !t[k]; i++) {
			gc_type *x = gc_type_new("yc", ts_sizes[k],
			                         &ts_offs[k], 1,
			                         GCHEAP_TAIL_NOSCAN);
			ck_assert_ptr_nonnull(x);
			if (x->cslot == t[0]->cslot)
				t[k] = x;
		}
	ck_assert(t[2] && t[3]);
	ck_assert_uint_eq(t[2]->spc, t[0]->spc);
	ck_assert_uint_ne(t[3]->spc, t[0]->spc);
	size_t zero = 0;
	gc_type *tp = gc_type_new("yp", 8, &zero, 1, GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(tp);
	/* Without type recording (layouts in the free slots of a span: the
	 * fast path), then with it (every object's layout written). */
	gc_set_record_types(0);
	typed_slots_round(t, tp);
	gc_set_record_types(1);
	typed_slots_round(t, tp);
}
END_TEST

START_TEST(test_stats_exact_after_detach)
{
	size_t bytes = 0, objs = 0;

	for (int i = 0; i < 10; i++, objs++, bytes += 112)
		ck_assert_ptr_nonnull(gc_alloc(100, NULL));
	for (int i = 0; i < 300; i++, objs++, bytes += 48)
		ck_assert_ptr_nonnull(gc_alloc(48, t_pair));
	for (int i = 0; i < 3; i++, objs++, bytes += 40960)
		ck_assert_ptr_nonnull(gc_alloc(40000, NULL));
	for (int i = 0; i < 5; i++, objs++, bytes += 16)
		ck_assert_ptr_nonnull(gc_alloc(3, NULL));
	/* The five 3-byte objects: one block, four packed. */
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	gc_stats s = stats();
	ck_assert_uint_eq(s.tiny_allocs, 4);
	ck_assert_uint_eq(s.alloc_objects, objs);
	ck_assert_uint_eq(s.alloc_bytes, bytes - 4 * 16);
	ck_assert_uint_eq(s.large_objects, 3);
	ck_assert_uint_eq(s.large_bytes, 3 * 40960);
	ck_assert_uint_eq(s.threads, 0);
	check_spans_on_lists();
}
END_TEST

/* Every typed slot of the cache (alloc/mcache.h) is walked like the class
 * slots: objects of 64 types, one in each typed slot, all survive a
 * collection that runs while the spans are cached; at detach each span
 * goes back to its mcentral and the counts are exact (the unused rest of
 * each cached span taken back by its own class). */
START_TEST(test_typed_slots_all)
{
	enum { K = MCACHE_TYPED_SLOTS, PER = 3 };
	gc_type *t[K];
	bool seen[K] = {false};
	size_t off0 = 0;
	int n = 0;
	/* K consecutive types of the region take every slot; more are
	 * made only if another type came between. */
	for (int tries = 0; n < K && tries < 4 * K; tries++) {
		gc_type *x = gc_type_new("z", 32, &off0, 1,
		                         GCHEAP_TAIL_NOSCAN);
		ck_assert_ptr_nonnull(x);
		ck_assert_uint_ge(x->cslot, NUM_SPANCLASSES);
		unsigned k = x->cslot - NUM_SPANCLASSES;
		ck_assert_uint_lt(k, K);
		if (!seen[k]) {
			seen[k] = true;
			t[n++] = x;
		}
	}
	ck_assert_int_eq(n, K);
	gc_set_record_types(0);
	void **keep = gc_alloc_array(K * PER, t_ptr8);
	ck_assert_ptr_nonnull(keep);
	ck_assert_int_eq(gc_add_roots(&keep, 1), GCHEAP_OK);
	/* Counts are exact while no thread caches a span. */
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	gc_stats s0 = stats();
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	for (int i = 0; i < K * PER; i++) {
		uint64_t *o = gc_alloc(32, t[i % K]);
		ck_assert_ptr_nonnull(o);
		o[1] = (uint64_t)i;
		gc_write(&keep[i], o);
	}
	mcache *c = &thread_current->mcache;
	for (int k = 0; k < K; k++)
		ck_assert_msg(c->alloc[t[k]->cslot]->freetype == t[k],
		              "typed slot %u does not hold type %d's span",
		              t[k]->cslot - NUM_SPANCLASSES, k);
	gc_collect();
	/* Reuse what a lost object would have left. */
	for (int i = 0; i < 4 * K * PER; i++)
		memset(gc_alloc(32, NULL), 0x5a, 32);
	for (int i = 0; i < K * PER; i++)
		ck_assert_uint_eq(((uint64_t *)keep[i])[1], (uint64_t)i);
	ck_assert_int_eq(gc_remove_roots(&keep), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	gc_stats s1 = stats();
	/* The array, the K * PER objects and the 32-byte ones: exact once
	 * every cached span is back. */
	ck_assert_uint_eq(s1.alloc_objects - s0.alloc_objects,
	                  K * PER + 4 * K * PER);
	check_spans_on_lists();
}
END_TEST

START_TEST(test_stats_sizes)
{
	unsigned char buf[sizeof(gc_stats) + 32];
	gc_stats *s = (gc_stats *)(void *)buf;

	ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	for (size_t sz = 0; sz < 2 * sizeof(uint32_t); sz++) {
		memset(buf, 0xAB, sizeof(buf));
		ck_assert_int_eq(gc_read_stats(s, sz), GCHEAP_ERR_ARG);
		ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_ARG);
		for (size_t i = 0; i < sizeof(buf); i++)
			ck_assert_uint_eq(buf[i], 0xAB);
	}
	ck_assert_int_eq(gc_read_stats(NULL, sizeof(gc_stats)),
	                 GCHEAP_ERR_ARG);
	/* Just the header. */
	memset(buf, 0xAB, sizeof(buf));
	ck_assert_int_eq(gc_read_stats(s, 8), GCHEAP_OK);
	ck_assert_uint_eq(s->version, GCHEAP_STATS_VERSION);
	ck_assert_uint_eq(s->size, 8);
	for (size_t i = 8; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xAB);
	/* An older, shorter struct: filled up to its end. */
	size_t old = offsetof(gc_stats, heap_inuse);
	memset(buf, 0xAB, sizeof(buf));
	ck_assert_int_eq(gc_read_stats(s, old), GCHEAP_OK);
	ck_assert_uint_eq(s->size, old);
	ck_assert_uint_gt(s->alloc_objects, 0);
	for (size_t i = old; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xAB);
	/* A size inside a field: whole fields only (a multiple of 8: no
	 * field straddles one), nothing written past them. */
	for (size_t sz = 9; sz < 24; sz++) {
		memset(buf, 0xAB, sizeof(buf));
		ck_assert_int_eq(gc_read_stats(s, sz), GCHEAP_OK);
		ck_assert_uint_eq(s->size, sz / 8 * 8);
		for (size_t i = sz / 8 * 8; i < sizeof(buf); i++)
			ck_assert_uint_eq(buf[i], 0xAB);
	}
	/* A newer, longer struct: only what the library knows. */
	memset(buf, 0xAB, sizeof(buf));
	ck_assert_int_eq(gc_read_stats(s, sizeof(buf)), GCHEAP_OK);
	ck_assert_uint_eq(s->size, sizeof(gc_stats));
	for (size_t i = sizeof(gc_stats); i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xAB);
}
END_TEST

/* Free dirty pages given back to the OS are counted as released, no
 * longer against the heap, and read as zero when reused. */
START_TEST(test_release_memory)
{
	heap_err err = HEAP_OK;
	const size_t npages = 256;

	ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	mspan *d = mheap_alloc_span(npages, make_spanclass(0, true), &err);
	ck_assert_ptr_nonnull(d);
	memset((void *)d->base, 0xC3, npages * PAGE_SIZE);
	mheap_free_span(d);
	gc_stats s0 = stats();
	ck_assert_uint_eq(s0.os_released, 0);
	ck_assert_uint_eq(gc_release_memory(), npages * PAGE_SIZE);
	gc_stats s1 = stats();
	ck_assert_uint_eq(s1.os_released, npages * PAGE_SIZE);
	ck_assert_uint_eq(s1.os_committed, s0.os_committed);
	ck_assert_uint_eq(s1.heap_free, s0.heap_free - npages * PAGE_SIZE);
	ck_assert_uint_eq(gc_release_memory(), 0);
	mcentral_verify_all();
	/* Reuse: zero, and no longer released. */
	unsigned char *p = gc_alloc(MiB, NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(all_zero(p, MiB), "reused released page has byte %zu "
	              "non-zero", first_nonzero(p, MiB));
	gc_stats s2 = stats();
	ck_assert_uint_eq(s2.os_released, s1.os_released - MiB);
	mcentral_verify_all();
}
END_TEST

/* ---- Errors and version -------------------------------------------------- */

START_TEST(test_strerror)
{
	for (int i = 0; i < GCHEAP_STATUS_COUNT; i++) {
		const char *a = gc_strerror((gc_status)i);
		ck_assert_msg(a != NULL && a[0] != '\0',
		              "gc_strerror(%d) is empty", i);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(a, gc_strerror((gc_status)j)),
			              "gc_strerror(%d) == gc_strerror(%d) = "
			              "\"%s\"", i, j, a);
	}
	const char *u = gc_strerror(GCHEAP_STATUS_COUNT);
	ck_assert_ptr_nonnull(u);
	ck_assert_ptr_nonnull(gc_strerror((gc_status)-1));
	ck_assert_ptr_nonnull(gc_strerror((gc_status)1000));
	for (int i = 0; i < GCHEAP_STATUS_COUNT; i++)
		ck_assert_str_ne(u, gc_strerror((gc_status)i));
}
END_TEST

START_TEST(test_version)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", GCHEAP_VERSION_MAJOR,
	         GCHEAP_VERSION_MINOR, GCHEAP_VERSION_PATCH);
	ck_assert_str_eq(gc_version(), want);
}
END_TEST

/* ---- The attach signal --------------------------------------------------- */

/* gcheap takes SIGURG for gcstat's requests (runtime/attach.c) at its
 * initialisation and calls the handler it displaced: a plain one, or
 * (_i == 1) an SA_SIGINFO one. A test of the "noinit" case, which starts
 * in a process gcheap has not initialised. */
static volatile sig_atomic_t urg_plain, urg_info;

static void on_urg(int sig)
{
	urg_plain += sig == SIGURG;
}

static void on_urg_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	urg_info += sig == SIGURG && si && si->si_signo == SIGURG;
}

START_TEST(test_attach_chains_handler)
{
	struct sigaction sa, now;

	unsetenv("GCHEAP_ATTACH");
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (_i) {
		sa.sa_flags = SA_SIGINFO;
		sa.sa_sigaction = on_urg_info;
	} else {
		sa.sa_handler = on_urg;
	}
	ck_assert_int_eq(sigaction(SIGURG, &sa, NULL), 0);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_int_eq(sigaction(SIGURG, NULL, &now), 0);
	ck_assert_msg(now.sa_sigaction != on_urg_info &&
	              now.sa_handler != on_urg, "gcheap took no SIGURG");
	/* Go's runtime (a cgo program) refuses a SIGURG handler that would
	 * not run on its signal stack. */
	ck_assert(now.sa_flags & SA_ONSTACK);
	ck_assert_int_eq(raise(SIGURG), 0);
	ck_assert_int_eq(urg_plain, _i ? 0 : 1);
	ck_assert_int_eq(urg_info, _i ? 1 : 0);
	gc_thread_detach();
}
END_TEST

/* ---- Heavy use ----------------------------------------------------------- */

typedef struct obj {
	unsigned char *p;
	size_t size;
} obj;

static unsigned char pattern(size_t i, size_t k)
{
	return (unsigned char)(i * 131 + k * 7 + 1);
}

/* Many objects of random sizes and kinds, each filled with its own
 * pattern; at the end every pattern is intact, no two objects overlap,
 * and the heap and the central lists verify. */
START_TEST(test_heavy)
{
	enum { N = 100000 };
	test_rng rng = rng_make(2);
	obj *o = malloc(N * sizeof(*o));
	range *r = malloc(N * sizeof(*r));
	const gc_type *types[] = {NULL, t_ptr8, t_pair, t_tailptr};

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < N; i++) {
		size_t size;
		unsigned pick = (unsigned)rng_below(&rng, 1000);
		if (pick < 400)
			size = 1 + rng_below(&rng, 15);
		else if (pick < 950)
			size = 16 + rng_below(&rng, 1008);
		else if (pick < 995)
			size = 1024 + rng_below(&rng, 8192 - 1024);
		else if (pick < 999)
			size = 8192 + rng_below(&rng, MAX_SMALL_SIZE - 8191);
		else
			size = MAX_SMALL_SIZE + 1 + rng_below(&rng, MiB);
		const gc_type *t = types[rng_below(&rng, 4)];
		if (t && size < t->size)
			t = t_tailptr;
		unsigned char *p = gc_alloc(size, t);
		REQUIRE(p, "gc_alloc(%zu) #%zu = NULL", size, i);
		REQUIRE(all_zero(p, size), "object #%zu of %zu bytes not "
		        "zero", i, size);
		for (size_t k = 0; k < size; k++)
			p[k] = pattern(i, k);
		o[i] = (obj){p, size};
		r[i] = (range){(uintptr_t)p, (uintptr_t)p + size};
	}
	mcentral_verify_all();
	for (size_t i = 0; i < N; i++) {
		for (size_t k = 0; k < o[i].size; k++)
			REQUIRE(o[i].p[k] == pattern(i, k),
			        "object #%zu (%p, %zu bytes) byte %zu changed",
			        i, (void *)o[i].p, o[i].size, k);
		REQUIRE(gc_size(o[i].p) >= o[i].size, "object #%zu shrank",
		        i);
	}
	check_disjoint(r, N);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	mcentral_verify_all();
	check_spans_on_lists();
	free(o);
	free(r);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	TCase *raw = tcase_create("noinit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_every_size_noscan);
	tcase_add_test(tc, test_every_size_scan);
	tcase_add_test(tc, test_zero_reused);
	tcase_add_test(tc, test_interior_classes);
	tcase_add_test(tc, test_interior_large);
	tcase_add_test(tc, test_unallocated_slots);
	tcase_add_test(tc, test_outside_heap);
	tcase_add_test(tc, test_alignment_all_slots);
	tcase_add_test(tc, test_tiny_packing);
	tcase_add_test(tc, test_tiny_model);
	tcase_add_test(tc, test_tiny_noscan_type);
	tcase_add_test(tc, test_zero_size);
	tcase_add_test(tc, test_types);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_large_arena_crossing_fresh);
	tcase_add_test(tc, test_large_arena_crossing_used);
	tcase_add_test(tc, test_arrays);
	tcase_add_test(tc, test_stats_move);
	tcase_add_test(tc, test_stats_dump_pause);
	tcase_add_test(tc, test_stats_exact_after_detach);
	tcase_add_test(tc, test_stats_layout_writes);
	tcase_add_test(tc, test_typed_slots_layouts);
	tcase_add_test(tc, test_typed_slots_all);
	tcase_add_test(tc, test_stats_sizes);
	tcase_add_test(tc, test_release_memory);
	tcase_add_test(tc, test_strerror);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_heavy);
	suite_add_tcase(s, tc);
	tcase_add_test(raw, test_before_init);
	tcase_add_loop_test(raw, test_attach_chains_handler, 0, 2);
	suite_add_tcase(s, raw);
	return s;
}

int main(void)
{
	return test_main(api_suite());
}
