/* tests/gc/test_greentea.c: span-batched marking (GCHEAP_DEBUG=greentea=1,
 * gc/mgcspanq.h).
 *
 *  - staged in a mark held open (test_harness.c): marking an object of a
 *    small scan span takes the span (owned, one mark) and queues it once;
 *    further marks while it is queued only note "many"; the scan of the
 *    span scans every marked object, including one that the scan itself
 *    marks in the same span (a mark arriving while the span is owned),
 *    sets their scan bits, gives the span up, and counts every object
 *    once in nmarked and bytes_marked; a span with a single mark goes the
 *    one-mark way; checkmark then verifies the whole mark;
 *  - many objects on few spans, linked at random, through several cycles
 *    with half dropped each time: every survivor intact (checkmark on),
 *    every dropped object freed, and the heap's live bytes after a cycle
 *    exactly those of the survivors;
 *  - a chain of 8-byte cells longer in one span than the visit's queue:
 *    every cell survives (those that found the queue full included);
 *  - greentea=0 gives no span scan bits and never owns a span;
 *  - the work a drain counts: GCMARK_FAR_WORK more for an object greyed
 *    from another span, nothing more from its own (test_far_work; the
 *    staged test checks it with span marking).
 * Precise mode: C locals are no roots. */
#include "test_harness.c"

#include "gc/mgcspanq.h"

#include "precise_fixture.c"

static uintptr_t owned(const void *p)
{
	return aload(&spanof((uintptr_t)p)->gcowned);
}

static bool scanned(const void *p)
{
	mspan *s = spanof((uintptr_t)p);
	uintptr_t i = mspan_object_index(s, (uintptr_t)p);
	return (aload((atomic_word *)&s->gcscan_bits[i / 64]) >> (i % 64)) &
	       1;
}

static uintptr_t esize(const void *p)
{
	return spanof((uintptr_t)p)->elemsize;
}

START_TEST(test_span_staged)
{
	enum { NODES = 64 };
	node *n[NODES];
	helper h;

	start("greentea=1,checkmark=1,verify=1,poison=1");
	helper_start(&h);
	/* Five nodes of one span (n1, n2, n3 and n5, reached from n1 only)
	 * with a payload each, and A, a 24-byte object (another span) with
	 * one: everything reachable only from H's frame. */
	for (int i = 0; i < NODES; i++)
		n[i] = new_node((uint64_t)i);
	node *ns[4];
	int k = 0;
	for (int i = 0; i < NODES && k < 4; i++)
		if (spanof((uintptr_t)n[i]) == spanof((uintptr_t)n[0]))
			ns[k++] = n[i];
	ck_assert_int_eq(k, 4);
	node *n1 = ns[0], *n2 = ns[1], *n3 = ns[2], *n5 = ns[3];
	ck_assert_ptr_nonnull(spanof((uintptr_t)n1)->gcscan_bits);
	void **a = gc_alloc(3 * sizeof(void *), t_one);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_ne(spanof((uintptr_t)a), spanof((uintptr_t)n1));
	void *c[5];
	node *holder[5] = {n1, n2, n3, n5, NULL};
	for (int i = 0; i < 5; i++) {
		c[i] = new_payload(48, 100 + (uint64_t)i);
		if (holder[i])
			gc_write(&holder[i]->a, c[i]);
		else
			gc_write(&a[0], c[i]);
	}
	gc_write(&n1->b, n5);
	h.slots[0] = n1;
	h.slots[1] = n2;
	h.slots[2] = n3;
	h.slots[3] = a;

	pause_begin(&h);
	gcw w = {0};
	gcmark_value(&w, (uintptr_t)n1, true, 0, 0);
	ck_assert_uint_eq(owned(n1), SPAN_OWNED_ONE);
	ck_assert(!gcw_spans_empty(&w));
	gcmark_value(&w, (uintptr_t)n1, true, 0, 0); /* marked: nothing */
	ck_assert_uint_eq(w.nmarked, 1);
	gcmark_value(&w, (uintptr_t)n2, true, 0, 0);
	ck_assert_uint_eq(owned(n1), SPAN_OWNED_MANY);
	gcmark_value(&w, (uintptr_t)n3, true, 0, 0);
	gcmark_value(&w, (uintptr_t)a, true, 0, 0);
	ck_assert_uint_eq(owned(a), SPAN_OWNED_ONE);
	ck_assert_uint_eq(w.nmarked, 4);
	/* Two spans queued, each once, in order. */
	ck_assert_ptr_nonnull(w.sput);
	ck_assert_uint_eq(w.sput->n, 2);
	ck_assert_uint_eq(w.sput->obj[0], (uintptr_t)n1);
	ck_assert_uint_eq(w.sput->obj[1], (uintptr_t)a);
	ck_assert(!scanned(n1) && !is_marked(n5) && !is_marked(c[0]));

	intptr_t work = gcmark_drain(&w, -1);
	ck_assert(gcw_empty(&w));
	/* The work counted: 46 units of scanning (two span visits, the
	 * objects and their slots), and GCMARK_FAR_WORK for each payload,
	 * the five objects the drain marked from outside their spans. */
	ck_assert_int_eq(work, 46 + 5 * GCMARK_FAR_WORK);
	ck_assert_uint_eq(owned(n1), SPAN_UNOWNED);
	ck_assert_uint_eq(owned(a), SPAN_UNOWNED);
	ck_assert(scanned(n1) && scanned(n2) && scanned(n3) && scanned(n5));
	ck_assert(scanned(a));
	ck_assert(is_marked(n5));
	for (int i = 0; i < 5; i++)
		ck_assert_msg(is_marked(c[i]), "payload %d unmarked", i);
	/* Each object once: n1, n2, n3, A, then n5 and the five payloads. */
	ck_assert_uint_eq(w.nmarked, 10);
	ck_assert_uint_eq(w.bytes_marked, 4 * esize(n1) + esize(a) +
	                                  5 * esize(c[0]));
	/* Garbage of the same span stays white. */
	for (int i = 0; i < NODES; i++)
		if (n[i] != n1 && n[i] != n2 && n[i] != n3 && n[i] != n5)
			ck_assert(!is_marked(n[i]));
	gcw_dispose(&w);

	pause_end(&h, NULL, NULL);
	for (int i = 0; i < 5; i++)
		ck_assert(is_live(c[i]) && check_payload(c[i], 48,
		                                         100 + (uint64_t)i));
	ck_assert(is_live(n5) && n5->key < NODES);
	helper_stop(&h);
}
END_TEST

/* Live bytes of the heap, as the last cycle marked them. */
static uint64_t live_bytes(void)
{
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	return st.heap_live;
}

START_TEST(test_span_dense)
{
	enum { N = 20000, ROUNDS = 4 };
	void *slots[1] = {0};
	gc_frame f;
	uint64_t rng = 12345;

	start("greentea=1,checkmark=1,verify=1,poison=1");
	gc_frame_push(&f, slots, 1);
	gc_collect();
	uint64_t base = live_bytes();
	node **roots = gc_alloc_array(N, t_ptr);
	ck_assert_ptr_nonnull(roots);
	slots[0] = roots;
	uintptr_t *hidden = calloc(N, sizeof(uintptr_t));
	uintptr_t *payload = calloc(N, sizeof(uintptr_t));
	ck_assert(hidden && payload);
	node **tmp = calloc(N, sizeof(node *));
	ck_assert_ptr_nonnull(tmp);
	for (size_t i = 0; i < N; i++) {
		tmp[i] = new_node(i);
		gc_write(&tmp[i]->b, new_payload(16, i));
		hidden[i] = hide(tmp[i]);
		payload[i] = hide(tmp[i]->b);
	}
	/* Random links; only every other node is a root, the rest are
	 * reached (or not) through the links. */
	for (size_t i = 0; i < N; i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		gc_write(&tmp[i]->a, tmp[(rng >> 33) % N]);
		if (i % 2 == 0)
			gc_write(&roots[i], tmp[i]);
	}
	memset(tmp, 0, N * sizeof(node *));
	free(tmp);
	bool *live = calloc(N, sizeof(bool));
	ck_assert_ptr_nonnull(live);
	for (int r = 0; r < ROUNDS; r++) {
		gc_collect();
		/* What must be live: the closure from the roots. */
		memset(live, 0, N * sizeof(bool));
		size_t nlive = 0;
		for (size_t i = 0; i < N; i++) {
			node *o = roots[i];
			while (o && !live[o->key]) {
				live[o->key] = true;
				nlive++;
				o = o->a;
			}
		}
		for (size_t i = 0; i < N; i++) {
			node *o = unhide(hidden[i]);
			void *p = unhide(payload[i]);
			if (!live[i]) {
				REQUIRE(!is_live(o), "round %d: dead node "
				        "%zu kept", r, i);
				continue;
			}
			REQUIRE(is_live(o) && o->key == i && o->b == p &&
			        check_payload(p, 16, i), "round %d: node %zu "
			        "lost", r, i);
		}
		uint64_t want = base + esize(roots) +
		                nlive * (sizeof(node) + 16);
		ck_assert_uint_eq(live_bytes(), want);
		/* Drop half of the remaining roots. */
		for (size_t i = r % 2; i < N; i += 2)
			gc_write(&roots[i], NULL);
	}
	free(live);
	free(hidden);
	free(payload);
	gc_frame_pop(&f);
}
END_TEST

/* A chain of 8-byte cells (4,096 to a span) in allocation order: marking
 * it from its head marks nearly every cell from the span being visited,
 * more than the visit's queue holds (VISIT_QUEUE); the cells that find
 * it full wait for the visit's next pass and must be scanned all the
 * same. */
START_TEST(test_span_queue_full)
{
	enum { N = 3 * 4096 };
	void *slots[1] = {0};
	gc_frame f;
	void **prev = NULL;

	start("greentea=1,checkmark=1,verify=1,poison=1");
	gc_frame_push(&f, slots, 1);
	uintptr_t *hidden = calloc(N, sizeof(uintptr_t));
	ck_assert_ptr_nonnull(hidden);
	for (size_t i = 0; i < N; i++) {
		void **c = gc_alloc(sizeof(void *), t_ptr);
		ck_assert_ptr_nonnull(c);
		if (prev)
			gc_write(prev, c);
		else
			slots[0] = c;
		prev = c;
		hidden[i] = hide(c);
	}
	prev = NULL;
	/* Some span holds a longer stretch of the chain than the queue. */
	size_t run = 1, longest = 1;
	for (size_t i = 1; i < N; i++) {
		bool same = spanof((uintptr_t)unhide(hidden[i])) ==
		            spanof((uintptr_t)unhide(hidden[i - 1]));
		run = same ? run + 1 : 1;
		longest = run > longest ? run : longest;
	}
	ck_assert_uint_gt(longest, VISIT_QUEUE);
	for (int r = 0; r < 2; r++) {
		gc_collect();
		for (size_t i = 0; i < N; i++) {
			void **c = unhide(hidden[i]);
			void *next = i + 1 < N ? unhide(hidden[i + 1]) : NULL;
			REQUIRE(is_live(c) && *c == next, "round %d: cell %zu "
			        "lost", r, i);
		}
	}
	free(hidden);
	gc_frame_pop(&f);
}
END_TEST

START_TEST(test_greentea_off)
{
	void *slots[1] = {0};
	gc_frame f;

	start("greentea=0,checkmark=1,verify=1");
	gc_frame_push(&f, slots, 1);
	node *o = new_node(1);
	slots[0] = o;
	ck_assert_ptr_null(spanof((uintptr_t)o)->gcscan_bits);
	for (int i = 0; i < 100; i++) {
		node *x = new_node((uint64_t)i);
		gc_write(&x->a, o);
		slots[0] = o = x;
	}
	gc_collect();
	ck_assert_uint_eq(owned(o), SPAN_UNOWNED);
	for (int i = 99; i >= 0; i--, o = o->a)
		ck_assert_uint_eq(o->key, (uint64_t)i);
	gc_frame_pop(&f);
}
END_TEST

/* The work a drain counts (GCMARK_FAR_WORK) for objects object at a
 * time (greentea=0): a pointer to another node of the same span adds
 * nothing beyond its slot, one to a payload on another span adds
 * GCMARK_FAR_WORK. */
START_TEST(test_far_work)
{
	enum { NODES = 64 };
	node *n[NODES];
	helper h;

	start("greentea=0,checkmark=1,verify=1,poison=1");
	helper_start(&h);
	for (int i = 0; i < NODES; i++)
		n[i] = new_node((uint64_t)i);
	node *n1 = n[0], *n2 = NULL;
	for (int i = 1; i < NODES && !n2; i++)
		if (spanof((uintptr_t)n[i]) == spanof((uintptr_t)n1))
			n2 = n[i];
	ck_assert_ptr_nonnull(n2);
	void *c = new_payload(48, 7);
	ck_assert_ptr_ne(spanof((uintptr_t)c), spanof((uintptr_t)n1));
	gc_write(&n1->a, n2);
	gc_write(&n1->b, c);
	h.slots[0] = n1;

	pause_begin(&h);
	gcw w = {0};
	gcmark_value(&w, (uintptr_t)n1, true, 0, 0);
	uintptr_t far0 = w.far_marks;
	intptr_t work = gcmark_drain(&w, -1);
	ck_assert(gcw_empty(&w));
	ck_assert(is_marked(n2) && is_marked(c));
	ck_assert_uint_eq(w.far_marks - far0, 1);
	/* n1 and n2 scanned (1 + 2 slots each), c marked from afar. */
	ck_assert_int_eq(work, 2 * 3 + GCMARK_FAR_WORK);
	gcw_dispose(&w);
	pause_end(&h, NULL, NULL);
	ck_assert(is_live(n2) && is_live(c) && check_payload(c, 48, 7));
	helper_stop(&h);
}
END_TEST

static Suite *greentea_suite(void)
{
	Suite *s = suite_create("greentea");
	TCase *tc = tcase_create("greentea");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_span_staged);
	tcase_add_test(tc, test_span_dense);
	tcase_add_test(tc, test_span_queue_full);
	tcase_add_test(tc, test_greentea_off);
	tcase_add_test(tc, test_far_work);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(greentea_suite());
}
