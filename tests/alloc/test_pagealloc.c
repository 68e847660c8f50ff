/* tests/alloc/test_pagealloc.c: tests the page allocator and the heap's
 * span allocation (alloc/pagealloc.c, alloc/mheap.c): free-run summaries
 * against a bit-by-bit reference, first-fit allocation and coalescing
 * against a model of every arena's bitmap under random alloc/free, the
 * memory limit and OS failures (nothing leaks), spans that cross 64 MiB
 * arena boundaries, needzero/commit/release accounting, and faulting in
 * ahead (mheap_prefault). */
#include "tests/testing.h"

#include "alloc/alloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------ */

#define LARGE_NOSCAN make_spanclass(0, true)

static void heap_setup(void)
{
	ck_assert_int_eq(mheap_init(), HEAP_OK);
}

static mspan *must_alloc(uintptr_t npages)
{
	heap_err err = HEAP_OK;
	mspan *s = mheap_alloc_span(npages, LARGE_NOSCAN, &err);

	REQUIRE(s != NULL, "mheap_alloc_span(%zu) failed with %d",
	        (size_t)npages, (int)err);
	REQUIRE(err == HEAP_OK && s->npages == npages &&
	        s->state == MSPAN_INUSE && s->base % PAGE_SIZE == 0,
	        "span of %zu pages: err %d, %zu pages, state %d, base %p",
	        (size_t)npages, (int)err, (size_t)s->npages, (int)s->state,
	        (void *)s->base);
	return s;
}

static uintptr_t page_addr(const mspan *s, uintptr_t i)
{
	return s->base + i * PAGE_SIZE;
}

/* Every page of s maps to s; the pages just outside do not. */
static void check_spanof(const mspan *s)
{
	for (uintptr_t i = 0; i < s->npages; i++) {
		uintptr_t p = page_addr(s, i);
		REQUIRE(spanof(p) == s && spanof(p + PAGE_SIZE - 1) == s,
		        "page %zu of span [%p, +%zu) maps to %p", (size_t)i,
		      (void *)s->base, (size_t)s->npages, (void *)spanof(p));
	}
	ck_assert_ptr_ne(spanof(s->base - 1), s);
	ck_assert_ptr_ne(spanof(page_addr(s, s->npages)), s);
}

/* The counters kept under the heap lock. */
typedef struct snap {
	size_t reserved, committed, released, inuse_pages, spans_inuse;
	size_t meta_sys, arenas, large_objects, large_bytes;
	size_t span_structs, meta_inuse;
} snap;

static snap take_snap(void)
{
	const heap_stats *st = &mheap_.stats;
	snap s = {st->reserved, st->committed, st->released, st->inuse_pages,
	          st->spans_inuse, st->meta_sys, st->arenas,
	          st->large_objects, st->large_bytes,
	          mheap_.spanalloc.inuse, metaalloc_inuse(&mheap_.meta)};
	return s;
}

static void check_snap_eq(const snap *a, const snap *b)
{
	ck_assert_uint_eq(a->reserved, b->reserved);
	ck_assert_uint_eq(a->committed, b->committed);
	ck_assert_uint_eq(a->released, b->released);
	ck_assert_uint_eq(a->inuse_pages, b->inuse_pages);
	ck_assert_uint_eq(a->spans_inuse, b->spans_inuse);
	ck_assert_uint_eq(a->meta_sys, b->meta_sys);
	ck_assert_uint_eq(a->arenas, b->arenas);
	ck_assert_uint_eq(a->large_objects, b->large_objects);
	ck_assert_uint_eq(a->large_bytes, b->large_bytes);
	ck_assert_uint_eq(a->span_structs, b->span_structs);
	ck_assert_uint_eq(a->meta_inuse, b->meta_inuse);
}

/* The inaccessible (reserved, PROT_NONE) ranges the process has mapped,
 * from /proc/self/maps: where a leaked arena reservation would show. */
enum { MAX_RESERVED = 4096 };
typedef struct {
	size_t n;
	unsigned long lo[MAX_RESERVED], hi[MAX_RESERVED];
} reservations;

static void read_reserved(reservations *r)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];

	ck_assert_ptr_nonnull(f);
	r->n = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
		    strcmp(perms, "---p") == 0 && r->n < MAX_RESERVED) {
			r->lo[r->n] = lo;
			r->hi[r->n++] = hi;
		}
	}
	fclose(f);
}

/* Every reservation of an arena's size or more in now lies inside one of
 * was: none was added. Others may commit parts of their own reservations
 * meanwhile (ASan's allocator does), which only splits or shrinks them. */
static void check_no_new_reservation(const reservations *was)
{
	reservations now;
	read_reserved(&now);
	for (size_t i = 0; i < now.n; i++) {
		if (now.hi[i] - now.lo[i] < ARENA_BYTES)
			continue;
		bool inside = false;
		for (size_t j = 0; j < was->n && !inside; j++)
			inside = now.lo[i] >= was->lo[j] &&
			         now.hi[i] <= was->hi[j];
		ck_assert_msg(inside, "a reservation [%#lx, %#lx) was left",
		              now.lo[i], now.hi[i]);
	}
}

static void set_limit(size_t bytes)
{
	mutex_lock(&mheap_.lock);
	mheap_.limit = bytes;
	mutex_unlock(&mheap_.lock);
}

/* ---- (a) summaries against a bit-by-bit reference ----------------------- */

static bool bit(const uint64_t *bm, size_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void set_bit(uint64_t *bm, size_t i, bool v)
{
	if (v)
		bm[i / 64] |= (uint64_t)1 << (i % 64);
	else
		bm[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static pagesum naive_summary(const uint64_t *bm, size_t nbits)
{
	pagesum s = {0, 0, 0};
	uint32_t run = 0;
	size_t i = 0;

	while (i < nbits && !bit(bm, i))
		i++;
	s.start = (uint32_t)i;
	for (i = 0; i < nbits; i++) {
		run = bit(bm, i) ? 0 : run + 1;
		if (run > s.max)
			s.max = run;
	}
	s.end = run;
	return s;
}

#define MAX_BM_WORDS (ARENA_BITMAP_WORDS + 4)

/* A random bitmap of nbits bits shaped by `kind`. */
static void random_bitmap(test_rng *r, uint64_t *bm, size_t nbits, int kind)
{
	size_t nw = (nbits + 63) / 64;
	size_t a = rng_below(r, nbits), b = rng_below(r, nbits + 1);

	if (a > b) {
		size_t t = a;
		a = b;
		b = t;
	}
	memset(bm, 0, nw * sizeof(uint64_t));
	switch (kind) {
	case 0: /* all free */
		break;
	case 1: /* all used */
		memset(bm, 0xff, nw * sizeof(uint64_t));
		break;
	case 2: /* one free run in a used map: at the start, end, middle */
		memset(bm, 0xff, nw * sizeof(uint64_t));
		if (rng_below(r, 3) == 0)
			a = 0;
		else if (rng_below(r, 2) == 0)
			b = nbits;
		for (size_t i = a; i < b; i++)
			set_bit(bm, i, false);
		break;
	case 3: /* one used run in a free map */
		if (rng_below(r, 3) == 0)
			a = 0;
		else if (rng_below(r, 2) == 0)
			b = nbits;
		for (size_t i = a; i < b; i++)
			set_bit(bm, i, true);
		break;
	case 4: { /* independent bits of a random density */
		static const unsigned per1024[] = {1, 16, 100, 512, 900,
		                                   1008, 1023};
		unsigned d = per1024[rng_below(r, ARRAY_LEN(per1024))];
		for (size_t i = 0; i < nbits; i++)
			set_bit(bm, i, rng_below(r, 1024) < d);
		break;
	}
	default: { /* alternating runs of random lengths */
		bool used = rng_below(r, 2);
		size_t maxlen = 1 + rng_below(r, 700);
		for (size_t i = 0; i < nbits;) {
			size_t len = 1 + rng_below(r, maxlen);
			for (size_t j = 0; j < len && i < nbits; j++, i++)
				set_bit(bm, i, used);
			used = !used;
		}
		break;
	}
	}
	/* Bits past nbits are in use (no free run continues there). */
	for (size_t i = nbits; i < nw * 64; i++)
		set_bit(bm, i, true);
}

START_TEST(test_summarize_random)
{
	test_rng r = rng_make(1);
	uint64_t bm[MAX_BM_WORDS];
	static const unsigned sizes[] = {1, 2, 3, 8, 16, 64, 128, 130};

	for (int iter = 0; iter < 6000; iter++) {
		unsigned nw = iter % 3 ? sizes[rng_below(&r, ARRAY_LEN(sizes))]
		                       : 1 + (unsigned)rng_below(&r,
		                                                MAX_BM_WORDS);
		int kind = iter % 6;
		random_bitmap(&r, bm, (size_t)nw * 64, kind);
		pagesum want = naive_summary(bm, (size_t)nw * 64);
		pagesum got = pagealloc_summarize(bm, nw);
		if (memcmp(&want, &got, sizeof(want)))
			ck_abort_msg("iteration %d (%u words, kind %d, first "
			             "word %#llx): summary (%u,%u,%u), want "
			             "(%u,%u,%u)", iter, nw, kind,
			             (unsigned long long)bm[0], got.start,
			             got.max, got.end, want.start, want.max,
			             want.end);
	}
}
END_TEST

/* A 256-bit map whose bits in [a, b) are `inside`, the rest not. */
static void check_one_run(unsigned a, unsigned b, bool inside)
{
	uint64_t bm[4];

	for (unsigned i = 0; i < 256; i++)
		set_bit(bm, i, (i >= a && i < b) ? inside : !inside);
	pagesum want = naive_summary(bm, 256);
	pagesum got = pagealloc_summarize(bm, 4);
	REQUIRE(!memcmp(&want, &got, sizeof(want)),
	        "%s run [%u,%u): (%u,%u,%u), want (%u,%u,%u)",
	      inside ? "used" : "free", a, b, got.start, got.max, got.end,
	      want.start, want.max, want.end);
}

/* Hand-picked maps: single runs at every edge of a word. */
START_TEST(test_summarize_edges)
{
	for (unsigned a = 0; a <= 256; a++) {
		for (unsigned b = a; b <= 256; b += 1 + (b > a + 70) * 7) {
			check_one_run(a, b, false);
			check_one_run(a, b, true);
		}
	}
}
END_TEST

/* pagealloc_update's per-chunk summaries and their merge into the arena
 * summary, on an arena struct of our own. */
START_TEST(test_update_merge)
{
	test_rng r = rng_make(2);
	heap_arena *a = calloc(1, sizeof(*a));

	ck_assert_ptr_nonnull(a);
	for (int iter = 0; iter < 1500; iter++) {
		random_bitmap(&r, a->alloc, PAGES_PER_ARENA, iter % 6);
		/* Sometimes free or fill whole chunks, so that runs cross
		 * chunk boundaries. */
		for (unsigned c = 0; c < CHUNKS_PER_ARENA; c++) {
			uint64_t k = rng_below(&r, 8);
			if (k < 2)
				memset(&a->alloc[c * CHUNK_PAGES / 64],
				       k ? 0xff : 0, CHUNK_PAGES / 8);
		}
		pagealloc_update(a, 0, CHUNKS_PER_ARENA - 1);
		for (unsigned c = 0; c < CHUNKS_PER_ARENA; c++) {
			pagesum want = naive_summary(
				&a->alloc[c * CHUNK_PAGES / 64], CHUNK_PAGES);
			if (memcmp(&want, &a->chunk[c], sizeof(want)))
				ck_abort_msg("iteration %d chunk %u: (%u,%u,%u)"
				             ", want (%u,%u,%u)", iter, c,
				             a->chunk[c].start, a->chunk[c].max,
				             a->chunk[c].end, want.start,
				             want.max, want.end);
		}
		pagesum want = naive_summary(a->alloc, PAGES_PER_ARENA);
		if (memcmp(&want, &a->sum, sizeof(want)))
			ck_abort_msg("iteration %d: arena (%u,%u,%u), want "
			             "(%u,%u,%u)", iter, a->sum.start,
			             a->sum.max, a->sum.end, want.start,
			             want.max, want.end);
	}
	free(a);
}
END_TEST

/* ---- (b) random alloc/free against a model ------------------------------ */

#define MAX_ARENAS 48

typedef struct marena {
	uintptr_t base;
	uint8_t used[PAGES_PER_ARENA];
} marena;

static marena *model;   /* by address */
static unsigned nmodel;

/* Add the heap's new arenas to the model (all free) and check that the
 * heap's arena list is address-ordered and has lost none. */
static void model_sync(void)
{
	unsigned i = 0;

	for (heap_arena *a = mheap_.arenas; a; a = a->next, i++) {
		REQUIRE(i < MAX_ARENAS, "too many arenas");
		if (i < nmodel && model[i].base == a->base)
			continue;
		REQUIRE(i == nmodel || a->base < model[i].base,
		        "arena %p vanished or out of order",
		        (void *)model[i].base);
		memmove(&model[i + 1], &model[i],
		        (nmodel - i) * sizeof(marena));
		model[i].base = a->base;
		memset(model[i].used, 0, PAGES_PER_ARENA);
		nmodel++;
	}
	REQUIRE(i == nmodel, "%u arenas, the model has %u", i, nmodel);
}

static marena *model_arena(uintptr_t p)
{
	for (unsigned i = 0; i < nmodel; i++)
		if (p >= model[i].base && p - model[i].base < ARENA_BYTES)
			return &model[i];
	ck_abort_msg("address %p is in no model arena", (void *)p);
	return NULL;
}

static uintptr_t model_find_first(uintptr_t n);

/* The lowest run of n free model pages inside one arena and below its
 * (the heap's) commit line; 0 if none. */
static uintptr_t model_find_committed(uintptr_t n)
{
	for (unsigned i = 0; i < nmodel; i++) {
		uintptr_t line = arena_of(model[i].base)->committed, run = 0;
		for (uintptr_t pg = 0; pg < line; pg++) {
			run = model[i].used[pg] ? 0 : run + 1;
			if (run == n)
				return model[i].base + (pg + 1 - n) * PAGE_SIZE;
		}
	}
	return 0;
}

/* Whether [p, p + n pages) reaches past the heap's commit lines. */
static bool model_beyond_commit(uintptr_t p, uintptr_t n)
{
	for (uintptr_t i = 0; i < n; i++) {
		uintptr_t q = p + i * PAGE_SIZE;
		heap_arena *a = arena_of(q);
		if ((q - a->base) / PAGE_SIZE >= a->committed)
			return true;
	}
	return false;
}

/* First fit of n pages over the model arenas, in address order, with runs
 * crossing between contiguous arenas, unless it reaches past a commit
 * line and a committed run exists (model_find_committed); 0 if none. */
static uintptr_t model_find(uintptr_t n)
{
	uintptr_t f = model_find_first(n);

	if (f && model_beyond_commit(f, n)) {
		uintptr_t c = model_find_committed(n);
		if (c)
			return c;
	}
	return f;
}

static uintptr_t model_find_first(uintptr_t n)
{
	uintptr_t run = 0, start = 0, prev_end = 0;

	for (unsigned i = 0; i < nmodel; i++) {
		if (model[i].base != prev_end)
			run = 0;
		for (uintptr_t pg = 0; pg < PAGES_PER_ARENA; pg++) {
			if (model[i].used[pg]) {
				run = 0;
				continue;
			}
			if (!run)
				start = model[i].base + pg * PAGE_SIZE;
			if (++run == n)
				return start;
		}
		prev_end = model[i].base + ARENA_BYTES;
	}
	return 0;
}

static void model_mark(const mspan *s, bool used)
{
	for (uintptr_t i = 0; i < s->npages; i++) {
		uintptr_t p = page_addr(s, i);
		marena *m = model_arena(p);
		uintptr_t pg = (p - m->base) / PAGE_SIZE;
		REQUIRE(m->used[pg] != used,
		        "page %p handed out twice or freed twice", (void *)p);
		m->used[pg] = used;
	}
}

/* The heap's bitmaps and free counts equal the model. */
static void model_compare(void)
{
	unsigned i = 0;

	for (heap_arena *a = mheap_.arenas; a; a = a->next, i++) {
		uintptr_t nfree = 0;
		ck_assert_uint_eq(a->base, model[i].base);
		for (uintptr_t pg = 0; pg < PAGES_PER_ARENA; pg++) {
			REQUIRE(bitmap_get(a->alloc, pg) == model[i].used[pg],
			        "page %zu of arena %p: heap %d model %d",
			        (size_t)pg, (void *)a->base,
			        bitmap_get(a->alloc, pg), model[i].used[pg]);
			nfree += !model[i].used[pg];
		}
		ck_assert_uint_eq(a->free_pages, nfree);
	}
}

#define MAX_LIVE 256

START_TEST(test_random_model)
{
	test_rng r = rng_make(3);
	mspan *live[MAX_LIVE];
	unsigned nlive = 0, nbig = 0;
	uintptr_t live_pages = 0, inuse0;

	heap_setup();
	model = calloc(MAX_ARENAS, sizeof(marena));
	ck_assert_ptr_nonnull(model);
	nmodel = 0;
	inuse0 = mheap_.stats.inuse_pages;
	for (int step = 0; step < TSAN_CUT(12000, 3); step++) {
		bool do_alloc = nlive == 0 ||
		                (nlive < MAX_LIVE && live_pages < 60000 &&
		                 rng_below(&r, 100) < 55);
		if (do_alloc) {
			uintptr_t n = 1 + rng_below(&r, 600);
			if (nbig < 2 && rng_below(&r, 60) == 0)
				n = PAGES_PER_ARENA + 1 +
				    rng_below(&r, PAGES_PER_ARENA);
			model_sync();
			uintptr_t before = model_find(n);
			mspan *s = must_alloc(n);
			model_sync();
			uintptr_t want = model_find(n);
			REQUIRE(!before || before == want,
			        "a fit at %p vanished", (void *)before);
			REQUIRE(s->base == want,
			        "step %d: %zu pages at %p, first fit is %p",
			        step, (size_t)n, (void *)s->base,
			        (void *)want);
			model_mark(s, true);
			REQUIRE(spanof(s->base) == s &&
			        spanof(page_addr(s, n - 1)) == s,
			        "step %d: the span at %p is not found at its "
			        "ends", step, (void *)s->base);
			live[nlive++] = s;
			live_pages += n;
			nbig += n > PAGES_PER_ARENA;
		} else {
			unsigned k = (unsigned)rng_below(&r, nlive);
			mspan *s = live[k];
			uintptr_t base = s->base, n = s->npages;
			live[k] = live[--nlive];
			live_pages -= n;
			nbig -= n > PAGES_PER_ARENA;
			model_mark(s, false);
			mheap_free_span(s);
			ck_assert_ptr_null(spanof(base));
			ck_assert_ptr_null(spanof(base + (n - 1) * PAGE_SIZE));
		}
		REQUIRE(mheap_.stats.inuse_pages - inuse0 == live_pages,
		        "step %d: %zu pages in use, the model has %zu", step,
		        (size_t)(mheap_.stats.inuse_pages - inuse0),
		        (size_t)live_pages);
		if (step % 97 == 0) {
			mheap_verify();
			model_compare();
		}
	}
	while (nlive) {
		mspan *s = live[--nlive];
		model_mark(s, false);
		mheap_free_span(s);
	}
	mheap_verify();
	model_compare();
	ck_assert_uint_eq(mheap_.stats.inuse_pages, inuse0);
	/* Everything is free again: a span as large as the biggest run of
	 * contiguous arenas lands at the lowest address. */
	model_sync();
	ck_assert_uint_eq(model_find(1), mheap_.arenas->base);
	mspan *s = must_alloc(1);
	ck_assert_uint_eq(s->base, mheap_.arenas->base);
	mheap_free_span(s);
	free(model);
}
END_TEST

/* Freed neighbours coalesce: three adjacent spans, freed in a random
 * order, hold one span of their total size in the same place. */
START_TEST(test_coalesce)
{
	test_rng r = rng_make(4);

	heap_setup();
	for (int iter = 0; iter < 50; iter++) {
		uintptr_t n[3], total = 0;
		mspan *s[3];
		mspan *pre = must_alloc(1 + rng_below(&r, 300));
		for (int i = 0; i < 3; i++) {
			n[i] = 1 + rng_below(&r, 600);
			total += n[i];
			s[i] = must_alloc(n[i]);
		}
		mspan *post = must_alloc(1 + rng_below(&r, 300));
		ck_assert_uint_eq(s[0]->base, pre->base + pre->npages *
		                                          PAGE_SIZE);
		ck_assert_uint_eq(s[1]->base, page_addr(s[0], n[0]));
		ck_assert_uint_eq(s[2]->base, page_addr(s[1], n[1]));
		uintptr_t base = s[0]->base;
		int first = (int)rng_below(&r, 3);
		for (int i = 0; i < 3; i++)
			mheap_free_span(s[(first + i) % 3]);
		mheap_verify();
		/* One page more does not fit in the hole... */
		mspan *big = must_alloc(total + 1);
		ck_assert_uint_ne(big->base, base);
		/* ...the total does, exactly there. */
		mspan *all = must_alloc(total);
		ck_assert_uint_eq(all->base, base);
		check_spanof(all);
		mheap_free_span(big);
		mheap_free_span(all);
		mheap_free_span(pre);
		mheap_free_span(post);
		mheap_verify();
		ck_assert_uint_eq(mheap_.stats.inuse_pages, 0);
	}
}
END_TEST

/* ---- (c) exhaustion ----------------------------------------------------- */

START_TEST(test_limit)
{
	const uintptr_t lim_pages = 2 * COMMIT_PAGES;
	heap_err err = HEAP_OK;
	mspan *s[8];

	heap_setup();
	set_limit(lim_pages * PAGE_SIZE);
	/* Spans of 100 pages: five fit, the sixth would pass the limit. */
	for (int i = 0; i < 5; i++)
		s[i] = must_alloc(100);
	ck_assert_uint_eq(mheap_.stats.committed, lim_pages * PAGE_SIZE);
	snap before = take_snap();
	ck_assert_ptr_null(mheap_alloc_span(100, LARGE_NOSCAN, &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
	snap after = take_snap();
	check_snap_eq(&before, &after);
	mheap_verify();
	/* What is committed can still be used, to the last page. */
	s[5] = must_alloc(lim_pages - 500);
	err = HEAP_OK;
	ck_assert_ptr_null(mheap_alloc_span(1, LARGE_NOSCAN, &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
	mheap_verify();
	ck_assert_uint_eq(mheap_.stats.inuse_pages, lim_pages);

	/* Released pages do not count against the limit until reused. */
	uintptr_t base = s[0]->base;
	for (int i = 0; i < 6; i++)
		mheap_free_span(s[i]);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), lim_pages * PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.released, lim_pages * PAGE_SIZE);
	s[0] = must_alloc(lim_pages);
	ck_assert_uint_eq(s[0]->base, base);
	ck_assert_uint_eq(mheap_.stats.released, 0);
	err = HEAP_OK;
	ck_assert_ptr_null(mheap_alloc_span(1, LARGE_NOSCAN, &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
	/* A span that needs a second arena fails too, and its reservation
	 * leaves the heap valid. */
	err = HEAP_OK;
	ck_assert_ptr_null(mheap_alloc_span(PAGES_PER_ARENA, LARGE_NOSCAN,
	                                    &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
	mheap_verify();
	ck_assert_uint_eq(mheap_.stats.committed, lim_pages * PAGE_SIZE);
	mheap_free_span(s[0]);
	/* Lifting the limit lets the heap grow again. */
	set_limit(0);
	s[0] = must_alloc(lim_pages + 1);
	mheap_free_span(s[0]);
	mheap_verify();
}
END_TEST

/* Reusing released pages counts against the limit like new ones. */
START_TEST(test_limit_released)
{
	heap_err err = HEAP_OK;

	heap_setup();
	set_limit(2 * COMMIT_PAGES * PAGE_SIZE);
	mspan *b = must_alloc(COMMIT_PAGES);
	mspan *a = must_alloc(COMMIT_PAGES);
	uintptr_t abase = a->base;
	ck_assert_uint_eq(abase, page_addr(b, COMMIT_PAGES));
	mheap_free_span(a);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX),
	                  COMMIT_PAGES * PAGE_SIZE);
	/* A's released pages plus 44 new ones would pass the limit... */
	snap before = take_snap();
	ck_assert_ptr_null(mheap_alloc_span(COMMIT_PAGES + 44, LARGE_NOSCAN,
	                                    &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
	snap after = take_snap();
	check_snap_eq(&before, &after);
	/* ...A's pages alone do not. */
	a = must_alloc(COMMIT_PAGES);
	ck_assert_uint_eq(a->base, abase);
	ck_assert_uint_eq(a->needzero, 0);
	ck_assert_uint_eq(mheap_.stats.released, 0);
	mheap_free_span(a);
	mheap_free_span(b);
	mheap_verify();
}
END_TEST

/* The k-th OS request of the first allocation fails: 1 arena reservation,
 * 2 the arena's card table, 3 the arena's metadata, 4 the commit, 5 the
 * span struct chunk, 6 the span bitmap chunk. The allocation fails with
 * HEAP_NOMEM, nothing leaks, and the next allocation works. */
START_TEST(test_os_failure_fresh)
{
	int k = _i;
	heap_err err = HEAP_OK;

	heap_setup();
	snap before = take_snap();
	static reservations maps;
	read_reserved(&maps);
	osmem_fail_in((unsigned)k);
	mspan *s = mheap_alloc_span(10, LARGE_NOSCAN, &err);
	osmem_fail_in(0);
	ck_assert_msg(s == NULL, "request %d did not fail the allocation", k);
	ck_assert_int_eq(err, HEAP_NOMEM);
	mheap_verify();
	snap after = take_snap();
	ck_assert_uint_eq(after.inuse_pages, 0);
	ck_assert_uint_eq(after.spans_inuse, 0);
	ck_assert_uint_eq(after.span_structs, 0);
	ck_assert_uint_eq(after.meta_inuse, 0);
	ck_assert_uint_eq(after.large_objects, 0);
	ck_assert_uint_eq(after.large_bytes, 0);
	if (k <= 3) {
		/* No arena was made; the reservation was given back. */
		check_snap_eq(&before, &after);
		ck_assert_ptr_null(mheap_.arenas);
		check_no_new_reservation(&maps);
	} else {
		ck_assert_uint_eq(after.arenas, 1);
		ck_assert_uint_eq(mheap_.arenas->free_pages, PAGES_PER_ARENA);
		ck_assert_uint_eq(after.committed,
		                  k == 4 ? 0 : COMMIT_PAGES * PAGE_SIZE);
	}
	s = must_alloc(10);
	check_spanof(s);
	ck_assert_uint_eq(s->needzero, 0);
	mheap_free_span(s);
	mheap_verify();
}
END_TEST

/* A commit that fails in a heap that has arenas changes nothing. */
START_TEST(test_os_failure_commit)
{
	heap_err err = HEAP_OK;

	heap_setup();
	mspan *a = must_alloc(1);
	ck_assert_uint_eq(mheap_.stats.committed, COMMIT_PAGES * PAGE_SIZE);
	snap before = take_snap();
	osmem_fail_in(1);
	mspan *s = mheap_alloc_span(COMMIT_PAGES, LARGE_NOSCAN, &err);
	osmem_fail_in(0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(err, HEAP_NOMEM);
	snap after = take_snap();
	check_snap_eq(&before, &after);
	ck_assert_uint_eq(mheap_.arenas->committed, COMMIT_PAGES);
	mheap_verify();
	s = must_alloc(COMMIT_PAGES);
	ck_assert_uint_eq(s->base, page_addr(a, 1));
	ck_assert_uint_eq(mheap_.stats.committed,
	                  2 * COMMIT_PAGES * PAGE_SIZE);
	mheap_free_span(s);
	mheap_free_span(a);
	mheap_verify();
}
END_TEST

/* ---- (d) arena boundaries ----------------------------------------------- */

START_TEST(test_span_over_arena)
{
	heap_setup();
	mspan *s = must_alloc(PAGES_PER_ARENA + 1);
	uintptr_t last = page_addr(s, s->npages - 1);

	ck_assert_uint_eq(mheap_.stats.arenas, 2);
	ck_assert_ptr_nonnull(arena_of(s->base));
	ck_assert_ptr_nonnull(arena_of(last));
	ck_assert_ptr_ne(arena_of(s->base), arena_of(last));
	ck_assert_uint_eq(arena_of(last)->base,
	                  arena_of(s->base)->base + ARENA_BYTES);
	check_spanof(s);
	/* Both arenas committed what the span covers. */
	*(volatile char *)s->base = 1;
	*(volatile char *)(last + PAGE_SIZE - 1) = 1;
	mheap_verify();
	ck_assert_uint_eq(mheap_.stats.inuse_pages, PAGES_PER_ARENA + 1);
	uintptr_t base = s->base;
	mheap_free_span(s);
	for (uintptr_t i = 0; i <= PAGES_PER_ARENA; i++)
		REQUIRE(spanof(base + i * PAGE_SIZE) == NULL, "page %zu mapped",
		        (size_t)i);
	mheap_verify();
	/* Freed, the two arenas make one run again. */
	s = must_alloc(2 * PAGES_PER_ARENA);
	ck_assert_uint_eq(s->base, base);
	ck_assert_uint_eq(mheap_.stats.arenas, 2);
	mheap_free_span(s);
	mheap_verify();
}
END_TEST

START_TEST(test_span_straddles)
{
	test_rng r = rng_make(5);

	heap_setup();
	/* Two contiguous arenas (one reservation), then free. */
	mspan *s = must_alloc(2 * PAGES_PER_ARENA);
	uintptr_t b = s->base;
	ck_assert_uint_eq(b % ARENA_BYTES, 0);
	mheap_free_span(s);
	for (int iter = 0; iter < 20; iter++) {
		uintptr_t k = 1 + rng_below(&r, 300);
		uintptr_t m = 1 + rng_below(&r, 600);
		mspan *fill = must_alloc(PAGES_PER_ARENA - k);
		ck_assert_uint_eq(fill->base, b);
		s = must_alloc(k + m);
		ck_assert_uint_eq(s->base, b + (PAGES_PER_ARENA - k) *
		                                   PAGE_SIZE);
		ck_assert_ptr_ne(arena_of(s->base),
		                 arena_of(page_addr(s, k + m - 1)));
		check_spanof(s);
		memset((void *)s->base, 0x5a, (k + m) * PAGE_SIZE);
		mheap_verify();
		ck_assert_uint_eq(mheap_.stats.arenas, 2);
		mheap_free_span(fill);
		mheap_free_span(s);
	}
	mheap_verify();
}
END_TEST

/* ---- (e) needzero, commit and release ----------------------------------- */

static bool all_zero(uintptr_t p, size_t n)
{
	const unsigned char *c = (const unsigned char *)p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

/* An arena reserved below the others, the address above them being
 * taken: first fit by address would commit fresh pages there while
 * committed ones sit free above (binary-trees' peak RSS went from 214 to
 * 260 MB that way); mheap_alloc_span takes the committed ones first. */
START_TEST(test_committed_first)
{
	heap_setup();
	mspan *x = must_alloc(PAGES_PER_ARENA - 8);
	heap_arena *u = arena_of(x->base);
	ck_assert_uint_eq(u->committed, PAGES_PER_ARENA);
	/* Take the address above u (if something holds it already, so
	 * much the better): the next arena goes below it. */
	void *above = (void *)(u->base + ARENA_BYTES);
	void *blk = mmap(above, ARENA_BYTES, PROT_NONE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
	                         MAP_FIXED_NOREPLACE,
	                 -1, 0);
	mspan *y = must_alloc(16);
	heap_arena *l = arena_of(y->base);
	ck_assert_msg(l->base < u->base, "the new arena %p is not below %p",
	              (void *)l->base, (void *)u->base);
	ck_assert_uint_eq(y->base, l->base);
	ck_assert_uint_lt(l->committed, PAGES_PER_ARENA / 2);
	mheap_free_span(x);
	/* More than l has committed and free: first fit would put it at
	 * page 16 of l and move l's commit line. */
	size_t committed = mheap_.stats.committed;
	mspan *z = must_alloc(l->committed - 16 + 1);
	ck_assert_ptr_eq(arena_of(z->base), u);
	ck_assert_uint_eq(z->base, u->base);
	ck_assert_uint_eq(mheap_.stats.committed, committed);
	check_spanof(z);
	mheap_verify();
	/* With no committed run big enough, l's line moves after all. */
	mspan *big = must_alloc(PAGES_PER_ARENA - z->npages + 1);
	ck_assert_ptr_eq(arena_of(big->base), l);
	ck_assert_uint_gt(mheap_.stats.committed, committed);
	mheap_free_span(big);
	mheap_free_span(z);
	mheap_free_span(y);
	mheap_verify();
	if (blk != MAP_FAILED)
		munmap(blk, ARENA_BYTES);
}
END_TEST

/* An object lookup races a span's free: one thread takes a span from the
 * heap and frees it, over and over (as a sweep that emptied a span gives
 * it back), while another looks an address in it up (as gc_base, gc_size
 * or gc_free do on a dead object's address). The spans take turns among
 * three shapes on the same pages and struct (16-byte objects, 48-byte
 * objects, one large object), each with all its objects allocated or
 * none, so that a lookup that mixed two spans' fields, or read one
 * span's bitmap with another's shape, answers wrongly. The lookup must
 * answer "no object" or the object, never read the released bitmaps or
 * a reused struct: it crashed in mspan_is_free within ~13,000 frees when
 * it read them with no guard against frees. */
static atomic_word race_addr, race_stop, race_lookups, race_found;

static void *lookup_racer(void *arg)
{
	(void)arg;
	while (!aload_acq(&race_addr))
		sched_yield();
	while (!aload_acq(&race_stop)) {
		uintptr_t p = aload(&race_addr), r = mheap_find_object(p, NULL);
		/* 40 bytes into the span: object 2 of 16 bytes, object 0 of
		 * 48, the large object, or none. */
		REQUIRE(r == 0 || r == p - 8 || r == p - 40,
		        "lookup of %p found %p", (void *)p, (void *)r);
		afetch_add(&race_lookups, 1);
		if (r)
			afetch_add(&race_found, 1);
	}
	return NULL;
}

START_TEST(test_lookup_races_free)
{
	const spanclass spcs[3] = {make_spanclass(2, true),
	                           make_spanclass(size_to_class(48), true),
	                           make_spanclass(0, true)};
	pthread_t t;
	size_t frees = 0;

	heap_setup();
	ck_assert_uint_eq(class_to_size[2], 16);
	ck_assert_uint_eq(class_to_size[size_to_class(48)], 48);
	ck_assert_int_eq(pthread_create(&t, NULL, lookup_racer, NULL), 0);
	double end = test_now_s() + (UNDER_TSAN ? 2.0 : 1.0);
	while (frees < 500000 && test_now_s() < end) {
		heap_err err;
		unsigned k = frees % 3;
		mspan *s = mheap_alloc_span(k == 2 ? 2 : 1, spcs[k], &err);
		REQUIRE(s != NULL, "mheap_alloc_span failed (%d)", (int)err);
		if (frees / 3 % 2)
			astore(&s->freeindex, s->nelems); /* all allocated */
		astore_rel(&race_addr, s->base + 40);
		mheap_free_span(s);
		frees++;
	}
	astore_rel(&race_stop, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	printf("# %zu frees, %zu lookups, %zu found an object\n", frees,
	       (size_t)aload(&race_lookups), (size_t)aload(&race_found));
	ck_assert_uint_gt(aload(&race_lookups), 0);
}
END_TEST

START_TEST(test_needzero)
{
	/* With and without huge pages: releasing part of one splits it. */
	options_.hugepages = _i;
	heap_setup();
	mspan *s1 = must_alloc(10);
	uintptr_t base = s1->base;
	heap_arena *a = arena_of(base);

	ck_assert_uint_eq(s1->needzero, 0);
	ck_assert_uint_eq(a->committed, COMMIT_PAGES);
	ck_assert_uint_eq(mheap_.stats.committed, COMMIT_PAGES * PAGE_SIZE);
	ck_assert(all_zero(base, 10 * PAGE_SIZE));
	memset((void *)base, 0xab, 10 * PAGE_SIZE);
	mheap_free_span(s1);

	/* The same pages again: dirty. Fresh pages after them: clean. */
	mspan *s2 = must_alloc(10);
	ck_assert_uint_eq(s2->base, base);
	ck_assert_uint_eq(s2->needzero, 1);
	mspan *s3 = must_alloc(5);
	ck_assert_uint_eq(s3->base, base + 10 * PAGE_SIZE);
	ck_assert_uint_eq(s3->needzero, 0);
	/* A span on a dirty page needs zeroing. */
	mheap_free_span(s2);
	mspan *s4 = must_alloc(1);
	ck_assert_uint_eq(s4->needzero, 1);
	mheap_free_span(s4);
	mheap_free_span(s3);
	mheap_verify();

	/* Release: exactly the 15 dirty free pages go. */
	size_t rel = mheap_release_free(SIZE_MAX);
	ck_assert_uint_eq(rel, 15 * PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.released, 15 * PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.committed, COMMIT_PAGES * PAGE_SIZE);
	ck_assert(all_zero(base, 15 * PAGE_SIZE));
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 0);
	mheap_verify();

	/* Released pages come back clean and stop counting as released. */
	mspan *s5 = must_alloc(5);
	ck_assert_uint_eq(s5->base, base);
	ck_assert_uint_eq(s5->needzero, 0);
	ck_assert_uint_eq(mheap_.stats.released, 10 * PAGE_SIZE);
	memset((void *)s5->base, 0xcd, 5 * PAGE_SIZE);
	mheap_free_span(s5);
	/* 5 dirty pages, 10 released, then clean committed pages. */
	mspan *s6 = must_alloc(20);
	ck_assert_uint_eq(s6->base, base);
	ck_assert_uint_eq(s6->needzero, 1);
	ck_assert_uint_eq(mheap_.stats.released, 0);
	ck_assert(all_zero(base + 5 * PAGE_SIZE, 15 * PAGE_SIZE));
	mheap_verify();

	/* Growing past the commit line commits in COMMIT_PAGES steps. */
	mspan *s7 = must_alloc(COMMIT_PAGES);
	ck_assert_uint_eq(s7->base, base + 20 * PAGE_SIZE);
	ck_assert_uint_eq(s7->needzero, 0);
	ck_assert_uint_eq(a->committed, 2 * COMMIT_PAGES);
	ck_assert_uint_eq(mheap_.stats.committed,
	                  2 * COMMIT_PAGES * PAGE_SIZE);
	mheap_free_span(s6);
	mheap_free_span(s7);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), (20 + COMMIT_PAGES) *
	                                            PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.committed,
	                  2 * COMMIT_PAGES * PAGE_SIZE);
	mheap_verify();
}
END_TEST

/* Bytes of [p, p + n) resident in memory (mincore, 4 KiB pages). */
static size_t resident(uintptr_t p, size_t n)
{
	size_t npg = n / 4096, in = 0;
	unsigned char *v = malloc(npg);

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(mincore((void *)p, n, v), 0);
	for (size_t i = 0; i < npg; i++)
		in += v[i] & 1;
	free(v);
	return in * 4096;
}

static bool all_bytes(uintptr_t p, size_t n, unsigned char b)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != b)
			return false;
	return true;
}

/* mheap_prefault faults memory in ahead of use and changes nothing it
 * holds: first committed pages not faulted in yet, then (below the
 * target) released pages, which stop counting as released and read zero,
 * then new commit steps, into a new arena when the last is full; never
 * past the memory limit; `max` bounds a call; the accounting stays exact
 * (mheap_verify); what it faulted in can be released again. (Debian 12's
 * kernel has MADV_POPULATE_WRITE.) */
START_TEST(test_prefault)
{
	const size_t step = COMMIT_PAGES * PAGE_SIZE;

	heap_setup();
	mspan *s1 = must_alloc(10);
	uintptr_t base = s1->base;
	heap_arena *a = arena_of(base);
	memset((void *)base, 0x5a, 10 * PAGE_SIZE);
	ck_assert_uint_eq(resident(base + 10 * PAGE_SIZE, step -
	                           10 * PAGE_SIZE), 0);
	/* The target is met: only the committed step is faulted in, a
	 * piece at a time with a pause after each but the last (a mutator's
	 * mmap or brk waiting for the address space's lock gets it there). */
	size_t pauses = mheap_.stats.prefault_pauses;
	ck_assert_uint_eq(mheap_prefault(step, SIZE_MAX), step);
	ck_assert_uint_eq(mheap_.stats.prefault_pauses - pauses,
	                  step / PREFAULT_PIECE - 1);
	ck_assert_uint_eq(a->prefaulted, COMMIT_PAGES);
	ck_assert_uint_eq(mheap_.stats.committed, step);
	ck_assert_uint_eq(mheap_.stats.prefaulted, step);
	ck_assert_uint_eq(resident(base, step), step);
	ck_assert(all_bytes(base, 10 * PAGE_SIZE, 0x5a));
	ck_assert(all_bytes(base + 10 * PAGE_SIZE, step - 10 * PAGE_SIZE, 0));
	ck_assert_uint_eq(mheap_prefault(step, SIZE_MAX), 0);
	/* Three steps: two more committed at the commit line, one a call. */
	ck_assert_uint_eq(mheap_prefault(3 * step, 1), step);
	ck_assert_uint_eq(mheap_prefault(3 * step, SIZE_MAX), step);
	ck_assert_uint_eq(a->committed, 3 * COMMIT_PAGES);
	ck_assert_uint_eq(a->prefaulted, 3 * COMMIT_PAGES);
	ck_assert_uint_eq(mheap_.stats.committed, 3 * step);
	ck_assert_uint_eq(resident(base, 3 * step), 3 * step);
	mheap_verify();
	/* Pages faulted in ahead are still fresh: no zeroing needed. */
	mspan *s2 = must_alloc(COMMIT_PAGES);
	ck_assert_uint_eq(s2->base, base + 10 * PAGE_SIZE);
	ck_assert_uint_eq(s2->needzero, 0);
	ck_assert(all_bytes(s2->base, step, 0));
	/* Released pages (s1's dirty ones, and the clean ones faulted in
	 * ahead past s2: resident all the same) come back, zero and no
	 * longer released. */
	mheap_free_span(s1);
	uintptr_t after = s2->base + step;
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 2 * step);
	ck_assert_uint_eq(resident(base, 10 * PAGE_SIZE), 0);
	ck_assert_uint_eq(resident(after, 2 * step - 10 * PAGE_SIZE), 0);
	ck_assert_uint_eq(mheap_prefault(3 * step, SIZE_MAX), 2 * step);
	ck_assert_uint_eq(mheap_.stats.released, 0);
	ck_assert_uint_eq(resident(base, 3 * step), 3 * step);
	ck_assert(all_bytes(base, 10 * PAGE_SIZE, 0));
	ck_assert(all_bytes(after, 2 * step - 10 * PAGE_SIZE, 0));
	mheap_verify();
	mspan *s3 = must_alloc(10);
	ck_assert_uint_eq(s3->base, base);
	ck_assert_uint_eq(s3->needzero, 0);
	/* Never past the memory limit. */
	set_limit(mheap_.stats.committed + step / 2);
	ck_assert_uint_eq(mheap_prefault(SIZE_MAX, SIZE_MAX), 0);
	ck_assert_uint_eq(mheap_.stats.committed, 3 * step);
	set_limit(0);
	/* Past the arena: the next one is reserved and committed into. */
	size_t got = mheap_prefault(ARENA_BYTES + step, SIZE_MAX);
	ck_assert_uint_eq(got, ARENA_BYTES + step - 3 * step);
	ck_assert_uint_eq(mheap_.stats.arenas, 2);
	ck_assert_uint_eq(a->committed, PAGES_PER_ARENA);
	heap_arena *b = mheap_.arenas == a ? a->next : mheap_.arenas;
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(b, a);
	ck_assert_uint_eq(b->committed, COMMIT_PAGES);
	ck_assert_uint_eq(resident(b->base, step), step);
	mheap_free_span(s2);
	mheap_free_span(s3);
	mheap_verify();
	/* Releasing takes the clean pages faulted in ahead as well as the
	 * dirty ones: they are resident all the same. */
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), ARENA_BYTES + step);
	ck_assert_uint_eq(mheap_.stats.released, ARENA_BYTES + step);
	ck_assert_uint_eq(resident(a->base, ARENA_BYTES), 0);
	ck_assert_uint_eq(resident(b->base, step), 0);
	mheap_verify();
}
END_TEST

/* A heap of more than 64 arenas: one grow links 72 arenas at once (each
 * after the one before, not found from the head: a 1 TiB allocation's
 * 16,384 took seconds that way), a second grow adds more, and the list
 * stays by address with none lost; releasing walks them by address in
 * one pass (past 64 it once found the k-th arena from the head for each
 * k) and reaches a page dirtied in every one of them. */
START_TEST(test_many_arenas)
{
	enum { N = 72 };

	heap_setup();
	mspan *big = must_alloc(N * PAGES_PER_ARENA - PAGES_PER_ARENA / 2);
	mspan *more = must_alloc(2 * PAGES_PER_ARENA);
	ck_assert_uint_ge(mheap_.stats.arenas, N + 2);
	size_t count = 0;
	for (heap_arena *a = mheap_.arenas; a; a = a->next, count++)
		if (a->next)
			ck_assert_uint_lt(a->base, a->next->base);
	ck_assert_uint_eq(count, mheap_.stats.arenas);
	uintptr_t first = align_up(big->base, ARENA_BYTES);
	for (size_t i = 0; i + 1 < N; i++)
		*(volatile char *)(first + i * ARENA_BYTES) = 1;
	mheap_free_span(big);
	mheap_free_span(more);
	mheap_verify();
	ck_assert_uint_ge(mheap_release_free(SIZE_MAX),
	                  (N - 1) * PAGE_SIZE);
	for (size_t i = 0; i + 1 < N; i++)
		ck_assert_uint_eq(resident(first + i * ARENA_BYTES, PAGE_SIZE),
		                  0);
	mheap_verify();
}
END_TEST

/* Released pages past the prefaulted line are not faulted in by the
 * first pass (they would be resident yet counted as released); below the
 * target the released pass takes them, and the accounting follows. */
START_TEST(test_prefault_released)
{
	const size_t step = COMMIT_PAGES * PAGE_SIZE;

	heap_setup();
	mspan *s0 = must_alloc(20);
	uintptr_t base = s0->base;
	memset((void *)base, 1, 20 * PAGE_SIZE);
	mheap_free_span(s0);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 20 * PAGE_SIZE);
	ck_assert_uint_eq(mheap_prefault(PAGE_SIZE, SIZE_MAX),
	                  step - 20 * PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.released, 20 * PAGE_SIZE);
	ck_assert_uint_eq(resident(base, 20 * PAGE_SIZE), 0);
	size_t rest = step - 20 * PAGE_SIZE;
	ck_assert_uint_eq(resident(base + 20 * PAGE_SIZE, rest), rest);
	mheap_verify();
	ck_assert_uint_eq(mheap_prefault(step, SIZE_MAX), 20 * PAGE_SIZE);
	ck_assert_uint_eq(mheap_.stats.released, 0);
	ck_assert_uint_eq(mheap_.stats.committed, step);
	ck_assert_uint_eq(resident(base, step), step);
	ck_assert(all_bytes(base, step, 0));
	mheap_verify();
}
END_TEST

/* The VmFlags line of the mapping that holds p in /proc/self/smaps, or
 * "" if none does. */
static void vma_flags(uintptr_t p, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;

	ck_assert_ptr_nonnull(f);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = p >= lo && p < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, n, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

/* GCHEAP_DEBUG=hugepages: committed arena memory is advised for
 * transparent huge pages (smaps shows the mapping's "hg" flag), every
 * commit step of it, and nothing is when the switch is off. */
START_TEST(test_hugepages)
{
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK))
		return; /* a kernel without THP ignores the advice */
	options_.hugepages = _i;
	heap_setup();
	mspan *s = must_alloc(COMMIT_PAGES + 1);
	uintptr_t steps[] = {s->base, s->base + COMMIT_PAGES * PAGE_SIZE};
	for (size_t k = 0; k < ARRAY_LEN(steps); k++) {
		char flags[512];
		vma_flags(steps[k], flags, sizeof(flags));
		ck_assert_msg(flags[0], "no mapping holds %p",
		              (void *)steps[k]);
		ck_assert_msg((strstr(flags, " hg") != NULL) == _i,
		              "hugepages=%d: heap memory at %p has VmFlags%s",
		              _i, (void *)steps[k], flags);
	}
	mheap_free_span(s);
	mheap_verify();
}
END_TEST
/* ---- What the OS refuses, and the limit ---------------------------------- */

/* Lock [p, p + n) with mlock, or say why the test cannot. */
static bool lock_pages(uintptr_t p, size_t n)
{
	if (UNDER_SANITIZER) { /* their runtimes make mlock a no-op */
		printf("# mlock does nothing under the sanitizers\n");
		return false;
	}
	if (mlock((void *)p, n) != 0) {
		printf("# mlock refused (RLIMIT_MEMLOCK)\n");
		return false;
	}
	return true;
}

/* A release the OS refuses (pages the program locked, as
 * mlockall(MCL_FUTURE) does to every later mapping: MADV_DONTNEED then
 * fails with EINVAL) must not make the pages count as zero: they keep
 * what they hold, stay dirty and are pinned (not tried again until
 * reused). _i == 1: the failpoint refuses the run once; each page alone
 * is then released. */
START_TEST(test_release_refused)
{
	heap_setup();
	mspan *s = must_alloc(4);
	uintptr_t base = s->base;
	memset((void *)base, 0xab, 4 * PAGE_SIZE);
	mheap_free_span(s);
	if (_i == 0 && !lock_pages(base, 4 * PAGE_SIZE))
		return;
	if (_i == 1)
		osmem_fail_in(1);
	size_t rel = mheap_release_free(SIZE_MAX);
	osmem_fail_in(0);
	mheap_verify();
	if (_i == 0) {
		ck_assert_uint_eq(rel, 0);
		ck_assert_uint_eq(mheap_.stats.released, 0);
		/* Pinned: the next release does not try again. */
		osmem_fail_in(1);
		ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 0);
		ck_assert_msg(osmem_fail_armed(), "a pinned page was tried");
		osmem_fail_in(0);
		ck_assert_int_eq(munlock((void *)base, 4 * PAGE_SIZE), 0);
	} else {
		ck_assert_uint_eq(rel, 4 * PAGE_SIZE);
	}
	mspan *t = must_alloc(4);
	ck_assert_uint_eq(t->base, base);
	bool zero = all_zero(base, 4 * PAGE_SIZE);
	ck_assert_msg(t->needzero || zero,
	              "released %zu bytes, span handed out with needzero 0 "
	              "but its first byte is %#x", rel,
	              *(const unsigned char *)base);
	ck_assert(_i == 1 || t->needzero);
	/* Reused, then free again: tried again (and released). */
	mheap_free_span(t);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 4 * PAGE_SIZE);
	mheap_verify();
}
END_TEST

/* The scavenger's release waits for a page to stay free through SCAV_AGE
 * of its calls: a span freed now is kept by the next SCAV_AGE calls and
 * released by the one after; taken again and freed meanwhile, its age
 * starts over. mheap_release_free (a user's release, a limit) takes it at
 * once. Without the age, the scavenger released the pages that large
 * objects of churning sizes were placed back on at the next cycle
 * (alloc/mheap.h). */
START_TEST(test_release_aged)
{
	heap_setup();
	mspan *keep = must_alloc(1);
	mspan *a = must_alloc(8), *b = must_alloc(8);
	uintptr_t abase = a->base, bbase = b->base;
	memset((void *)abase, 1, 8 * PAGE_SIZE);
	memset((void *)bbase, 1, 8 * PAGE_SIZE);
	/* Whatever else the arena holds free and resident goes first. */
	mheap_release_free(SIZE_MAX);
	mheap_free_span(a);
	mheap_free_span(b);
	heap_arena *ar = arena_of(abase);
	uintptr_t pa = (abase - ar->base) / PAGE_SIZE;
	uintptr_t pb = (bbase - ar->base) / PAGE_SIZE;
	for (int i = 1; i <= SCAV_AGE; i++) {
		ck_assert_uint_eq(mheap_release_aged(SIZE_MAX), 0);
		if (i == 2) {
			/* a's pages (first fit's) start over. */
			a = must_alloc(8);
			ck_assert_uint_eq(a->base, abase);
			mheap_free_span(a);
		}
	}
	ck_assert_uint_eq(mheap_release_aged(SIZE_MAX), 8 * PAGE_SIZE);
	for (uintptr_t i = 0; i < 8; i++) {
		ck_assert(bitmap_get(ar->released, pb + i));
		ck_assert(!bitmap_get(ar->released, pa + i));
	}
	ck_assert_uint_eq(mheap_release_aged(SIZE_MAX), 0);
	ck_assert_uint_eq(mheap_release_aged(SIZE_MAX), 8 * PAGE_SIZE);
	/* A fresh free goes at once through mheap_release_free. */
	a = must_alloc(8);
	mheap_free_span(a);
	ck_assert_uint_eq(mheap_release_aged(SIZE_MAX), 0);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 8 * PAGE_SIZE);
	(void)keep;
	mheap_verify();
}
END_TEST

/* The OS drops a range one mapping at a time: with the top of a free run
 * locked, the pages below it are gone before the call fails. They count
 * as released (each tried alone), the locked ones stay dirty, and in
 * poison mode nothing reads as a write after free; a free run below the
 * locked one is still released, on every call. */
START_TEST(test_release_partly_locked)
{
	options_.poison = true;
	heap_setup();
	mspan *low = must_alloc(4);   /* [0, 4): A */
	mspan *mid = must_alloc(1);   /* [4, 5): in use */
	mspan *high = must_alloc(8);  /* [5, 13): B */
	uintptr_t a = low->base, b = high->base;
	memset((void *)a, 0xab, 4 * PAGE_SIZE);
	memset((void *)b, 0xab, 8 * PAGE_SIZE);
	mheap_free_span(low);
	mheap_free_span(high);
	(void)mid;
	if (!lock_pages(b + 4 * PAGE_SIZE, 4 * PAGE_SIZE))
		return;
	size_t rel = mheap_release_free(SIZE_MAX);
	mheap_verify();
	heap_arena *ar = arena_of(b);
	uintptr_t pb = (b - ar->base) / PAGE_SIZE;
	for (uintptr_t i = 0; i < 8; i++)
		ck_assert_int_eq(bitmap_get(ar->released, pb + i), i < 4);
	/* A and B's lower half, at least (the rest of the arena too). */
	ck_assert_uint_ge(rel, 8 * PAGE_SIZE);
	ck_assert(all_zero(b, 4 * PAGE_SIZE));
	ck_assert(all_zero(a, 4 * PAGE_SIZE));
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 0);
	/* Taken again: the poison check passes, the span is zeroed. */
	mspan *t = mheap_alloc_span(8, LARGE_NOSCAN, &(heap_err){0});
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->base, b);
	ck_assert(t->needzero);
	ck_assert_int_eq(munlock((void *)(b + 4 * PAGE_SIZE),
	                         4 * PAGE_SIZE), 0);
	options_.poison = false;
}
END_TEST

/* A refused page that was clean (faulted in ahead, never written, so
 * never poisoned) becomes dirty and is poisoned, as is one the OS only
 * half dropped (the upper 4 KiB of the 8 KiB page locked): in poison mode
 * the span that takes them again passes the poison check and is
 * zeroed. */
START_TEST(test_release_refused_clean)
{
	const size_t step = COMMIT_PAGES * PAGE_SIZE;

	options_.poison = true;
	heap_setup();
	mspan *s = must_alloc(1);
	uintptr_t base = s->base;
	heap_arena *a = arena_of(base);
	mheap_free_span(s);
	ck_assert_uint_eq(mheap_prefault(step, step), step);
	ck_assert(!bitmap_get(a->dirty, 10) && !bitmap_get(a->dirty, 20));
	if (!lock_pages(base + 10 * PAGE_SIZE, PAGE_SIZE))
		return;
	if (!lock_pages(base + 20 * PAGE_SIZE + PAGE_SIZE / 2,
	                PAGE_SIZE / 2))
		return;
	size_t rel = mheap_release_free(SIZE_MAX);
	ck_assert_uint_eq(rel, step - 2 * PAGE_SIZE);
	mheap_verify();
	for (uintptr_t pg = 10; pg <= 20; pg += 10) {
		ck_assert(bitmap_get(a->pinned, pg));
		ck_assert(bitmap_get(a->dirty, pg));
		ck_assert(all_bytes(base + pg * PAGE_SIZE, PAGE_SIZE,
		                    POISON_BYTE));
	}
	heap_err err = HEAP_OK;
	mspan *t = mheap_alloc_span(32, LARGE_NOSCAN, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->base, base);
	ck_assert(t->needzero);
	ck_assert_int_eq(munlock((void *)(base + 10 * PAGE_SIZE), PAGE_SIZE),
	                 0);
	ck_assert_int_eq(munlock((void *)(base + 20 * PAGE_SIZE +
	                                  PAGE_SIZE / 2), PAGE_SIZE / 2), 0);
	options_.poison = false;
}
END_TEST

/* Under a limit, first fit's choice of released pages (which count
 * against it) gives way to free resident pages (which cost nothing). */
START_TEST(test_limit_prefers_resident)
{
	heap_err err = HEAP_OK;

	heap_setup();
	set_limit(600 * PAGE_SIZE);
	mspan *a = must_alloc(100);   /* [0, 100) */
	mspan *b = must_alloc(200);   /* [100, 300) */
	mspan *c = must_alloc(212);   /* [300, 512) */
	(void)b;
	heap_arena *ar = arena_of(a->base);
	ck_assert_uint_eq(ar->committed, 512);
	mheap_free_span(a);
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), 100 * PAGE_SIZE);
	mspan *e = must_alloc(150);   /* [512, 662) */
	(void)e;
	ck_assert_uint_eq(ar->committed, 662);
	mheap_free_span(c);           /* 212 free resident pages */
	size_t held = mheap_.stats.committed - mheap_.stats.released;
	mspan *f = mheap_alloc_span(100, LARGE_NOSCAN, &err);
	ck_assert_msg(f != NULL, "100 pages refused (err %d): held %zu of "
	              "limit %zu, while 212 free committed resident pages "
	              "would cost nothing", (int)err, held,
	              (size_t)(600 * PAGE_SIZE));
}
END_TEST

/* Held above the limit (the limit lowered): a span of free, committed,
 * resident pages adds nothing and is not refused; one that would commit
 * more is. */
START_TEST(test_limit_lowered)
{
	heap_err err = HEAP_OK;

	heap_setup();
	mspan *s = must_alloc(COMMIT_PAGES);
	mheap_free_span(s);
	set_limit(COMMIT_PAGES / 2 * PAGE_SIZE);
	mspan *t = mheap_alloc_span(1, LARGE_NOSCAN, &err);
	ck_assert_msg(t != NULL, "1 free committed page refused (err %d)",
	              (int)err);
	ck_assert_ptr_null(mheap_alloc_span(COMMIT_PAGES, LARGE_NOSCAN,
	                                    &err));
	ck_assert_int_eq(err, HEAP_LIMIT);
}
END_TEST

/* The OS unable to fault in ahead (a kernel without MADV_POPULATE_WRITE;
 * here the failpoint): faulting in ahead stops for good, so that each
 * call does not commit or claim another step it cannot fault in. */
START_TEST(test_prefault_refused)
{
	const size_t step = COMMIT_PAGES * PAGE_SIZE;

	heap_setup();
	mspan *s = must_alloc(1);
	(void)s;
	ck_assert_uint_eq(mheap_prefault(step, SIZE_MAX), step);
	osmem_fail_in(2); /* 1: the claim's os_commit; 2: os_prefault */
	ck_assert_uint_eq(mheap_prefault(4 * step, SIZE_MAX), 0);
	osmem_fail_in(0);
	size_t committed = mheap_.stats.committed;
	uintptr_t released = mheap_.stats.released;
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(mheap_prefault(8 * step, SIZE_MAX), 0);
	ck_assert_uint_eq(mheap_.stats.committed, committed);
	ck_assert_uint_eq(mheap_.stats.released, released);
	mheap_verify();
	/* Allocation goes on as before. */
	mspan *t = must_alloc(2 * COMMIT_PAGES);
	ck_assert(all_zero(t->base, 2 * COMMIT_PAGES * PAGE_SIZE) ||
	          t->needzero);
}
END_TEST

static size_t count_released(const heap_arena *a, uintptr_t from,
                             uintptr_t n)
{
	size_t k = 0;

	for (uintptr_t pg = from; pg < from + n; pg++)
		k += bitmap_get(a->released, pg);
	return k;
}

static size_t hook_released;

static void release_meanwhile(void)
{
	hook_released += mheap_release_free(SIZE_MAX);
}

/* mheap_prefault faults a claimed range in without the lock; a release
 * meanwhile (gc_release_memory, gc_free_os_memory on another thread;
 * here the test hook, at that very point) must leave the range alone:
 * dropped first, it would be faulted straight back in, resident yet
 * counted as released. */
START_TEST(test_prefault_not_released)
{
	const size_t step = COMMIT_PAGES * PAGE_SIZE;

	heap_setup();
	mspan *s = must_alloc(1); /* commits [0, COMMIT_PAGES) */
	heap_arena *a = arena_of(s->base);
	mheap_free_span(s);
	ck_assert_uint_eq(a->prefaulted, 0);
	mheap_.prefault_test_hook = release_meanwhile;
	ck_assert_uint_eq(mheap_prefault(step, step), step);
	mheap_.prefault_test_hook = NULL;
	ck_assert_uint_eq(a->prefaulted, COMMIT_PAGES);
	ck_assert_msg(hook_released == 0, "%zu bytes released while they "
	              "were faulted in", hook_released);
	ck_assert_uint_eq(count_released(a, 0, COMMIT_PAGES), 0);
	mheap_verify();
	/* Once faulted in, they are released as usual. */
	ck_assert_uint_eq(mheap_release_free(SIZE_MAX), step);
}
END_TEST

/* fixalloc maps 64 KiB, then twice the last chunk each time, up to 1 MiB
 * (few mmap calls for a big heap's metadata, little mapped for a small
 * one); objects are zeroed, distinct, and freed ones are reused before
 * any new chunk is mapped. */
START_TEST(test_fixalloc_chunks_grow)
{
	static const size_t want[] = {64 << 10, 128 << 10, 256 << 10,
	                              512 << 10, 1 << 20, 1 << 20};
	size_t sys = 0, seen = 0, n = 0;
	fixalloc f;

	fixalloc_init(&f, 4096, &sys);
	uint8_t **objs = calloc(1024, sizeof(*objs));
	ck_assert_ptr_nonnull(objs);
	while (seen < ARRAY_LEN(want)) {
		size_t before = sys;
		uint8_t *p = fixalloc_alloc(&f);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_lt(n, 1024);
		objs[n++] = p;
		ck_assert(all_zero((uintptr_t)p, 4096));
		memset(p, 0xab, 4096);
		if (sys != before)
			ck_assert_uint_eq(sys - before, want[seen++]);
	}
	ck_assert_uint_eq(f.inuse, n * 4096);
	/* Distinct: the 0xab of one never overlapped another's zeros. */
	for (size_t i = 0; i < n; i++)
		fixalloc_free(&f, objs[i]);
	size_t mapped = sys;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = fixalloc_alloc(&f);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(p[0], 0);
		ck_assert_uint_eq(p[4095], 0);
	}
	ck_assert_uint_eq(sys, mapped);
	free(objs);
}
END_TEST

/* metaalloc's classes: every request gets the smallest class that holds
 * it, a multiple of 16 bytes, wasting under a fifth of the block above 64
 * bytes (power-of-two classes wasted up to half); blocks of each class are
 * zeroed and distinct, and inuse counts their class sizes. */
START_TEST(test_metaalloc_classes)
{
	ck_assert_uint_eq(metaalloc_class_size(METAALLOC_CLASSES - 1),
	                  METAALLOC_MAX);
	for (size_t b = 1; b <= METAALLOC_MAX; b++) {
		unsigned c = metaalloc_class(b);
		size_t sz = metaalloc_class_size(c);

		REQUIRE(c < METAALLOC_CLASSES, "%zu bytes: class %u", b, c);
		REQUIRE(sz >= b && sz % 16 == 0, "%zu bytes: class %u of %zu",
		        b, c, sz);
		REQUIRE(c == 0 || metaalloc_class_size(c - 1) < b,
		        "%zu bytes: class %u, but %u holds them", b, c, c - 1);
		REQUIRE(b <= 64 || (sz - b) * 5 < sz,
		        "%zu bytes in a block of %zu", b, sz);
	}
	for (unsigned c = 1; c < METAALLOC_CLASSES; c++)
		ck_assert_uint_gt(metaalloc_class_size(c),
		                  metaalloc_class_size(c - 1));

	size_t sys = 0;
	metaalloc m;
	static const size_t sizes[] = {1, 16, 17, 64, 65, 80, 81, 608,
	                               1280, 1281, 4096, 16384};
	void *blocks[ARRAY_LEN(sizes) * 8];
	size_t want = 0;

	metaalloc_init(&m, &sys);
	for (size_t i = 0; i < ARRAY_LEN(blocks); i++) {
		size_t b = sizes[i % ARRAY_LEN(sizes)];
		uint8_t *p = metaalloc_alloc(&m, b);

		ck_assert_ptr_nonnull(p);
		ck_assert(all_zero((uintptr_t)p, b));
		memset(p, 0xcd, metaalloc_class_size(metaalloc_class(b)));
		blocks[i] = p;
		want += metaalloc_class_size(metaalloc_class(b));
	}
	ck_assert_uint_eq(metaalloc_inuse(&m), want);
	/* Distinct: a later block's zeros were not overwritten by 0xcd. */
	for (size_t i = 0; i < ARRAY_LEN(blocks); i++)
		metaalloc_free(&m, blocks[i], sizes[i % ARRAY_LEN(sizes)]);
	ck_assert_uint_eq(metaalloc_inuse(&m), 0);
	uint8_t *p = metaalloc_alloc(&m, 1281);
	ck_assert(all_zero((uintptr_t)p, 1281));
	metaalloc_free(&m, p, 1281);
}
END_TEST

static Suite *pagealloc_suite(void)
{
	Suite *s = suite_create("pagealloc");
	TCase *tc = tcase_create("summaries");

	tcase_add_test(tc, test_summarize_random);
	tcase_add_test(tc, test_summarize_edges);
	tcase_add_test(tc, test_update_merge);
	tcase_add_test(tc, test_fixalloc_chunks_grow);
	tcase_add_test(tc, test_metaalloc_classes);
	suite_add_tcase(s, tc);

	tc = tcase_create("heap");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_random_model);
	tcase_add_test(tc, test_coalesce);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_limit_released);
	tcase_add_loop_test(tc, test_os_failure_fresh, 1, 7);
	tcase_add_test(tc, test_os_failure_commit);
	tcase_add_test(tc, test_span_over_arena);
	tcase_add_test(tc, test_span_straddles);
	tcase_add_test(tc, test_committed_first);
	tcase_add_loop_test(tc, test_needzero, 0, 2);
	tcase_add_test(tc, test_lookup_races_free);
	tcase_add_loop_test(tc, test_hugepages, 0, 2);
	tcase_add_test(tc, test_prefault);
	tcase_add_test(tc, test_prefault_released);
	tcase_add_loop_test(tc, test_release_refused, 0, 2);
	tcase_add_test(tc, test_release_aged);
	tcase_add_test(tc, test_release_partly_locked);
	tcase_add_test(tc, test_release_refused_clean);
	tcase_add_test(tc, test_limit_prefers_resident);
	tcase_add_test(tc, test_limit_lowered);
	tcase_add_test(tc, test_prefault_refused);
	tcase_add_test(tc, test_prefault_not_released);
	tcase_add_test(tc, test_many_arenas);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(pagealloc_suite());
}
