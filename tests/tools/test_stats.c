/* tests/tools/test_stats.c: gc_read_stats version 2, and heap dumps taken
 * while other threads allocate. The per-class fast
 * counters equal a slow span-by-span recount (mheap_recount_class) after
 * threads have allocated, kept and dropped objects across collections; at
 * check level 3 with verify=1 every read recounts with the world stopped
 * while other threads allocate (a mismatch is fatal, failing the test).
 * The totals, the pause ring and histogram, the phases and the CPU
 * fraction are consistent, and a caller of the version-1 size gets only
 * version-1 fields. */
#include "format/heapdump.h"
#include "runtime/runtime.h"
#include "tests/testing.h"
#include "tools/gcstat/gcstat.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

static gc_type *t_node;

typedef struct node {
	struct node *next;
	char pad[40];
} node;

/* Allocate sizes across many classes; keep a list of every 8th one. */
static void *churn(void *arg)
{
	test_rng rng = rng_make((uintptr_t)arg);
	void *slots[1] = {0};
	gc_frame f;
	gc_stats st;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_frame_push(&f, slots, 1);
	for (int i = 0; i < 30000; i++) {
		size_t sz = 16 + rng_below(&rng, 3000);
		if (rng_below(&rng, 2)) {
			node *n = gc_alloc(sz < sizeof(node) ? sizeof(node)
			                                     : sz, t_node);
			if (i % 8 == 0) {
				gc_write(&n->next, slots[0]);
				slots[0] = n;
			}
		} else {
			gc_alloc(sz, NULL);
		}
		if (i % 5000 == 0)
			gc_read_stats(&st, sizeof(st));
		if (i % 10000 == 9999)
			slots[0] = NULL; /* drop the list */
	}
	gc_frame_pop(&f);
	gc_thread_detach();
	return NULL;
}

static void check_recount(void)
{
	gc_stats st;

	gc_read_stats(&st, sizeof(st));
	ck_assert_uint_eq(st.nclasses, NUM_SIZE_CLASSES);
	uint64_t objs = 0, bytes = 0;
	uintptr_t rs[NUM_SIZE_CLASSES], ro[NUM_SIZE_CLASSES];
	mheap_recount_classes(rs, ro);
	ck_assert_uint_eq(rs[0], st.classes[0].spans);
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uintptr_t spans = rs[c], n = ro[c];
		ck_assert_msg(spans == st.classes[c].spans &&
		              n == st.classes[c].objects,
		              "class %u: counters %llu spans %llu objects, "
		              "recount %zu %zu", c,
		              (unsigned long long)st.classes[c].spans,
		              (unsigned long long)st.classes[c].objects,
		              (size_t)spans, (size_t)n);
		ck_assert_uint_eq(st.classes[c].bytes,
		                  st.classes[c].objects * class_to_size[c]);
		ck_assert_uint_eq(st.classes[c].free_bytes,
		                  st.classes[c].span_bytes -
		                  st.classes[c].bytes);
		objs += st.classes[c].objects;
		bytes += st.classes[c].bytes;
	}
	ck_assert_uint_eq(st.classes[0].objects, st.large_objects);
	ck_assert_uint_eq(st.heap_objects, objs + st.large_objects);
	ck_assert_uint_eq(st.heap_alloc, bytes + st.large_bytes);
	/* With every cache released, the recount of allocated slots (the
	 * allocator's own) agrees too. */
	uintptr_t nobj;
	uintptr_t b = mheap_recount_allocated(&nobj);
	ck_assert_uint_eq(b, st.heap_alloc);
	ck_assert_uint_eq(nobj, st.heap_objects);
}

START_TEST(test_counters_equal_recount)
{
	static const size_t ptr0[] = {0};
	pthread_t th[3];

	setenv("GCHEAP_DEBUG", "verify=1", 1);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	t_node = gc_type_new("node", sizeof(node), ptr0, 1,
	                     GCHEAP_TAIL_REPEAT);
	for (uintptr_t i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, churn, (void *)(i + 1));
	gc_blocking_begin(); /* the others stop the world to recount */
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	gc_blocking_end();
	gc_collect();
	gc_safepoint();
	check_recount();
	gc_stats st;
	gc_read_stats(&st, sizeof(st));
	ck_assert_uint_gt(st.frees, 0);
	ck_assert_uint_eq(st.alloc_objects - st.tiny_allocs - st.frees,
	                  st.heap_objects);
	gc_thread_detach();
}
END_TEST

START_TEST(test_pauses_phases_cpu)
{
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	for (int i = 0; i < 300; i++) {
		gc_alloc(100, NULL);
		gc_collect();
	}
	gc_stats st;
	gc_read_stats(&st, sizeof(st));
	ck_assert_uint_eq(st.version, GCHEAP_STATS_VERSION);
	ck_assert_uint_eq(st.size, sizeof(gc_stats));
	ck_assert_uint_ge(st.gc_cycles, 300);
	ck_assert_uint_ge(st.pause_count, 2 * st.gc_cycles);
	uint64_t h = 0, mx = 0, total = 0;
	for (int i = 0; i < GCHEAP_PAUSE_HIST; i++)
		h += st.pause_hist[i];
	ck_assert_uint_eq(h, st.pause_count);
	for (int i = 0; i < GCHEAP_PAUSE_RING; i++) {
		mx = st.pause_ring[i] > mx ? st.pause_ring[i] : mx;
		total += st.pause_ring[i];
	}
	ck_assert_uint_eq(mx <= st.pause_max_ns, 1);
	ck_assert_uint_gt(st.last_pause_ns, 0);
	ck_assert_uint_le(st.last_pause_ns, st.pause_max_ns);
	ck_assert_uint_gt(st.last_mark_ns, 0);
	ck_assert_uint_eq(total <= st.pause_total_ns, 1);
	ck_assert_uint_eq(st.phase_total_ns[GCSTATS_SWEEPTERM] +
	                  st.phase_total_ns[GCSTATS_MARKTERM],
	                  st.pause_total_ns);
	for (int i = 0; i < GCHEAP_NPHASES; i++)
		ck_assert_uint_ge(st.phase_total_ns[i], st.phase_last_ns[i]);
	ck_assert_uint_gt(st.phase_total_ns[GCSTATS_MARK], 0);
	ck_assert_uint_gt(st.mark_worker_ns, 0);
	ck_assert(st.gc_cpu_fraction > 0 && st.gc_cpu_fraction < 1);
	ck_assert_uint_gt(st.uptime_ns, st.phase_total_ns[GCSTATS_MARK]);
	ck_assert_uint_ge(st.ncpu, 1);
	gc_thread_detach();
}
END_TEST

START_TEST(test_version1_caller)
{
	gc_stats st;
	size_t v1 = offsetof(gc_stats, heap_alloc);

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	memset(&st, 0xa5, sizeof(st));
	ck_assert_int_eq(gc_read_stats(&st, v1), GCHEAP_OK);
	ck_assert_uint_eq(st.size, v1);
	ck_assert_uint_eq(st.heap_alloc, 0xa5a5a5a5a5a5a5a5ull);
	gc_thread_detach();
}
END_TEST

static atomic_word churning;

static void *churn_until_stopped(void *arg)
{
	test_rng rng = rng_make((uintptr_t)arg);
	void *slots[1] = {0};
	gc_frame f;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_frame_push(&f, slots, 1);
	for (long i = 0; aload(&churning); i++) {
		node *n = gc_alloc(sizeof(node) + rng_below(&rng, 200),
		                   t_node);
		if (i % 4 == 0) {
			gc_write(&n->next, slots[0]);
			slots[0] = n;
		}
		if (i % 20000 == 19999)
			slots[0] = NULL;
	}
	gc_frame_pop(&f);
	gc_thread_detach();
	return NULL;
}

/* Dumps taken while two threads build and drop lists are consistent
 * snapshots: every pointer and root names an object in the same dump,
 * objects lie in their spans, and the spans' counts match the objects. */
START_TEST(test_dump_while_allocating)
{
	static const size_t ptr0[] = {0};
	pthread_t th[2];
	char path[] = "/tmp/gcheap-dump-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	gc_set_record_types(1);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	t_node = gc_type_new("node", sizeof(node), ptr0, 1,
	                     GCHEAP_TAIL_REPEAT);
	astore(&churning, 1);
	for (uintptr_t i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, churn_until_stopped,
		               (void *)(i + 1));
	for (int round = 0; round < 4; round++) {
		/* Let the threads allocate (and keep lists) first. */
		gc_stats st;
		uint64_t a0 = 0;
		do {
			gc_blocking_begin();
			sched_yield();
			gc_blocking_end();
			gc_read_stats(&st, sizeof(st));
			if (!a0)
				a0 = st.alloc_objects + 1;
		} while (st.alloc_objects < a0 + 20000);
		ck_assert_int_eq(gc_heap_dump(path), GCHEAP_OK);
		/* Reading the dump does not touch the heap: let the others
		 * stop the world meanwhile (it can take seconds). */
		gc_blocking_begin();
		hd_dump d;
		ck_assert_int_eq(hd_load(path, &d), 0);
		ck_assert_uint_gt(d.nobjects, 0);
		size_t typed = 0, allocated = 0;
		for (size_t i = 0; i < d.nobjects; i++) {
			const hd_object *o = &d.objects[i];
			for (uint32_t k = 0; k < o->nptrs; k++)
				ck_assert_int_ge(hd_find(&d,
				                 d.ptrs[o->ptrs + k]), 0);
			typed += o->type != 0;
		}
		for (size_t i = 0; i < d.nroots; i++)
			ck_assert_int_ge(hd_find(&d, d.roots[i].target), 0);
		for (size_t i = 0; i < d.nspans; i++)
			allocated += d.spans[i].nalloc;
		ck_assert_uint_eq(allocated, d.nobjects);
		/* Every object here is a node (types recorded). */
		ck_assert_uint_eq(typed, d.nobjects);
		hd_free(&d);
		gc_blocking_end();
	}
	gc_blocking_begin();
	astore(&churning, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	gc_blocking_end();
	unlink(path);
	gc_thread_detach();
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_counters_equal_recount);
	tcase_add_test(tc, test_pauses_phases_cpu);
	tcase_add_test(tc, test_version1_caller);
	tcase_add_test(tc, test_dump_while_allocating);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(stats_suite());
}
