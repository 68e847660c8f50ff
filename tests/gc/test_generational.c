/* tests/gc/test_generational.c: generational collection (gc/mgcgen.c,
 * alloc/mcard.h): a young object stored into an old one survives a minor
 * mark through the card its store dirtied (and is lost with a plain store,
 * the control), in small objects, in a large table far from its start and
 * through gc_copy; a minor mark frees young garbage and keeps old garbage
 * until a major mark; gc_collect is always a major mark, running the minor
 * one the sweep prepared first, and the mark after it is minor; the
 * switch takes effect at a mark's end and turns the cards off again; the
 * pacer caps a minor mark's goal.
 * Every test runs with precise roots only and automatic cycles off, and
 * drives the marks with gc_collect (mgc_.minor_test: one mark of the kind
 * that is due). */
#include "test_harness.c"

#include "alloc/mcard.h"

static gc_type *t_ptrs; /* every word a pointer */

/* Attach with GCHEAP_DEBUG = debug (NULL: as the environment says), with
 * automatic cycles off, precise roots only and generational collection
 * on; gc_collect then runs one mark, of the kind that is due. */
static void start(const char *debug)
{
	t_ptrs = attach_precise(debug, 70);
	gc_set_generational(1);
	astore(&mgc_.minor_test, 1);
}

static void **new_ptrs(size_t n)
{
	void **p = gc_alloc(n * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* One mark, which must be of the kind asked for. */
static void collect(bool minor)
{
	uintptr_t m = aload(&mgc_.minors), c = aload(&mgc_.cycles);

	gc_collect();
	ck_assert_uint_eq(aload(&mgc_.cycles), c + 1);
	ck_assert_uint_eq(aload(&mgc_.minors), m + (minor ? 1 : 0));
}

/* ---- Old objects that point to young ones -------------------------------- */

/* A (old after a major mark) gets a young Y in a slot; nothing else
 * reaches Y. With gc_write the card is dirty and the minor mark keeps Y,
 * cleaning the card; with a plain store (the control) Y is freed. */
static void old_to_young(bool barrier)
{
	void *ms[1] = {0};
	gc_frame f;

	start(barrier ? NULL : "verify=0,poison=1");
	gc_frame_push(&f, ms, 1);
	void **a = new_ptrs(4);
	ms[0] = a;
	collect(false); /* a is old; the next mark is minor */
	void *y = new_payload(64, 11);
	if (barrier) {
		gc_write(&a[2], y);
		ck_assert(mcard_is_dirty((uintptr_t)&a[2]));
	} else {
		a[2] = y;
		ck_assert(!mcard_is_dirty((uintptr_t)&a[2]));
	}
	collect(true);
	if (barrier) {
		ck_assert(is_live(y) && check_payload(y, 64, 11));
		ck_assert(!mcard_is_dirty((uintptr_t)&a[2]));
		/* Old now: the next minor mark keeps it without the card. */
		collect(true);
		ck_assert(is_live(y) && check_payload(y, 64, 11));
	} else {
		ck_assert(!is_live(y));
	}
	gc_frame_pop(&f);
}

START_TEST(test_card_keeps_young)
{
	old_to_young(true);
}
END_TEST

START_TEST(test_plain_store_loses_young)
{
	old_to_young(false);
}
END_TEST

/* verify=1 checks the card invariant before every minor mark: a young
 * object stored into an old one without gc_write is fatal there, before
 * the mark can lose it (exit 70, sys_fatal_exit_code). */
START_TEST(test_verify_catches_plain_store)
{
	void *ms[1] = {0};
	gc_frame f;

	start("verify=1");
	gc_frame_push(&f, ms, 1);
	void **a = new_ptrs(4);
	ms[0] = a;
	collect(false);
	a[1] = new_payload(64, 13);
	gc_collect();
	ck_abort_msg("verify let a clean card hold a young object");
}
END_TEST

/* Young objects in far slots of an old 512 KiB table, at the first and
 * the last word of a card and in the middle of another: the minor mark
 * scans those slots' cards, not the whole table. */
START_TEST(test_large_table_card)
{
	void *ms[1] = {0};
	gc_frame f;
	size_t n = 65536;
	/* Slot 59968 starts a card (the table is page-aligned). */
	const size_t at[] = {59968, 59968 + 63, 62001};

	start(NULL);
	gc_frame_push(&f, ms, 1);
	void **l = new_ptrs(n);
	ms[0] = l;
	ck_assert_uint_eq((uintptr_t)&l[at[0]] % CARD_BYTES, 0);
	collect(false);
	for (int i = 0; i < 3; i++)
		gc_write(&l[at[i]], new_payload(48, 12 + (uint64_t)i));
	uintptr_t cards = aload(&mgc_.cards_scanned);
	collect(true);
	for (int i = 0; i < 3; i++)
		ck_assert(is_live(l[at[i]]) &&
		          check_payload(l[at[i]], 48, 12 + (uint64_t)i));
	/* The table's two cards, and the few others the mark's own start
	 * left. */
	ck_assert_uint_ge(aload(&mgc_.cards_scanned), cards + 2);
	ck_assert_uint_lt(aload(&mgc_.cards_scanned), cards + 64);
	gc_frame_pop(&f);
}
END_TEST

/* gc_copy into an old object dirties the cards of the whole range it
 * wrote, here across a card boundary. */
START_TEST(test_copy_dirties_cards)
{
	void *ms[1] = {0};
	gc_frame f;
	size_t n = 256; /* 2 KiB, card-aligned: four cards */

	start(NULL);
	gc_frame_push(&f, ms, 1);
	void **a = new_ptrs(n);
	ms[0] = a;
	ck_assert_uint_eq((uintptr_t)a % CARD_BYTES, 0);
	collect(false);
	void *src[8];
	for (int i = 0; i < 8; i++)
		src[i] = new_payload(32, 20 + (uint64_t)i);
	/* From a C array (no barrier needed there) into a[60..68), which
	 * the boundary at a[64] splits. */
	gc_copy(&a[60], src, sizeof(src));
	ck_assert(mcard_is_dirty((uintptr_t)&a[60]));
	ck_assert(mcard_is_dirty((uintptr_t)&a[67]));
	memset(src, 0, sizeof(src));
	collect(true);
	for (int i = 0; i < 8; i++)
		ck_assert(is_live(a[60 + i]) &&
		          check_payload(a[60 + i], 32, 20 + (uint64_t)i));
	gc_frame_pop(&f);
}
END_TEST

/* ---- What a minor mark frees --------------------------------------------- */

/* Old garbage stays until a major mark; young garbage goes at once. The
 * weak handles tell, and gc_collect without minor_test is a major mark
 * (the prepared minor one first). */
START_TEST(test_minor_frees_young_only)
{
	void *ms[3] = {0};
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, ms, 3);
	void *o = new_payload(64, 30);
	ms[0] = o;
	ms[1] = gc_weak_new(o);
	collect(false); /* o is old */
	ms[0] = NULL;   /* and garbage */
	void *y = new_payload(64, 31);
	ms[2] = gc_weak_new(y);
	y = NULL;
	collect(true);
	ck_assert_ptr_null(gc_weak_get(ms[2]));
	ck_assert_ptr_eq(gc_weak_get(ms[1]), o);
	collect(true);
	ck_assert_ptr_eq(gc_weak_get(ms[1]), o);
	/* A full collection: minor (prepared), then major. */
	astore(&mgc_.minor_test, 0);
	uintptr_t c = aload(&mgc_.cycles), m = aload(&mgc_.minors);
	gc_collect();
	ck_assert_uint_eq(aload(&mgc_.cycles), c + 2);
	ck_assert_uint_eq(aload(&mgc_.minors), m + 1);
	ck_assert_ptr_null(gc_weak_get(ms[1]));
	ck_assert(!aload(&mgc_.minor));
	/* And the mark after it is minor again: the caller, still counted
	 * as waiting for a major mark when that major mark ended, made the
	 * next one major too (every gc_collect cost a second major mark). */
	ck_assert(aload(&mspan_gen_.sticky));
	astore(&mgc_.minor_test, 1);
	collect(true);
	gc_frame_pop(&f);
}
END_TEST

/* ---- The switch ---------------------------------------------------------- */

/* Cards come on at the end of a mark after gc_set_generational(1), and go
 * off at the end of one after gc_set_generational(0); the mark after that
 * is major. gc_read_stats reports both. */
START_TEST(test_switch_at_mark_end)
{
	gc_stats st;

	start(NULL);
	ck_assert_int_eq(gc_set_generational(0), 1);
	collect(false);
	ck_assert(!wbbuf_cards_on());
	ck_assert_int_eq(gc_set_generational(1), 0);
	ck_assert(!wbbuf_cards_on());
	collect(false);
	ck_assert(wbbuf_cards_on());
	collect(true);
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.generational, 1);
	ck_assert_uint_eq(st.last_minor, 1);
	ck_assert_uint_ge(st.minor_cycles, 1);
	ck_assert_int_eq(gc_set_generational(0), 1);
	collect(true); /* prepared by the last sweep: still minor */
	ck_assert(!wbbuf_cards_on());
	collect(false);
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.generational, 0);
	ck_assert_uint_eq(st.last_minor, 0);
}
END_TEST

/* The goal after a minor mark: the pacer's for what it found, at most
 * the last major goal plus half its runway, or what it found plus a
 * runway once that is more (never under the live heap). The mark after
 * the old generation has taken half the runway is major. */
static void check_minor_goal(uintptr_t g, uintptr_t r)
{
	uintptr_t m = mgc_.heap_marked;
	uintptr_t want = MIN(pacer_goal(m, 100, 0, mgc_.min_goal),
	                     MAX(g + r / 2, m + r));
	ck_assert_uint_eq(aload(&mgc_.goal), want);
	ck_assert_uint_gt(aload(&mgc_.goal), m);
	ck_assert_uint_gt(aload(&mgc_.trigger), m);
}

START_TEST(test_pacer_caps_minor_goal)
{
	void *ms[1] = {0};
	gc_frame f;
	size_t n = 4096, each = 16384;

	start(NULL);
	gc_frame_push(&f, ms, 1);
	void **keep = new_ptrs(n);
	ms[0] = keep;
	collect(false);
	uintptr_t g = aload(&mgc_.goal), b = mgc_.major_marked, r = g - b;
	ck_assert_uint_eq(mgc_.major_goal, g);
	/* A quarter of the runway kept: still minor next. */
	size_t i = 0;
	for (size_t got = 0; got < r / 4; got += each, i++)
		gc_write(&keep[i], new_payload(each, 40 + i));
	collect(true);
	check_minor_goal(g, r);
	ck_assert(aload(&mspan_gen_.sticky));
	/* Twice the runway more: past the cap, and the next mark major. */
	for (size_t got = 0; got < 2 * r && i < n; got += each, i++)
		gc_write(&keep[i], new_payload(each, 40 + i));
	collect(true);
	check_minor_goal(g, r);
	ck_assert(!aload(&mspan_gen_.sticky));
	collect(false);
	gc_frame_pop(&f);
}
END_TEST

/* A gc_collect called during a major mark waits for the running mark and
 * the next, which is major for it: the next mark after a major one was
 * minor whatever the callers wanted, so the call waited through a minor
 * mark and a third, major one (docs/api.md promises at most the running
 * cycle and one more). A major mark is held (pause_begin: generational
 * collection switched on just before it, which takes effect at its end)
 * while a thread calls gc_collect. */

START_TEST(test_collect_during_major_mark)
{
	static helper h;
	pthread_t th;

	start(NULL);
	astore(&mgc_.minor_test, 0); /* gc_collect as programs call it */
	ck_assert_int_eq(gc_set_generational(0), 1);
	gc_collect();
	ck_assert_int_eq(gc_set_generational(1), 0);
	helper_start(&h);
	pause_begin(&h);
	ck_assert(!aload(&mgc_.minor));
	uintptr_t n = aload(&mgc_.cycles), m = aload(&mgc_.minors);
	uintptr_t wanted = aload(&mgc_.major_wanted);
	ck_assert_int_eq(pthread_create(&th, NULL, collect_attached_main,
	                                NULL),
	                 0);
	for (double end = test_now_s() + TEST_WAIT_S;
	     aload(&mgc_.major_wanted) < wanted + 1 && test_now_s() < end;) {
		gc_safepoint();
		sleep_us(100);
	}
	ck_assert_uint_eq(aload(&mgc_.major_wanted), wanted + 1);
	pause_end(&h, NULL, NULL);
	gc_blocking_begin();
	pthread_join(th, NULL);
	gc_blocking_end();
	ck_assert_uint_eq(aload(&mgc_.cycles), n + 2);
	ck_assert_uint_eq(aload(&mgc_.minors), m);
	ck_assert_uint_eq(aload(&mgc_.last_major), n + 2);
	/* Every caller counted once and uncounted: none left to make
	 * every later minor mark major. */
	ck_assert_uint_eq(aload(&mgc_.major_wanted), 0);
	helper_stop(&h);
}
END_TEST

static Suite *generational_suite(void)
{
	Suite *s = suite_create("generational");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_card_keeps_young);
	tcase_add_test(tc, test_plain_store_loses_young);
	tcase_add_exit_test(tc, test_verify_catches_plain_store, 70);
	tcase_add_test(tc, test_large_table_card);
	tcase_add_test(tc, test_copy_dirties_cards);
	tcase_add_test(tc, test_minor_frees_young_only);
	tcase_add_test(tc, test_switch_at_mark_end);
	tcase_add_test(tc, test_pacer_caps_minor_goal);
	tcase_add_test(tc, test_collect_during_major_mark);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(generational_suite());
}
