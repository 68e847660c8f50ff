/* tests/alloc/test_mcentral.c: tests the central span lists and the
 * thread caches (alloc/mcentral.c, alloc/mcache.c): list membership and
 * counts across cache/uncache cycles driven through an mcache, what
 * mcentral_cache_span may hand out (never a full span; sweepgen h + 3),
 * four threads refilling from one mcentral never sharing a span, and the
 * sweepgen flip: swept lists become unswept, cache_span sweeps them, and a
 * stale cached span is swept when it is uncached. */
#include "tests/testing.h"

#include "alloc/alloc.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static void heap_setup(void)
{
	ck_assert_int_eq(mheap_init(), HEAP_OK);
	mcentral_init_all();
}

static uintptr_t heap_sg(void)
{
	return aload(&mheap_.sweepgen);
}

static uintptr_t flip(void)
{
	uintptr_t sg = heap_sg() + 2;

	astore(&mheap_.sweepgen, sg);
	return sg;
}

static void set_bit(uint64_t *bm, uintptr_t i)
{
	bm[i / 64] |= (uint64_t)1 << (i % 64);
}

static bool on_list(const spanlist *l, const mspan *s)
{
	for (const mspan *x = l->first; x; x = x->next)
		if (x == s)
			return true;
	return false;
}

/* s sits on exactly one of c's lists, the one s->list names, and it is
 * the swept list of the right kind. */
static void check_listed(mcentral *c, const mspan *s)
{
	uintptr_t sg = heap_sg();
	spanlist *want = s->alloc_count == s->nelems ?
	                 mcentral_full_swept(c, sg) :
	                 mcentral_partial_swept(c, sg);
	int found = 0;

	for (int i = 0; i < 2; i++) {
		found += on_list(&c->partial[i], s);
		found += on_list(&c->full[i], s);
	}
	REQUIRE(found == 1, "span %p is on %d lists", (void *)s, found);
	REQUIRE(s->list == want && on_list(want, s),
	        "span %p (%zu/%zu objects) on list %p, want %p", (void *)s,
	        (size_t)s->alloc_count, (size_t)s->nelems, (void *)s->list,
	        (void *)want);
	REQUIRE(aload(&s->sweepgen) == sg, "listed span %p has sweepgen %zu, "
	        "heap %zu", (void *)s, (size_t)aload(&s->sweepgen), (size_t)sg);
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* c's four lists hold exactly the n spans of `spans`, each once, each on
 * the list it names and of the right kind (a sort, not a walk per span). */
static void check_lists_exactly(mcentral *c, mspan *const *spans, size_t n)
{
	uintptr_t *on = calloc(n + 1, sizeof(uintptr_t));
	uintptr_t *want = calloc(n + 1, sizeof(uintptr_t));
	uintptr_t sg = heap_sg();
	size_t k = 0;

	for (int i = 0; i < 4; i++) {
		spanlist *l = i < 2 ? &c->partial[i] : &c->full[i - 2];
		for (mspan *x = l->first; x; x = x->next) {
			REQUIRE(k < n, "more spans listed than the %zu known",
			        n);
			REQUIRE(x->list == l, "span %p on list %p names %p",
			        (void *)x, (void *)l, (void *)x->list);
			on[k++] = (uintptr_t)x;
		}
	}
	REQUIRE(k == n, "%zu spans listed, %zu known", k, n);
	for (size_t i = 0; i < n; i++) {
		const mspan *s = spans[i];
		spanlist *l = s->alloc_count == s->nelems ?
		              mcentral_full_swept(c, sg) :
		              mcentral_partial_swept(c, sg);
		REQUIRE(s->list == l, "span %p (%zu/%zu objects) on list %p, "
		        "want %p", (void *)s, (size_t)s->alloc_count,
		        (size_t)s->nelems, (void *)s->list, (void *)l);
		REQUIRE(aload(&s->sweepgen) == sg, "listed span %p has "
		        "sweepgen %zu", (void *)s, (size_t)aload(&s->sweepgen));
		want[i] = (uintptr_t)s;
	}
	qsort(on, n, sizeof(uintptr_t), cmp_uptr);
	qsort(want, n, sizeof(uintptr_t), cmp_uptr);
	for (size_t i = 0; i < n; i++)
		REQUIRE(on[i] == want[i] && (i == 0 || on[i] != on[i - 1]),
		        "listed spans differ from the known ones at %zu", i);
	free(on);
	free(want);
}

/* Take every object left in s, as an mcache would. */
static void fill(mspan *s)
{
	while (mspan_next_free_index(s) != s->nelems)
		s->alloc_count++;
}

/* Take up to k objects; returns the first index taken or nelems. */
static uintptr_t take(mspan *s, uintptr_t k)
{
	uintptr_t first = s->nelems;

	for (uintptr_t j = 0; j < k; j++) {
		uintptr_t i = mspan_next_free_index(s);
		if (i == s->nelems)
			break;
		if (j == 0)
			first = i;
		s->alloc_count++;
	}
	return first;
}

/* What cache_span promises about the span it returns. */
static void check_cached(const mspan *s, spanclass spc)
{
	uintptr_t fi = aload(&s->freeindex);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->spc, spc);
	ck_assert_ptr_null(s->list);
	ck_assert_uint_eq(aload(&s->sweepgen), heap_sg() + 3);
	ck_assert_uint_lt(s->alloc_count, s->nelems);
	ck_assert_uint_lt(fi, s->nelems);
	/* The next object the fast path would hand out is free. */
	unsigned bit = ctz64(s->alloc_cache);
	ck_assert_uint_lt(bit, 64);
	ck_assert(fi + bit < s->nelems);
	ck_assert(mspan_is_free(s, fi + bit));
	mheap_verify_span(s);
}

/* ---- (a) list membership through an mcache ----------------------------- */

#define MAX_SPANS 4096

START_TEST(test_mcache_cycles)
{
	static const unsigned classes[] = {1, 5, 10, 18, 33, 45};
	enum { NC = ARRAY_LEN(classes), STEPS = 30000 };
	test_rng r = rng_make(20);
	mcache mc;
	mspan **seen = calloc(NC * MAX_SPANS, sizeof(mspan *));
	unsigned nseen[NC] = {0};
	uintptr_t *objs = calloc(STEPS, sizeof(uintptr_t));
	size_t nobjs = 0;

	heap_setup();
	mcache_init(&mc);
	for (unsigned k = 0; k < ARRAY_LEN(mc.alloc); k++)
		ck_assert_ptr_eq(mc.alloc[k], &mspan_empty);
	for (int step = 0; step < STEPS; step++) {
		unsigned k = (unsigned)rng_below(&r, NC);
		spanclass spc = make_spanclass(classes[k], k % 2);
		mspan *old = mc.alloc[spc], *s = NULL;
		int err = 0;
		uintptr_t p = mcache_next_free(&mc, spc, spc, &s, &err);

		REQUIRE(p != 0, "mcache_next_free failed with %d", err);
		REQUIRE(s == mc.alloc[spc], "the span is not the cached one");
		REQUIRE(s->spc == spc && p >= s->base && p < s->limit &&
		        (p - s->base) % s->elemsize == 0,
		        "object %p is not an object of span %p", (void *)p,
		        (void *)s);
		REQUIRE(s->list == NULL && aload(&s->sweepgen) == heap_sg() + 3,
		        "the cached span is listed or has sweepgen %zu",
		        (size_t)aload(&s->sweepgen));
		objs[nobjs++] = p;
		if (s != old) {
			/* A refill: the old span was full. */
			REQUIRE(old == &mspan_empty ||
			        old->alloc_count == old->nelems,
			        "refilled away from a span with room");
			unsigned j;
			for (j = 0; j < nseen[k]; j++)
				if (seen[k * MAX_SPANS + j] == s)
					break;
			if (j == nseen[k]) {
				ck_assert_uint_lt(nseen[k], MAX_SPANS);
				seen[k * MAX_SPANS + nseen[k]++] = s;
			}
		}
		if (rng_below(&r, 400) && step != STEPS - 1)
			continue;
		/* Every listed span is where it should be. */
		for (unsigned i = 0; i < NC; i++) {
			spanclass sc = make_spanclass(classes[i], i % 2);
			mcentral *c = &mcentral_[sc];
			uintptr_t cached = mc.alloc[sc] != &mspan_empty;
			/* The cache's bitmap of classes in use agrees
			 * (the pauses walk it, not alloc[]). */
			REQUIRE(((mc.cached[sc / 64] >> (sc % 64)) & 1) ==
			        cached, "class %u: cached bit wrong",
			        classes[i]);
			REQUIRE(mcentral_verify(c) == nseen[i] - cached,
			        "class %u: %zu spans listed, %u known, %zu "
			        "cached", classes[i],
			        (size_t)mcentral_verify(c), nseen[i],
			        (size_t)cached);
		}
		mcentral_verify_all();
		mcache_release_all(&mc);
		for (unsigned i = 0; i < NC; i++) {
			spanclass sc = make_spanclass(classes[i], i % 2);
			mcentral *c = &mcentral_[sc];
			ck_assert_ptr_eq(mc.alloc[sc], &mspan_empty);
			ck_assert_uint_eq(mc.cached[sc / 64] >>
			                  (sc % 64) & 1, 0);
			ck_assert_uint_eq(mcentral_verify(c), nseen[i]);
			check_lists_exactly(c, &seen[i * MAX_SPANS], nseen[i]);
		}
		mcentral_verify_all();
	}
	/* No object was handed out twice. */
	qsort(objs, nobjs, sizeof(uintptr_t), cmp_uptr);
	for (size_t i = 1; i < nobjs; i++)
		REQUIRE(objs[i] != objs[i - 1], "object %p handed out twice",
		        (void *)objs[i]);
	unsigned total = 0;
	for (unsigned i = 0; i < NC; i++)
		total += nseen[i];
	ck_assert_uint_eq(mheap_.stats.spans_inuse, total);
	free(seen);
	free(objs);
}
END_TEST

/* ---- (b) what cache_span hands out -------------------------------------- */

START_TEST(test_cache_span_never_full)
{
	const spanclass spc = make_spanclass(7, true); /* 102 objects */
	mcentral *c = &mcentral_[spc];
	test_rng r = rng_make(21);
	mspan *full[400];
	unsigned nfull = 0, nspans = 0;
	mspan *partial = NULL;

	heap_setup();
	for (int step = 0; step < 300; step++) {
		int err = 0;
		mspan *s = mcentral_cache_span(c, &err);
		ck_assert_msg(s != NULL, "cache_span failed with %d", err);
		check_cached(s, spc);
		for (unsigned i = 0; i < nfull; i++)
			ck_assert_ptr_ne(s, full[i]);
		if (partial) {
			/* The one partial span is the first choice. */
			ck_assert_ptr_eq(s, partial);
		} else {
			ck_assert_uint_eq(s->alloc_count, 0);
			nspans++;
		}
		uintptr_t fi = aload(&s->freeindex);
		uintptr_t left = s->nelems - s->alloc_count;
		uintptr_t k = rng_below(&r, 3) ? 1 + rng_below(&r, left) : left;
		/* The first object taken is the one the cache pointed at. */
		uintptr_t next = fi + ctz64(s->alloc_cache);
		ck_assert_uint_eq(take(s, k), next);
		mcentral_uncache_span(c, s);
		check_listed(c, s);
		if (s->alloc_count == s->nelems) {
			full[nfull++] = s;
			partial = NULL;
		} else {
			partial = s;
		}
		ck_assert_uint_eq(mcentral_verify(c), nspans);
		ck_assert_uint_eq(mcentral_full_swept(c, heap_sg())->n, nfull);
	}
	ck_assert_uint_gt(nfull, 10);
	mcentral_verify_all();
}
END_TEST

/* ---- (c) threads -------------------------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 150000
#define TABLE_BITS 16

/* Which thread holds each span: an open-addressing table. */
static atomic_word tab_key[1 << TABLE_BITS];
static atomic_word tab_holder[1 << TABLE_BITS];
static atomic_word violations;
static char violation_msg[256];

static atomic_word *holder_slot(const mspan *s)
{
	uintptr_t key = (uintptr_t)s;
	size_t h = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ULL) >>
	           (64 - TABLE_BITS);

	for (;; h = (h + 1) & ((1 << TABLE_BITS) - 1)) {
		uintptr_t k = aload_acq(&tab_key[h]);
		if (k == key)
			return &tab_holder[h];
		if (k == 0 && acas(&tab_key[h], 0, key))
			return &tab_holder[h];
		if (aload_acq(&tab_key[h]) == key)
			return &tab_holder[h];
	}
}

static void violation(const char *what, const mspan *s, int id)
{
	if (afetch_add(&violations, 1) == 0)
		snprintf(violation_msg, sizeof violation_msg,
		         "thread %d: %s (span %p)", id, what, (void *)s);
}

static void hold(const mspan *s, int id)
{
	if (!acas(holder_slot(s), 0, (uintptr_t)id + 1))
		violation("took a span another thread holds", s, id);
}

static void unhold(const mspan *s, int id)
{
	if (!acas(holder_slot(s), (uintptr_t)id + 1, 0))
		violation("gave back a span it did not hold", s, id);
}

typedef struct worker {
	int id;
	spanclass spc;
	test_rng r;
	uintptr_t *objs;
	int err;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	mcache mc;
	mspan *held = NULL;

	mcache_init(&mc);
	for (uintptr_t k = 0; k < PER_THREAD; k++) {
		mspan *cur = mc.alloc[w->spc];
		if (held && cur->alloc_count == cur->nelems) {
			/* Full: the next allocation refills. */
			unhold(held, w->id);
			held = NULL;
		}
		mspan *s = cur;
		uintptr_t p = mspan_next_free_fast(cur);
		if (!p)
			p = mcache_next_free(&mc, w->spc, w->spc, &s, &w->err);
		if (!p) {
			violation("out of memory", NULL, w->id);
			break;
		}
		if (s != held) {
			if (held)
				violation("switched from a span with room",
				          held, w->id);
			hold(s, w->id);
			held = s;
		}
		uintptr_t *o = (uintptr_t *)p;
		o[0] = (uintptr_t)w->id;
		o[1] = k;
		w->objs[k] = p;
		if (rng_below(&w->r, 60) == 0) {
			unhold(held, w->id);
			held = NULL;
			mcache_release_all(&mc);
		}
	}
	if (held)
		unhold(held, w->id);
	mcache_release_all(&mc);
	return NULL;
}

START_TEST(test_threads)
{
	const spanclass spc = make_spanclass(7, true); /* 102 objects */
	worker w[NTHREADS];
	pthread_t th[NTHREADS];

	heap_setup();
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (worker){.id = i, .spc = spc,
		                .r = rng_make(30 + (uint64_t)i)};
		w[i].objs = calloc(PER_THREAD, sizeof(uintptr_t));
		ck_assert_ptr_nonnull(w[i].objs);
	}
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main,
		                                &w[i]), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(aload(&violations) == 0, "%zu violations, first: %s",
	              (size_t)aload(&violations), violation_msg);

	/* Every object still holds what its thread wrote: none was shared. */
	uintptr_t *all = calloc(NTHREADS * PER_THREAD, sizeof(uintptr_t));
	size_t n = 0;
	for (int i = 0; i < NTHREADS; i++) {
		for (uintptr_t k = 0; k < PER_THREAD; k++) {
			const uintptr_t *o = (const uintptr_t *)w[i].objs[k];
			REQUIRE(o[0] == (uintptr_t)i && o[1] == k,
			        "thread %d object %zu at %p was overwritten by "
			        "thread %zu", i, (size_t)k, (void *)o,
			        (size_t)o[0]);
			all[n++] = (uintptr_t)o;
		}
		free(w[i].objs);
	}
	qsort(all, n, sizeof(uintptr_t), cmp_uptr);
	for (size_t i = 1; i < n; i++)
		REQUIRE(all[i] != all[i - 1], "object %p handed out twice",
		        (void *)all[i]);
	free(all);
	/* Every span is back on a list, and none is held. */
	mcentral *c = &mcentral_[spc];
	mspan **spans = calloc(ARRAY_LEN(tab_key), sizeof(mspan *));
	size_t nspans = 0;
	for (size_t i = 0; i < ARRAY_LEN(tab_key); i++)
		if (tab_key[i]) {
			REQUIRE(tab_holder[i] == 0, "span still held");
			spans[nspans++] = (mspan *)tab_key[i];
		}
	ck_assert_uint_eq(nspans, mheap_.stats.spans_inuse);
	ck_assert_uint_eq(mcentral_verify(c), nspans);
	check_lists_exactly(c, spans, nspans);
	free(spans);
	mcentral_verify_all();
}
END_TEST

/* ---- (d) the sweepgen flip ---------------------------------------------- */

START_TEST(test_flip)
{
	const spanclass spc = make_spanclass(5, true); /* 170 objects */
	mcentral *c = &mcentral_[spc];
	int err = 0;

	heap_setup();
	/* A span held by a cache across the flip... */
	mspan *held = mcentral_cache_span(c, &err);
	take(held, 5);
	/* ...two full spans and a partial one on the lists. */
	mspan *f1 = mcentral_cache_span(c, &err);
	fill(f1);
	mcentral_uncache_span(c, f1);
	mspan *f2 = mcentral_cache_span(c, &err);
	fill(f2);
	mcentral_uncache_span(c, f2);
	mspan *p1 = mcentral_cache_span(c, &err);
	take(p1, 10);
	mcentral_uncache_span(c, p1);
	ck_assert(held != f1 && f1 != f2 && f2 != p1 && p1 != held);
	check_listed(c, f1);
	check_listed(c, f2);
	check_listed(c, p1);
	ck_assert_uint_eq(mcentral_verify(c), 3);

	/* The collector marks: p1 keeps 0..2, f1 all but 7, 60 and 169,
	 * f2 everything, the held span object 4. */
	for (uintptr_t i = 0; i < 3; i++)
		set_bit(p1->gcmark_bits, i);
	for (uintptr_t i = 0; i < f1->nelems; i++)
		if (i != 7 && i != 60 && i != 169)
			set_bit(f1->gcmark_bits, i);
	for (uintptr_t i = 0; i < f2->nelems; i++)
		set_bit(f2->gcmark_bits, i);
	set_bit(held->gcmark_bits, 4);

	uintptr_t old = heap_sg();
	spanlist *ps = mcentral_partial_swept(c, old);
	spanlist *fs = mcentral_full_swept(c, old);
	uintptr_t sg = flip();
	/* The swept lists are now the unswept ones, spans and all. */
	ck_assert_ptr_eq(mcentral_partial_unswept(c, sg), ps);
	ck_assert_ptr_eq(mcentral_full_unswept(c, sg), fs);
	ck_assert_ptr_eq(p1->list, ps);
	ck_assert_ptr_eq(f1->list, fs);
	ck_assert_ptr_eq(f2->list, fs);
	ck_assert_uint_eq(mcentral_partial_swept(c, sg)->n, 0);
	ck_assert_uint_eq(mcentral_full_swept(c, sg)->n, 0);
	ck_assert_uint_eq(aload(&p1->sweepgen), sg - 2);
	ck_assert_uint_eq(aload(&held->sweepgen), sg + 1);
	ck_assert_uint_eq(mcentral_verify(c), 3);
	mcentral_verify_all();

	/* First the partial unswept span, swept on the way. */
	mspan *s = mcentral_cache_span(c, &err);
	ck_assert_ptr_eq(s, p1);
	check_cached(s, spc);
	ck_assert_uint_eq(s->alloc_count, 3);
	ck_assert_uint_eq(take(s, 1), 3);
	for (uintptr_t i = 0; i < s->nelems; i++)
		REQUIRE(mspan_is_free(s, i) == (i > 3), "p1 object %zu",
		        (size_t)i);
	fill(s);
	mcentral_uncache_span(c, s);
	check_listed(c, p1);

	/* Then the full unswept ones: f2 is still full and goes to the full
	 * swept list; f1 has room and comes back, at its first free object. */
	s = mcentral_cache_span(c, &err);
	ck_assert_ptr_eq(s, f1);
	check_cached(s, spc);
	ck_assert_uint_eq(s->alloc_count, s->nelems - 3);
	ck_assert_uint_eq(aload(&s->freeindex), 7);
	ck_assert_uint_eq(take(s, 2), 7);
	ck_assert(!mspan_is_free(s, 60));
	ck_assert(mspan_is_free(s, 169));
	ck_assert_uint_eq(take(s, 1), 169);
	mcentral_uncache_span(c, s);
	check_listed(c, f1);
	check_listed(c, f2);
	ck_assert_uint_eq(f2->alloc_count, f2->nelems);
	ck_assert_uint_eq(mcentral_pop_unswept(c, sg) == NULL, 1);

	/* The stale held span is swept when it comes back: object 4 stays,
	 * the other four go. */
	mcentral_uncache_span(c, held);
	check_listed(c, held);
	ck_assert_uint_eq(held->alloc_count, 1);
	for (uintptr_t i = 0; i < held->nelems; i++)
		REQUIRE(mspan_is_free(held, i) == (i != 4), "held object %zu",
		        (size_t)i);
	ck_assert_uint_eq(mcentral_verify(c), 4);
	mcentral_verify_all();

	/* Next cycle nothing of `held` is marked: cache_span sweeps it empty
	 * and hands it out (preserved, not freed). */
	sg = flip();
	s = mcentral_cache_span(c, &err);
	check_cached(s, spc);
	ck_assert_ptr_eq(s, held);
	ck_assert_uint_eq(s->alloc_count, 0);
	take(s, 1);
	mcentral_uncache_span(c, s);
	mcentral_verify_all();
}
END_TEST

/* An object of class spc as the runtime takes it: the fast path's take
 * while the window lasts, else mcache_next_free; *sp its span. */
static uintptr_t take_as_runtime(mcache *mc, spanclass spc, mspan **sp)
{
	mspan *s = mc->alloc[spc];
	uintptr_t p;
	int err = 0;

	if (s->alloc_cache) {
		p = mspan_take_cached(s);
	} else {
		p = mcache_next_free(mc, spc, spc, &s, &err);
		REQUIRE(p != 0, "mcache_next_free failed with %d", err);
	}
	*sp = s;
	return p;
}

/* The heap profiler's countdown and the allocation count, charged a
 * window at a time (alloc/mcache.h). Allocating as the runtime does (the
 * fast path's take while the window lasts, else mcache_next_free), with
 * the distances drawn from a table (mcache_prof_draw) and the runtime's
 * mcache_prof_sampled after each sample, through windows and spans:
 *   - the objects sampled (prof_span set) are exactly the ones a
 *     per-object countdown of 64 bytes each would sample;
 *   - no free slot is skipped: each fresh span hands out its slots in
 *     order (a window cut short is loaded again where it was cut);
 *   - after the cache gives its spans back, `handed` is the bytes of
 *     the objects taken and the countdown what the model has left (the
 *     slots charged and not taken were refunded), unless an object was
 *     due then (its sample dropped, the next distance already drawn). */
static const intptr_t gaps[] = {64 * 10 + 5, 0, 64 * 20 + 1, 63, 64,
                                64 * 100 + 63, 64 * 3, 1,
                                64 * 700, 64 * 63 + 32};
static size_t gap_drawn;

static intptr_t draw_gap(void)
{
	gap_drawn = (gap_drawn + 1) % ARRAY_LEN(gaps);
	return gaps[gap_drawn];
}

START_TEST(test_prof_window)
{
	const spanclass spc = make_spanclass(size_to_class(64), true);
	const size_t n = 3000; /* about 6 spans of 512 */
	mcache mc;
	size_t gap = 0, samples = 0;
	intptr_t model = gaps[0];
	uintptr_t prev = 0;
	mspan *prevs = NULL;

	heap_setup();
	mcache_init(&mc);
	mc.prof_left = gaps[0];
	gap_drawn = 0;
	mcache_prof_draw = draw_gap;
	for (size_t j = 0; j < n; j++) {
		mspan *s;
		uintptr_t p = take_as_runtime(&mc, spc, &s);

		REQUIRE(s == prevs ? p == prev + 64 : p == s->base,
		        "object %zu at %p after %p: a slot skipped", j,
		        (void *)p, (void *)prev);
		prev = p;
		prevs = s;
		model -= 64;
		bool due = model < 0;
		REQUIRE(due == (mc.prof_span != NULL), "object %zu: model %s, "
		        "cache %s", j, due ? "samples" : "does not",
		        mc.prof_span ? "samples" : "does not");
		if (due) {
			REQUIRE(mc.prof_span == s, "object %zu: not its span",
			        j);
			samples++;
			gap = (gap + 1) % ARRAY_LEN(gaps);
			model = gaps[gap];
			mcache_prof_sampled(&mc);
		}
	}
	ck_assert_uint_ge(samples, 10);
	bool due = mc.prof_due[spc / 64] >> (spc % 64) & 1;
	mcache_release_all(&mc);
	ck_assert_int_eq(mc.handed, (intptr_t)(n * 64));
	if (!due)
		ck_assert_int_eq(mc.prof_left, model);
	mcache_prof_draw = NULL;
	ck_assert_uint_eq(mcache_take_handed(&mc), n * 64);
	ck_assert_uint_eq(mcache_take_handed(&mc), 0);
}
END_TEST

/* Each byte the same chance, whatever its class: 64-byte objects with a
 * 4 KiB one every 40th, sampled at a mean of 16 KiB (exponential distances
 * from a fixed seed, so the counts are the same in every run), through
 * windows, cuts and samples as the runtime drives them. An object of size
 * z is sampled with probability 1 - exp(-z / rate) (the next distance
 * starts after it); both classes' counts come within 5% of that (the
 * 64-byte class's sigma is 1.8%). The 64-byte class came out 28% under
 * (25-34% in a program's heap profiles): when its window was cut where
 * the countdown ran out, whatever was charged next took the sample, most
 * often a 4 KiB window; and 7-13% over when the cut object was sampled
 * but the next distance only drawn then, after the other class's
 * charges in between. */
static uint64_t exp_state;

static intptr_t draw_exp(void)
{
	exp_state ^= exp_state << 13;
	exp_state ^= exp_state >> 7;
	exp_state ^= exp_state << 17;
	double u = ((double)(exp_state >> 11) + 0.5) / 9007199254740992.0;
	return (intptr_t)(-log(u) * 16384.0);
}

START_TEST(test_prof_two_classes)
{
	const spanclass cls[2] = {make_spanclass(size_to_class(64), true),
	                          make_spanclass(size_to_class(4096), true)};
	const size_t size[2] = {64, 4096}, n = 800000;
	size_t count[2] = {0}, samples[2] = {0};
	mcache mc;

	heap_setup();
	mcache_init(&mc);
	exp_state = 0x2545F4914F6CDD1DULL;
	mcache_prof_draw = draw_exp;
	mc.prof_left = draw_exp();
	for (size_t j = 0; j < n; j++) {
		int k = j % 40 == 39;
		mspan *s;

		(void)take_as_runtime(&mc, cls[k], &s);
		count[k]++;
		if (mc.prof_span) {
			REQUIRE(mc.prof_span == s, "object %zu: another span's "
			        "sample", j);
			samples[k]++;
			mcache_prof_sampled(&mc);
		}
	}
	mcache_prof_draw = NULL;
	double want[2];
	for (int k = 0; k < 2; k++) {
		want[k] = (double)count[k] * (1 - exp(-(double)size[k] /
		                                      16384.0));
		printf("# %zu-byte objects: %zu samples, %.0f expected\n",
		       size[k], samples[k], want[k]);
	}
	fflush(stdout);
	for (int k = 0; k < 2; k++)
		ck_assert_msg(fabs((double)samples[k] - want[k]) <=
		              0.05 * want[k], "%zu-byte objects: %zu samples, "
		              "%.0f expected", size[k], samples[k], want[k]);
	mcache_release_all(&mc);
}
END_TEST

/* A span that comes back to a cache with one free slot at the end of its
 * window's word: the refill charges that slot, and taking it loads the
 * next word's window, which must be charged too (it was not: a cache
 * that took 66 objects there had handed counted as 2 of them, and
 * the countdown 64 objects too high). Cache a takes 63 objects of a
 * fresh span and gives it back; cache b takes 66 and more from it. */
START_TEST(test_window_refill_word_end)
{
	const spanclass spc = make_spanclass(size_to_class(64), true);
	const intptr_t start = (intptr_t)1 << 30;
	mcache a, b;
	mspan *s = NULL;
	int err = 0;

	heap_setup();
	mcache_init(&a);
	mcache_init(&b);
	a.prof_left = b.prof_left = start;
	for (int j = 0; j < 63; j++) {
		mspan *t = a.alloc[spc];
		uintptr_t p = t->alloc_cache ? mspan_take_cached(t) :
		              mcache_next_free(&a, spc, spc, &t, &err);
		REQUIRE(p != 0, "cache a: allocation %d failed (%d)", j, err);
		s = t;
	}
	ck_assert_uint_eq(aload(&s->freeindex), 63);
	mcache_release_all(&a);
	ck_assert_int_eq(a.handed, 63 * 64);
	ck_assert_int_eq(a.prof_left, start - 63 * 64);
	for (size_t n = 1; n <= 130; n++) {
		mspan *t = b.alloc[spc];
		uintptr_t p = t->alloc_cache ? mspan_take_cached(t) :
		              mcache_next_free(&b, spc, spc, &t, &err);
		REQUIRE(p != 0, "cache b: allocation %zu failed (%d)", n, err);
		if (n == 1)
			ck_assert_ptr_eq(t, s); /* the same span, slot 63 */
		/* Each object is counted, once, by the window it came in
		 * with, whatever is left of that window. */
		intptr_t rest = (intptr_t)popcount64(t->alloc_cache) * 64;
		ck_assert_int_eq(b.handed - rest, (intptr_t)n * 64);
		ck_assert_int_eq(start - b.prof_left - rest, (intptr_t)n * 64);
	}
	mcache_release_all(&b);
	ck_assert_int_eq(b.handed, 130 * 64);
	ck_assert_int_eq(b.prof_left, start - 130 * 64);
	mcentral_verify_all();
}
END_TEST

/* A stale span with nothing marked is freed when uncached; through an
 * mcache, mcache_prepare_for_sweep hands it back. */
START_TEST(test_stale_via_mcache)
{
	const spanclass spc = make_spanclass(3, false);
	mcentral *c = &mcentral_[spc];
	mcache mc;
	mspan *s = NULL;
	int err = 0;

	heap_setup();
	mcache_init(&mc);
	for (int k = 0; k < 10; k++)
		ck_assert_uint_ne(mcache_next_free(&mc, spc, spc, &s, &err), 0);
	uintptr_t base = s->base;
	size_t spans = mheap_.stats.spans_inuse;
	mcache_prepare_for_sweep(&mc); /* no flip: nothing happens */
	ck_assert_ptr_eq(mc.alloc[spc], s);
	uintptr_t sg = flip();
	ck_assert_uint_eq(aload(&s->sweepgen), sg + 1);
	mcentral_verify_all();
	mcache_prepare_for_sweep(&mc);
	ck_assert_ptr_eq(mc.alloc[spc], &mspan_empty);
	ck_assert_uint_eq(mc.flushgen, sg);
	ck_assert_ptr_null(spanof(base));
	ck_assert_uint_eq(mheap_.stats.spans_inuse, spans - 1);
	ck_assert_uint_eq(mcentral_verify(c), 0);

	/* Again with one object marked: the span stays, partial, swept. */
	for (int k = 0; k < 10; k++)
		ck_assert_uint_ne(mcache_next_free(&mc, spc, spc, &s, &err), 0);
	set_bit(s->gcmark_bits, 9);
	sg = flip();
	mcache_prepare_for_sweep(&mc);
	check_listed(c, s);
	ck_assert_uint_eq(s->alloc_count, 1);
	ck_assert(!mspan_is_free(s, 9));
	ck_assert(mspan_is_free(s, 0));
	mcentral_verify_all();
}
END_TEST

/* An unswept span that another sweeper took in place is skipped by
 * cache_span, and the sweeper puts it on a list afterwards. */
START_TEST(test_skip_taken)
{
	const spanclass spc = make_spanclass(4, true);
	mcentral *c = &mcentral_[spc];
	int err = 0;

	heap_setup();
	mspan *f = mcentral_cache_span(c, &err);
	fill(f);
	mcentral_uncache_span(c, f);
	mspan *p = mcentral_cache_span(c, &err);
	take(p, 3);
	mcentral_uncache_span(c, p);
	set_bit(p->gcmark_bits, 0);
	set_bit(f->gcmark_bits, 0);
	uintptr_t sg = flip();
	/* A background sweeper takes p where it lies. */
	ck_assert(mspan_try_acquire(p, sg));
	mspan *s = mcentral_cache_span(c, &err);
	ck_assert_ptr_eq(s, f);
	check_cached(s, spc);
	ck_assert_uint_eq(s->alloc_count, 1);
	ck_assert_uint_eq(aload(&s->freeindex), 1);
	ck_assert_ptr_null(p->list);
	ck_assert_uint_eq(aload(&p->sweepgen), sg - 1);
	take(s, 1);
	mcentral_uncache_span(c, s);
	ck_assert(mcentral_sweep(p));
	check_listed(c, p);
	check_listed(c, f);
	ck_assert_uint_eq(p->alloc_count, 1);
	ck_assert_uint_eq(mcentral_verify(c), 2);
	mcentral_verify_all();
}
END_TEST

/* The background sweeper's pop takes partial spans before full ones. */
START_TEST(test_pop_unswept)
{
	const spanclass spc = make_spanclass(4, false);
	mcentral *c = &mcentral_[spc];
	int err = 0;

	heap_setup();
	mspan *f = mcentral_cache_span(c, &err);
	fill(f);
	mcentral_uncache_span(c, f);
	mspan *p = mcentral_cache_span(c, &err);
	take(p, 3);
	mcentral_uncache_span(c, p);
	ck_assert_ptr_null(mcentral_pop_unswept(c, heap_sg()));
	set_bit(p->gcmark_bits, 1);
	set_bit(f->gcmark_bits, 2);
	uintptr_t sg = flip();
	ck_assert_ptr_eq(mcentral_pop_unswept(c, sg), p);
	ck_assert_ptr_eq(mcentral_pop_unswept(c, sg), f);
	ck_assert_ptr_null(mcentral_pop_unswept(c, sg));
	ck_assert_ptr_null(p->list);
	ck_assert_ptr_null(f->list);
	ck_assert_uint_eq(mcentral_verify(c), 0);
	ck_assert(mspan_try_acquire(p, sg));
	ck_assert(mspan_try_acquire(f, sg));
	ck_assert(mcentral_sweep(p));
	ck_assert(mcentral_sweep(f));
	check_listed(c, p);
	check_listed(c, f);
	ck_assert(!mspan_is_free(f, 2) && mspan_is_free(f, 1));
	mcentral_verify_all();
}
END_TEST

/* Batched sweeping: mcentral_sweep_some sweeps at most max (and at most a
 * batch) spans per call, full, partial and empty ones alike, places each
 * where mcentral_sweep would (the empty ones back to the heap, the reserve
 * being off), counts the pages and spans once per batch, and leaves alone
 * a span that another sweeper took through its sweepgen after the pop. */
START_TEST(test_sweep_some)
{
	enum { N = 2 * MCENTRAL_SWEEP_BATCH + 7 };
	const spanclass spc = make_spanclass(4, false);
	mcentral *c = &mcentral_[spc];
	mspan *spans[N], *kept[N];
	size_t nkept = 0;
	int err = 0;

	heap_setup();
	mcentral_set_reserve(false);
	for (int i = 0; i < N; i++) {
		spans[i] = mcentral_cache_span(c, &err);
		ck_assert_ptr_nonnull(spans[i]);
		if (i % 3 == 0)
			fill(spans[i]);
		else
			take(spans[i], 5);
	}
	for (int i = 0; i < N; i++)
		mcentral_uncache_span(c, spans[i]);
	/* i % 3: 0 stays full (all marked), 1 keeps two objects, 2 dies. */
	for (int i = 0; i < N; i++) {
		mspan *s = spans[i];
		if (i % 3 == 0)
			for (uintptr_t j = 0; j < s->nelems; j++)
				set_bit(s->gcmark_bits, j);
		else if (i % 3 == 1)
			set_bit(s->gcmark_bits, 0), set_bit(s->gcmark_bits, 3);
	}
	uintptr_t sg = flip();
	/* Taken through its sweepgen (as a weak pointer's lookup does)
	 * while it still sits on an unswept list. */
	mspan *taken = spans[4];
	ck_assert(mspan_try_acquire(taken, sg));

	uintptr_t pages0 = aload(&mheap_.pages_swept);
	uintptr_t spans0 = aload(&mheap_.spans_swept);
	ck_assert_uint_eq(mcentral_sweep_some(c, sg, 5), 5);
	ck_assert_uint_eq(aload(&mheap_.spans_swept) - spans0, 5);
	ck_assert_uint_eq(aload(&mheap_.pages_swept) - pages0,
	                  5 * class_to_npages[4]);
	size_t total = 5, n;
	while ((n = mcentral_sweep_some(c, sg, 1000)) != 0) {
		ck_assert_uint_le(n, MCENTRAL_SWEEP_BATCH);
		total += n;
	}
	ck_assert_uint_eq(total, N - 1);
	ck_assert_uint_eq(aload(&mheap_.spans_swept) - spans0, N - 1);
	/* The taken span is still its taker's: unswept, on no list. */
	ck_assert_uint_eq(aload(&taken->sweepgen), sg - 1);
	ck_assert_ptr_null(taken->list);
	ck_assert(mcentral_sweep(taken));
	for (int i = 0; i < N; i++) {
		mspan *s = spans[i];
		if (i % 3 == 2) {
			ck_assert_uint_ne(s->state, MSPAN_INUSE);
			continue;
		}
		ck_assert_uint_eq(s->alloc_count, i % 3 == 0 ? s->nelems : 2);
		ck_assert(!mspan_is_free(s, 0));
		ck_assert(i % 3 == 0 || mspan_is_free(s, 1));
		kept[nkept++] = s;
	}
	check_lists_exactly(c, kept, nkept);
	ck_assert_uint_eq(mcentral_sweep_some(c, sg, 1), 0);
	mcentral_verify_all();
}
END_TEST

/* The empty-span reserve keeps a span for one sweep: one that no cache
 * took before the next sweep goes back to the heap, though the class's
 * demand (spans handed out, here only partial ones, which are used
 * first) would let it keep more. Without that rule the empties of a burst
 * stayed with their class for good (30 MB of a 56 MB heap). */
START_TEST(test_reserve_keeps_once)
{
	enum { N = 8, M = 16 };
	const spanclass spc = make_spanclass(4, false);
	mcentral *c = &mcentral_[spc];
	mspan *dead[N], *live[M];
	int err = 0;

	heap_setup();
	mcentral_set_reserve(true);
	for (int i = 0; i < M; i++) {
		live[i] = mcentral_cache_span(c, &err);
		ck_assert_ptr_nonnull(live[i]);
		take(live[i], 5);
	}
	for (int i = 0; i < N; i++) {
		dead[i] = mcentral_cache_span(c, &err);
		ck_assert_ptr_nonnull(dead[i]);
		take(dead[i], 5);
	}
	for (int i = 0; i < M; i++)
		mcentral_uncache_span(c, live[i]);
	for (int i = 0; i < N; i++)
		mcentral_uncache_span(c, dead[i]);
	/* Each generation: the live spans' objects survive, the dead
	 * spans' die (they are empty from the first sweep on). */
	for (int gen = 0; gen < 3; gen++) {
		for (int i = 0; i < M; i++)
			for (uintptr_t j = 0; j < live[i]->nelems; j++)
				if (!mspan_is_free(live[i], j))
					set_bit(live[i]->gcmark_bits, j);
		uintptr_t sg = flip();
		while (mcentral_sweep_some(c, sg, 1000))
			;
		for (int i = 0; i < N; i++)
			ck_assert_msg((dead[i]->state == MSPAN_INUSE) ==
			              (gen == 0), "generation %d: empty span "
			              "%d %s", gen, i, gen == 0 ? "not kept" :
			              "kept again, though no cache took it");
		if (gen > 0)
			break;
		/* The caches take the partial spans, which come first,
		 * and give them back: the class's demand is M. */
		mspan *got[M];
		for (int i = 0; i < M; i++) {
			got[i] = mcentral_cache_span(c, &err);
			ck_assert_ptr_nonnull(got[i]);
			bool partial = false;
			for (int k = 0; k < M; k++)
				partial |= got[i] == live[k];
			ck_assert_msg(partial, "an empty span before the "
			              "partial ones");
		}
		for (int i = 0; i < M; i++)
			mcentral_uncache_span(c, got[i]);
	}
	mcentral_set_reserve(false);
	mcentral_verify_all();
}
END_TEST

static Suite *mcentral_suite(void)
{
	Suite *s = suite_create("mcentral");
	TCase *tc = tcase_create("lists");

	tcase_add_test(tc, test_mcache_cycles);
	tcase_add_test(tc, test_cache_span_never_full);
	tcase_add_test(tc, test_reserve_keeps_once);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("sweepgen");
	tcase_add_test(tc, test_flip);
	tcase_add_test(tc, test_stale_via_mcache);
	tcase_add_test(tc, test_prof_window);
	tcase_add_test(tc, test_prof_two_classes);
	tcase_add_test(tc, test_window_refill_word_end);
	tcase_add_test(tc, test_skip_taken);
	tcase_add_test(tc, test_pop_unswept);
	tcase_add_test(tc, test_sweep_some);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(mcentral_suite());
}
