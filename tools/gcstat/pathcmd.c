/* tools/gcstat/pathcmd.c: `gcstat dump --path ADDR|TYPE FILE`, a shortest
 * path from a root to an object: the object that contains ADDR, or the
 * largest reachable object of the type named TYPE (ties: the lowest
 * address). Breadth first over the graph of dominators.c (so an
 * ephemeron's value hangs off its key), from the virtual root; each hop
 * is named by the offset of the pointer slot it goes through (the
 * dump's OFFSETS records) or, for a value held by an ephemeron, by the
 * ephemeron. */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define U(x) ((unsigned long long)(x))

/* The object the path should end at, or -1 after printing why. */
static long pick(const hd_dump *d, const uint32_t *parent, size_t obj0,
                 const char *what)
{
	char *end, nb[64];
	unsigned long long a = strtoull(what, &end, 0);

	if (*what >= '0' && *what <= '9' && !*end) {
		long o = hd_find(d, a);
		if (o < 0)
			gcs_error("dump --path: no object at %s", what);
		return o;
	}
	long best = -1;
	bool any = false;
	for (size_t i = 0; i < d->nobjects; i++) {
		const hd_object *o = &d->objects[i];
		if (strcmp(hd_type_name(d, o, nb, sizeof(nb)), what))
			continue;
		any = true;
		if (parent[obj0 + i] == NONE)
			continue;
		if (best < 0 || o->size > d->objects[best].size)
			best = (long)i;
	}
	if (best < 0)
		gcs_error(any ? "dump --path: no object of type %s is "
		                "reachable from a root" :
		                "dump --path: no object of type %s (not an "
		                "address either)", what);
	return best;
}

/* The offset of the slot of object p that points at object c, or -1; if
 * none, *eph is the ephemeron whose key p holds c as its value. */
static long slot_of(const hd_dump *d, size_t p, size_t c, long *eph)
{
	const hd_object *o = &d->objects[p];

	*eph = -1;
	for (uint32_t k = 0; k < o->nptrs; k++)
		if (hd_find(d, d->ptrs[o->ptrs + k]) == (long)c)
			return d->offs[o->ptrs + k] == HD_NO_OFFSET ?
			       -2 : (long)d->offs[o->ptrs + k];
	for (size_t i = 0; i < d->nephs; i++)
		if (d->ephs[i].key && d->ephs[i].value &&
		    hd_find(d, d->ephs[i].key) == (long)p &&
		    hd_find(d, d->ephs[i].value) == (long)c) {
			*eph = (long)i;
			break;
		}
	return -1;
}

int gcs_cmd_path(const char *path, const char *what, bool json)
{
	hd_dump d;
	dom_graph g;
	char nb[64];

	if (hd_load(path, &d))
		return 1;
	if (dom_build_graph(&d, &g)) {
		hd_free(&d);
		return gcs_error("%s: out of memory", path);
	}
	int rc = 1;
	uint32_t *parent = malloc(g.n * sizeof(*parent));
	uint32_t *queue = malloc(g.n * sizeof(*queue));
	uint32_t *hops = malloc(g.n * sizeof(*hops));
	if (!parent || !queue || !hops) {
		gcs_error("%s: out of memory", path);
		goto out;
	}
	for (size_t v = 0; v < g.n; v++)
		parent[v] = NONE;
	size_t qh = 0, qt = 0;
	parent[0] = 0;
	queue[qt++] = 0;
	while (qh < qt) {
		uint32_t v = queue[qh++];
		for (size_t e = g.start[v]; e < g.start[v + 1]; e++) {
			uint32_t w = g.succ[e];
			if (w < g.n && parent[w] == NONE) {
				parent[w] = v;
				queue[qt++] = w;
			}
		}
	}
	long t = pick(&d, parent, g.obj0, what);
	if (t < 0)
		goto out;
	uint32_t node = (uint32_t)(g.obj0 + (size_t)t);
	if (parent[node] == NONE) {
		gcs_error("dump --path: %#llx (%s) is not reachable from a "
		          "root", U(d.objects[t].addr),
		          hd_type_name(&d, &d.objects[t], nb, sizeof(nb)));
		goto out;
	}
	/* Walk back to the root node. */
	size_t nh = 0;
	for (uint32_t v = node; v >= g.obj0; v = parent[v])
		hops[nh++] = v;
	uint32_t rootnode = parent[hops[nh - 1]];
	const hd_root *rt = &d.roots[rootnode - g.root0];
	const hd_object *to = &d.objects[t];
	if (json) {
		printf("{\"target\": %llu, \"type\": ", U(to->addr));
		const char *tn = hd_type_name(&d, to, nb, sizeof(nb));
		gcs_json_str(stdout, tn, strlen(tn));
		printf(", \"root\": {\"kind\": \"%s\", \"thread\": %u, "
		       "\"where\": %llu}, \"steps\": [",
		       gcs_root_kind(rt->kind), rt->thread, U(rt->where));
	} else {
		printf("path from a root to %#llx (%s, %llu B): %zu "
		       "objects\n", U(to->addr),
		       hd_type_name(&d, to, nb, sizeof(nb)), U(to->size), nh);
		printf("  %s root, slot %#llx (thread %u)\n",
		       gcs_root_kind(rt->kind), U(rt->where), rt->thread);
	}
	for (size_t i = nh; i-- > 0;) {
		size_t c = hops[i] - g.obj0;
		const hd_object *o = &d.objects[c];
		const char *tn = hd_type_name(&d, o, nb, sizeof(nb));
		long off = -1, eph = -1;
		if (i + 1 < nh)
			off = slot_of(&d, hops[i + 1] - g.obj0, c, &eph);
		if (json) {
			printf("%s{\"addr\": %llu, \"size\": %llu, \"type\": ",
			       i + 1 < nh ? ", " : "", U(o->addr),
			       U(o->size));
			gcs_json_str(stdout, tn, strlen(tn));
			if (i + 1 == nh)
				printf(", \"via\": \"root\"}");
			else if (eph >= 0)
				printf(", \"via\": \"ephemeron\", "
				       "\"ephemeron\": %llu}",
				       U(d.ephs[eph].addr));
			else if (off >= 0)
				printf(", \"via\": \"field\", \"offset\": "
				       "%ld}", off);
			else
				printf(", \"via\": \"field\"}");
			continue;
		}
		if (i + 1 == nh)
			printf("  -> ");
		else if (eph >= 0)
			printf("  -> value of ephemeron %#llx (key above): ",
			       U(d.ephs[eph].addr));
		else if (off >= 0)
			printf("  -> field +%ld: ", off);
		else
			printf("  -> a field: ");
		printf("%#llx  %s (%llu B)\n", U(o->addr), tn, U(o->size));
	}
	if (json)
		printf("]}\n");
	rc = 0;
out:
	free(parent), free(queue), free(hops);
	dom_graph_free(&g);
	hd_free(&d);
	return rc;
}
