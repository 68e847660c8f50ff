/* tests/tools/test_dominators.c: the dominator tree and retained sizes of
 * tools/gcstat/dominators.c on hand-built graphs with known answers (the
 * Lengauer-Tarjan paper's example, chains, diamonds, cycles, unreachable
 * nodes, a million-node chain, a million-node doubly linked list held at
 * both ends), against a brute-force definition on
 * random graphs, and through the dump reader on a synthetic dump, whose
 * every truncation and every single-byte change must be rejected. */
#include "format/heapdump.h"
#include "tests/testing.h"
#include "tests/tools/dumpgen.h"
#include "tools/gcstat/gcstat.h"

#include <string.h>

#define NONE UINT32_MAX

/* A graph built edge by edge, then turned into CSR. */
typedef struct graph {
	size_t n, ne;
	uint32_t from[4096], to[4096];
	size_t *start;
	uint32_t *succ;
} graph;

static void edge(graph *g, uint32_t a, uint32_t b)
{
	ck_assert(g->ne < 4096);
	g->from[g->ne] = a;
	g->to[g->ne++] = b;
}

static void csr(graph *g)
{
	g->start = calloc(g->n + 1, sizeof(size_t));
	g->succ = malloc((g->ne + 1) * sizeof(uint32_t));
	for (size_t e = 0; e < g->ne; e++)
		g->start[g->from[e] + 1]++;
	for (size_t v = 0; v < g->n; v++)
		g->start[v + 1] += g->start[v];
	size_t *cur = malloc((g->n + 1) * sizeof(size_t));
	memcpy(cur, g->start, (g->n + 1) * sizeof(size_t));
	for (size_t e = 0; e < g->ne; e++)
		g->succ[cur[g->from[e]]++] = g->to[e];
	free(cur);
}

static void graph_free(graph *g)
{
	free(g->start);
	free(g->succ);
}

START_TEST(test_lengauer_tarjan_example)
{
	/* R A B C D E F G H I J K L = 0..12 */
	enum { R, A, B, C, D, E, F, G, H, I, J, K, L };
	static graph g;
	memset(&g, 0, sizeof(g));
	g.n = 13;
	edge(&g, R, A), edge(&g, R, B), edge(&g, R, C);
	edge(&g, A, D);
	edge(&g, B, A), edge(&g, B, D), edge(&g, B, E);
	edge(&g, C, F), edge(&g, C, G);
	edge(&g, D, L);
	edge(&g, E, H);
	edge(&g, F, I);
	edge(&g, G, I), edge(&g, G, J);
	edge(&g, H, E), edge(&g, H, K);
	edge(&g, I, K);
	edge(&g, J, I);
	edge(&g, K, I), edge(&g, K, R);
	edge(&g, L, H);
	csr(&g);
	dom_result r;
	ck_assert_int_eq(dom_compute_graph(g.n, g.start, g.succ, NULL, &r), 0);
	static const uint32_t want[13] = {R, R, R, R, R, R, C, C, R, R, G,
	                                  R, D};
	for (int v = 1; v < 13; v++)
		ck_assert_msg(r.idom[v] == want[v], "idom(%d) = %u, want %u",
		              v, r.idom[v], want[v]);
	dom_free(&r);
	graph_free(&g);
}
END_TEST

START_TEST(test_chain_diamond_cycle_unreachable)
{
	static graph g;
	memset(&g, 0, sizeof(g));
	/* 0 -> 1 -> 2 -> 3 (chain); 3 -> 4, 3 -> 5, 4 -> 6, 5 -> 6 (a
	 * diamond); 6 -> 7 -> 6 (a cycle); 8 is unreachable and points
	 * at 7. */
	g.n = 9;
	edge(&g, 0, 1), edge(&g, 1, 2), edge(&g, 2, 3);
	edge(&g, 3, 4), edge(&g, 3, 5), edge(&g, 4, 6), edge(&g, 5, 6);
	edge(&g, 6, 7), edge(&g, 7, 6);
	edge(&g, 8, 7);
	csr(&g);
	uint64_t size[9] = {0, 1, 2, 4, 8, 16, 32, 64, 128};
	dom_result r;
	ck_assert_int_eq(dom_compute_graph(g.n, g.start, g.succ, size, &r),
	                 0);
	static const uint32_t want[9] = {0, 0, 1, 2, 3, 3, 3, 6, NONE};
	for (int v = 1; v < 9; v++)
		ck_assert_msg(r.idom[v] == want[v], "idom(%d) = %u, want %u",
		              v, r.idom[v], want[v]);
	ck_assert_uint_eq(r.retained[7], 64);
	ck_assert_uint_eq(r.retained[6], 96);
	ck_assert_uint_eq(r.retained[4], 8);   /* 6 is not 4's alone */
	ck_assert_uint_eq(r.retained[3], 4 + 8 + 16 + 96);
	ck_assert_uint_eq(r.retained[1], 127);
	ck_assert_uint_eq(r.retained[0], 127); /* 8 is not reachable */
	ck_assert_uint_eq(r.nreach, 8);
	dom_free(&r);
	graph_free(&g);
}
END_TEST

START_TEST(test_deep_chain)
{
	size_t n = 1000000;
	size_t *start = malloc((n + 1) * sizeof(size_t));
	uint32_t *succ = malloc(n * sizeof(uint32_t));
	uint64_t *size = malloc(n * sizeof(uint64_t));
	for (size_t v = 0; v < n; v++) {
		start[v] = v;
		succ[v] = (uint32_t)(v + 1);
		size[v] = 1;
	}
	start[n] = n - 1; /* the last node has no edge */
	dom_result r;
	ck_assert_int_eq(dom_compute_graph(n, start, succ, size, &r), 0);
	ck_assert_uint_eq(r.retained[0], n);
	ck_assert_uint_eq(r.retained[n / 2], n - n / 2);
	ck_assert_uint_eq(r.idom[n - 1], n - 2);
	dom_free(&r);
	free(start), free(succ), free(size);
}
END_TEST

/* A doubly linked list of a million nodes held at both ends (a deque,
 * an LRU list): every node's idom is the root and retains only itself.
 * The fixed point used before walked idom chains in each intersection:
 * 91,000 nodes took a minute, this one would outlast the timeout. */
START_TEST(test_doubly_linked_list)
{
	size_t n = 1000001; /* node 0 and the list 1..n-1 */
	size_t *start = malloc((n + 1) * sizeof(size_t));
	uint32_t *succ = malloc(2 * n * sizeof(uint32_t));
	uint64_t *size = malloc(n * sizeof(uint64_t));
	size_t e = 0;
	for (size_t v = 0; v < n; v++) {
		start[v] = e;
		size[v] = 8;
		if (v == 0) {
			succ[e++] = 1;
			succ[e++] = (uint32_t)(n - 1);
			continue;
		}
		if (v + 1 < n)
			succ[e++] = (uint32_t)(v + 1);
		if (v > 1)
			succ[e++] = (uint32_t)(v - 1);
	}
	start[n] = e;
	dom_result r;
	ck_assert_int_eq(dom_compute_graph(n, start, succ, size, &r), 0);
	ck_assert_uint_eq(r.nreach, n);
	size_t bad = 0;
	for (size_t v = 1; v < n; v++)
		bad += r.idom[v] != 0 || r.retained[v] != 8;
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(r.retained[0], 8 * n);
	dom_free(&r);
	free(start), free(succ), free(size);
}
END_TEST

/* Brute force: d dominates v iff v is unreachable from 0 without d. */
static bool reaches_without(const graph *g, uint32_t skip, uint32_t v)
{
	bool seen[64] = {0};
	uint32_t stack[64];
	size_t sp = 0;

	if (skip == 0)
		return false;
	stack[sp++] = 0;
	seen[0] = true;
	while (sp) {
		uint32_t x = stack[--sp];
		if (x == v)
			return true;
		for (size_t e = g->start[x]; e < g->start[x + 1]; e++) {
			uint32_t y = g->succ[e];
			if (y != skip && !seen[y]) {
				seen[y] = true;
				stack[sp++] = y;
			}
		}
	}
	return false;
}

START_TEST(test_random_against_brute_force)
{
	test_rng rng = rng_make(1);
	size_t checked = 0, nontrivial = 0;
	for (int round = 0; round < 200; round++) {
		static graph g;
		memset(&g, 0, sizeof(g));
		g.n = 2 + rng_below(&rng, 40);
		/* Half the rounds: a random tree first, so that most nodes
		 * are reachable and the dominators are deep. */
		if (round % 2)
			for (uint32_t v = 1; v < g.n; v++)
				edge(&g, (uint32_t)rng_below(&rng, v), v);
		size_t ne = rng_below(&rng, 3 * g.n);
		for (size_t e = 0; e < ne; e++)
			edge(&g, (uint32_t)rng_below(&rng, g.n),
			     (uint32_t)rng_below(&rng, g.n));
		csr(&g);
		dom_result r;
		ck_assert_int_eq(dom_compute_graph(g.n, g.start, g.succ, NULL,
		                                   &r), 0);
		for (uint32_t v = 1; v < g.n; v++) {
			checked++;
			if (!reaches_without(&g, NONE, v)) {
				ck_assert_uint_eq(r.idom[v], NONE);
				continue;
			}
			/* idom(v): the strict dominator of v that every
			 * other strict dominator of v dominates. */
			uint32_t best = NONE;
			size_t best_doms = 0;
			for (uint32_t d = 0; d < g.n; d++) {
				if (d == v || reaches_without(&g, d, v))
					continue;
				size_t ndoms = 0; /* dominators of d */
				for (uint32_t e = 0; e < g.n; e++)
					ndoms += e == d ||
					         !reaches_without(&g, e, d);
				if (best == NONE || ndoms > best_doms) {
					best = d;
					best_doms = ndoms;
				}
			}
			ck_assert_msg(r.idom[v] == best, "round %d: idom(%u) "
			              "= %u, brute force %u", round, v,
			              r.idom[v], best);
			nontrivial += best != 0;
		}
		dom_free(&r);
		graph_free(&g);
	}
	/* The answers were not all "the root". */
	ck_assert_uint_gt(checked, 2000);
	ck_assert_uint_gt(nontrivial, 500);
}
END_TEST

/* ---- A synthetic dump ---------------------------------------------------- */

/* Global -> A(100) -> B(10), C(20); frame -> D(1000) -> C and E(5).
 * C is shared: retained(global) = 110, retained(frame) = 1005. */
static size_t make_dump_at(wbuf *o, uint64_t c_addr)
{
	dump_begin(o, 42);
	rec(o, HD_TYPE, 4 + 8 + 4 + 2 + 4);
	w(o, 1, 4), w(o, 16, 8), w(o, 0, 4), w(o, 4, 2);
	memcpy(o->b + o->n, "node", 4);
	o->n += 4;
	const uint64_t A = 0x10000, B = 0x20000, C = c_addr, D = 0x40000,
	               E = 0x50000;
	uint64_t pa[] = {B, C + 4}, pd[] = {C, E};
	obj(o, A, 100, 1, pa, 2);
	obj(o, B, 10, 0, NULL, 0);
	obj(o, C, 20, 1, NULL, 0);
	obj(o, D, 1000, 0, pd, 2);
	obj(o, E, 5, 1, NULL, 0);
	root(o, HD_ROOT_GLOBAL, A);
	root(o, HD_ROOT_FRAME, D);
	return dump_end(o, 5);
}

static size_t make_dump(wbuf *o)
{
	return make_dump_at(o, 0x30000);
}

START_TEST(test_synthetic_dump)
{
	static wbuf o;
	size_t n = make_dump(&o);
	hd_dump d;
	char err[256];
	ck_assert_msg(hd_parse(o.b, n, &d, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(d.nobjects, 5);
	ck_assert_uint_eq(d.nroots, 2);
	ck_assert_uint_eq(d.pid, 42);
	ck_assert_int_eq(hd_find(&d, 0x30000 + 19), 2);
	ck_assert_int_eq(hd_find(&d, 0x30000 + 20), -1);
	char nb[64];
	ck_assert_str_eq(hd_type_name(&d, &d.objects[0], nb, sizeof(nb)),
	                 "node");
	ck_assert_str_eq(hd_type_name(&d, &d.objects[1], nb, sizeof(nb)),
	                 "(scan 10 B)");
	dom_result r;
	ck_assert_int_eq(dom_compute(&d, &r), 0);
	ck_assert_uint_eq(r.retained[r.root0 + 0], 110);
	ck_assert_uint_eq(r.retained[r.root0 + 1], 1005);
	ck_assert_uint_eq(r.retained[r.kind0 + HD_ROOT_GLOBAL - 1], 110);
	ck_assert_uint_eq(r.retained[r.obj0 + 3], 1005);
	ck_assert_uint_eq(r.retained[0], 1135);
	dom_free(&r);
	hd_free(&d);
}
END_TEST

START_TEST(test_corrupt_dumps_rejected)
{
	static wbuf o;
	static uint8_t copy[8192];
	size_t n = make_dump(&o);
	hd_dump d;
	char err[256];

	dump_check_damage(o.b, n);
	memcpy(copy, o.b, n);
	copy[8] = 9; /* version 9 */
	ck_assert_int_ne(hd_parse(copy, n, &d, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "version 9"), "%s", err);
	memcpy(copy, o.b, n);
	copy[0] = 'X';
	ck_assert_int_ne(hd_parse(copy, n, &d, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "not a gcheap heap dump"), "%s", err);
	ck_assert_int_ne(hd_parse(o.b, n - 1, &d, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "truncated"), "%s", err);
	/* Overlapping objects with a valid checksum (the fuzzer found a
	 * use after free on this path). */
	n = make_dump_at(&o, 0x20000 + 4);
	ck_assert_int_ne(hd_parse(o.b, n, &d, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "overlap at 0x20004"), "%s", err);
}
END_TEST

/* Record order the reader's lookups rely on (docs/heapdump.md): TYPE ids
 * from 1 up, in order (names are found by a binary search); an OFFSETS
 * right after the OBJECT it names, once. Each damaged dump has a valid
 * checksum; the reader took all four (an audit's crafted files). */
static void type_rec(wbuf *o, uint32_t id)
{
	rec(o, HD_TYPE, 4 + 8 + 4 + 2 + 1);
	w(o, id, 4), w(o, 16, 8), w(o, 0, 4), w(o, 1, 2), w(o, 't', 1);
}

static void offsets_rec(wbuf *o, uint64_t addr)
{
	rec(o, HD_OFFSETS, 12 + 4);
	w(o, addr, 8), w(o, 1, 4), w(o, 0, 4);
}

static size_t make_ordered(wbuf *o, int damage)
{
	const uint64_t A = 0x10000, B = 0x20000;
	uint64_t pa[] = {B};

	dump_begin(o, 42);
	type_rec(o, damage == 1 ? 0 : 1);
	type_rec(o, damage == 2 ? 1 : 2);
	obj(o, A, 100, 1, pa, 1);
	if (damage == 3)
		root(o, HD_ROOT_GLOBAL, A);
	offsets_rec(o, A);
	if (damage == 4)
		offsets_rec(o, A);
	obj(o, B, 10, 2, NULL, 0);
	if (damage != 3)
		root(o, HD_ROOT_GLOBAL, A);
	return dump_end(o, 2);
}

START_TEST(test_record_order_rejected)
{
	static wbuf o;
	static const char *const why[] = {
		NULL, "a TYPE id is 0", "a TYPE id is 0 or not above",
		"OFFSETS record does not match the OBJECT just before it",
		"OFFSETS record does not match the OBJECT just before it"};
	hd_dump d;
	char err[256];

	for (int i = 0; i < 5; i++) {
		size_t n = make_ordered(&o, i);
		int r = hd_parse(o.b, n, &d, err, sizeof(err));
		if (!why[i]) {
			ck_assert_msg(r == 0, "%s", err);
			ck_assert_uint_eq(d.nobjects, 2);
			hd_free(&d);
			continue;
		}
		ck_assert_msg(r != 0, "damage %d parsed", i);
		ck_assert_msg(strstr(err, why[i]), "damage %d: %s", i, err);
	}
}
END_TEST

static Suite *dominators_suite(void)
{
	Suite *s = suite_create("dominators");
	TCase *tc = tcase_create("graphs");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lengauer_tarjan_example);
	tcase_add_test(tc, test_record_order_rejected);
	tcase_add_test(tc, test_chain_diamond_cycle_unreachable);
	tcase_add_test(tc, test_deep_chain);
	tcase_add_test(tc, test_doubly_linked_list);
	tcase_add_test(tc, test_random_against_brute_force);
	tcase_add_test(tc, test_synthetic_dump);
	tcase_add_test(tc, test_corrupt_dumps_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(dominators_suite());
}
