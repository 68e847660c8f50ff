/* tests/gc/test_debugmodes.c: the GCHEAP_DEBUG verification modes
 * (runtime/options.c) catch what they are for. Death tests (the process
 * must die through fatal(), exit code 70): poison=1 catches a write after
 * free into a freed slot and into a freed span; invalidptr=1 catches a
 * precise root into the unused tail of a span in use and one into a span
 * that was freed back to the heap, invalidptr=2 one
 * that points at a freed object (at invalidptr=1 that object gets marked
 * and the zombie check at sweep catches it instead); checkmark=1 catches a
 * reachable object the concurrent mark missed (hidden by a store without
 * the barrier, staged with the harness); a marked free object is fatal at
 * sweep (zombie). Each scenario also runs in a forked child whose stderr
 * is read, to check that the right check fired. Non-death: every key of
 * GCHEAP_DEBUG is parsed (values, k/M suffixes, a bare key), unknown keys
 * and bad values are reported and ignored, the defaults, gctrace's line,
 * a stop-the-world cycle that keeps and frees what it should, and
 * invalidptr=0 ignoring what invalidptr=1 stops for. */
#include "test_harness.c"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FATAL_CODE 70

static gc_type *t_ptrs;

static void start(const char *debug)
{
	t_ptrs = attach_precise(debug, FATAL_CODE);
}

/* Run fn in a forked child with stderr captured: the child must exit
 * with FATAL_CODE and its stderr contain `want`. */
static void expect_fatal(void (*fn)(void), const char *want)
{
	char path[] = "/tmp/gcheap-debugmodes-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 2);
		fn();
		fprintf(stderr, "(the scenario returned)\n");
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == FATAL_CODE,
	              "status %#x, stderr: %s", status, buf);
	ck_assert_msg(strstr(buf, want), "wanted \"%s\" on stderr, got: %s",
	              want, buf);
}

/* ---- poison -------------------------------------------------------------- */

/* Free an object whose span keeps other live objects, write through a
 * hidden pointer, then allocate until the slot comes back. */
static void poison_slot(void)
{
	static void *keep[8];

	start("poison=1");
	ck_assert_int_eq(gc_add_roots(keep, 8), GCHEAP_OK);
	void *p[8];
	for (int i = 0; i < 8; i++)
		p[i] = new_payload(1024, i);
	ck_assert_ptr_eq(spanof((uintptr_t)p[0]), spanof((uintptr_t)p[7]));
	uintptr_t hidden = hide(p[3]);
	for (int i = 0; i < 8; i++)
		gc_write(&keep[i], i == 3 ? NULL : p[i]);
	memset(p, 0, sizeof(p));
	gc_collect();
	ck_assert(!is_live(unhide(hidden)));
	((char *)unhide(hidden))[100] = 42; /* the write after free */
	for (int i = 0; i < 10000; i++) {
		void *q = gc_alloc(1024, NULL);
		ck_assert_msg(q != unhide(hidden), "the slot was reused, the "
		              "write after free went unnoticed");
	}
	ck_abort_msg("the freed slot was never reused");
}

/* The same when the whole span was freed back to the heap. */
static void poison_span(void)
{
	start("poison=1");
	void *p[4];
	for (int i = 0; i < 4; i++)
		p[i] = new_payload(2048, i);
	uintptr_t hidden = hide(p[1]);
	memset(p, 0, sizeof(p));
	gc_collect();
	/* The span went back to the heap. */
	ck_assert_ptr_null(spanof(hidden ^ HIDE_KEY));
	((char *)unhide(hidden))[7] = 42;
	for (int i = 0; i < 100000; i++) {
		ck_assert_ptr_nonnull(gc_alloc(2048, NULL));
		ck_assert_msg(!spanof(hidden ^ HIDE_KEY), "the page was reused "
		              "without detection");
	}
	ck_abort_msg("the freed span was never reused");
}

START_TEST(test_poison_slot)
{
	poison_slot();
}
END_TEST

START_TEST(test_poison_span)
{
	poison_span();
}
END_TEST

/* ---- invalidptr ---------------------------------------------------------- */

static void *bad_root[1];

/* A registered root points past the last object of a span in use. */
static void invalid_tail(const char *debug)
{
	start(debug);
	void *p = new_payload(48, 1);
	mspan *s = spanof((uintptr_t)p);
	uintptr_t end = s->base + s->npages * PAGE_SIZE;
	ck_assert_uint_lt(s->limit + 8, end);
	static void *keep[1];
	ck_assert_int_eq(gc_add_roots(keep, 1), GCHEAP_OK);
	gc_write(&keep[0], p);
	bad_root[0] = (void *)(s->limit + 8); /* before it is a root */
	ck_assert_int_eq(gc_add_roots(bad_root, 1), GCHEAP_OK);
	gc_collect();
}

static void invalid_tail_1(void)
{
	invalid_tail("invalidptr=1");
	ck_abort_msg("invalidptr=1 let a pointer into a span's tail pass");
}

/* A registered root points at an object that was freed (its span lives
 * on): hidden while the object was collected, then revealed. */
static void freed_object_root(const char *debug)
{
	static void *keep[2];

	start(debug);
	ck_assert_int_eq(gc_add_roots(keep, 2), GCHEAP_OK);
	gc_write(&keep[0], new_payload(64, 1));
	void *victim = new_payload(64, 2);
	gc_write(&keep[1], new_payload(64, 3));
	ck_assert_ptr_eq(spanof((uintptr_t)victim),
	                 spanof((uintptr_t)keep[0]));
	uintptr_t hidden = hide(victim);
	victim = NULL;
	gc_collect();
	ck_assert(!is_live(unhide(hidden)));
	bad_root[0] = unhide(hidden); /* before it is a root */
	ck_assert_int_eq(gc_add_roots(bad_root, 1), GCHEAP_OK);
	gc_collect();
	gc_collect();
}

static void invalid_freed_2(void)
{
	freed_object_root("invalidptr=2");
	ck_abort_msg("invalidptr=2 let a root to a freed object pass");
}

static void invalid_freed_1(void)
{
	freed_object_root(NULL);
	ck_abort_msg("a root to a freed object went unnoticed");
}

/* A registered root points into a span that was freed and gave its pages
 * back to the heap (no span owns the page any more). */
static void freed_span_root(void)
{
	start("invalidptr=1");
	void *victim = new_payload(64, 1);
	uintptr_t hidden = hide(victim);
	mspan *s = spanof((uintptr_t)victim);
	ck_assert_uint_eq(s->alloc_count, 1); /* alone in its span */
	victim = NULL;
	gc_collect();
	gc_collect();
	ck_assert_ptr_null(spanof((uintptr_t)unhide(hidden)));
	bad_root[0] = unhide(hidden); /* before it is a root */
	ck_assert_int_eq(gc_add_roots(bad_root, 1), GCHEAP_OK);
	gc_collect();
	ck_abort_msg("invalidptr=1 let a root into a freed span pass");
}

START_TEST(test_invalidptr_freed_span)
{
	freed_span_root();
}
END_TEST

START_TEST(test_invalidptr_tail)
{
	invalid_tail_1();
}
END_TEST

START_TEST(test_invalidptr_freed_object)
{
	invalid_freed_2();
}
END_TEST

START_TEST(test_invalidptr_default_freed_object)
{
	invalid_freed_1();
}
END_TEST

START_TEST(test_invalidptr_off_ignores)
{
	invalid_tail("invalidptr=0");
	ck_assert_int_eq(options_.invalidptr, 0);
	gc_collect();
}
END_TEST

/* ---- checkmark ----------------------------------------------------------- */

/* The lost-object race of test_barrier.c, with a plain store: X moves from
 * heap object A (reachable only from the unscanned helper) onto the
 * scanned frame, and A's slot is cleared without the barrier. */
static void hidden_from_mark(void)
{
	helper h;
	void *ms[2] = {0};
	gc_frame f;

	start(NULL);
	helper_start(&h);
	gc_frame_push(&f, ms, 2);
	void **a = gc_alloc(2 * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(a);
	gc_write(&a[0], new_payload(128, 5));
	h.slots[0] = a;
	pause_begin(&h);
	ms[0] = a[0];
	a[0] = NULL; /* no barrier */
	pause_end(&h, NULL, NULL);
	ck_abort_msg("checkmark missed an object the mark did not reach");
}

START_TEST(test_checkmark_catches_hidden_object)
{
	hidden_from_mark();
}
END_TEST

/* Checkmark bits set in the whole heap's bitmaps, every arena's. */
static size_t checkmark_bits_set(void)
{
	size_t n = 0;

	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		const uint64_t *bm = a->gc_data;
		for (size_t w = 0; bm && w < ARENA_BYTES / WORD_SIZE / 64; w++)
			n += popcount64(bm[w]);
	}
	return n;
}

/* checkmark clears its bitmap only below each arena's commit line (the
 * bits above it were never set): after a collection whose checkmark set
 * a bit for each live object, small ones and large ones that push the
 * commit line up, the next clear must leave no bit set anywhere; a stale
 * bit would stop the re-mark at its object and hide what lies past it. */
START_TEST(test_checkmark_clears_its_bits)
{
	static void *keep[256];

	start("checkmark=1");
	ck_assert_int_eq(gc_add_roots(keep, 256), GCHEAP_OK);
	for (int i = 0; i < 256; i++)
		gc_write(&keep[i], new_payload(i % 2 ? 64 : 40000, i));
	gc_collect();
	ck_assert_uint_ge(checkmark_bits_set(), 256);
	gcmark_checkmark_begin();
	size_t left = checkmark_bits_set();
	gcmark_checkmark_end();
	ck_assert_uint_eq(left, 0);
	for (int i = 0; i < 256; i++)
		ck_assert(check_payload(keep[i], i % 2 ? 64 : 40000, i));
}
END_TEST

/* ---- zombie -------------------------------------------------------------- */

/* Mark a free slot by hand: sweep must refuse it. */
static void marked_free_slot(void)
{
	start(NULL);
	void *p = new_payload(3072, 1);
	mspan *s = spanof((uintptr_t)p);
	uintptr_t i = s->nelems - 1;
	ck_assert_uint_gt(s->nelems, 1);
	ck_assert(mspan_is_free(s, i));
	aor((atomic_word *)&s->gcmark_bits[i / 64], (uintptr_t)1 << (i % 64));
	gc_collect();
	ck_abort_msg("a marked free object survived the sweep");
}

START_TEST(test_zombie)
{
	marked_free_slot();
}
END_TEST

/* ---- The messages -------------------------------------------------------- */

START_TEST(test_fatal_messages)
{
	expect_fatal(poison_slot, "write after free: byte 100 of free "
	             "object");
	expect_fatal(poison_span, "write after free: byte 2055 of freed "
	             "page");
	expect_fatal(invalid_tail_1, "invalid pointer");
	expect_fatal(invalid_freed_2, "invalid pointer");
	expect_fatal(invalid_freed_1, "zombie");
	expect_fatal(hidden_from_mark, "checkmark found an unmarked "
	             "reachable object");
	expect_fatal(marked_free_slot, "sweep found a marked object that is "
	             "free (zombie)");
}
END_TEST

/* ---- Parsing ------------------------------------------------------------- */

/* Attach with GCHEAP_DEBUG = debug (NULL: unset) and return what the
 * runtime printed on stderr meanwhile. */
static char *attach_capturing(const char *debug)
{
	static char buf[4096];
	stderr_capture c;

	if (debug)
		setenv("GCHEAP_DEBUG", debug, 1);
	else
		unsetenv("GCHEAP_DEBUG");
	stderr_capture_begin(&c);
	gc_status st = gc_thread_attach();
	stderr_capture_end(&c, buf, sizeof(buf));
	ck_assert_int_eq(st, GCHEAP_OK);
	return buf;
}

START_TEST(test_parse_every_key)
{
	sys_fatal_exit_code = FATAL_CODE;
	char *err = attach_capturing("checkmark=1,stoptheworld=1,poison=1,"
	                             "invalidptr=2,verify=1,zombie=1,"
	                             "stress=64k,gctrace=1,conservative=0,"
	                             "bogus=3");
	sys_options *d = &options_;
	ck_assert(d->checkmark);
	ck_assert(d->stoptheworld);
	ck_assert(d->poison);
	ck_assert_uint_eq(d->invalidptr, 2);
	ck_assert(d->verify);
	ck_assert_uint_eq(d->stress, 64 << 10);
	ck_assert(d->gctrace);
	ck_assert(!options_.conservative);
	ck_assert_msg(strstr(err, "unknown option \"bogus=3\""), "stderr: %s",
	              err);
	/* One line, for the one unknown key. */
	int lines = 0;
	for (char *c = err; *c; c++)
		lines += *c == '\n';
	ck_assert_msg(lines == 1, "stderr: %s", err);
}
END_TEST

START_TEST(test_parse_values)
{
	sys_fatal_exit_code = FATAL_CODE;
	char *err = attach_capturing("gctrace,stress=2M,verify=x,checkmark=0,"
	                             "poison=0x1,,=1,invalidptr=0");
	sys_options *d = &options_;
	ck_assert(d->gctrace); /* a bare key means 1 */
	ck_assert_uint_eq(d->stress, 2 << 20);
	ck_assert(!d->verify);
	ck_assert(!d->checkmark);
	ck_assert(!d->poison); /* numbers are decimal */
	ck_assert_uint_eq(d->invalidptr, 0);
	ck_assert(options_.conservative);
	ck_assert_msg(strstr(err, "bad value verify=x"), "stderr: %s", err);
	ck_assert_msg(strstr(err, "bad value poison=0x1"), "stderr: %s", err);
	/* Still usable. */
	void *p = new_payload(100, 1);
	ck_assert_ptr_nonnull(p);
	gc_collect();
}
END_TEST

START_TEST(test_parse_defaults)
{
	sys_fatal_exit_code = FATAL_CODE;
	char *err = attach_capturing(NULL);
	sys_options *d = &options_;
	ck_assert_str_eq(err, "");
	ck_assert(!d->checkmark && !d->stoptheworld && !d->poison);
	ck_assert(!d->verify && !d->gctrace);
	ck_assert_uint_eq(d->stress, 0);
	ck_assert_uint_eq(d->invalidptr, 1);
	ck_assert(options_.conservative);
	ck_assert_int_eq(mgc_.percent, 100);
}
END_TEST

/* gctrace prints one line per cycle. */
START_TEST(test_gctrace_line)
{
	sys_fatal_exit_code = FATAL_CODE;
	attach_capturing("gctrace=1");
	stderr_capture c;
	char buf[4096];
	stderr_capture_begin(&c);
	gc_collect();
	gc_collect();
	stderr_capture_end(&c, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "gcheap: gc 1 @") &&
	              strstr(buf, " MB goal, "), "stderr: %s", buf);
	ck_assert_msg(strstr(buf, "gcheap: gc 2 @"), "stderr: %s", buf);
}
END_TEST

/* A stop-the-world cycle keeps what is reachable and frees the rest. */
START_TEST(test_stoptheworld_cycle)
{
	void *ms[4] = {0};
	gc_frame f;

	start("stoptheworld=1,checkmark=1,verify=1,poison=1");
	ck_assert(options_.stoptheworld);
	gc_frame_push(&f, ms, 4);
	void **a = gc_alloc(4 * sizeof(void *), t_ptrs);
	ms[0] = a;
	for (int i = 0; i < 4; i++)
		gc_write(&a[i], new_payload(300, i));
	void *dead = new_payload(300, 9);
	uintptr_t hd = hide(dead);
	dead = NULL;
	uint64_t c0 = aload(&mgc_.cycles);
	gc_collect();
	ck_assert_uint_eq(aload(&mgc_.cycles), c0 + 1);
	for (int i = 0; i < 4; i++)
		ck_assert(is_live(a[i]) && check_payload(a[i], 300, i));
	ck_assert(!is_live(unhide(hd)));
	/* Automatic cycles in this mode too. */
	gc_enable();
	for (int i = 0; i < 20000; i++)
		gc_alloc(1024, NULL);
	ck_assert_uint_gt(aload(&mgc_.cycles), c0 + 1);
	for (int i = 0; i < 4; i++)
		ck_assert(is_live(a[i]) && check_payload(a[i], 300, i));
	gc_frame_pop(&f);
}
END_TEST

/* A gc_collect that arrives as another thread's stop-the-world cycle
 * ends, once the cycle has counted itself and before its start is over
 * (`starting` still set: the end is held 200 ms, trace_delay_test), waits
 * for the next cycle, which it runs. Its target was once two past the
 * completed cycles whenever a start was under way, one too many here:
 * the call ran one cycle and then waited for another that nobody
 * started (a helper's stress run hung so). */
static void *stw_collect_main(void *arg)
{
	atomic_word *done = arg;

	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	gc_collect();
	astore(done, 1);
	gc_thread_detach();
	return NULL;
}

START_TEST(test_stoptheworld_collect_as_cycle_ends)
{
	static atomic_word xdone, cdone;
	pthread_t x, c;

	start("stoptheworld=1");
	uintptr_t c0 = aload(&mgc_.cycles);
	astore(&mgc_.trace_delay_test, 200000000);
	ck_assert_int_eq(pthread_create(&x, NULL, stw_collect_main,
	                                (void *)(uintptr_t)&xdone),
	                 0);
	while (aload(&mgc_.cycles) == c0) {
		gc_safepoint();
		sleep_us(100);
	}
	/* In the window: X's cycle counted, its end not yet recorded. */
	ck_assert_uint_eq(aload(&mgc_.traced), c0);
	astore(&mgc_.trace_delay_test, 0);
	ck_assert_int_eq(pthread_create(&c, NULL, stw_collect_main,
	                                (void *)(uintptr_t)&cdone),
	                 0);
	for (double end = test_now_s() + 20;
	     !(aload(&xdone) && aload(&cdone)) && test_now_s() < end;) {
		gc_safepoint();
		sleep_us(1000);
	}
	ck_assert_msg(aload(&xdone) && aload(&cdone),
	              "gc_collect did not return: cycles %zu, begun %zu",
	              (size_t)aload(&mgc_.cycles),
	              (size_t)aload(&mgc_.begun));
	gc_blocking_begin();
	pthread_join(x, NULL);
	pthread_join(c, NULL);
	gc_blocking_end();
	ck_assert_uint_eq(aload(&mgc_.cycles), c0 + 2);
}
END_TEST

static Suite *debugmodes_suite(void)
{
	Suite *s = suite_create("debugmodes");
	TCase *tc = tcase_create("death");
	TCase *tn = tcase_create("parse");

	tcase_set_timeout(tc, 60);
	tcase_add_exit_test(tc, test_poison_slot, FATAL_CODE);
	tcase_add_exit_test(tc, test_poison_span, FATAL_CODE);
	tcase_add_exit_test(tc, test_invalidptr_tail, FATAL_CODE);
	tcase_add_exit_test(tc, test_invalidptr_freed_span, FATAL_CODE);
	tcase_add_exit_test(tc, test_invalidptr_freed_object, FATAL_CODE);
	tcase_add_exit_test(tc, test_invalidptr_default_freed_object,
	                    FATAL_CODE);
	tcase_add_exit_test(tc, test_checkmark_catches_hidden_object,
	                    FATAL_CODE);
	tcase_add_exit_test(tc, test_zombie, FATAL_CODE);
	tcase_add_test(tc, test_checkmark_clears_its_bits);
	tcase_add_test(tc, test_fatal_messages);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tn, 60);
	tcase_add_test(tn, test_parse_every_key);
	tcase_add_test(tn, test_parse_values);
	tcase_add_test(tn, test_parse_defaults);
	tcase_add_test(tn, test_gctrace_line);
	tcase_add_test(tn, test_stoptheworld_cycle);
	tcase_add_test(tn, test_stoptheworld_collect_as_cycle_ends);
	tcase_add_test(tn, test_invalidptr_off_ignores);
	suite_add_tcase(s, tn);
	return s;
}

int main(void)
{
	return test_main(debugmodes_suite());
}
