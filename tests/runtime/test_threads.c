/* tests/runtime/test_threads.c: threads and the allocator. Four threads
 * attach and allocate concurrently (tiny, small scan and noscan, large),
 * each object filled with a pattern of its thread, while an unattached
 * thread looks objects up with gc_base/gc_size; afterwards every pattern is
 * intact, no two objects overlap, and once the threads detach the heap
 * verifies and every span is back on an mcentral list. Also: threads that
 * attach and detach 200 times while others allocate, threads that exit
 * without detaching (detached automatically, their spans returned), the
 * first attach racing in several threads, many short attachments sharing
 * the same classes, gc_thread_is_attached, and the time-to-safepoint
 * figures of a stop held up by a thread that does not reach a safepoint;
 * and the names the library gives its own threads. */
#include "tests/testing.h"

#include "runtime/runtime.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>

#define MiB ((size_t)1 << 20)
#define NWORKERS 4

/* Failures in threads other than the test's own are recorded here and
 * asserted by the test's thread (check's asserts are not thread-safe). */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int nfail;
static char first_fail[512];

static PRINTF_LIKE(1, 2) void tfail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (nfail++ == 0) {
		va_start(ap, fmt);
		vsnprintf(first_fail, sizeof(first_fail), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
}

static void check_no_failures(void)
{
	pthread_mutex_lock(&fail_lock);
	int n = nfail;
	pthread_mutex_unlock(&fail_lock);
	ck_assert_msg(n == 0, "%d failures in threads; first: %s", n,
	              first_fail);
}

static gc_type *t_ptr8, *t_pair, *t_tailptr;

static void setup(void)
{
	size_t zero = 0;

	sys_fatal_exit_code = 86;
	t_ptr8 = gc_type_new("ptr8", 8, &zero, 1, GCHEAP_TAIL_REPEAT);
	t_pair = gc_type_new("pair", 16, &zero, 1, GCHEAP_TAIL_REPEAT);
	t_tailptr = gc_type_new("tailptr", 1, NULL, 0, GCHEAP_TAIL_POINTERS);
	ck_assert(t_ptr8 && t_pair && t_tailptr);
}

static void teardown(void)
{
}

/* Wait at a barrier; an attached thread counts as blocked meanwhile, so
 * that it never stalls a collector. */
static void barrier_wait(pthread_barrier_t *b)
{
	bool attached = gc_thread_is_attached();

	if (attached)
		gc_blocking_begin();
	pthread_barrier_wait(b);
	if (attached)
		gc_blocking_end();
}

static size_t nthreads(void)
{
	mutex_lock(&runtime_.lock);
	size_t n = runtime_.nthreads;
	mutex_unlock(&runtime_.lock);
	return n;
}

/* Every span in use is on exactly one mcentral list (no thread caches
 * any); large spans sit on the lists of class 0. */
static void check_spans_on_lists(void)
{
	uintptr_t listed = 0, large = 0;

	for (unsigned i = 0; i < NUM_SPANCLASSES; i++) {
		uintptr_t n = mcentral_verify(&mcentral_[i]);
		listed += n;
		if (spanclass_sizeclass((spanclass)i) == 0)
			large += n;
	}
	mutex_lock(&mheap_.lock);
	size_t inuse = mheap_.stats.spans_inuse;
	size_t nlarge = mheap_.stats.large_objects;
	mutex_unlock(&mheap_.lock);
	ck_assert_msg(listed == inuse, "mcentral lists hold %zu spans, %zu "
	              "in use: spans were lost", (size_t)listed, inuse);
	ck_assert_msg(large == nlarge, "%zu large spans listed, %zu large "
	              "objects", (size_t)large, nlarge);
}

/* ---- Objects with patterns ----------------------------------------------- */

typedef struct obj {
	unsigned char *p;
	size_t size;
	uint32_t id;
} obj;

static unsigned char pat(uint32_t id, size_t k)
{
	return (unsigned char)((id * 2654435761u) >> 24) ^ (unsigned char)k;
}

static void fill(const obj *o)
{
	for (size_t k = 0; k < o->size; k++)
		o->p[k] = pat(o->id, k);
}

static bool intact(const obj *o)
{
	for (size_t k = 0; k < o->size; k++)
		if (o->p[k] != pat(o->id, k))
			return false;
	return true;
}

static bool is_zero(const unsigned char *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (p[k])
			return false;
	return true;
}

/* A request: mostly small, some tiny and scan, a few large. */
static void pick(test_rng *r, size_t *size, const gc_type **t)
{
	unsigned k = (unsigned)rng_below(r, 1000);

	*t = NULL;
	if (k < 300) {
		*size = 1 + rng_below(r, 15);
	} else if (k < 600) {
		*size = 16 + rng_below(r, 1009);
	} else if (k < 900) {
		*size = 8 + rng_below(r, 2041);
		*t = rng_below(r, 2) ? t_ptr8 : t_tailptr;
	} else if (k < 998) {
		*size = 2048 + rng_below(r, MAX_SMALL_SIZE - 2047);
		*t = rng_below(r, 2) ? NULL : t_pair;
	} else {
		*size = MAX_SMALL_SIZE + 1 + rng_below(r, MiB);
		*t = rng_below(r, 2) ? NULL : t_pair;
	}
}

/* Allocate and check one object; NULL on failure (recorded). */
static unsigned char *alloc_one(size_t size, const gc_type *t)
{
	unsigned char *p = gc_alloc(size, t);

	if (!p) {
		tfail("gc_alloc(%zu) = NULL: %s", size,
		     gc_strerror(gc_last_error()));
		return NULL;
	}
	if (!is_zero(p, size))
		tfail("gc_alloc(%zu) = %p is not zeroed", size, (void *)p);
	uintptr_t base = (uintptr_t)gc_base(p);
	if (!base || (uintptr_t)p + size > base + gc_size(p))
		tfail("object %p of %zu bytes: base %p size %zu", (void *)p,
		     size, (void *)base, gc_size(p));
	return p;
}

typedef struct range {
	uintptr_t lo, hi;
} range;

static int range_cmp(const void *a, const void *b)
{
	const range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void check_disjoint(const obj *const *lists, const size_t *counts,
                           size_t nlists)
{
	size_t total = 0, n = 0;

	for (size_t i = 0; i < nlists; i++)
		total += counts[i];
	range *r = malloc(total * sizeof(*r) + 1);
	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < nlists; i++)
		for (size_t j = 0; j < counts[i]; j++) {
			const obj *o = &lists[i][j];
			r[n++] = (range){(uintptr_t)o->p,
			                 (uintptr_t)o->p + o->size};
		}
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++)
		if (r[i - 1].hi > r[i].lo)
			ck_abort_msg("objects [%p, %p) and [%p, %p) overlap",
			             (void *)r[i - 1].lo, (void *)r[i - 1].hi,
			             (void *)r[i].lo, (void *)r[i].hi);
	free(r);
}

/* ---- Concurrent allocation ----------------------------------------------- */

enum { PER_WORKER = TSAN_CUT(20000, 4) };

typedef struct worker {
	pthread_t th;
	unsigned id;
	obj *objs;
	size_t n;              /* objects allocated so far */
	atomic_word published; /* objects the reader may look at */
} worker;

static worker workers[NWORKERS];
static pthread_barrier_t allocated, checked;
static atomic_word stop_reader;

static void *worker_main(void *arg)
{
	worker *w = arg;
	test_rng r = rng_make(100 + w->id);

	if (gc_thread_attach() != GCHEAP_OK)
		tfail("worker %u: attach failed", w->id);
	if (!gc_thread_is_attached())
		tfail("worker %u: not attached after attach", w->id);
	for (size_t i = 0; i < PER_WORKER; i++) {
		size_t size;
		const gc_type *t;
		pick(&r, &size, &t);
		unsigned char *p = alloc_one(size, t);
		if (!p)
			break;
		obj *o = &w->objs[i];
		*o = (obj){p, size, (uint32_t)(w->id << 24 | i)};
		fill(o);
		w->n = i + 1;
		astore_rel(&w->published, i + 1);
		/* Now and then, recheck the latest objects. */
		if (i % 1000 == 999)
			for (size_t j = i - 999; j <= i; j++)
				if (!intact(&w->objs[j]))
					tfail("worker %u: object %zu (%p) "
					     "changed while allocating",
					     w->id, j, (void *)w->objs[j].p);
	}
	barrier_wait(&allocated);
	/* The test's thread checks everything here. */
	barrier_wait(&checked);
	for (size_t i = 0; i < w->n; i++)
		if (!intact(&w->objs[i]))
			tfail("worker %u: object %zu changed", w->id, i);
	if (gc_thread_detach() != GCHEAP_OK)
		tfail("worker %u: detach failed", w->id);
	if (gc_thread_is_attached())
		tfail("worker %u: attached after detach", w->id);
	return NULL;
}

/* Unattached: look up published objects while they are being allocated
 * around them. */
static void *reader_main(void *arg)
{
	test_rng r = rng_make(99);
	unsigned long looks = 0, after = 0;

	(void)arg;
	while (!aload(&stop_reader) || (looks < 1000 && after++ < 1000000)) {
		worker *w = &workers[rng_below(&r, NWORKERS)];
		size_t n = aload_acq(&w->published);
		if (!n)
			continue;
		const obj *o = &w->objs[rng_below(&r, n)];
		size_t k = rng_below(&r, o->size);
		unsigned char *b = gc_base(o->p + k);
		size_t sz = gc_size(o->p + k);
		if (!b || b > o->p || o->p + o->size > b + sz)
			tfail("reader: object %p (+%zu) of %zu bytes: base %p "
			     "size %zu", (void *)o->p, k, o->size, (void *)b,
			     sz);
		looks++;
	}
	if (gc_thread_is_attached())
		tfail("reader: attached");
	return NULL;
}

START_TEST(test_concurrent_alloc)
{
	pthread_t reader;
	const obj *lists[NWORKERS];
	size_t counts[NWORKERS];

	gc_disable(); /* objects are held out of the collector's sight */
	pthread_barrier_init(&allocated, NULL, NWORKERS + 1);
	pthread_barrier_init(&checked, NULL, NWORKERS + 1);
	ck_assert_int_eq(pthread_create(&reader, NULL, reader_main, NULL), 0);
	for (unsigned i = 0; i < NWORKERS; i++) {
		workers[i].id = i;
		workers[i].objs = calloc(PER_WORKER, sizeof(obj));
		ck_assert_ptr_nonnull(workers[i].objs);
		ck_assert_int_eq(pthread_create(&workers[i].th, NULL,
		                                worker_main, &workers[i]), 0);
	}
	barrier_wait(&allocated);
	astore(&stop_reader, 1);
	ck_assert_int_eq(pthread_join(reader, NULL), 0);
	check_no_failures();
	/* All attached and done: every object intact, none overlapping. */
	ck_assert_uint_eq(nthreads(), NWORKERS);
	for (unsigned i = 0; i < NWORKERS; i++) {
		ck_assert_uint_eq(workers[i].n, PER_WORKER);
		for (size_t j = 0; j < workers[i].n; j++)
			if (!intact(&workers[i].objs[j]))
				ck_abort_msg("worker %u object %zu (%p) was "
				             "overwritten", i, j,
				             (void *)workers[i].objs[j].p);
		lists[i] = workers[i].objs;
		counts[i] = workers[i].n;
	}
	check_disjoint(lists, counts, NWORKERS);
	barrier_wait(&checked);
	for (unsigned i = 0; i < NWORKERS; i++)
		ck_assert_int_eq(pthread_join(workers[i].th, NULL), 0);
	check_no_failures();
	/* After the join the objects are still there. */
	for (unsigned i = 0; i < NWORKERS; i++)
		for (size_t j = 0; j < workers[i].n; j++)
			if (!intact(&workers[i].objs[j]))
				ck_abort_msg("worker %u object %zu changed "
				             "after detach", i, j);
	ck_assert_uint_eq(nthreads(), 0);
	mcentral_verify_all();
	check_spans_on_lists();
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_ge(st.alloc_objects, NWORKERS * PER_WORKER);
	for (unsigned i = 0; i < NWORKERS; i++)
		free(workers[i].objs);
	pthread_barrier_destroy(&allocated);
	pthread_barrier_destroy(&checked);
}
END_TEST

/* ---- Attach/detach churn ------------------------------------------------- */

enum { CHURN_ROUNDS = 200, CHURN_PER_ROUND = 12, NCHURN = 2, NBUSY = 2 };

typedef struct churner {
	pthread_t th;
	unsigned id;
	obj *objs;
	size_t cap; /* room in objs */
	size_t n;
} churner;

static churner churners[NCHURN + NBUSY];
static atomic_word churn_done;

/* Attach, allocate a few objects, check them, detach; CHURN_ROUNDS
 * times. */
static void *churn_main(void *arg)
{
	churner *c = arg;
	test_rng r = rng_make(200 + c->id);

	for (int round = 0; round < CHURN_ROUNDS; round++) {
		if (gc_thread_is_attached())
			tfail("churn %u: attached before attach", c->id);
		if (gc_thread_attach() != GCHEAP_OK) {
			tfail("churn %u: attach failed", c->id);
			break;
		}
		size_t first = c->n;
		for (int k = 0; k < CHURN_PER_ROUND; k++) {
			size_t size;
			const gc_type *t;
			pick(&r, &size, &t);
			unsigned char *p = alloc_one(size, t);
			if (!p)
				break;
			obj *o = &c->objs[c->n];
			*o = (obj){p, size,
			           (uint32_t)((0x80u | c->id) << 24 | c->n)};
			fill(o);
			c->n++;
		}
		for (size_t j = first; j < c->n; j++)
			if (!intact(&c->objs[j]))
				tfail("churn %u: object %zu changed", c->id, j);
		if (gc_thread_detach() != GCHEAP_OK)
			tfail("churn %u: detach failed", c->id);
		if (gc_thread_is_attached())
			tfail("churn %u: attached after detach", c->id);
		if (gc_alloc(16, NULL) != NULL ||
		    gc_last_error() != GCHEAP_ERR_NOT_ATTACHED)
			tfail("churn %u: allocated while detached", c->id);
	}
	afetch_add(&churn_done, 1);
	return NULL;
}

/* Stay attached and allocate until the churners are done. */
static void *busy_main(void *arg)
{
	churner *c = arg;
	test_rng r = rng_make(300 + c->id);

	if (gc_thread_attach() != GCHEAP_OK)
		tfail("busy %u: attach failed", c->id);
	while (aload(&churn_done) < NCHURN) {
		size_t size;
		const gc_type *t;
		pick(&r, &size, &t);
		if (size > MAX_SMALL_SIZE)
			size = 100;
		unsigned char *p = alloc_one(size, t);
		if (!p)
			break;
		if (c->n == c->cap)
			continue; /* keep the others busy, unrecorded */
		obj *o = &c->objs[c->n];
		*o = (obj){p, size, (uint32_t)((0x40u | c->id) << 24 | c->n)};
		fill(o);
		c->n++;
	}
	if (gc_thread_detach() != GCHEAP_OK)
		tfail("busy %u: detach failed", c->id);
	return NULL;
}

static void silent_error(gc_status code, const char *msg, void *data)
{
	(void)code;
	(void)msg;
	(void)data;
}

START_TEST(test_attach_detach_churn)
{
	const obj *lists[NCHURN + NBUSY];
	size_t counts[NCHURN + NBUSY];

	gc_disable(); /* objects are held out of the collector's sight */
	gc_set_error_handler(silent_error, NULL);
	for (unsigned i = 0; i < NCHURN + NBUSY; i++) {
		churners[i].id = i;
		churners[i].cap = i < NCHURN ? CHURN_ROUNDS * CHURN_PER_ROUND :
		                               200000;
		churners[i].objs = calloc(churners[i].cap, sizeof(obj));
		ck_assert_ptr_nonnull(churners[i].objs);
		ck_assert_int_eq(pthread_create(&churners[i].th, NULL,
		                                i < NCHURN ? churn_main :
		                                             busy_main,
		                                &churners[i]), 0);
	}
	for (unsigned i = 0; i < NCHURN + NBUSY; i++)
		ck_assert_int_eq(pthread_join(churners[i].th, NULL), 0);
	check_no_failures();
	ck_assert_uint_eq(aload(&churn_done), NCHURN);
	for (unsigned i = 0; i < NCHURN + NBUSY; i++) {
		churner *c = &churners[i];
		if (i < NCHURN)
			ck_assert_uint_eq(c->n,
			                  CHURN_ROUNDS * CHURN_PER_ROUND);
		for (size_t j = 0; j < c->n; j++)
			if (!intact(&c->objs[j]))
				ck_abort_msg("thread %u object %zu changed", i,
				             j);
		lists[i] = c->objs;
		counts[i] = c->n;
	}
	check_disjoint(lists, counts, NCHURN + NBUSY);
	ck_assert_uint_eq(nthreads(), 0);
	mcentral_verify_all();
	check_spans_on_lists();
	for (unsigned i = 0; i < NCHURN + NBUSY; i++)
		free(churners[i].objs);
}
END_TEST

/* Many short attachments allocating from the same classes: each detach
 * returns partial spans to mcentral and the next attach takes them again,
 * so the central lists are pushed and popped from all threads at once. */
enum { HOT_THREADS = 4, HOT_ROUNDS = 20000, HOT_PER_ROUND = 3 };

static obj hot_objs[HOT_THREADS][HOT_ROUNDS * HOT_PER_ROUND];
static pthread_barrier_t hot_start;

static void *hot_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	size_t n = 0;
	static const size_t sizes[HOT_PER_ROUND] = {48, 5, 48};

	barrier_wait(&hot_start);
	for (int round = 0; round < HOT_ROUNDS; round++) {
		if (gc_thread_attach() != GCHEAP_OK) {
			tfail("hot %u: attach failed", id);
			return NULL;
		}
		for (int k = 0; k < HOT_PER_ROUND; k++) {
			unsigned char *p = alloc_one(sizes[k], NULL);
			if (!p)
				return NULL;
			obj *o = &hot_objs[id][n];
			*o = (obj){p, sizes[k], (uint32_t)(id << 24 | n)};
			fill(o);
			n++;
		}
		if (gc_thread_detach() != GCHEAP_OK)
			tfail("hot %u: detach failed", id);
	}
	for (size_t j = 0; j < n; j++)
		if (!intact(&hot_objs[id][j]))
			tfail("hot %u: object %zu changed", id, j);
	return NULL;
}

START_TEST(test_churn_same_class)
{
	pthread_t th[HOT_THREADS];
	const obj *lists[HOT_THREADS];
	size_t counts[HOT_THREADS];

	gc_disable(); /* objects are held out of the collector's sight */
	pthread_barrier_init(&hot_start, NULL, HOT_THREADS);
	for (unsigned i = 0; i < HOT_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hot_main,
		                                (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < HOT_THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	check_no_failures();
	for (unsigned i = 0; i < HOT_THREADS; i++) {
		lists[i] = hot_objs[i];
		counts[i] = HOT_ROUNDS * HOT_PER_ROUND;
	}
	check_disjoint(lists, counts, HOT_THREADS);
	ck_assert_uint_eq(nthreads(), 0);
	mcentral_verify_all();
	check_spans_on_lists();
	pthread_barrier_destroy(&hot_start);
}
END_TEST

/* ---- Exit without detach ------------------------------------------------- */

typedef struct exiter {
	pthread_t th;
	unsigned id;
	bool redo;     /* detach and attach again before exiting */
	size_t nobjs;  /* non-tiny objects allocated */
	obj objs[64];
} exiter;

/* Allocate objects of several classes (so that spans are cached) and
 * exit attached. */
static void *exit_main(void *arg)
{
	exiter *e = arg;

	if (gc_thread_attach() != GCHEAP_OK)
		tfail("exiter %u: attach failed", e->id);
	if (e->redo) {
		if (gc_alloc(100, NULL) == NULL)
			tfail("exiter %u: allocation failed", e->id);
		e->nobjs++;
		if (gc_thread_detach() != GCHEAP_OK ||
		    gc_thread_attach() != GCHEAP_OK)
			tfail("exiter %u: detach and attach failed", e->id);
	}
	for (size_t i = 0; i < ARRAY_LEN(e->objs); i++) {
		size_t size = 16 + i * 97;
		const gc_type *t = i % 3 ? NULL : t_pair;
		if (i == 5)
			size = 50000; /* one large object */
		unsigned char *p = alloc_one(size, t);
		if (!p)
			break;
		e->objs[i] = (obj){p, size, (uint32_t)(e->id << 16 | i)};
		fill(&e->objs[i]);
		e->nobjs++;
	}
	if (!gc_thread_is_attached())
		tfail("exiter %u: not attached at exit", e->id);
	return NULL; /* no detach */
}

static void run_exiters(exiter *ex, unsigned n)
{
	size_t before = nthreads();
	gc_stats s0;

	ck_assert_int_eq(gc_read_stats(&s0, sizeof(s0)), GCHEAP_OK);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&ex[i].th, NULL, exit_main,
		                                &ex[i]), 0);
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(ex[i].th, NULL), 0);
	check_no_failures();
	ck_assert_msg(nthreads() == before, "%zu threads registered after %u "
	              "exited attached, %zu before", nthreads(), n, before);
	gc_stats s1;
	ck_assert_int_eq(gc_read_stats(&s1, sizeof(s1)), GCHEAP_OK);
	ck_assert_uint_eq(s1.threads, before);
	/* Their caches were released: only what they handed out counts. */
	size_t objs = 0;
	for (unsigned i = 0; i < n; i++)
		objs += ex[i].nobjs;
	ck_assert_msg(s1.alloc_objects - s0.alloc_objects == objs,
	              "%zu objects allocated, stats count %zu", objs,
	              (size_t)(s1.alloc_objects - s0.alloc_objects));
	for (unsigned i = 0; i < n; i++)
		for (size_t j = 0; j < ex[i].nobjs && j < ARRAY_LEN(ex[i].objs);
		     j++)
			if (ex[i].objs[j].p && !intact(&ex[i].objs[j]))
				ck_abort_msg("exiter %u object %zu changed", i,
				             j);
}

START_TEST(test_exit_without_detach)
{
	exiter *ex = calloc(8, sizeof(*ex));

	gc_disable(); /* objects are held out of the collector's sight */
	ck_assert_ptr_nonnull(ex);
	ex[0].id = 0;
	run_exiters(ex, 1);
	mcentral_verify_all();
	check_spans_on_lists();
	/* Several at once, some after a detach and re-attach. */
	memset(ex, 0, 8 * sizeof(*ex));
	for (unsigned i = 0; i < 8; i++) {
		ex[i].id = i + 1;
		ex[i].redo = i % 2;
	}
	run_exiters(ex, 8);
	mcentral_verify_all();
	check_spans_on_lists();
	free(ex);
}
END_TEST

/* The same with the test's thread attached and allocating meanwhile. */
START_TEST(test_exit_while_others_attached)
{
	exiter *ex = calloc(4, sizeof(*ex));

	gc_disable(); /* objects are held out of the collector's sight */
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	unsigned char *p = gc_alloc(200, NULL);
	ck_assert_ptr_nonnull(p);
	for (unsigned i = 0; i < 4; i++)
		ex[i].id = 10 + i;
	run_exiters(ex, 4);
	ck_assert_uint_eq(nthreads(), 1);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	/* The test's own cache is untouched: the next object follows. */
	ck_assert_ptr_eq(gc_alloc(200, NULL), p + 208);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	mcentral_verify_all();
	check_spans_on_lists();
	free(ex);
}
END_TEST

/* pthread_cancel of attached threads: the library's waits are not
 * cancellation points. A thread cancelled inside pthread_cond_wait (a
 * cycle's end in gc_collect, a stop in the allocation path) left with
 * the world's lock held, its exit's detach then waited for that lock,
 * and so did every other thread. The cancel now takes effect at the
 * victim's own cancellation point (pthread_testcancel), where it exits
 * attached, which detaches it. */
static atomic_word cancel_stop;

static void *cancel_victim(void *arg)
{
	int collects = (int)(intptr_t)arg;

	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	for (;;) {
		if (collects)
			gc_collect();
		else
			for (int i = 0; i < 1000; i++)
				(void)gc_alloc(64 + (size_t)i % 512, NULL);
		pthread_testcancel();
	}
	return NULL;
}

static void *cancel_collector(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	while (!aload(&cancel_stop))
		gc_collect();
	gc_thread_detach();
	return NULL;
}

START_TEST(test_cancel_attached)
{
	pthread_t col;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_int_eq(pthread_create(&col, NULL, cancel_collector, NULL),
	                 0);
	for (int r = 0; r < 40; r++) {
		pthread_t v;
		ck_assert_int_eq(pthread_create(&v, NULL, cancel_victim,
		                                (void *)(intptr_t)(r % 2)),
		                 0);
		usleep(1000 + (unsigned)(r % 5) * 700);
		pthread_cancel(v);
		void *res = NULL;
		gc_blocking_begin();
		pthread_join(v, &res);
		gc_blocking_end();
		ck_assert_ptr_eq(res, PTHREAD_CANCELED);
		for (int i = 0; i < 2000; i++)
			ck_assert_ptr_nonnull(gc_alloc(48, NULL));
		gc_collect();
	}
	astore(&cancel_stop, 1);
	gc_blocking_begin();
	pthread_join(col, NULL);
	gc_blocking_end();
	ck_assert_uint_eq(nthreads(), 1);
	gc_thread_detach();
}
END_TEST

/* The warning about a thread that holds a stop up says what the kernel
 * says it is doing: running (a loop without safepoints) or asleep (a
 * read, here; a lock held by a thread that waits for the stop would be
 * a deadlock, and this line all the program hears of it). The collection
 * waits until an unattached thread lets the holder go. */
static atomic_word holder_spin = 1;

static void *stop_holder(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	while (aload(&holder_spin)) /* attached, running, no safepoint */
		cpu_relax();
	gc_safepoint();
	gc_thread_detach();
	return NULL;
}

static int why_pipe[2];

/* Attached, asleep in a read until the releaser writes. */
static void *read_holder(void *arg)
{
	char c;

	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	ssize_t r = read(why_pipe[0], &c, 1);
	(void)r;
	gc_safepoint();
	gc_thread_detach();
	return NULL;
}

static void *why_releaser(void *arg)
{
	(void)arg;
	usleep(300000);
	astore(&holder_spin, 0);
	ssize_t w = write(why_pipe[1], "x", 1);
	(void)w;
	return NULL;
}

static void check_stall_says(bool asleep, const char *want)
{
	pthread_t h, r;
	char buf[4096];
	stderr_capture c;

	ck_assert_int_eq(pipe(why_pipe), 0);
	astore(&holder_spin, 1);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	options_.stopwarn_ms = 50; /* after the options are read */
	stderr_capture_begin(&c);
	ck_assert_int_eq(pthread_create(&h, NULL, asleep ? read_holder :
	                                stop_holder, NULL), 0);
	usleep(50000);
	ck_assert_int_eq(pthread_create(&r, NULL, why_releaser, NULL), 0);
	gc_collect(); /* held up until the releaser runs */
	stderr_capture_end(&c, buf, sizeof(buf));
	gc_blocking_begin();
	pthread_join(r, NULL);
	pthread_join(h, NULL);
	gc_blocking_end();
	ck_assert_msg(strstr(buf, "to reach a safepoint") &&
	              strstr(buf, want), "the warning was: %s", buf);
	gc_thread_detach();
}

START_TEST(test_stopwarn_running)
{
	check_stall_says(false, "it is running: call gc_safepoint");
}
END_TEST

START_TEST(test_stopwarn_asleep)
{
	check_stall_says(true, "it is asleep in the kernel");
}
END_TEST

/* A cancel pending on a thread that stops the world: the warning about a
 * thread that holds the stop up (stopwarn) is a write to stderr, a
 * cancellation point, made with the registry and world_lock held; the
 * cancel took effect there, and every thread then waited for the locks
 * for ever. The stopper now finishes its collection. */
static void *stop_starter(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	gc_collect(); /* waits for the holder, warning meanwhile */
	gc_thread_detach();
	pthread_testcancel();
	return NULL;
}

START_TEST(test_cancel_while_stopping)
{
	pthread_t h, s;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	options_.stopwarn_ms = 50; /* after the options are read */
	ck_assert_int_eq(pthread_create(&h, NULL, stop_holder, NULL), 0);
	usleep(50000);
	ck_assert_int_eq(pthread_create(&s, NULL, stop_starter, NULL), 0);
	usleep(20000);
	pthread_cancel(s);
	usleep(200000); /* the warnings are written meanwhile */
	astore(&holder_spin, 0);
	void *res = NULL;
	gc_blocking_begin();
	pthread_join(s, &res);
	pthread_join(h, NULL);
	gc_blocking_end();
	ck_assert_ptr_eq(res, PTHREAD_CANCELED);
	gc_collect();
	ck_assert_uint_eq(nthreads(), 1);
	gc_thread_detach();
}
END_TEST

/* Two attached threads start and stop the stats export over and over in
 * verify mode, where reading the stats stops the world: the first
 * snapshot was read with the exporter's lock held, so the stop waited
 * for the other thread, which waited for that lock (for ever). */
static atomic_word export_starts;

static void *export_churn(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	for (int i = 0; i < 300; i++) {
		if (gc_export_start(5) != GCHEAP_OK)
			break;
		afetch_add(&export_starts, 1);
		gc_export_stop();
	}
	gc_thread_detach();
	return NULL;
}

/* ---- fork() -------------------------------------------------------------- */

/* A child of fork() that calls exit() (after a failed exec, the usual
 * idiom) runs the parent's atexit handlers: the exporter's removed the
 * parent's stats file, and gcstat lost the parent for good. */
START_TEST(test_fork_child_exit_keeps_export)
{
	char dir[] = "/tmp/test_threads.XXXXXX", path[128];
	int status;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	options_.export_dir = strdup(dir); /* after the options are read */
	ck_assert_int_eq(gc_export_start(100), GCHEAP_OK);
	snprintf(path, sizeof path, "%s/%ld", dir, (long)getpid());
	ck_assert_int_eq(access(path, F_OK), 0);
	pid_t c = fork();
	ck_assert_int_ge(c, 0);
	if (c == 0) {
		alarm(10);
		/* The atexit handlers run, in the child: in the checked and
		 * release builds. Under the sanitizers their exit-time work
		 * in a child of a threaded process (the leak check, with the
		 * parent's threads still in its registry) hung or took the
		 * test's process down (ASan's CI leg, twice): no exit()
		 * there, and the test checks only the file. */
		if (UNDER_SANITIZER)
			_exit(0);
		exit(0);
	}
	gc_blocking_begin();
	ck_assert_int_eq(waitpid(c, &status, 0), c);
	gc_blocking_end();
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "the child's exit: status %#x", status);
	ck_assert_msg(access(path, F_OK) == 0, "the child's exit removed %s",
	              path);
	gc_export_stop();
	gc_thread_detach();
	rmdir(dir);
}
END_TEST

/* A heap call in such a child waited for collector threads that are not
 * there, for ever; now it ends the child with a message that says why.
 * The parent has a second attached thread (allocating, so that the
 * child's own cycle would wait for it: the check must come before).
 * `which`: 0 gc_collect, 1 gc_alloc, 2 gc_thread_attach in the child of
 * an unattached thread's fork. */
static atomic_word fork_spin_stop;

static void *fork_spinner(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	while (!aload_acq(&fork_spin_stop))
		(void)gc_alloc(64, NULL);
	gc_thread_detach();
	return NULL;
}

static void *fork_unattached(void *arg)
{
	pid_t *c = arg;

	*c = fork();
	if (*c == 0) {
		alarm(20);
		sys_fatal_exit_code = 77;
		(void)gc_thread_attach();
		_exit(0);
	}
	return NULL;
}

static void fork_and_call(int which)
{
	char buf[512];
	int status;
	pthread_t sp;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	astore(&fork_spin_stop, 0);
	ck_assert_int_eq(pthread_create(&sp, NULL, fork_spinner, NULL), 0);
	stderr_capture cap;
	stderr_capture_begin(&cap);
	pid_t c = -1;
	if (which == 2) {
		pthread_t u;
		gc_blocking_begin();
		pthread_create(&u, NULL, fork_unattached, &c);
		pthread_join(u, NULL);
		gc_blocking_end();
	} else {
		c = fork();
	}
	if (c == 0) {
		alarm(20); /* a hang ends in SIGALRM, not in the test's
		            * timeout */
		sys_fatal_exit_code = 77;
		if (which == 0)
			gc_collect();
		else
			for (int i = 0; i < 100000; i++)
				(void)gc_alloc(1024, NULL);
		_exit(0);
	}
	gc_blocking_begin();
	pid_t w = waitpid(c, &status, 0);
	gc_blocking_end();
	astore_rel(&fork_spin_stop, 1);
	gc_blocking_begin();
	pthread_join(sp, NULL);
	gc_blocking_end();
	stderr_capture_end(&cap, buf, sizeof buf);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(w, c);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 77,
	              "the child %s (status %#x): %s",
	              WIFSIGNALED(status) ? "was killed" : "went on", status,
	              buf);
	ck_assert_msg(strstr(buf, "child of fork()") != NULL, "%s", buf);
	gc_thread_detach();
}

START_TEST(test_fork_child_collect_is_fatal)
{
	fork_and_call(0);
}
END_TEST

START_TEST(test_fork_child_alloc_is_fatal)
{
	fork_and_call(1);
}
END_TEST

START_TEST(test_fork_child_attach_is_fatal)
{
	fork_and_call(2);
}
END_TEST

START_TEST(test_export_churn_verify)
{
	char dir[] = "/tmp/test_threads.XXXXXX";
	pthread_t t[2];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	options_.export_dir = strdup(dir); /* after the options are read */
	options_.verify = true;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, export_churn,
		                                NULL), 0);
	gc_blocking_begin();
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	gc_blocking_end();
	ck_assert_uint_eq(aload(&export_starts), 600);
	gc_thread_detach();
	rmdir(dir);
}
END_TEST

/* Threads that exit with a gc_frame still pushed (pthread_exit from a
 * nested call, as an interpreter's thread.exit() deep in its loop does)
 * while another thread collects without pause. The frame's struct lay in
 * stack memory that the exit path's calls then write over: the exiting
 * thread's detach answered a scan request by walking it and crashed
 * (SIGSEGV in gcmark_scan_slots within a second) before the frames of an
 * exited thread were dropped first. (Inside a blocking region a
 * collector may scan the dead frame before the thread's exit reaches
 * the library: docs/api.md tells the embedder to pop it first.) */
static atomic_word exitframe_stop;

static NOINLINE void exitframe_body(void)
{
	void *slots[4] = {0};
	gc_frame f;

	gc_frame_push(&f, slots, 4);
	slots[0] = gc_alloc(64, NULL);
	pthread_exit(NULL);
}

static void *exitframe_main(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("attach failed");
		return NULL;
	}
	for (int i = 0; i < 50; i++)
		(void)gc_alloc(32, NULL);
	exitframe_body();
	return NULL;
}

static void *exitframe_collector(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("collector attach failed");
		return NULL;
	}
	while (!aload_acq(&exitframe_stop))
		gc_collect();
	gc_thread_detach();
	return NULL;
}

START_TEST(test_exit_with_frame)
{
	pthread_t c, t[4];
	size_t rounds = 0;

	ck_assert_int_eq(pthread_create(&c, NULL, exitframe_collector, NULL),
	                 0);
	double end = test_now_s() + (UNDER_TSAN ? 2.0 : 1.0);
	while (test_now_s() < end) {
		for (int k = 0; k < 4; k++)
			ck_assert_int_eq(pthread_create(&t[k], NULL,
			                                exitframe_main, NULL),
			                 0);
		for (int k = 0; k < 4; k++)
			ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		rounds++;
	}
	astore_rel(&exitframe_stop, 1);
	ck_assert_int_eq(pthread_join(c, NULL), 0);
	check_no_failures();
	ck_assert_uint_eq(nthreads(), 0);
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	printf("# %zu rounds of 4 exits, %llu cycles\n", rounds,
	       (unsigned long long)st.gc_cycles);
	ck_assert_uint_gt(st.gc_cycles, 0);
}
END_TEST

/* ---- First attach racing ------------------------------------------------- */

static pthread_barrier_t start_line;

static void *race_main(void *arg)
{
	unsigned char *p;

	(void)arg;
	barrier_wait(&start_line);
	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("racing attach failed");
		return NULL;
	}
	p = alloc_one(64, NULL);
	if (p)
		memset(p, 1, 64);
	barrier_wait(&start_line);
	barrier_wait(&start_line);
	gc_thread_detach();
	return NULL;
}

START_TEST(test_first_attach_race)
{
	enum { N = 8 };
	pthread_t th[N];

	pthread_barrier_init(&start_line, NULL, N + 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_main, NULL),
		                 0);
	barrier_wait(&start_line);
	barrier_wait(&start_line);
	/* All attached at once here (they wait for us to pass). */
	ck_assert_uint_eq(nthreads(), N);
	barrier_wait(&start_line);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	check_no_failures();
	ck_assert_uint_eq(nthreads(), 0);
	mcentral_verify_all();
	check_spans_on_lists();
	pthread_barrier_destroy(&start_line);
}
END_TEST

/* ---- gc_thread_is_attached ----------------------------------------------- */

static void *is_attached_main(void *arg)
{
	int *seen = arg;

	seen[0] = gc_thread_is_attached();
	seen[1] = gc_thread_attach();
	seen[2] = gc_thread_is_attached();
	seen[3] = (int)nthreads();
	seen[4] = gc_thread_detach();
	seen[5] = gc_thread_is_attached();
	return NULL;
}

START_TEST(test_is_attached)
{
	pthread_t th;
	int seen[6];

	gc_disable(); /* objects are held out of the collector's sight */
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	ck_assert_int_eq(pthread_create(&th, NULL, is_attached_main, seen),
	                 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(seen[0], 0);
	ck_assert_int_eq(seen[1], GCHEAP_OK);
	ck_assert_int_eq(seen[2], 1);
	ck_assert_int_eq(seen[3], 2);
	ck_assert_int_eq(seen[4], GCHEAP_OK);
	ck_assert_int_eq(seen[5], 0);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	ck_assert_uint_eq(nthreads(), 1);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	ck_assert_uint_eq(nthreads(), 0);
}
END_TEST

/* The collector's count of running mutators (its idle-CPU test) follows
 * attach, detach and blocking regions. */
START_TEST(test_running_count)
{
	gc_disable();
	ck_assert_uint_eq(aload(&runtime_.nrunning), 0);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_uint_eq(runtime_gc_ops.mutator_count(), 1);
	gc_blocking_begin();
	ck_assert_uint_eq(runtime_gc_ops.mutator_count(), 0);
	gc_blocking_end();
	ck_assert_uint_eq(runtime_gc_ops.mutator_count(), 1);
	gc_collect(); /* waits blocked, and stops the world */
	ck_assert_uint_eq(runtime_gc_ops.mutator_count(), 1);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	ck_assert_uint_eq(runtime_gc_ops.mutator_count(), 0);
}
END_TEST

/* A thread that leaves its region while the collector works for it
 * (claimed) waits for the claim to end, and the end must wake it
 * (unclaim's broadcast): here, a cache flush served for it after a cycle,
 * nothing else would, as no stop follows (a review's mutant without the
 * broadcast passed every other test, each of which had another soon). */
static atomic_word uc_state; /* 1 B blocked, 2 B told to leave, 3 B left */
static gc_thread *uc_thread;

static void uc_hook(gc_thread *t, uintptr_t bit)
{
	if (t != uc_thread || bit != P_CACHE || aload_acq(&uc_state) != 1)
		return;
	astore_rel(&uc_state, 2);
	usleep(50000); /* B waits for the claim to end by now */
}

static void *uc_main(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("attach failed");
		return NULL;
	}
	uc_thread = thread_current;
	gc_blocking_begin();
	astore_rel(&uc_state, 1);
	while (aload_acq(&uc_state) != 2)
		usleep(100);
	gc_blocking_end();
	astore_rel(&uc_state, 3);
	gc_thread_detach();
	return NULL;
}

START_TEST(test_unclaim_wakes_leaver)
{
	pthread_t b;

	gc_disable();
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	runtime_claim_test_hook = uc_hook;
	ck_assert_int_eq(pthread_create(&b, NULL, uc_main, NULL), 0);
	while (aload_acq(&uc_state) != 1)
		usleep(100);
	gc_collect(); /* its sweep's end serves B's cache flush */
	ck_assert_uint_ge(aload_acq(&uc_state), 2);
	for (double end = test_now_s() + 5;
	     aload_acq(&uc_state) != 3 && test_now_s() < end;)
		usleep(1000);
	ck_assert_msg(aload_acq(&uc_state) == 3, "a thread that left its "
	              "region while claimed was not woken");
	runtime_claim_test_hook = NULL;
	gc_blocking_begin();
	pthread_join(b, NULL);
	gc_blocking_end();
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
}
END_TEST

/* Blocking regions are entered and left without the world lock
 * (runtime/safepoint.c): a thread that leaves one as a stop begins must
 * not run on while the world is stopped. Three threads do nothing but
 * enter and leave regions, counting each exit; the test's thread stops
 * the world 300 times and, while it is stopped, finds every count still
 * over 2 ms, and no thread that was blocked when the stop began parked
 * since: a leave that did not look for the stop after its swap ran on to
 * its safepoint and parked there, saving its registers over the ones the
 * stopped world reads. (Running is no test: a leave that finds the stop
 * after its swap shows running for the moment it takes to go back, and
 * touches nothing meanwhile; TSan's scheduling caught one so.) */
#define REGION_THREADS 3
#define REGION_STOPS TSAN_CUT(300, 10)
static atomic_word region_count[REGION_THREADS], region_quit;

static void *region_loop(void *arg)
{
	atomic_word *count = arg;

	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("region thread: attach failed");
		return NULL;
	}
	while (!aload_acq(&region_quit)) {
		gc_blocking_begin();
		gc_blocking_end();
		afetch_add(count, 1);
	}
	gc_thread_detach();
	return NULL;
}

START_TEST(test_regions_respect_stops)
{
	pthread_t th[REGION_THREADS];

	gc_disable();
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	for (int i = 0; i < REGION_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, region_loop,
		                                (void *)(uintptr_t)
		                                &region_count[i]), 0);
	for (int k = 0; k < REGION_STOPS; k++) {
		runtime_gc_ops.stop_world();
		uintptr_t c0[REGION_THREADS];
		for (int i = 0; i < REGION_THREADS; i++)
			c0[i] = aload(&region_count[i]);
		gc_thread *blocked[8];
		int nb = 0;
		for (gc_thread *t = runtime_.threads; t && nb < 8; t = t->next)
			if (aload_acq(&t->status) == TS_BLOCKED)
				blocked[nb++] = t;
		sleep_ns(2000000);
		for (int i = 0; i < nb; i++)
			if (aload_acq(&blocked[i]->status) == TS_PARKED)
				tfail("stop %d: thread %d left its region and "
				      "parked", k, blocked[i]->tid);
		for (int i = 0; i < REGION_THREADS; i++) {
			size_t d = (size_t)(aload(&region_count[i]) - c0[i]);
			if (d)
				tfail("stop %d: thread %d left its region %zu "
				      "times while the world was stopped", k, i,
				      d);
		}
		runtime_gc_ops.start_world();
		gc_safepoint();
		sleep_ns(200000);
	}
	astore_rel(&region_quit, 1);
	gc_blocking_begin();
	for (int i = 0; i < REGION_THREADS; i++)
		pthread_join(th[i], NULL);
	gc_blocking_end();
	for (int i = 0; i < REGION_THREADS; i++)
		ck_assert_uint_gt(aload(&region_count[i]), REGION_STOPS);
	ck_assert_int_eq(nfail, 0);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
}
END_TEST

/* Time-to-safepoint: a thread that runs on without a safepoint for 30 ms
 * after a stop is asked of it, while another collects, holds the stop up
 * for at least that long; the stats name the wait and that thread, and
 * the cycle's gctrace figure follows. */
#define SPIN_NS 30000000ull
/* The longest the spinner waits for the stop (a hang otherwise). */
#define SPIN_DEADLINE_NS 60000000000ull
/* What the spinner adds for clocks that disagree between CPUs. */
#define SPIN_SKEW_NS 10000000ull
static atomic_word spin_ready, spinner_tid;

static void *spinner(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK) {
		tfail("spinner: attach failed");
		return NULL;
	}
	gc_thread *me = thread_current;
	astore(&spinner_tid, (uintptr_t)gettid());
	gc_safepoint();
	astore_rel(&spin_ready, 1);
	/* Timed from the request this thread sees, not from its own start:
	 * a stop that comes late (the collecting thread starved of a CPU)
	 * still waits SPIN_NS, however the threads are scheduled. Plus
	 * SPIN_SKEW_NS: the stopper reads the clock on another CPU, and on
	 * a VM with kvm-clock one CPU's clock can lag another's by
	 * milliseconds (a 3.5 ms step was measured on the CI machine; the
	 * TSan build once recorded 28.3 ms for this 30 ms spin). */
	uint64_t deadline = gcstats_now_ns() + SPIN_DEADLINE_NS, until = 0;
	volatile uint64_t x = 0;
	for (;;) {
		for (int i = 0; i < 1000; i++)
			x = x + (uint64_t)i;
		uint64_t now = gcstats_now_ns();
		if (!until && (aload_acq(&me->pending) & P_STOP))
			until = now + SPIN_NS + SPIN_SKEW_NS;
		if (until ? now >= until : now >= deadline)
			break;
	}
	if (!until)
		tfail("spinner: no stop was asked of it in %llu s",
		      SPIN_DEADLINE_NS / 1000000000ull);
	gc_safepoint();
	gc_thread_detach();
	return NULL;
}

START_TEST(test_time_to_safepoint)
{
	pthread_t th;
	gc_stats s0, s1;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_collect();
	ck_assert_int_eq(gc_read_stats(&s0, sizeof(s0)), GCHEAP_OK);
	ck_assert_uint_ge(s0.stop_count, 2);
	astore(&spin_ready, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, spinner, NULL), 0);
	while (!aload_acq(&spin_ready))
		sched_yield();
	uint64_t deadline = gcstats_now_ns() + SPIN_DEADLINE_NS;
	gc_collect();
	/* The cycle's figure (last_ttsp) is recorded by the thread that
	 * ends the cycle after it releases the world (gc/mgc.c
	 * trace_cycle), and gc_collect may return before that: wait for
	 * the figure to name the spinner, by the clock. */
	for (;;) {
		ck_assert_int_eq(gc_read_stats(&s1, sizeof(s1)), GCHEAP_OK);
		if (s1.last_ttsp_tid == (int32_t)aload(&spinner_tid) ||
		    gcstats_now_ns() >= deadline)
			break;
		gc_blocking_begin();
		usleep(1000);
		gc_blocking_end();
	}
	pthread_join(th, NULL);
	check_no_failures();
	ck_assert_uint_gt(s1.stop_count, s0.stop_count);
	/* The first stop of that cycle waited for the spinner: SPIN_NS
	 * from the request it saw, so at least that from the stop's
	 * start. */
	ck_assert_uint_ge(s1.ttsp_max_ns, SPIN_NS);
	ck_assert_uint_eq(s1.ttsp_max_tid, (int32_t)aload(&spinner_tid));
	ck_assert_uint_ge(s1.ttsp_total_ns, s0.ttsp_total_ns + SPIN_NS);
	ck_assert_uint_ge(s1.last_ttsp_ns, SPIN_NS);
	ck_assert_uint_eq(s1.last_ttsp_tid, (int32_t)aload(&spinner_tid));
	ck_assert_uint_le(s1.ttsp_max_ns, s1.ttsp_total_ns);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
}
END_TEST

/* A pause ends when the world is released (start_world), not when the
 * stopper gets to record it: with two mutators on two CPUs the threads
 * it woke took both CPUs and the stopper recorded 1-4 ms pauses during
 * which they ran. Here the stopper is held up 20 ms after the release.
 * The pause is bounded by the clock read just before and just after the
 * release, not by a fixed figure: the stopper may itself be preempted
 * anywhere between t0 and the release. */
START_TEST(test_pause_ends_at_release)
{
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_collect(); /* the library is running */
	uint64_t t0 = gcstats_now_ns();
	runtime_gc_ops.stop_world();
	uint64_t t1 = gcstats_now_ns();
	runtime_gc_ops.start_world();
	uint64_t t2 = gcstats_now_ns();
	struct timespec ts = {0, 20000000};
	nanosleep(&ts, NULL);
	gcstats_pause(1, t0);
	mutex_lock(&gcstats_.lock);
	uint64_t ns = gcstats_.last_pause[1];
	mutex_unlock(&gcstats_.lock);
	/* Measured at the stopper's gcstats_pause, ns would be at least
	 * t2 - t0 + 20 ms. */
	ck_assert_msg(ns <= t2 - t0, "the pause took in the stopper's wait "
	              "after the release: %llu ns, the release was done "
	              "%llu ns after t0", (unsigned long long)ns,
	              (unsigned long long)(t2 - t0));
	ck_assert_msg(ns >= t1 - t0, "the pause ended before the release: "
	              "%llu ns, the world was stopped %llu ns after t0",
	              (unsigned long long)ns, (unsigned long long)(t1 - t0));
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
}
END_TEST

/* How many of this process's threads are named `name` (their comm). */
static int threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm",
		         e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* the thread exited meanwhile */
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		n += !strcmp(comm, name);
	}
	closedir(d);
	return n;
}

static void ignore_finalizer(void *o, void *data)
{
	(void)o;
	(void)data;
}

/* The collector's threads show as gcheap-<role> in top -H, perf and gdb
 * (each names itself as it starts, so the test waits for them). */
START_TEST(test_thread_names)
{
	static const char *const names[] = {"gcheap-mark0", "gcheap-sweep",
	                                    "gcheap-final"};

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	/* The finalizer thread starts with the first finalizer. */
	void *fobj = gc_alloc(16, NULL);
	ck_assert_ptr_nonnull(fobj);
	ck_assert_int_eq(gc_set_finalizer(fobj, ignore_finalizer, NULL),
	                 GCHEAP_OK);
	gc_collect();
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		double end = test_now_s() + TEST_WAIT_S;
		while (threads_named(names[i]) == 0 && test_now_s() < end)
			usleep(1000);
		ck_assert_msg(threads_named(names[i]) == 1,
		              "%d threads named %s", threads_named(names[i]),
		              names[i]);
	}
	/* The program's own threads keep their names. */
	char comm[32] = "";
	FILE *f = fopen("/proc/thread-self/comm", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(comm, sizeof comm, f));
	fclose(f);
	ck_assert_msg(strncmp(comm, "gcheap-", 7) != 0, "the test thread "
	              "was renamed %s", comm);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_concurrent_alloc);
	tcase_add_test(tc, test_attach_detach_churn);
	tcase_add_test(tc, test_churn_same_class);
	tcase_add_test(tc, test_exit_without_detach);
	tcase_add_test(tc, test_exit_while_others_attached);
	tcase_add_test(tc, test_exit_with_frame);
	tcase_add_test(tc, test_first_attach_race);
	tcase_add_test(tc, test_is_attached);
	tcase_add_test(tc, test_running_count);
	tcase_add_test(tc, test_regions_respect_stops);
	tcase_add_test(tc, test_unclaim_wakes_leaver);
	tcase_add_test(tc, test_time_to_safepoint);
	tcase_add_test(tc, test_pause_ends_at_release);
	tcase_add_test(tc, test_thread_names);
	tcase_add_test(tc, test_cancel_attached);
	tcase_add_test(tc, test_cancel_while_stopping);
	tcase_add_test(tc, test_stopwarn_running);
	tcase_add_test(tc, test_stopwarn_asleep);
	tcase_add_test(tc, test_export_churn_verify);
	tcase_add_test(tc, test_fork_child_exit_keeps_export);
	tcase_add_test(tc, test_fork_child_collect_is_fatal);
	tcase_add_test(tc, test_fork_child_alloc_is_fatal);
	tcase_add_test(tc, test_fork_child_attach_is_fatal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(threads_suite());
}
