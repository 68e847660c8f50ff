/* tools/gcstat/dominators.c: the dominator tree of the object graph and
 * the retained size of every node: the bytes that would be freed if the
 * node went away (Cooper, Harvey and Kennedy, "A Simple, Fast Dominance
 * Algorithm", 2001: iterate idom over reverse postorder until nothing
 * changes, intersecting predecessors by postorder number).
 *
 * Everything is iterative (object graphs are deep: a linked list of a
 * million cells is a million levels). Node 0 is the virtual root. A
 * node's dominator is its ancestor in the DFS tree, so it comes later in
 * postorder: adding each node's retained size to its idom in postorder
 * sums every dominator subtree. */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

void dom_free(dom_result *r)
{
	free(r->idom);
	free(r->retained);
	free(r->postorder);
	memset(r, 0, sizeof(*r));
}

static uint32_t intersect(const uint32_t *idom, const uint32_t *po,
                          uint32_t a, uint32_t b)
{
	while (a != b) {
		while (po[a] < po[b])
			a = idom[a];
		while (po[b] < po[a])
			b = idom[b];
	}
	return a;
}

int dom_compute_graph(size_t n, const size_t *start, const uint32_t *succ,
                      const uint64_t *size, dom_result *r)
{
	memset(r, 0, sizeof(*r));
	if (n == 0 || n >= NONE)
		return -1;
	size_t nedges = start[n];
	uint32_t *po = malloc(n * sizeof(*po));      /* postorder number */
	uint32_t *order = malloc(n * sizeof(*order)); /* by postorder */
	uint32_t *stack = malloc(n * sizeof(*stack));
	size_t *next = malloc(n * sizeof(*next));     /* DFS edge cursor */
	size_t *pstart = calloc(n + 1, sizeof(*pstart));
	uint32_t *pred = malloc((nedges ? nedges : 1) * sizeof(*pred));
	r->idom = malloc(n * sizeof(*r->idom));
	r->retained = calloc(n, sizeof(*r->retained));
	if (!po || !order || !stack || !next || !pstart || !pred ||
	    !r->idom || !r->retained) {
		free(po), free(order), free(stack), free(next), free(pstart);
		free(pred);
		dom_free(r);
		return -1;
	}
	/* Iterative DFS from node 0: postorder numbers. */
	for (size_t v = 0; v < n; v++) {
		po[v] = NONE;
		r->idom[v] = NONE;
		next[v] = start[v];
	}
	size_t sp = 0, npo = 0;
	uint32_t *seen = r->idom; /* NONE = unvisited, reused below */
	stack[sp++] = 0;
	seen[0] = 0;
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (next[v] < start[v + 1]) {
			uint32_t w = succ[next[v]++];
			if (w < n && seen[w] == NONE) {
				seen[w] = 0;
				stack[sp++] = w;
			}
			continue;
		}
		sp--;
		po[v] = (uint32_t)npo;
		order[npo++] = v;
	}
	/* Predecessors (reachable sources only) as CSR. */
	for (size_t v = 0; v < n; v++)
		if (po[v] != NONE)
			for (size_t e = start[v]; e < start[v + 1]; e++)
				if (succ[e] < n)
					pstart[succ[e] + 1]++;
	for (size_t v = 0; v < n; v++)
		pstart[v + 1] += pstart[v];
	memcpy(next, pstart, n * sizeof(*next));
	for (size_t v = 0; v < n; v++)
		if (po[v] != NONE)
			for (size_t e = start[v]; e < start[v + 1]; e++)
				if (succ[e] < n)
					pred[next[succ[e]]++] = (uint32_t)v;
	/* Iterate to the fixed point over reverse postorder. */
	for (size_t v = 0; v < n; v++)
		r->idom[v] = NONE;
	r->idom[0] = 0;
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t k = npo - 1; k-- > 0;) {
			uint32_t b = order[k], nd = NONE;
			for (size_t e = pstart[b]; e < pstart[b + 1]; e++) {
				uint32_t p = pred[e];
				if (r->idom[p] == NONE)
					continue;
				nd = nd == NONE ? p
				                : intersect(r->idom, po, p, nd);
			}
			if (nd != NONE && r->idom[b] != nd) {
				r->idom[b] = nd;
				changed = true;
			}
		}
	}
	/* Retained sizes: children before their dominators. */
	for (size_t k = 0; k < npo; k++)
		r->retained[order[k]] += size ? size[order[k]] : 0;
	for (size_t k = 0; k + 1 < npo; k++) {
		uint32_t v = order[k];
		r->retained[r->idom[v]] += r->retained[v];
	}
	r->nnodes = n;
	r->postorder = order;
	r->nreach = npo;
	free(po), free(stack), free(next), free(pstart), free(pred);
	return 0;
}

/* Which ephemerons hold their value: those reachable whose key is
 * reachable, where reaching a value may make more of them hold (a fixed
 * point). eph_node[i] is ephemeron i's (ephemeron, key, value) nodes or
 * NONE; on return active[i] says whether it holds. -1: no memory. */
static int ephemerons_active(size_t n, const size_t *start,
                             const uint32_t *succ, size_t neph,
                             const uint32_t (*eph_node)[3], bool *active)
{
	bool *seen = calloc(n, sizeof(*seen));
	uint32_t *stack = malloc(n * sizeof(*stack));
	size_t *next = malloc(n * sizeof(*next));
	if (!seen || !stack || !next) {
		free(seen), free(stack), free(next);
		return -1;
	}
	size_t sp = 0;
	seen[0] = true;
	stack[sp++] = 0;
	for (size_t v = 0; v < n; v++)
		next[v] = start[v];
	for (bool more = true; more;) {
		while (sp) {
			uint32_t v = stack[sp - 1];
			if (next[v] == start[v + 1]) {
				sp--;
				continue;
			}
			uint32_t w = succ[next[v]++];
			if (w < n && !seen[w]) {
				seen[w] = true;
				stack[sp++] = w;
			}
		}
		more = false;
		for (size_t i = 0; i < neph; i++) {
			const uint32_t *en = eph_node[i];
			if (active[i] || en[0] == NONE || en[1] == NONE ||
			    en[2] == NONE || !seen[en[0]] || !seen[en[1]])
				continue;
			active[i] = true;
			if (!seen[en[2]]) {
				seen[en[2]] = true;
				stack[sp++] = en[2];
				more = true;
			}
		}
	}
	free(seen), free(stack), free(next);
	return 0;
}

int dom_build_graph(const hd_dump *d, dom_graph *g)
{
	size_t kind0 = 1, root0 = kind0 + HD_ROOT_NKINDS - 1;
	size_t obj0 = root0 + d->nroots;
	size_t n = obj0 + d->nobjects;
	size_t ne = (HD_ROOT_NKINDS - 1) + 2 * d->nroots + d->nptrs;
	size_t *start = calloc(n + 1, sizeof(*start));
	uint32_t *succ = malloc((ne + d->nephs + 1) * sizeof(*succ));
	uint64_t *size = calloc(n, sizeof(*size));
	uint32_t (*eph_node)[3] = malloc((d->nephs + 1) * sizeof(*eph_node));
	bool *active = calloc(d->nephs + 1, sizeof(*active));

	memset(g, 0, sizeof(*g));
	if (!start || !succ || !size || !eph_node || !active || n >= NONE) {
		free(start), free(succ), free(size), free(eph_node);
		free(active);
		return -1;
	}
	for (size_t i = 0; i < d->nephs; i++) {
		const uint64_t a[3] = {d->ephs[i].addr, d->ephs[i].key,
		                       d->ephs[i].value};
		for (int k = 0; k < 3; k++) {
			long o = a[k] ? hd_find(d, a[k]) : -1;
			eph_node[i][k] = o >= 0 ? (uint32_t)(obj0 + (size_t)o)
			                        : NONE;
		}
	}
	size_t e = 0;
	/* Virtual root -> kinds. */
	for (size_t k = 0; k < HD_ROOT_NKINDS - 1; k++)
		succ[e++] = (uint32_t)(kind0 + k);
	start[1] = e;
	/* Kinds -> their roots. */
	for (size_t k = 0; k < HD_ROOT_NKINDS - 1; k++) {
		for (size_t i = 0; i < d->nroots; i++)
			if (d->roots[i].kind == k + 1)
				succ[e++] = (uint32_t)(root0 + i);
		start[kind0 + k + 1] = e;
	}
	/* Roots -> their objects. */
	for (size_t i = 0; i < d->nroots; i++) {
		long o = hd_find(d, d->roots[i].target);
		if (o >= 0)
			succ[e++] = (uint32_t)(obj0 + (size_t)o);
		start[root0 + i + 1] = e;
	}
	/* Objects -> their targets. */
	for (size_t i = 0; i < d->nobjects; i++) {
		const hd_object *ob = &d->objects[i];
		size[obj0 + i] = ob->size;
		for (uint32_t k = 0; k < ob->nptrs; k++) {
			long o = hd_find(d, d->ptrs[ob->ptrs + k]);
			if (o >= 0)
				succ[e++] = (uint32_t)(obj0 + (size_t)o);
		}
		start[obj0 + i + 1] = e;
	}
	int rc = -1;
	if (d->nephs) {
		/* Insert each holding ephemeron's key -> value edge after
		 * the key's other edges (a rebuilt CSR). */
		size_t *st2 = calloc(n + 1, sizeof(*st2));
		uint32_t *sc2 = malloc((e + d->nephs + 1) * sizeof(*sc2));
		if (!st2 || !sc2 ||
		    ephemerons_active(n, start, succ, d->nephs,
		                      (const uint32_t (*)[3])eph_node,
		                      active)) {
			free(st2), free(sc2);
			goto out;
		}
		for (size_t v = 0; v < n; v++)
			st2[v + 1] = start[v + 1] - start[v];
		for (size_t i = 0; i < d->nephs; i++)
			if (active[i])
				st2[eph_node[i][1] + 1]++;
		for (size_t v = 0; v < n; v++)
			st2[v + 1] += st2[v];
		size_t *fill = malloc((n + 1) * sizeof(*fill));
		if (!fill) {
			free(st2), free(sc2);
			goto out;
		}
		for (size_t v = 0; v < n; v++) {
			size_t f = st2[v];
			for (size_t k = start[v]; k < start[v + 1]; k++)
				sc2[f++] = succ[k];
			fill[v] = f;
		}
		for (size_t i = 0; i < d->nephs; i++)
			if (active[i])
				sc2[fill[eph_node[i][1]]++] = eph_node[i][2];
		free(fill);
		free(start), free(succ);
		start = st2;
		succ = sc2;
	}
	g->n = n;
	g->start = start;
	g->succ = succ;
	g->size = size;
	g->kind0 = kind0;
	g->root0 = root0;
	g->obj0 = obj0;
	start = NULL, succ = NULL, size = NULL;
	rc = 0;
out:
	free(start), free(succ), free(size), free(eph_node), free(active);
	return rc;
}

void dom_graph_free(dom_graph *g)
{
	free(g->start), free(g->succ), free(g->size);
	memset(g, 0, sizeof(*g));
}

int dom_compute(const hd_dump *d, dom_result *r)
{
	dom_graph g;

	memset(r, 0, sizeof(*r));
	if (dom_build_graph(d, &g))
		return -1;
	int rc = dom_compute_graph(g.n, g.start, g.succ, g.size, r);
	r->kind0 = g.kind0;
	r->root0 = g.root0;
	r->obj0 = g.obj0;
	dom_graph_free(&g);
	return rc;
}
