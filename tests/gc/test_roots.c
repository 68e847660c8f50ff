/* tests/gc/test_roots.c: every kind of root (runtime/roots.c) keeps its
 * objects alive across gc_collect, and taking it away lets them be freed:
 * registered global ranges (gc_add_roots / gc_remove_roots, only the first
 * nslots slots count; many ranges, some at one start, against a model),
 * precise shadow-stack frames (nested, popped, with
 * nslots and slots changed in place), the conservative scan of the native
 * stack (a pointer held only in a local, interior pointers base + 8 and
 * base + size - 1, locals of a deep recursion; with conservative stacks off
 * a stack-only object is freed), and the stack and frames of a thread
 * blocked in gc_blocking_begin while another thread collects. Also the
 * errors of bad arguments to gc_add_roots, gc_remove_roots and
 * gc_frame_pop/push. */
#include "test_harness.c"

#include <sys/mman.h>
#include <unistd.h>

static gc_type *t_ptrs;

static int nerrors;
static gc_status last_code;

static void count_error(gc_status code, const char *msg, void *data)
{
	(void)msg;
	(void)data;
	nerrors++;
	last_code = code;
}

static void start(bool conservative)
{
	size_t zero = 0;

	sys_fatal_exit_code = 70;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_disable();
	gc_set_conservative_stacks(conservative);
	t_ptrs = gc_type_new("ptrs", sizeof(void *), &zero, 1,
	                     GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(t_ptrs);
}

/* A scan object holding a payload, so that a root keeps two objects. */
static void **new_holder(uint64_t key)
{
	void **o = gc_alloc(2 * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(o);
	gc_write(&o[0], new_payload(96, key));
	return o;
}

static bool holder_ok(void **o, uint64_t key)
{
	return is_live(o) && is_live(o[0]) && check_payload(o[0], 96, key);
}

/* ---- Global ranges ------------------------------------------------------- */

static void *groots_a[4];
static void *groots_b[2];

/* Under ThreadSanitizer this test once failed about one run in two with
 * a data race between gc_write's plain store into groots_a (before
 * gc_collect) and the mark worker's read of it in runtime_mark_globals:
 * GCPHASE_MARK was published with a relaxed store and read with relaxed
 * loads, so a worker woken between the phase store and gc_start's next
 * unlock of mgc_.lock marked with no happens-before edge to the
 * mutator's stores. The phase is now stored with release and read with
 * acquire (b06eb15), and the TSan build runs this test clean. */
START_TEST(test_global_roots)
{
	start(false);
	void **m = calloc(3, sizeof(void *));
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(gc_add_roots(groots_a, 4), GCHEAP_OK);
	ck_assert_int_eq(gc_add_roots(groots_b, 2), GCHEAP_OK);
	ck_assert_int_eq(gc_add_roots(m, 2), GCHEAP_OK); /* m[2] not a root */

	void **a = new_holder(1), **b = new_holder(2), **c = new_holder(3);
	void **d = new_holder(4);
	void *a_child = a[0], *d_child = d[0];
	gc_write(&groots_a[3], a);
	gc_write(&groots_b[1], b);
	gc_write(&m[1], c);
	gc_write(&m[2], d);
	gc_collect();
	ck_assert(holder_ok(a, 1));
	ck_assert(holder_ok(b, 2));
	ck_assert(holder_ok(c, 3));
	ck_assert_msg(!is_live(d) && !is_live(d_child),
	              "a slot past nslots kept its object");

	ck_assert_int_eq(gc_remove_roots(groots_a), GCHEAP_OK);
	gc_collect();
	ck_assert(!is_live(a) && !is_live(a_child));
	ck_assert(holder_ok(b, 2));
	ck_assert(holder_ok(c, 3));

	ck_assert_int_eq(gc_remove_roots(m), GCHEAP_OK);
	gc_collect();
	ck_assert(!is_live(c));
	ck_assert(holder_ok(b, 2));

	/* Registered again, cleared first: roots again. */
	groots_a[3] = NULL;
	ck_assert_int_eq(gc_add_roots(groots_a, 4), GCHEAP_OK);
	gc_write(&groots_a[0], b);
	ck_assert_int_eq(gc_remove_roots(groots_b), GCHEAP_OK);
	gc_collect();
	ck_assert(holder_ok(b, 2));
	gc_write(&groots_a[0], NULL);
	gc_collect();
	ck_assert(!is_live(b));
	ck_assert_int_eq(gc_remove_roots(groots_a), GCHEAP_OK);
	free(m);
}
END_TEST

/* Many ranges, registered more than once at the same start, removed in
 * random order, against a model: a remove takes the latest registration
 * at its start (gc_remove_roots finds it through the table of starts,
 * and the swap that fills its place is followed there), and every slot
 * is visited as often as ranges cover it. */
#define NSTARTS 512
#define SPACING 4
static void *many_slots[NSTARTS * SPACING];
static unsigned visits[NSTARTS * SPACING];

static void count_visit(void **slot, void *arg)
{
	(void)arg;
	if (slot >= many_slots && slot < many_slots + NSTARTS * SPACING)
		visits[slot - many_slots]++;
}

START_TEST(test_global_roots_many)
{
	enum { DEPTH = 4 };
	static size_t regs[NSTARTS][DEPTH]; /* nslots, oldest first */
	static unsigned nregs[NSTARTS];
	test_rng r = rng_make(21);

	start(false);
	for (int step = 0; step < 20000; step++) {
		size_t j = rng_below(&r, NSTARTS);
		void **at = &many_slots[j * SPACING];
		if (nregs[j] < DEPTH && (nregs[j] == 0 ||
		                         rng_below(&r, 2))) {
			size_t n = 1 + rng_below(&r, SPACING);
			ck_assert_int_eq(gc_add_roots(at, n), GCHEAP_OK);
			regs[j][nregs[j]++] = n;
		} else {
			ck_assert_int_eq(gc_remove_roots(at), GCHEAP_OK);
			nregs[j]--;
		}
		if (step % 97)
			continue;
		memset(visits, 0, sizeof(visits));
		runtime_each_global(count_visit, NULL);
		for (size_t s = 0; s < NSTARTS * SPACING; s++) {
			unsigned want = 0;
			for (unsigned k = 0; k < nregs[s / SPACING]; k++)
				want += regs[s / SPACING][k] > s % SPACING;
			REQUIRE(visits[s] == want, "step %d: slot %zu visited "
			        "%u times, covered by %u ranges", step, s,
			        visits[s], want);
		}
	}
	for (size_t j = 0; j < NSTARTS; j++)
		while (nregs[j]--)
			ck_assert_int_eq(gc_remove_roots(&many_slots[j *
			                                             SPACING]),
			                 GCHEAP_OK);
	memset(visits, 0, sizeof(visits));
	runtime_each_global(count_visit, NULL);
	for (size_t s = 0; s < NSTARTS * SPACING; s++)
		ck_assert_uint_eq(visits[s], 0);
	gc_set_error_handler(count_error, NULL);
	ck_assert_int_eq(gc_remove_roots(many_slots), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 1);
}
END_TEST

/* The mark's scan of the ranges claims its batches at a cursor and
 * scans each without the lock (the hook runs after each). At the first
 * batch with a range before the cursor the hook removes that range, so
 * the last range moves behind the cursor and must be scanned at once;
 * at the next batch inside a range
 * it removes the range at the cursor, half scanned, so the last range
 * takes its place and must be scanned from its first slot. Every range
 * left must keep its objects. Either step undone loses the moved range's
 * objects. */
enum { GR_RANGES = 8, GR_SLOTS = 3000 };
static void **gr_range[GR_RANGES];
static bool gr_removed[GR_RANGES];
static int gr_calls, gr_step, gr_fail;

static void gr_remove(void **start)
{
	for (int k = 0; k < GR_RANGES; k++)
		if (gr_range[k] == start && !gr_removed[k]) {
			gr_removed[k] = true;
			if (gc_remove_roots(start) != GCHEAP_OK)
				gr_fail++;
			return;
		}
	gr_fail++; /* not one of ours */
}

/* The hook runs on every thread that scans a batch: one at a time. */
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;

static void gr_hook(void)
{
	globals_probe p;

	pthread_mutex_lock(&hook_mu);
	runtime_globals_probe(&p);
	gr_calls++;
	if (gr_step == 0 && p.prev) {
		gr_remove(p.prev);
		gr_step++;
	} else if (gr_step == 1 && p.cur && p.off) {
		gr_remove(p.cur);
		gr_step++;
	}
	pthread_mutex_unlock(&hook_mu);
}

START_TEST(test_global_roots_scan_drops_lock)
{
	start(false);
	for (int k = 0; k < GR_RANGES; k++) {
		gr_range[k] = calloc(GR_SLOTS, sizeof(void *));
		ck_assert_ptr_nonnull(gr_range[k]);
		ck_assert_int_eq(gc_add_roots(gr_range[k], GR_SLOTS),
		                 GCHEAP_OK);
		for (size_t i = 0; i < GR_SLOTS; i++)
			gc_write(&gr_range[k][i],
			         new_payload(16, (uint64_t)k << 16 | i));
	}
	runtime_globals_set_hook(gr_hook);
	gc_collect();
	runtime_globals_set_hook(NULL);
	globals_probe p;
	runtime_globals_probe(&p);
	ck_assert_uint_eq(p.idx, SIZE_MAX);
	ck_assert_int_ge(gr_calls, 2);
	ck_assert_int_eq(gr_step, 2);
	ck_assert_int_eq(gr_fail, 0);
	gc_collect(); /* what the first mark missed is freed by now */
	int removed = 0;
	for (int k = 0; k < GR_RANGES; k++) {
		if (gr_removed[k]) {
			removed++;
			continue;
		}
		for (size_t i = 0; i < GR_SLOTS; i++) {
			void *o = gr_range[k][i];
			REQUIRE(is_live(o) && check_payload(o, 16,
			        (uint64_t)k << 16 | i), "range %d: the "
			        "object in slot %zu freed", k, i);
		}
		ck_assert_int_eq(gc_remove_roots(gr_range[k]), GCHEAP_OK);
	}
	ck_assert_int_eq(removed, 2);
	for (int k = 0; k < GR_RANGES; k++)
		free(gr_range[k]);
}
END_TEST

/* The scan is at a batch inside the last range; the hook removes the
 * range before it, so that one moves behind the cursor (scanned at
 * once), and adds a range of 4 slots, which lands at the cursor's
 * index: it must be scanned from its first slot, not from the old
 * range's offset, which would read past its end (here into a page that
 * faults) and mark whatever lies there. */
static void **gl_first, **gl_second, **gl_small;
static int gl_step;

static void gl_hook(void)
{
	globals_probe p;

	pthread_mutex_lock(&hook_mu);
	runtime_globals_probe(&p);
	if (gl_step == 0 && p.cur == gl_second && p.off) {
		if (gc_remove_roots(gl_first) == GCHEAP_OK &&
		    gc_add_roots(gl_small, 4) == GCHEAP_OK)
			gl_step = 1;
		else
			gl_step = -1;
	}
	pthread_mutex_unlock(&hook_mu);
}

START_TEST(test_global_roots_add_at_cursor)
{
	long page = sysconf(_SC_PAGESIZE);

	start(false);
	char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	gl_small = (void **)(m + page) - 4; /* its end is the guard page */
	gl_first = calloc(100, sizeof(void *));
	gl_second = calloc(2000, sizeof(void *));
	ck_assert(gl_first && gl_second);
	ck_assert_int_eq(gc_add_roots(gl_first, 100), GCHEAP_OK);
	ck_assert_int_eq(gc_add_roots(gl_second, 2000), GCHEAP_OK);
	for (size_t i = 0; i < 2000; i++)
		gc_write(&gl_second[i], new_payload(16, 7000 + i));
	for (size_t i = 0; i < 4; i++)
		gc_write(&gl_small[i], new_payload(16, 9000 + i));
	runtime_globals_set_hook(gl_hook);
	gc_collect();
	runtime_globals_set_hook(NULL);
	ck_assert_int_eq(gl_step, 1);
	gc_collect();
	for (size_t i = 0; i < 2000; i++)
		REQUIRE(is_live(gl_second[i]) &&
		        check_payload(gl_second[i], 16, 7000 + i),
		        "the moved range lost slot %zu", i);
	for (size_t i = 0; i < 4; i++)
		REQUIRE(is_live(gl_small[i]) &&
		        check_payload(gl_small[i], 16, 9000 + i),
		        "the added range lost slot %zu", i);
	ck_assert_int_eq(gc_remove_roots(gl_second), GCHEAP_OK);
	ck_assert_int_eq(gc_remove_roots(gl_small), GCHEAP_OK);
	munmap(m, 2 * (size_t)page);
	free(gl_first);
	free(gl_second);
}
END_TEST

/* The mark's scan of the ranges is shared: a thread that helps
 * (runtime_help_globals, as an assist does when it finds no grey work)
 * claims batches beside the root job's worker, and the job ends only
 * once every batch is scanned. The hook holds every other scanner (mark
 * workers, or the collecting thread) after a batch until this thread
 * has helped, so they overlap whatever the scheduling; every
 * range's objects must then survive, and this thread must have scanned
 * some of them. Without the sharing, the helper scans nothing. */
enum { GS_RANGES = 8, GS_SLOTS = 3000 };
static void **gs_range[GS_RANGES];
static atomic_word gs_helped, gs_held;
static pthread_t gs_main;

static void gs_hook(void)
{
	/* Every other scanner (the root job's, and the markers that help
	 * it) waits after a batch until this thread has helped. */
	if (pthread_equal(pthread_self(), gs_main))
		return;
	astore(&gs_held, 1);
	for (double end = test_now_s() + TEST_WAIT_S;
	     !aload_acq(&gs_helped) && test_now_s() < end;)
		sleep_us(100);
}

static void *gs_collect(void *arg)
{
	(void)arg;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_collect();
	gc_thread_detach();
	return NULL;
}

START_TEST(test_global_roots_scan_shared)
{
	start(false);
	gs_main = pthread_self();
	for (int k = 0; k < GS_RANGES; k++) {
		gs_range[k] = calloc(GS_SLOTS, sizeof(void *));
		ck_assert_ptr_nonnull(gs_range[k]);
		ck_assert_int_eq(gc_add_roots(gs_range[k], GS_SLOTS),
		                 GCHEAP_OK);
		for (size_t i = 0; i < GS_SLOTS; i++)
			gc_write(&gs_range[k][i],
			         new_payload(16, (uint64_t)k << 16 | i));
	}
	runtime_globals_set_hook(gs_hook);
	pthread_t c;
	ck_assert_int_eq(pthread_create(&c, NULL, gs_collect, NULL), 0);
	size_t helped = 0;
	for (double end = test_now_s() + TEST_WAIT_S;
	     !aload(&gs_helped) && test_now_s() < end;) {
		gc_safepoint();
		if (!aload(&gs_held))
			continue;
		gcw w = {0};
		helped += runtime_help_globals(&w, SIZE_MAX);
		astore_rel(&gs_helped, 1);
	}
	gc_blocking_begin();
	pthread_join(c, NULL);
	gc_blocking_end();
	runtime_globals_set_hook(NULL);
	printf("# this thread scanned %zu of %d slots\n", helped,
	       GS_RANGES * GS_SLOTS);
	ck_assert_uint_gt(helped, 0);
	gc_collect(); /* what the first mark missed is freed by now */
	for (int k = 0; k < GS_RANGES; k++) {
		for (size_t i = 0; i < GS_SLOTS; i++) {
			void *o = gs_range[k][i];
			REQUIRE(is_live(o) && check_payload(o, 16,
			        (uint64_t)k << 16 | i), "range %d: the "
			        "object in slot %zu freed", k, i);
		}
		ck_assert_int_eq(gc_remove_roots(gs_range[k]), GCHEAP_OK);
		free(gs_range[k]);
	}
}
END_TEST

/* ---- Precise frames ------------------------------------------------------ */

START_TEST(test_frames)
{
	gc_frame f1, f2;
	void *s1[3] = {0}, *s2[2] = {0}, *s3[1] = {0};

	start(false);
	gc_frame_push(&f1, s1, 3);
	void **x = new_holder(1), **z = new_holder(3), **w = new_holder(4);
	s1[0] = x;
	s1[2] = z;
	gc_collect();
	ck_assert(holder_ok(x, 1) && holder_ok(z, 3));
	ck_assert_msg(!is_live(w), "an object in no frame was kept");

	/* Nested. */
	gc_frame_push(&f2, s2, 2);
	void **y = new_holder(2);
	s2[1] = y;
	gc_collect();
	ck_assert(holder_ok(x, 1) && holder_ok(y, 2));
	gc_frame_pop(&f2);
	gc_collect();
	ck_assert_msg(!is_live(y), "a popped frame still counts");
	ck_assert(holder_ok(x, 1) && holder_ok(z, 3));

	/* nslots shrinks: s1[2] is no longer a root. */
	f1.nslots = 1;
	gc_collect();
	ck_assert(holder_ok(x, 1));
	ck_assert(!is_live(z));

	/* slots points elsewhere. */
	void **v = new_holder(5);
	s3[0] = v;
	f1.slots = s3;
	gc_collect();
	ck_assert(holder_ok(v, 5));
	ck_assert(!is_live(x));

	gc_frame_pop(&f1);
	gc_collect();
	ck_assert(!is_live(v));
}
END_TEST

/* ---- Conservative stacks ------------------------------------------------- */

/* Allocate a payload and return its address hidden, so no plain copy of it
 * need stay on the stack. */
static NOINLINE uintptr_t make_hidden(size_t n, uint64_t key)
{
	return hide(new_payload(n, key));
}

/* Overwrite the dead stack below the caller. */
static NOINLINE void scrub_stack(void)
{
	volatile char buf[32 << 10];
	memset((char *)buf, 0, sizeof(buf));
}

/* The unhidden address plus off, computed out of line so that the base
 * address never sits in the caller's registers. */
static NOINLINE void *unhide_plus(uintptr_t hx, uintptr_t off)
{
	return (char *)unhide(hx) + off;
}

/* Hold base + off only in a local while collecting. */
static NOINLINE void hold_in_local(uintptr_t hx, uintptr_t off)
{
	void *volatile local = unhide_plus(hx, off);
	scrub_stack();
	gc_collect();
	gc_collect();
	ck_assert_ptr_nonnull(local);
}

START_TEST(test_stack_local)
{
	start(true);
	uintptr_t hx = make_hidden(128, 11);
	hold_in_local(hx, 0);
	ck_assert_msg(is_live(unhide(hx)), "a pointer in a local did not "
	              "keep its object");
	ck_assert(check_payload(unhide(hx), 128, 11));
}
END_TEST

START_TEST(test_stack_interior)
{
	start(true);
	uintptr_t hx = make_hidden(128, 12);
	size_t size = 128;
	hold_in_local(hx, 8);
	ck_assert_msg(is_live(unhide(hx)), "base + 8 did not keep it");
	ck_assert(check_payload(unhide(hx), 128, 12));
	uintptr_t hy = make_hidden(128, 13);
	hold_in_local(hy, size - 1);
	ck_assert_msg(is_live(unhide(hy)), "base + size - 1 did not keep it");
	ck_assert_uint_eq(gc_size(unhide(hy)), size);
	ck_assert(check_payload(unhide(hy), 128, 13));
	/* Large objects too. */
	uintptr_t hz = make_hidden(100000, 14);
	hold_in_local(hz, 99999);
	ck_assert(is_live(unhide(hz)));
	ck_assert(check_payload(unhide(hz), 100000, 14));
}
END_TEST

#define DEPTH 3000

/* Each level holds its own object in a local, the bottom collects, and
 * every level checks its object on the way back. Returns failures. */
static NOINLINE int recurse(int depth)
{
	void *volatile p = unhide(make_hidden(48, 1000 + depth));
	int bad = 0;

	if (depth == DEPTH) {
		scrub_stack();
		gc_collect();
		gc_collect();
	} else {
		bad = recurse(depth + 1);
	}
	if (!is_live(p) || !check_payload(p, 48, 1000 + depth))
		bad++;
	return bad;
}

START_TEST(test_stack_deep_recursion)
{
	start(true);
	int bad = recurse(0);
	ck_assert_msg(bad == 0, "%d of %d locals lost", bad, DEPTH + 1);
}
END_TEST

START_TEST(test_conservative_off_frees_stack_only)
{
	start(true);
	ck_assert(options_.conservative);
	gc_set_conservative_stacks(0);
	ck_assert(!options_.conservative);
	uintptr_t hx = make_hidden(128, 21);
	hold_in_local(hx, 0);
	ck_assert_msg(!is_live(unhide(hx)), "conservative scanning is off "
	              "but a stack-only object survived");
	gc_set_conservative_stacks(1);
	uintptr_t hy = make_hidden(128, 22);
	hold_in_local(hy, 0);
	ck_assert(is_live(unhide(hy)));
}
END_TEST

/* Fill the dead stack below the caller with the address of hx's object,
 * all but the `keep` bytes nearest the caller, zeroed (where the
 * library's entry frame will lie). */
static NOINLINE void plant_stale(uintptr_t hx, size_t keep)
{
	volatile uintptr_t buf[(16 << 10) / sizeof(uintptr_t)];
	size_t n = sizeof(buf) / sizeof(buf[0]);
	size_t k = keep / sizeof(uintptr_t);
	uintptr_t x = (uintptr_t)unhide(hx);

	for (size_t i = 0; i < n; i++)
		buf[i] = i + k >= n ? 0 : x;
}

/* The conservative scan of a thread's stack starts at the library's entry
 * (runtime.h, "Entries"), not in its deeper frames, whose dead slots
 * hold what earlier calls left there: here, an object's address planted
 * below the caller keeps it only if the scan reads the library's frames
 * (a helper's LRU cache kept chains of dead entries that way: 3x
 * bdwgc's RSS). The thread scans itself at gc_safepoint, in the
 * allocation slow path, or at gc_weak_get's safepoint (no entry of its
 * own: the safepoint makes one), while another runs the cycle; the
 * object must be gone when that cycle's sweep is. */
enum { VIA_SAFEPOINT, VIA_ALLOC, VIA_WEAK_GET };

/* The bytes below the caller left zeroed: where the library's frames
 * above its entry and the entry's own lie. 128 in the plain builds, where
 * gc_alloc jumps to its slow path; under the sanitizers it keeps a frame
 * of its own (112 bytes under TSan), which puts the entry's, and the slot
 * of alignment padding that frame may leave unwritten (design.md,
 * "Native stacks"), below 128 (TSan's run found the planted address
 * there once). */
#define PLANT_KEEP (UNDER_SANITIZER ? 512 : 128)

static void stale_during_cycle(int via)
{
	static const char *const names[] = {"gc_safepoint", "gc_alloc",
	                                    "gc_weak_get"};
	uintptr_t hx = make_hidden(128, 41 + (uint64_t)via);
	void *volatile kept = new_payload(64, 50);
	gc_weak *volatile w = gc_weak_new(kept);
	uintptr_t cycles = aload(&mgc_.cycles);
	pthread_t c;

	ck_assert_int_eq(pthread_create(&c, NULL, collect_main, NULL), 0);
	while (aload(&mgc_.cycles) == cycles) {
		plant_stale(hx, PLANT_KEEP);
		if (via == VIA_ALLOC)
			(void)gc_alloc(40000, NULL); /* the slow path, always */
		else if (via == VIA_WEAK_GET)
			ck_assert_ptr_eq(gc_weak_get(w), kept);
		else
			gc_safepoint();
	}
	gc_blocking_begin();
	pthread_join(c, NULL);
	gc_blocking_end();
	ck_assert_msg(!is_live(unhide(hx)), "an address left below the "
	              "caller's frame, in the library's frames, kept its "
	              "object (%s)", names[via]);
	ck_assert(is_live(kept));
}

START_TEST(test_stack_library_frames_unscanned)
{
	start(true);
	stale_during_cycle(VIA_SAFEPOINT);
	stale_during_cycle(VIA_ALLOC);
	stale_during_cycle(VIA_WEAK_GET);
	/* The same address in a live local of the caller keeps it. */
	uintptr_t hy = make_hidden(128, 42);
	plant_stale(hy, PLANT_KEEP);
	hold_in_local(hy, 0);
	ck_assert(is_live(unhide(hy)));
}
END_TEST

/* ---- A blocked thread ---------------------------------------------------- */

typedef struct blocked_arg {
	int state;          /* 1 blocked, 2 go on, 3 done */
	uintptr_t hx, hy;   /* hidden: its stack object and frame object */
	int ok;
} blocked_arg;

static NOINLINE void blocked_body(blocked_arg *b)
{
	void *fs[1];
	gc_frame f;
	void *volatile x = new_payload(200, 31);

	fs[0] = new_payload(200, 32);
	gc_frame_push(&f, fs, 1);
	b->hx = hide(x);
	b->hy = hide(fs[0]);
	scrub_stack();
	gc_blocking_begin();
	__atomic_store_n(&b->state, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) != 2)
		sleep_us(100);
	gc_blocking_end();
	b->ok = is_live(x) && check_payload(x, 200, 31) &&
	        is_live(fs[0]) && check_payload(fs[0], 200, 32);
	gc_frame_pop(&f);
}

static void *blocked_main(void *arg)
{
	blocked_arg *b = arg;

	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	blocked_body(b);
	gc_thread_detach();
	__atomic_store_n(&b->state, 3, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(test_blocked_thread_stack)
{
	blocked_arg b = {0};
	pthread_t th;

	start(true);
	ck_assert_int_eq(pthread_create(&th, NULL, blocked_main, &b), 0);
	while (__atomic_load_n(&b.state, __ATOMIC_ACQUIRE) != 1)
		sleep_us(100);
	gc_collect();
	gc_collect();
	ck_assert_msg(is_live(unhide(b.hx)), "the blocked thread's local was "
	              "not scanned");
	ck_assert_msg(is_live(unhide(b.hy)), "the blocked thread's frame was "
	              "not scanned");
	__atomic_store_n(&b.state, 2, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(th, NULL);
	gc_blocking_end();
	ck_assert_int_eq(b.state, 3);
	ck_assert(b.ok);
}
END_TEST

/* ---- Bad input ----------------------------------------------------------- */

static void *unattached_frame_ops(void *arg)
{
	gc_frame f;
	void *s[1] = {0};
	gc_status *st = arg;

	gc_set_error_handler(count_error, NULL);
	gc_frame_push(&f, s, 1);
	st[0] = gc_last_error();
	gc_frame_pop(&f);
	st[1] = gc_last_error();
	return NULL;
}

START_TEST(test_bad_input)
{
	static void *slots[2];
	char buf[32] __attribute__((aligned(8)));
	gc_frame f1, f2;
	void *s1[1] = {0}, *s2[1] = {0};

	start(false);
	gc_set_error_handler(count_error, NULL);
	ck_assert_int_eq(gc_add_roots(NULL, 1), GCHEAP_ERR_ARG);
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 1);
	ck_assert_int_eq(gc_add_roots(buf + 1, 1), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 2);
	ck_assert_int_eq(gc_remove_roots(slots), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 3);
	ck_assert_int_eq(gc_remove_roots(NULL), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 4);
	ck_assert_int_eq(gc_add_roots(slots, 2), GCHEAP_OK);
	ck_assert_int_eq(gc_remove_roots(slots), GCHEAP_OK);
	ck_assert_int_eq(gc_remove_roots(slots), GCHEAP_ERR_ARG);
	ck_assert_int_eq(nerrors, 5);

	/* Popping a frame that is not the innermost changes nothing. */
	gc_frame_push(&f1, s1, 1);
	gc_frame_push(&f2, s2, 1);
	gc_frame_pop(&f1);
	ck_assert_int_eq(nerrors, 6);
	ck_assert_int_eq(last_code, GCHEAP_ERR_ARG);
	ck_assert_ptr_eq(thread_current->frames, &f2);
	void **x = new_holder(41);
	s1[0] = x;
	gc_collect();
	ck_assert(holder_ok(x, 41));
	gc_frame_pop(&f2);
	gc_frame_pop(&f1);
	ck_assert_int_eq(nerrors, 6);
	ck_assert_ptr_null(thread_current->frames);
	gc_frame_pop(&f1); /* no frames at all */
	ck_assert_int_eq(nerrors, 7);
	gc_collect();
	ck_assert(!is_live(x));

	/* A frame pushed again (its function returned without popping it
	 * and runs again): refused, or the list would close into a cycle
	 * that the next stack scan walks forever (gc_collect hung). The
	 * innermost frame at any check level, a deeper one at >= 2. */
	s1[0] = s2[0] = NULL;
	gc_frame_push(&f1, s1, 1);
	gc_frame_push(&f1, s1, 1);
	ck_assert_int_eq(nerrors, 8);
	ck_assert_int_eq(last_code, GCHEAP_ERR_ARG);
	ck_assert_ptr_eq(thread_current->frames, &f1);
	ck_assert_ptr_null(f1.prev);
	gc_frame_push(&f2, s2, 1);
	gc_frame_push(&f1, s1, 1);
	ck_assert_int_eq(nerrors, GCHEAP_CHECK_LEVEL >= 2 ? 9 : 8);
	if (GCHEAP_CHECK_LEVEL >= 2) {
		ck_assert_ptr_eq(thread_current->frames, &f2);
		gc_collect(); /* ends */
		gc_frame_pop(&f2);
		gc_frame_pop(&f1);
		ck_assert_ptr_null(thread_current->frames);
	}

	/* From an unattached thread. */
	gc_status st[2] = {GCHEAP_OK, GCHEAP_OK};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, unattached_frame_ops, st),
	                 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(st[0], GCHEAP_ERR_NOT_ATTACHED);
	ck_assert_int_eq(st[1], GCHEAP_ERR_NOT_ATTACHED);
	gc_set_error_handler(NULL, NULL);
}
END_TEST

static Suite *roots_suite(void)
{
	Suite *s = suite_create("roots");
	TCase *tc = tcase_create("roots");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_global_roots);
	tcase_add_test(tc, test_global_roots_many);
	tcase_add_test(tc, test_global_roots_scan_drops_lock);
	tcase_add_test(tc, test_global_roots_add_at_cursor);
	tcase_add_test(tc, test_global_roots_scan_shared);
	tcase_add_test(tc, test_frames);
	tcase_add_test(tc, test_stack_local);
	tcase_add_test(tc, test_stack_interior);
	tcase_add_test(tc, test_stack_deep_recursion);
	tcase_add_test(tc, test_conservative_off_frees_stack_only);
	tcase_add_test(tc, test_stack_library_frames_unscanned);
	tcase_add_test(tc, test_blocked_thread_stack);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(roots_suite());
}
