/* tools/gcstat/dominators.c: the dominator tree of the object graph and
 * the retained size of every node: the bytes that would be freed if the
 * node went away (Lengauer and Tarjan, "A Fast Algorithm for Finding
 * Dominators in a Flowgraph", 1979, the simple version: semidominators
 * in reverse preorder over a forest with path compression, O(m log n)).
 * Cooper, Harvey and Kennedy's fixed point, used before, walks idom
 * chains in each intersection: a doubly linked list of 91,000 nodes took
 * a minute, one of a million hours.
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

/* Lengauer-Tarjan's EVAL over preorder indices: the vertex of least
 * semidominator on the path from v up to (not including) the root of its
 * tree in the forest, compressing the path as it goes (without recursion:
 * the path may be a million long; path[] is scratch of n entries). */
static uint32_t lt_eval(uint32_t v, uint32_t *anc, uint32_t *label,
                        const uint32_t *semi, uint32_t *path)
{
	if (anc[v] == NONE)
		return v;
	size_t np = 0;
	for (uint32_t x = v; anc[anc[x]] != NONE; x = anc[x])
		path[np++] = x;
	while (np) {
		uint32_t y = path[--np], a = anc[y];
		if (semi[label[a]] < semi[label[y]])
			label[y] = label[a];
		anc[y] = anc[a];
	}
	return label[v];
}

int dom_compute_graph(size_t n, const size_t *start, const uint32_t *succ,
                      const uint64_t *size, dom_result *r)
{
	memset(r, 0, sizeof(*r));
	if (n == 0 || n >= NONE)
		return -1;
	size_t nedges = start[n];
	uint32_t *order = malloc(n * sizeof(*order)); /* by postorder */
	uint32_t *stack = malloc(n * sizeof(*stack));
	size_t *next = malloc(n * sizeof(*next));     /* DFS edge cursor */
	size_t *pstart = calloc(n + 1, sizeof(*pstart));
	uint32_t *pred = malloc((nedges ? nedges : 1) * sizeof(*pred));
	/* Lengauer-Tarjan's arrays, indexed by preorder number except pre
	 * (by node): the node, its DFS parent, its semidominator, the
	 * forest's ancestor and label, its idom, the bucket lists; EVAL's
	 * path is the DFS stack's memory. */
	uint32_t *lt = malloc(9 * n * sizeof(*lt));
	r->idom = malloc(n * sizeof(*r->idom));
	r->retained = calloc(n, sizeof(*r->retained));
	if (!order || !stack || !next || !pstart || !pred || !lt ||
	    !r->idom || !r->retained) {
		free(order), free(stack), free(next), free(pstart);
		free(pred), free(lt);
		dom_free(r);
		return -1;
	}
	uint32_t *pre = lt, *vert = lt + n, *par = lt + 2 * n;
	uint32_t *semi = lt + 3 * n, *anc = lt + 4 * n, *label = lt + 5 * n;
	uint32_t *idm = lt + 6 * n, *bhead = lt + 7 * n, *bnext = lt + 8 * n;
	uint32_t *path = stack; /* free once the DFS is done */
	/* Iterative DFS from node 0: preorder (with parents) and postorder
	 * numbers. */
	for (size_t v = 0; v < n; v++) {
		pre[v] = NONE;
		next[v] = start[v];
	}
	size_t sp = 0, npo = 0, npre = 1;
	stack[sp++] = 0;
	pre[0] = 0;
	vert[0] = 0;
	par[0] = NONE;
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (next[v] < start[v + 1]) {
			uint32_t w = succ[next[v]++];
			if (w < n && pre[w] == NONE) {
				pre[w] = (uint32_t)npre;
				vert[npre] = w;
				par[npre++] = pre[v];
				stack[sp++] = w;
			}
			continue;
		}
		sp--;
		order[npo++] = v;
	}
	/* Predecessors (reachable sources only) as CSR. */
	for (size_t v = 0; v < n; v++)
		if (pre[v] != NONE)
			for (size_t e = start[v]; e < start[v + 1]; e++)
				if (succ[e] < n)
					pstart[succ[e] + 1]++;
	for (size_t v = 0; v < n; v++)
		pstart[v + 1] += pstart[v];
	memcpy(next, pstart, n * sizeof(*next));
	for (size_t v = 0; v < n; v++)
		if (pre[v] != NONE)
			for (size_t e = start[v]; e < start[v + 1]; e++)
				if (succ[e] < n)
					pred[next[succ[e]]++] = (uint32_t)v;
	/* Semidominators in reverse preorder; each node's idom, or a node
	 * whose idom is its own, from the bucket of its semidominator. */
	for (size_t i = 0; i < npre; i++) {
		semi[i] = (uint32_t)i;
		label[i] = (uint32_t)i;
		anc[i] = NONE;
		bhead[i] = NONE;
	}
	for (size_t i = npre; i-- > 1;) {
		uint32_t w = vert[i];
		for (size_t e = pstart[w]; e < pstart[w + 1]; e++) {
			uint32_t u = lt_eval(pre[pred[e]], anc, label, semi,
			                     path);
			if (semi[u] < semi[i])
				semi[i] = semi[u];
		}
		bnext[i] = bhead[semi[i]];
		bhead[semi[i]] = (uint32_t)i;
		anc[i] = par[i];
		for (uint32_t v = bhead[par[i]]; v != NONE; v = bnext[v]) {
			uint32_t u = lt_eval(v, anc, label, semi, path);
			idm[v] = semi[u] < semi[v] ? u : par[i];
		}
		bhead[par[i]] = NONE;
	}
	idm[0] = 0;
	for (size_t i = 1; i < npre; i++)
		if (idm[i] != semi[i])
			idm[i] = idm[idm[i]];
	for (size_t v = 0; v < n; v++)
		r->idom[v] = pre[v] == NONE ? NONE : vert[idm[pre[v]]];
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
	free(stack), free(next), free(pstart), free(pred);
	free(lt);
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
