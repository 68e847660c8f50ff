/* tests/gc/test_precise.c: the library's own objects in precise mode, and
 * the stopped-world mark beside the background worker (issue 12).
 *
 *  - gc_weakmap_new allocates the map, then its slot array: a cycle that
 *    starts at the second allocation (staged: the slot array's class has
 *    no cached room, GCHEAP_DEBUG=stress=1) scans the thread while the
 *    map is held only by the library; the map must survive;
 *  - gc_weakmap_set makes the new entry, then probes for its slot, a
 *    safepoint per live entry probed: under stoptheworld=1 a cycle run by
 *    another thread at one of those safepoints must still see the entry;
 *  - under stoptheworld=1 the background worker, woken while the world
 *    is stopped for the mark, must not hold grey objects the stopped-world
 *    mark then skips (finalizer arguments, marked by the specials root job
 *    that both run, are the case where the orders differ).
 * Precise mode throughout: C locals are no roots. */
#include "test_harness.c"

#include "precise_fixture.c"

/* Would the next allocation from s need no refill (no safepoint)?
 * mspan_next_free_fast's test, without taking the object. */
static bool fast_ok(const mspan *s)
{
	return s->alloc_cache != 0;
}

/* ---- gc_weakmap_new ------------------------------------------------------ */

START_TEST(test_weakmap_new_precise)
{
	void *slots[2] = {0};
	gc_frame f;
	gc_thread *me;

	start("stress=1,poison=1,checkmark=1");
	me = thread_current;
	gc_frame_push(&f, slots, 2);
	slots[1] = gc_weakmap_new(); /* makes the library's types */
	ck_assert_ptr_nonnull(slots[1]);
	gc_collect();
	mcache *c = &me->mcache;
	/* The map is of the library's type, from that type's typed slot
	 * (alloc/mcache.h); its slot array, of another type's size, from
	 * its class's slot. */
	gc_type *mt = gctype_all();
	while (mt && strcmp(mt->name, "gc_weakmap"))
		mt = mt->next;
	ck_assert_ptr_nonnull(mt);
	unsigned map_slot = mt->cslot;
	spanclass slot_spc = make_spanclass(size_to_class(8 * sizeof(void *)),
	                                    false);
	ck_assert_uint_ne(map_slot, slot_spc);
	/* The map comes from the cache without a safepoint; its slot array
	 * needs a refill: the slow path, where stress=1 starts a cycle. */
	while (!fast_ok(c->alloc[map_slot]))
		ck_assert_ptr_nonnull(gc_alloc(mt->size, mt));
	while (fast_ok(c->alloc[slot_spc]))
		ck_assert_ptr_nonnull(gc_alloc_array(8, t_ptr));
	ck_assert(fast_ok(c->alloc[map_slot]));
	uintptr_t c0 = aload(&mgc_.cycles);
	gc_enable();
	gc_weakmap *m = gc_weakmap_new();
	slots[0] = m;
	gc_disable();
	ck_assert_ptr_nonnull(m);
	/* The staging worked: a cycle began inside gc_weakmap_new. */
	ck_assert(aload(&mgc_.cycles) != c0 ||
	          aload(&mgc_.phase) != GCPHASE_OFF);
	while (aload(&mgc_.cycles) == c0) {
		gc_safepoint();
		sleep_us(10);
	}
	sweep_finish();
	ck_assert_msg(gc_base(m) == m, "the map %p made by gc_weakmap_new "
	              "was freed by the cycle that began inside it", (void *)m);
	node *k = new_node(1), *v = new_node(2);
	slots[1] = k;
	ck_assert_int_eq(gc_weakmap_set(m, k, v), GCHEAP_OK);
	gc_collect();
	ck_assert_ptr_eq(gc_weakmap_get(m, k), v);
	gc_frame_pop(&f);
}
END_TEST

/* ---- gc_weakmap_set under stoptheworld ----------------------------------- */

static int collector_stop;

static void *collect_loop(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&collector_stop, __ATOMIC_ACQUIRE))
		mgc_run_cycle(true); /* unattached: each stops the mutator */
	return NULL;
}

/* How long the loop may take to see MIN_CYCLES cycles: how often the
 * collecting thread gets to stop the loop depends on the CPU it gets, so
 * rounds are no measure; only a collector that never gets through is
 * wrong. */
#define STW_DEADLINE_NS 60000000000ull

START_TEST(test_weakmap_set_stw)
{
	enum { N = 1500, MIN_CYCLES = 40 };
	void *slots[3] = {0};
	gc_frame f;
	pthread_t u;

	start("stoptheworld=1,poison=1,invalidptr=2");
	gc_frame_push(&f, slots, 3);
	void **keys = gc_alloc_array(N, t_ptr);
	ck_assert_ptr_nonnull(keys);
	slots[0] = keys;
	ck_assert_int_eq(pthread_create(&u, NULL, collect_loop, NULL), 0);
	uintptr_t c0 = aload(&mgc_.cycles);
	uint64_t deadline = gcstats_now_ns() + STW_DEADLINE_NS;
	/* Until the collector has stopped the loop often enough. */
	int r;
	for (r = 0; aload(&mgc_.cycles) - c0 < MIN_CYCLES &&
	            gcstats_now_ns() < deadline; r++) {
		gc_weakmap *m = gc_weakmap_new();
		ck_assert_ptr_nonnull(m);
		slots[1] = m;
		for (size_t i = 0; i < N; i++) {
			node *k = new_node(i);
			gc_write(&keys[i], k);
			/* the value is the key: live as long as the entry */
			REQUIRE(gc_weakmap_set(m, k, k) == GCHEAP_OK,
			        "set %zu", i);
		}
		for (size_t i = 0; i < N; i++)
			REQUIRE(gc_weakmap_get(m, keys[i]) == keys[i],
			        "round %d: the entry of live key %zu is lost",
			        r, i);
		REQUIRE(gc_weakmap_count(m) == N, "round %d: count %zu, "
		        "want %d", r, gc_weakmap_count(m), (int)N);
	}
	/* Counted now: the collector goes on below, with the loop over. */
	size_t cycles = aload(&mgc_.cycles) - c0;
	__atomic_store_n(&collector_stop, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(u, NULL);
	gc_blocking_end();
	/* The cycles did stop the mutator inside the loop, many times. */
	ck_assert_msg(cycles >= MIN_CYCLES, "only %zu cycles in %d rounds "
	              "(%llu s)", cycles, r, STW_DEADLINE_NS / 1000000000ull);
	gc_frame_pop(&f);
}
END_TEST

/* ---- stoptheworld and the background worker ----------------------------- */

#define NFIN 64
#define NBIG ((size_t)4 << 20)

static void on_finalize(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
}

static int waker_stop;

/* Here a thread wakes the workers steadily (on their own condition
 * variable, and the collector's), so that a worker is awake whenever the
 * world is stopped for a mark. */
static void *waker(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&waker_stop, __ATOMIC_ACQUIRE)) {
		mutex_lock(&mgc_.lock);
		pthread_cond_broadcast(&mgc_.work_cond);
		pthread_cond_broadcast(&mgc_.cond);
		mutex_unlock(&mgc_.lock);
		sleep_us(20);
	}
	return NULL;
}

START_TEST(test_stw_worker)
{
	enum { ROUNDS = 15 };
	void *slots[1] = {0};
	uintptr_t child[NFIN];
	gc_frame f, fb;
	pthread_t w;

	start("stoptheworld=1,poison=1");
	gc_frame_push(&f, slots, 1);
	/* A large frame: the stopped-world mark scans it between the
	 * globals and the specials, long enough for the worker to run. */
	void **big = calloc(NBIG, sizeof(void *));
	ck_assert_ptr_nonnull(big);
	gc_frame_push(&fb, big, NBIG);
	node **objs = gc_alloc_array(NFIN, t_ptr);
	ck_assert_ptr_nonnull(objs);
	slots[0] = objs;
	for (size_t i = 0; i < NFIN; i++) {
		node *o = new_node(i);
		gc_write(&objs[i], o);
		/* The argument A (reachable only through the finalizer
		 * record) and its child C (only through A). */
		node *a = new_node(1000 + i);
		gc_write(&a->a, new_payload(64, i));
		child[i] = hide(a->a);
		ck_assert_int_eq(gc_set_finalizer(o, on_finalize, a),
		                 GCHEAP_OK);
	}
	ck_assert_int_eq(pthread_create(&w, NULL, waker, NULL), 0);
	for (int r = 0; r < ROUNDS; r++) {
		gc_collect();
		for (size_t i = 0; i < NFIN; i++) {
			void *c = unhide(child[i]);
			REQUIRE(gc_base(c) == c && check_payload(c, 64, i),
			        "round %d: the child %p of finalizer arg %zu "
			        "was freed", r, c, i);
		}
	}
	__atomic_store_n(&waker_stop, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(w, NULL);
	gc_blocking_end();
	gc_frame_pop(&fb);
	free(big);
	gc_frame_pop(&f);
}
END_TEST

static Suite *precise_suite(void)
{
	Suite *s = suite_create("precise");
	TCase *tc = tcase_create("precise");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_weakmap_new_precise);
	tcase_add_test(tc, test_weakmap_set_stw);
	tcase_add_test(tc, test_stw_worker);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(precise_suite());
}
