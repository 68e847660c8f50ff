/* tests/gc/test_barrier.c: the hybrid write barrier (gc/mwbbuf.c,
 * runtime/barrier.c) inside real cycles held open in mid-mark by the
 * harness (test_harness.c): the deletion half (an object moved from the
 * heap onto an already scanned frame survives), the insertion half (an
 * object moved from a not yet scanned frame into a black object survives),
 * controls showing that both scenarios lose the object with plain stores,
 * hand-offs between threads outside the heap (a black writer must shade
 * what it writes too), root ranges added or removed mid-mark (shaded),
 * the buffer (two entries per store, flushed into marking work when full,
 * emptied by the mark-termination handshake; none for a value the thread
 * allocated black in a span it took empty, one for an old object of a
 * span it took partly used, which survives, even one from the last
 * mark's empty span), no old value buffered for a store into an oblet
 * the marker has read (and the bits saying so cleared for the next
 * mark), the barrier being off and
 * gc_write a plain store while the collector is idle, gc_copy shading old
 * and new values, gc_write from an unattached thread, and the mark-end
 * flush handshake letting threads attach while it waits. Every test runs
 * with precise roots only (conservative stacks off), so that nothing but
 * the frames decides reachability. */
#include "test_harness.c"

static gc_type *t_ptrs; /* every word a pointer */

/* Deadlines in seconds: a sleep may take far longer than asked for on a
 * loaded machine under a sanitizer, so a count of sleeps is no clock. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Attach with GCHEAP_DEBUG = debug (NULL: as the environment says), with
 * automatic cycles off and precise roots only. */
static void start(const char *debug)
{
	t_ptrs = attach_precise(debug, 70);
}

/* start(debug) with H running and a frame of the caller's n slots
 * pushed; returns the calling thread. */
static gc_thread *begin(helper *h, gc_frame *f, void **ms, size_t n,
                        const char *debug)
{
	start(debug);
	helper_start(h);
	gc_frame_push(f, ms, n);
	return thread_current;
}

static void **new_ptrs(size_t n)
{
	void **p = gc_alloc(n * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* ---- The deletion half (Yuasa) ------------------------------------------- */

/* X is referenced only from heap object A, and A only from H's frame.
 * Mid-mark, the (already scanned) test thread moves X onto its frame and
 * clears A's slot. A is scanned later and shows nothing; only the barrier's
 * shading of the old value keeps X. With `barrier` false the slot is
 * cleared with a plain store (the control: X must be lost). */
static void deletion_scenario(bool barrier)
{
	helper h;
	void *ms[4] = {0};
	gc_frame f;
	gc_thread *me = thread_current;

	helper_start(&h);
	gc_frame_push(&f, ms, 4);
	void **a = new_ptrs(2);
	void *x = new_payload(256, 1);
	gc_write(&a[0], x);
	h.slots[0] = a;

	pause_begin(&h);
	ck_assert(!is_marked(a));
	ck_assert(!is_marked(x));
	ms[0] = a[0];
	if (barrier)
		gc_write(&a[0], NULL);
	else
		a[0] = NULL;
	ck_assert_ptr_null(a[0]);
	if (barrier) {
		/* The old value is buffered (the new one, NULL, is not),
		 * and not shaded yet. */
		ck_assert_uint_eq(me->gc.wb.n, 1);
		ck_assert(me->gc.wb.ptr[0] == (uintptr_t)x);
	} else {
		ck_assert_uint_eq(me->gc.wb.n, 0);
	}
	ck_assert(!is_marked(x));
	pause_end(&h, NULL, NULL);

	/* The mark-termination handshake emptied the buffer. */
	ck_assert_uint_eq(me->gc.wb.n, 0);
	ck_assert_int_eq(gc_barrier_enabled, 0);
	if (!barrier) {
		ck_assert_msg(!is_live(x), "the control lost nothing: the "
		              "scenario does not test the barrier");
		ms[0] = NULL; /* dangling */
	} else {
		ck_assert(is_live(x));
		ck_assert(check_payload(x, 256, 1));
		/* Marking is over: store X back into a new object. */
		void **b = new_ptrs(2);
		gc_write(&b[0], x);
		ms[1] = b;
		ms[0] = NULL;
		gc_collect();
		ck_assert(is_live(b) && is_live(x));
		ck_assert(check_payload(x, 256, 1));
	}
	gc_frame_pop(&f);
	helper_stop(&h);
}

START_TEST(test_deletion_shades_old_value)
{
	start(NULL);
	deletion_scenario(true);
}
END_TEST

START_TEST(test_deletion_control_loses_object)
{
	start("verify=1,poison=1");
	deletion_scenario(false);
}
END_TEST

/* ---- The insertion half (Dijkstra) --------------------------------------- */

typedef struct insert_arg {
	void **b;
	bool barrier;
} insert_arg;

/* On H, whose frame is not yet scanned: move X from the frame into black
 * object B, then drop it from the frame. */
static void insert_on_helper(helper *h, void *arg)
{
	insert_arg *ia = arg;
	void *x = h->slots[0];

	if (ia->barrier)
		gc_write(&ia->b[0], x);
	else
		ia->b[0] = x;
	h->slots[0] = NULL;
	const wbbuf *wb = &thread_current->gc.wb;
	h->saw[0] = wb->n;
	h->saw[1] = wb->n >= 1 ? wb->ptr[wb->n - 1] : 0;
	h->saw[2] = is_marked(x);
}

static void insertion_scenario(bool barrier)
{
	helper h;
	void *ms[4] = {0};
	gc_frame f;

	helper_start(&h);
	gc_frame_push(&f, ms, 4);
	void *x = new_payload(512, 2);
	h.slots[0] = x;

	pause_begin(&h);
	void **b = new_ptrs(2); /* allocated black, never scanned */
	ms[0] = b;
	ck_assert(is_marked(b));
	ck_assert(!is_marked(x));
	insert_arg ia = {b, barrier};
	pause_end(&h, insert_on_helper, &ia);

	ck_assert_ptr_eq(b[0], x);
	ck_assert(!h.saw[2]); /* X was unmarked right after the store */
	if (barrier) {
		/* The new value only: the old one was NULL. */
		ck_assert_uint_eq(h.saw[0], 1);
		ck_assert(h.saw[1] == (uintptr_t)x);
		ck_assert(is_live(x));
		ck_assert(check_payload(x, 512, 2));
		gc_collect();
		ck_assert(is_live(x));
		ck_assert(check_payload(x, 512, 2));
	} else {
		ck_assert_uint_eq(h.saw[0], 0);
		ck_assert_msg(!is_live(x), "the control lost nothing: the "
		              "scenario does not test the barrier");
		b[0] = NULL; /* dangling */
	}
	gc_frame_pop(&f);
	helper_stop(&h);
}

START_TEST(test_insertion_shades_new_value)
{
	start(NULL);
	insertion_scenario(true);
}
END_TEST

START_TEST(test_insertion_control_loses_object)
{
	start("verify=1,poison=1");
	insertion_scenario(false);
}
END_TEST

/* ---- Hand-offs outside the heap ------------------------------------------ */

/* C threads pass pointers through memory the barrier never sees: a struct
 * on one thread's stack that another reads, a pthread_create argument.
 * The insertion half must then shade what a thread writes whatever its
 * own stack's colour (a rule that shaded only for grey writers, as Go's
 * proposal 17503 allows goroutines, lost X in both tests below). */

static void drop_slot0(helper *h, void *arg)
{
	(void)arg;
	h->slots[0] = NULL; /* the owner drops X before its own scan */
}

/* The black test thread reads X from grey H's frame and stores it into
 * black object B; H drops X before it scans its roots. */
START_TEST(test_black_writer_from_grey_stack)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;

	begin(&h, &f, ms, 2, "verify=1,poison=1");
	void *x = new_payload(256, 9);
	h.slots[0] = x;
	pause_begin(&h);
	void **b = new_ptrs(1);
	ms[0] = b;
	gc_write(&b[0], h.slots[0]);
	pause_end(&h, drop_slot0, NULL);
	ck_assert_msg(is_live(x) && check_payload(x, 256, 9),
	              "X freed while black B still points to it");
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

static void *handoff_root[1];

/* Attaches mid-mark (nothing to scan: black), stores its argument X into
 * a new object and publishes that in a registered root. */
static void *handoff_main(void *arg)
{
	if (gc_thread_attach() != GCHEAP_OK)
		abort();
	void **b = gc_alloc(sizeof(void *), t_ptrs);
	if (!b)
		abort();
	gc_write(&b[0], arg);
	gc_write(&handoff_root[0], b);
	gc_thread_detach();
	return NULL;
}

/* A thread started mid-mark gets X from grey H (its pthread_create
 * argument), stores it into the heap; H drops X before its scan. */
START_TEST(test_thread_attached_in_mark_writes)
{
	helper h;
	pthread_t th;

	start("verify=1,poison=1");
	ck_assert_int_eq(gc_add_roots(handoff_root, 1), GCHEAP_OK);
	helper_start(&h);
	void *x = new_payload(256, 10);
	h.slots[0] = x;
	pause_begin(&h);
	ck_assert_int_eq(pthread_create(&th, NULL, handoff_main,
	                                h.slots[0]), 0);
	gc_blocking_begin();
	pthread_join(th, NULL);
	gc_blocking_end();
	pause_end(&h, drop_slot0, NULL);
	void **b = handoff_root[0];
	ck_assert_ptr_eq(b[0], x);
	ck_assert_msg(is_live(x) && check_payload(x, 256, 10),
	              "X freed while a root -> B -> X");
	helper_stop(&h);
}
END_TEST

/* ---- Root ranges added or removed mid-mark ------------------------------ */

static void *late_root[2];

static void wait_globals_scanned(void)
{
	for (double end = now_s() + 60;
	     aload(&mgc_.globals_done) != 2 && now_s() < end;)
		sleep_us(100);
	ck_assert_int_eq((int)aload(&mgc_.globals_done), 2);
}

/* A range registered after the mark's scan of the globals is shaded as
 * it is added: X, held by grey H only, is stored into it and survives H
 * dropping it (the scan of the globals, already done, never sees it). */
START_TEST(test_root_added_in_mark)
{
	helper h;

	start("verify=1,poison=1");
	helper_start(&h);
	void *x = new_payload(256, 11);
	h.slots[0] = x;
	pause_begin(&h);
	wait_globals_scanned();
	late_root[0] = h.slots[0]; /* not yet a root: a plain store */
	ck_assert(!is_marked(x));
	ck_assert_int_eq(gc_add_roots(late_root, 1), GCHEAP_OK);
	ck_assert_msg(is_marked(x), "a range added mid-mark not shaded");
	pause_end(&h, drop_slot0, NULL);
	ck_assert(is_live(x) && check_payload(x, 256, 11));
	gc_collect();
	ck_assert(is_live(x) && check_payload(x, 256, 11));
	ck_assert_int_eq(gc_remove_roots(late_root), GCHEAP_OK);
	late_root[0] = NULL;
	helper_stop(&h);
}
END_TEST

/* Removing a range mid-mark drops its values: they are shaded, as the
 * barrier's deletion half shades an overwritten value (the scan of the
 * globals may not have reached the range yet). Staged with a value the
 * scan has not seen: stored without the barrier after it ran. */
START_TEST(test_root_removed_in_mark)
{
	helper h;

	start("verify=1,poison=1");
	ck_assert_int_eq(gc_add_roots(late_root, 2), GCHEAP_OK);
	helper_start(&h);
	void *x = new_payload(256, 12);
	h.slots[0] = x;
	pause_begin(&h);
	wait_globals_scanned();
	/* Atomic (the globals job reads the range), but no barrier. */
	astore((atomic_word *)&late_root[1], (uintptr_t)h.slots[0]);
	ck_assert(!is_marked(x));
	ck_assert_int_eq(gc_remove_roots(late_root), GCHEAP_OK);
	ck_assert_msg(is_marked(x), "a range removed mid-mark: its values "
	              "not shaded");
	pause_end(&h, NULL, NULL);
	late_root[1] = NULL;
	ck_assert(is_live(x) && check_payload(x, 256, 12));
	helper_stop(&h);
}
END_TEST

/* ---- The buffer ---------------------------------------------------------- */

#define NY (WBBUF_LEN / 2 + 1)

/* WBBUF_LEN / 2 stores fill the buffer but for one entry (the first
 * store's old value is NULL, not buffered) without shading anything; the
 * next one flushes it into the thread's work, which the marker then scans (the
 * children of the flushed objects get marked while H still holds the mark
 * open). */
START_TEST(test_buffer_flushes_when_full)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;
	gc_thread *me = begin(&h, &f, ms, 2, NULL);
	void **r = new_ptrs(NY);
	for (size_t i = 0; i < NY; i++) {
		void **y = new_ptrs(2);
		gc_write(&y[0], new_payload(24, i));
		gc_write(&r[i], y);
	}
	h.slots[0] = r;
	/* From before the mark: a store into an object allocated black
	 * in it buffers no old value (test_fresh_black_not_buffered).
	 * Held by H's frame, not ours: ours is scanned as the mark
	 * starts, and a worker scanning b while the stores below run
	 * would shade the value it read (TSan's CI run saw r[189]). */
	void **b = new_ptrs(1);
	h.slots[1] = b;

	pause_begin(&h);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	/* The first store buffers its new value only (the old one is
	 * NULL), the others both. */
	for (size_t i = 0; i < WBBUF_LEN / 2; i++)
		gc_write(&b[0], r[i]);
	ck_assert_uint_eq(me->gc.wb.n, WBBUF_LEN - 1);
	for (size_t i = 0; i < NY; i++)
		REQUIRE(!is_marked(r[i]), "object %zu shaded before the "
		        "flush", i);
	gc_write(&b[0], r[NY - 1]);
	/* The old value filled it, and the new one flushed it. */
	ck_assert_uint_eq(me->gc.wb.n, 1);
	ck_assert(me->gc.wb.ptr[0] == (uintptr_t)r[NY - 1]);
	ck_assert(gcw_empty(&me->gc.gcw));
	for (size_t i = 0; i < NY - 1; i++)
		REQUIRE(is_marked(r[i]), "object %zu not shaded by the "
		        "flush", i);
	ck_assert(!is_marked(r[NY - 1]));
	/* The flushed objects became work: the marker scans them. */
	for (double end = now_s() + 60; now_s() < end;) {
		size_t n = 0;
		for (size_t i = 0; i < NY - 1; i++)
			n += is_marked(((void **)r[i])[0]);
		if (n == NY - 1)
			break;
		sleep_us(100);
	}
	for (size_t i = 0; i < NY - 1; i++)
		REQUIRE(is_marked(((void **)r[i])[0]), "child of flushed "
		        "object %zu never scanned", i);
	ck_assert(!is_marked(((void **)r[NY - 1])[0]));
	ck_assert_int_eq((int)aload(&mgc_.phase), GCPHASE_MARK);
	pause_end(&h, NULL, NULL);

	ck_assert_uint_eq(me->gc.wb.n, 0);
	ck_assert_ptr_eq(b[0], r[NY - 1]);
	for (size_t i = 0; i < NY; i++)
		REQUIRE(check_payload(((void **)r[i])[0], 24, i),
		        "payload %zu", i);
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* ---- Oblets already scanned (gcmark_slot_scanned) ------------------------ */

/* A pointer table of OB_SLOTS slots: a large object of four oblets. */
#define OB_SLOTS (4 * OBLET_BYTES / sizeof(void *))
#define OB_LOW 10                 /* a slot in the first oblet */
#define OB_HIGH (OB_SLOTS - 100)  /* a slot in the last */

static size_t oblets_scanned(void *const *l)
{
	mspan *s = spanof((uintptr_t)l);
	size_t n = 0;

	ck_assert_ptr_nonnull(s->oblet_bits);
	for (uintptr_t k = 0; k < 4; k++)
		n += (aload((atomic_word *)&s->oblet_bits[0]) >> k) & 1;
	return n;
}

/* Mid-mark, once the marker has read every slot of the black frame's
 * table, a store into the table buffers no old value (nor loads it: the
 * probe's random stores into its 12 MB table missed the cache for it),
 * because the scan shaded what was there. */
START_TEST(test_scanned_oblet_skips_old_value)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;
	gc_thread *me = begin(&h, &f, ms, 2, NULL);
	void **l = new_ptrs(OB_SLOTS);
	void *x = new_payload(64, 7), *y = new_payload(64, 8);
	gc_write(&l[OB_LOW], x);
	gc_write(&l[OB_HIGH], y);
	ms[0] = l;
	ck_assert_uint_eq(oblets_scanned(l), 0);

	pause_begin(&h);
	for (double end = now_s() + 60; now_s() < end;) {
		if (oblets_scanned(l) == 4)
			break;
		sleep_us(100);
	}
	ck_assert_uint_eq(oblets_scanned(l), 4);
	ck_assert(is_marked(x) && is_marked(y));
	ck_assert_uint_eq(me->gc.wb.n, 0);
	gc_write(&l[OB_LOW], NULL);
	gc_write(&l[OB_HIGH], NULL);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	pause_end(&h, NULL, NULL);
	/* Sweep cleared the bits for the next mark. */
	ck_assert_uint_eq(oblets_scanned(l), 0);
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* Tables for test_oblet_bits_are_this_marks, in bytes: four whole
 * oblets; 65 oblets, the last a partial one (its bit in a second word);
 * 129, the last partial (a third word, at the end of a metadata block
 * exactly two words of oblet bits long when counted without it). */
static const size_t ob_tables[] = {
	4 * OBLET_BYTES,
	((size_t)1 << 20) + 8192,
	((size_t)2 << 20) + 8192,
};

/* The bits are this mark's: a table scanned whole in one cycle and white
 * in the next (reachable from H's unscanned frame only) still has the
 * deletion half in every oblet, the last one included. The scenario of
 * deletion_scenario, in the table's last slots: with bits left over from
 * the first cycle, X would be lost (verify and poison are on). A second,
 * 32 KiB table made just after, marked in both cycles, puts its
 * metadata next to the first's (a bit written past the first's bitmap
 * once landed in it). */
START_TEST(test_oblet_bits_are_this_marks)
{
	helper h;
	void *ms[3] = {0};
	gc_frame f;
	gc_thread *me = begin(&h, &f, ms, 3, "verify=1,poison=1");
	size_t n = ob_tables[_i] / sizeof(void *), at = n - 10;
	void **l = new_ptrs(n);
	ms[2] = new_ptrs(4096);
	mspan *s = spanof((uintptr_t)l);
	ck_assert_ptr_nonnull(s->oblet_bits);
	mspan_verify(s, aload(&mheap_.sweepgen));
	void *x = new_payload(256, 9);
	gc_write(&l[at], x);
	ms[0] = l;
	gc_collect(); /* the table is scanned whole */
	ck_assert(is_live(x));
	h.slots[0] = l;
	ms[0] = NULL;

	pause_begin(&h);
	for (double end = now_s() + 60; now_s() < end && !is_marked(ms[2]);)
		sleep_us(100);
	ck_assert(is_marked(ms[2]));
	ck_assert(!is_marked(l) && !is_marked(x));
	for (size_t k = 0; k < mspan_oblet_words(s->npages); k++)
		ck_assert_uint_eq(s->oblet_bits[k], 0);
	ck_assert(!gcmark_slot_scanned((uintptr_t)&l[at]));
	ms[1] = l[at];
	gc_write(&l[at], NULL);
	ck_assert_uint_eq(me->gc.wb.n, 1);
	ck_assert(me->gc.wb.ptr[0] == (uintptr_t)x);
	pause_end(&h, NULL, NULL);

	ck_assert(is_live(x));
	ck_assert(check_payload(x, 256, 9));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* A value this thread allocated black, in a span its cache took empty
 * during this mark (mcache_fresh_black), is not buffered: binary-trees
 * stores every fresh node through the barrier, and each used to be
 * flushed and found black. A value from before the mark still is. Nor
 * is the old value of a slot in such an object. */
START_TEST(test_fresh_black_not_buffered)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;
	gc_thread *me = begin(&h, &f, ms, 2, NULL);
	void **old = new_ptrs(2);
	ms[1] = old;

	pause_begin(&h);
	ck_assert(me->mcache.black);
	void **b = new_ptrs(1);
	ms[0] = b;
	/* 96 words: a class nothing in this process has used, so its
	 * span is taken empty, allocating black. */
	void **x = new_ptrs(96);
	ck_assert(mcache_fresh_black(&me->mcache, (uintptr_t)x));
	ck_assert(!mcache_fresh_black(&me->mcache, (uintptr_t)old));
	ck_assert_uint_eq(me->gc.wb.n, 0);
	gc_write(&b[0], x);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	gc_write(&b[0], old); /* old value x, new value old: both */
	ck_assert_uint_eq(me->gc.wb.n, 2);
	ck_assert(me->gc.wb.ptr[0] == (uintptr_t)x);
	ck_assert(me->gc.wb.ptr[1] == (uintptr_t)old);
	/* A store into x, black from its allocation in this mark: the
	 * new value is buffered, the old one never (everything stored
	 * into x came through the barrier's insertion half). */
	gc_write(&x[0], old);
	ck_assert_uint_eq(me->gc.wb.n, 3);
	gc_write(&x[0], NULL);
	ck_assert_uint_eq(me->gc.wb.n, 3);
	gc_write(&b[0], x);
	pause_end(&h, NULL, NULL);
	ck_assert(is_live(x) && is_live(old) && is_live(b));
	/* Once the cache is handed back for sweeping, the range is
	 * forgotten: the next mark starts with none. */
	gc_safepoint();
	ck_assert(!me->mcache.black);
	ck_assert(!mcache_fresh_black(&me->mcache, (uintptr_t)x));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* A span taken during the mark that already held objects (swept, with
 * free slots) sets no range: its old objects may be white, and one the
 * thread stores is buffered and shaded. */
START_TEST(test_partial_span_buffered)
{
	enum { N = 40 };
	helper h;
	void *ms[2] = {0};
	gc_frame f;
	gc_thread *me = begin(&h, &f, ms, 2, NULL);
	/* 96-word objects, every other one kept (from H's frame, not
	 * scanned until the end of the held mark): after a cycle their
	 * spans hold live objects and free slots. */
	void **keep = new_ptrs(N);
	h.slots[0] = keep;
	for (size_t i = 0; i < N; i++) {
		void **o = new_ptrs(96);
		if (i % 2 == 0)
			gc_write(&keep[i], o);
	}
	gc_collect();

	pause_begin(&h);
	void **b = new_ptrs(1);
	ms[0] = b;
	void **x = new_ptrs(96);
	void **mate = NULL;
	for (size_t i = 0; i < N && !mate; i += 2)
		if (spanof((uintptr_t)keep[i]) == spanof((uintptr_t)x))
			mate = keep[i];
	ck_assert_msg(mate != NULL, "the new object is not on a span "
	              "with old ones");
	ck_assert(!is_marked(mate));
	ck_assert(!mcache_fresh_black(&me->mcache, (uintptr_t)mate));
	ck_assert(!mcache_fresh_black(&me->mcache, (uintptr_t)x));
	gc_write(&b[0], mate);
	ck_assert_uint_eq(me->gc.wb.n, 1);
	ck_assert(me->gc.wb.ptr[0] == (uintptr_t)mate);
	pause_end(&h, NULL, NULL);
	ck_assert(is_live(mate) && is_live(x));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* The fresh-black filter (mcache_fresh_black) must skip no white value.
 * X is allocated in one mark in a span this thread takes empty (its fresh
 * range then) and survives it; in the next mark X is white and held by
 * grey H only. This thread takes X's span back, partly used, stores X
 * into a new (black) object there, and H drops X. X is lost if a range
 * covered a span taken partly used, or outlived its mark (cleared neither
 * at release_all nor at start_black: either one suffices). */
START_TEST(test_fresh_filter_keeps_white_value)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;

	begin(&h, &f, ms, 2, "verify=1,poison=1");
	pause_begin(&h);
	/* 112 words: a class nothing else here uses, so taken empty. */
	void **x = new_ptrs(112);
	ck_assert(mcache_fresh_black(&thread_current->mcache, (uintptr_t)x));
	ms[0] = x;
	pause_end(&h, NULL, NULL);
	h.slots[0] = x;
	ms[0] = NULL;

	pause_begin(&h);
	ck_assert(!is_marked(x));
	void **b = new_ptrs(112); /* black, beside x */
	ms[0] = b;
	ck_assert_msg(spanof((uintptr_t)b) == spanof((uintptr_t)x),
	              "the new object is not on x's span");
	gc_write(&b[0], h.slots[0]);
	pause_end(&h, drop_slot0, NULL);
	ck_assert_msg(is_live(x) && b[0] == x, "x freed while black b "
	              "points to it: the barrier filtered a white value");
	gc_collect();
	ck_assert(is_live(x));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* While no cycle runs the barrier is off and gc_write (and its slow path
 * called directly) is a plain store that buffers nothing; it is on during
 * marking only. */
START_TEST(test_barrier_off_when_idle)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;
	gc_thread *me;

	start(NULL);
	me = thread_current;
	ck_assert_int_eq(gc_barrier_enabled, 0);
	gc_frame_push(&f, ms, 2);
	void **b = new_ptrs(2);
	ms[0] = b;
	void *x = new_payload(64, 3);
	gc_write(&b[0], x);
	ck_assert_ptr_eq(b[0], x);
	gc_write_slow(&b[1], x);
	ck_assert_ptr_eq(b[1], x);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	ck_assert(!is_marked(x));
	gc_write(&b[1], NULL);
	ck_assert_ptr_null(b[1]);

	gc_collect();
	ck_assert_int_eq(gc_barrier_enabled, 0);
	gc_write(&b[1], x);
	ck_assert_uint_eq(me->gc.wb.n, 0);

	helper_start(&h);
	pause_begin(&h);
	ck_assert_int_eq(gc_barrier_enabled, 1);
	gc_write(&b[1], NULL);
	ck_assert_uint_eq(me->gc.wb.n, 1); /* x; NULL is not buffered */
	pause_end(&h, NULL, NULL);
	ck_assert_int_eq(gc_barrier_enabled, 0);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	gc_write(&b[1], x);
	ck_assert_uint_eq(me->gc.wb.n, 0);
	ck_assert(is_live(x) && check_payload(x, 64, 3));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* ---- gc_copy ------------------------------------------------------------- */

/* Mid-mark, gc_copy shades at once both the values it overwrites and the
 * ones it copies (no buffering), for a plain copy and an overlapping one;
 * the overwritten objects die at the next cycle. */
START_TEST(test_copy_shades_both)
{
	helper h;
	gc_thread *me;
	enum { N = 8, M = 16 };

	start(NULL);
	me = thread_current;
	helper_start(&h);
	void **d = new_ptrs(N), **s = new_ptrs(N), **e = new_ptrs(M);
	void *z[N], *y[N], *w[M];
	for (size_t i = 0; i < N; i++) {
		z[i] = new_payload(40, 100 + i);
		y[i] = new_payload(40, 200 + i);
		gc_write(&d[i], z[i]);
		gc_write(&s[i], y[i]);
	}
	for (size_t i = 0; i < M; i++) {
		w[i] = new_payload(40, 300 + i);
		gc_write(&e[i], w[i]);
	}
	h.slots[0] = d;
	h.slots[1] = s;
	h.slots[2] = e;

	pause_begin(&h);
	for (size_t i = 0; i < N; i++)
		ck_assert(!is_marked(z[i]) && !is_marked(y[i]));
	gc_copy(d, s, N * sizeof(void *));
	ck_assert_uint_eq(me->gc.wb.n, 0);
	for (size_t i = 0; i < N; i++) {
		ck_assert_ptr_eq(d[i], y[i]);
		ck_assert_msg(is_marked(z[i]), "old value %zu not shaded", i);
		ck_assert_msg(is_marked(y[i]), "new value %zu not shaded", i);
	}
	/* Overlapping, forwards: e[1..M) = old e[0..M-1). */
	gc_copy(&e[1], &e[0], (M - 1) * sizeof(void *));
	ck_assert_ptr_eq(e[0], w[0]);
	for (size_t i = 1; i < M; i++)
		ck_assert_ptr_eq(e[i], w[i - 1]);
	for (size_t i = 0; i < M; i++)
		ck_assert_msg(is_marked(w[i]), "value %zu not shaded", i);
	h.slots[1] = NULL;
	pause_end(&h, NULL, NULL);

	for (size_t i = 0; i < N; i++) {
		ck_assert(is_live(y[i]) && check_payload(y[i], 40, 200 + i));
		ck_assert(is_live(z[i])); /* marked this cycle */
	}
	gc_collect();
	for (size_t i = 0; i < N; i++) {
		ck_assert(is_live(y[i]) && check_payload(y[i], 40, 200 + i));
		ck_assert_msg(!is_live(z[i]), "overwritten %zu kept", i);
	}
	ck_assert(!is_live(w[M - 1]));
	for (size_t i = 0; i + 1 < M; i++)
		ck_assert(is_live(w[i]) && check_payload(w[i], 40, 300 + i));
	helper_stop(&h);
}
END_TEST

/* ---- Unattached threads -------------------------------------------------- */

typedef struct unattached_arg {
	void **slot;
	void *value;
} unattached_arg;

static void *unattached_main(void *arg)
{
	unattached_arg *u = arg;
	gc_write(u->slot, u->value);
	return NULL;
}

/* An unattached thread has no buffer: its gc_write stores and shades both
 * values at once. */
START_TEST(test_write_from_unattached_thread)
{
	helper h;
	pthread_t th;

	start(NULL);
	helper_start(&h);
	void **d = new_ptrs(2);
	void *z = new_payload(48, 7), *y = new_payload(48, 8);
	gc_write(&d[0], z);
	h.slots[0] = d;
	h.slots[1] = y;

	pause_begin(&h);
	ck_assert(!is_marked(z) && !is_marked(y));
	unattached_arg u = {&d[0], y};
	ck_assert_int_eq(pthread_create(&th, NULL, unattached_main, &u), 0);
	pthread_join(th, NULL);
	ck_assert_ptr_eq(d[0], y);
	ck_assert_msg(is_marked(z), "old value not shaded");
	ck_assert_msg(is_marked(y), "new value not shaded");
	ck_assert_uint_eq(thread_current->gc.wb.n, 0);
	h.slots[1] = NULL;
	pause_end(&h, NULL, NULL);

	ck_assert(is_live(y) && check_payload(y, 48, 8));
	gc_collect();
	ck_assert(is_live(y) && check_payload(y, 48, 8));
	ck_assert(!is_live(z));
	helper_stop(&h);
}
END_TEST

/* ---- The flush handshake ------------------------------------------------ */

static int joiner_attached, joiner_release;

static void *joiner_main(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		abort();
	__atomic_store_n(&joiner_attached, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	while (!__atomic_load_n(&joiner_release, __ATOMIC_ACQUIRE))
		sleep_us(100);
	gc_blocking_end();
	gc_thread_detach();
	return NULL;
}

/* One try at the situation: start a cycle, answer its stop and our stack
 * scan, then stay away from safepoints until a worker finds the mark done
 * and asks this thread to flush. True with the flush owed (the cycle
 * waits for us). False when the cycle went on without asking: a single
 * safepoint may serve the scan, a flush and the final stop back to back
 * when the mark has little to do, and a mark may end on a flush answered
 * early. Then the cycle is over and its collector joined. */
static bool await_flush_request(gc_thread *me)
{
	uintptr_t c0 = aload(&mgc_.cycles);
	double deadline;

	pause_cycles = c0;
	ck_assert_int_eq(pthread_create(&pause_collector, NULL, collect_main,
	                                NULL), 0);
	while (aload(&mgc_.cycles) == c0 &&
	       (aload(&mgc_.phase) != GCPHASE_MARK ||
	        (aload(&me->pending) & P_SCAN))) {
		gc_safepoint();
		sleep_us(10);
	}
	deadline = now_s() + 10;
	while (aload(&mgc_.cycles) == c0 && now_s() < deadline) {
		uintptr_t p = aload_acq(&me->pending);
		if (p & P_FLUSH)
			return true;
		if (p & P_STOP)
			break;
		sleep_us(50);
	}
	while (aload(&mgc_.cycles) == c0) {
		gc_safepoint();
		sleep_us(10);
	}
	gc_blocking_begin();
	pthread_join(pause_collector, NULL);
	gc_blocking_end();
	return false;
}

/* The mark-end handshake asks every thread to flush its buffer and waits
 * for each. While it waits for this thread (which owes the flush and
 * reaches no safepoint), another thread must still be able to attach: a
 * program may well wait for a thread it started to attach (the test
 * harness's helper_start did, and deadlocked with a handshake that held
 * the registry lock throughout its wait). */
START_TEST(test_flush_handshake_lets_threads_attach)
{
	gc_thread *me;
	pthread_t th;
	bool owed = false, attached = false;
	int tries = 0;

	start(NULL);
	me = thread_current;
	for (; !owed && tries < 50; tries++)
		owed = await_flush_request(me);
	ck_assert_msg(owed, "no flush was asked of this thread in %d cycles",
	              tries);
	ck_assert_int_eq(pthread_create(&th, NULL, joiner_main, NULL), 0);
	for (double end = now_s() + 10; !attached && now_s() < end;) {
		attached = __atomic_load_n(&joiner_attached, __ATOMIC_ACQUIRE);
		if (!attached)
			sleep_us(50);
	}
	/* Whatever happened, let the handshake and the cycle finish. */
	gc_safepoint();
	ck_assert_msg(attached, "a thread could not attach in 10 s while a "
	              "flush handshake waited for this one");
	__atomic_store_n(&joiner_release, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(th, NULL);
	pthread_join(pause_collector, NULL);
	gc_blocking_end();
	ck_assert_uint_gt(aload(&mgc_.cycles), pause_cycles);
	ck_assert_int_eq((int)aload(&mgc_.phase), GCPHASE_OFF);
}
END_TEST

static Suite *barrier_suite(void)
{
	Suite *s = suite_create("barrier");
	TCase *tc = tcase_create("barrier");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_deletion_shades_old_value);
	tcase_add_test(tc, test_deletion_control_loses_object);
	tcase_add_test(tc, test_insertion_shades_new_value);
	tcase_add_test(tc, test_insertion_control_loses_object);
	tcase_add_test(tc, test_black_writer_from_grey_stack);
	tcase_add_test(tc, test_thread_attached_in_mark_writes);
	tcase_add_test(tc, test_root_added_in_mark);
	tcase_add_test(tc, test_root_removed_in_mark);
	tcase_add_test(tc, test_buffer_flushes_when_full);
	tcase_add_test(tc, test_scanned_oblet_skips_old_value);
	tcase_add_loop_test(tc, test_oblet_bits_are_this_marks, 0,
	                    (int)ARRAY_LEN(ob_tables));
	tcase_add_test(tc, test_fresh_black_not_buffered);
	tcase_add_test(tc, test_partial_span_buffered);
	tcase_add_test(tc, test_fresh_filter_keeps_white_value);
	tcase_add_test(tc, test_barrier_off_when_idle);
	tcase_add_test(tc, test_copy_shades_both);
	tcase_add_test(tc, test_write_from_unattached_thread);
	tcase_add_test(tc, test_flush_handshake_lets_threads_attach);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(barrier_suite());
}
