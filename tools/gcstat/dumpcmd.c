/* tools/gcstat/dumpcmd.c: `gcstat dump FILE`: a histogram by type (count,
 * shallow and retained bytes, as jmap -histo), the largest objects, span
 * occupancy by size class, and retained sizes per root kind and per root
 * from the dominator tree (dominators.c). The retained size of a type
 * counts each object of the type that no other object of the same type
 * dominates, so that nested objects are not counted twice. */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <stdlib.h>
#include <string.h>

typedef struct tkey {
	uint64_t key;       /* type id, or 1 << 63 | flags << 48 | size */
	uint32_t first;     /* an object of this key, for its name */
	uint64_t count, bytes, retained;
	uint32_t depth;     /* objects of this key on the current path */
} tkey;

typedef struct keymap {
	tkey *k;
	size_t n, cap;
	uint32_t *slot;     /* open addressing: index + 1, 0 = empty */
	size_t nslot;
} keymap;

static uint64_t obj_key(const hd_object *o)
{
	if (o->type)
		return o->type;
	return 1ull << 63 | (uint64_t)(o->flags & (HD_F_NOSCAN | HD_F_TINY))
	                    << 48 | (o->size & 0xffffffffffffull);
}

static int keymap_init(keymap *m, size_t nobj)
{
	m->nslot = 64;
	while (m->nslot < 2 * (nobj < 65536 ? nobj : 65536) + 64)
		m->nslot *= 2;
	m->slot = calloc(m->nslot, sizeof(*m->slot));
	return m->slot ? 0 : -1;
}

/* The index of key, added if new; -1 on no memory. */
static long keymap_get(keymap *m, uint64_t key, uint32_t obj)
{
	size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) &
	           (m->nslot - 1);
	for (;; h = (h + 1) & (m->nslot - 1)) {
		uint32_t s = m->slot[h];
		if (!s)
			break;
		if (m->k[s - 1].key == key)
			return s - 1;
	}
	if (2 * (m->n + 1) > m->nslot) {
		/* Rehash into twice the slots. */
		size_t ns = m->nslot * 2;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			return -1;
		for (size_t i = 0; i < m->n; i++) {
			size_t g = (size_t)((m->k[i].key *
			                     0x9E3779B97F4A7C15ull) >> 20) &
			           (ns - 1);
			while (sl[g])
				g = (g + 1) & (ns - 1);
			sl[g] = (uint32_t)i + 1;
		}
		free(m->slot);
		m->slot = sl;
		m->nslot = ns;
		return keymap_get(m, key, obj);
	}
	if (m->n == m->cap) {
		size_t c = m->cap ? m->cap * 2 : 64;
		tkey *k = realloc(m->k, c * sizeof(*k));
		if (!k)
			return -1;
		m->k = k;
		m->cap = c;
	}
	m->k[m->n] = (tkey){.key = key, .first = obj};
	m->slot[h] = (uint32_t)(m->n + 1);
	return (long)m->n++;
}

/* Sorting helpers over index arrays. */
static const void *sort_base;
static int by_bytes_desc(const void *a, const void *b)
{
	const tkey *k = sort_base;
	uint64_t x = k[*(const uint32_t *)a].bytes;
	uint64_t y = k[*(const uint32_t *)b].bytes;
	return x < y ? 1 : x > y ? -1 : 0;
}

static const uint64_t *sort_tie; /* the second key, or NULL */

static int by_u64_desc(const void *a, const void *b)
{
	const uint64_t *v = sort_base;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	uint64_t x = v[i], y = v[j];
	if (x == y && sort_tie) {
		x = sort_tie[i];
		y = sort_tie[j];
	}
	return x < y ? 1 : x > y ? -1 : i < j ? -1 : i > j;
}

static uint32_t *sorted_index(size_t n, const void *base,
                              int (*cmp)(const void *, const void *))
{
	uint32_t *ix = malloc((n ? n : 1) * sizeof(*ix));
	if (!ix)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ix[i] = (uint32_t)i;
	sort_base = base;
	if (n)
		qsort(ix, n, sizeof(*ix), cmp);
	return ix;
}

/* Retained bytes per key: walk the dominator tree depth first, counting
 * an object when no dominator of it has its key. */
static int retained_by_key(const hd_dump *d, const dom_result *r,
                           keymap *m, const uint32_t *okey)
{
	size_t n = r->nnodes;
	size_t *cs = calloc(n + 1, sizeof(*cs));
	uint32_t *ch = malloc((r->nreach ? r->nreach : 1) * sizeof(*ch));
	uint32_t *stack = malloc((n ? n : 1) * sizeof(*stack));
	size_t *cur = malloc((n ? n : 1) * sizeof(*cur));
	if (!cs || !ch || !stack || !cur) {
		free(cs), free(ch), free(stack), free(cur);
		return -1;
	}
	for (size_t v = 1; v < n; v++)
		if (r->idom[v] != UINT32_MAX)
			cs[r->idom[v] + 1]++;
	for (size_t v = 0; v < n; v++)
		cs[v + 1] += cs[v];
	memcpy(cur, cs, n * sizeof(*cur));
	for (size_t v = 1; v < n; v++)
		if (r->idom[v] != UINT32_MAX)
			ch[cur[r->idom[v]]++] = (uint32_t)v;
	memcpy(cur, cs, n * sizeof(*cur));
	size_t sp = 0;
	stack[sp++] = 0;
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (cur[v] == cs[v] && v >= r->obj0) {
			/* Entering an object. */
			tkey *k = &m->k[okey[v - r->obj0]];
			if (k->depth++ == 0)
				k->retained += r->retained[v];
		}
		if (cur[v] < cs[v + 1]) {
			uint32_t w = ch[cur[v]];
			cur[v]++;
			stack[sp++] = w;
			/* cur[w] == cs[w] marks w as not yet entered. */
			continue;
		}
		if (v >= r->obj0)
			m->k[okey[v - r->obj0]].depth--;
		sp--;
	}
	(void)d;
	free(cs), free(ch), free(stack), free(cur);
	return 0;
}

int gcs_type_rows(const hd_dump *d, const dom_result *r, gcs_typerow **out,
                  size_t *nout)
{
	keymap m = {0};
	uint32_t *okey = malloc((d->nobjects ? d->nobjects : 1) *
	                        sizeof(*okey));
	int rc = -1;

	*out = NULL;
	*nout = 0;
	if (!okey || keymap_init(&m, d->nobjects))
		goto done;
	for (size_t i = 0; i < d->nobjects; i++) {
		long k = keymap_get(&m, obj_key(&d->objects[i]), (uint32_t)i);
		if (k < 0)
			goto done;
		okey[i] = (uint32_t)k;
		m.k[k].count++;
		m.k[k].bytes += d->objects[i].size;
	}
	if (retained_by_key(d, r, &m, okey))
		goto done;
	gcs_typerow *rows = calloc(m.n ? m.n : 1, sizeof(*rows));
	if (!rows)
		goto done;
	for (size_t i = 0; i < m.n; i++) {
		char nb[64];
		snprintf(rows[i].name, sizeof(rows[i].name), "%s",
		         hd_type_name(d, &d->objects[m.k[i].first], nb,
		                      sizeof(nb)));
		rows[i].count = m.k[i].count;
		rows[i].bytes = m.k[i].bytes;
		rows[i].retained = m.k[i].retained;
	}
	*out = rows;
	*nout = m.n;
	rc = 0;
done:
	free(okey);
	free(m.k);
	free(m.slot);
	return rc;
}

int gcs_cmd_dump(const char *path, size_t top, bool json)
{
	hd_dump d;
	dom_result r;
	keymap m = {0};
	char nb[64], a[32], b[32], c[32];
	int rc = 1;

	if (hd_load(path, &d))
		return 1;
	uint32_t *okey = malloc((d.nobjects ? d.nobjects : 1) *
	                        sizeof(*okey));
	if (!okey || keymap_init(&m, d.nobjects) || dom_compute(&d, &r)) {
		gcs_error("%s: out of memory", path);
		free(okey);
		free(m.slot);
		hd_free(&d);
		return 1;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < d.nobjects; i++) {
		long k = keymap_get(&m, obj_key(&d.objects[i]), (uint32_t)i);
		if (k < 0)
			goto oom;
		okey[i] = (uint32_t)k;
		m.k[k].count++;
		m.k[k].bytes += d.objects[i].size;
		total += d.objects[i].size;
	}
	if (retained_by_key(&d, &r, &m, okey))
		goto oom;
	uint32_t *hist = sorted_index(m.n, m.k, by_bytes_desc);
	uint64_t *osize = malloc((d.nobjects ? d.nobjects : 1) * 8);
	uint64_t *rret = malloc((d.nroots ? d.nroots : 1) * 8);
	if (!hist || !osize || !rret) {
		free(hist), free(osize), free(rret);
		goto oom;
	}
	for (size_t i = 0; i < d.nobjects; i++)
		osize[i] = d.objects[i].size;
	for (size_t i = 0; i < d.nroots; i++)
		rret[i] = r.retained[r.root0 + i];
	/* Largest first; among equals, the ones that retain most. */
	sort_tie = r.retained + r.obj0;
	uint32_t *big = sorted_index(d.nobjects, osize, by_u64_desc);
	sort_tie = NULL;
	uint32_t *rtop = sorted_index(d.nroots, rret, by_u64_desc);
	if (!big || !rtop) {
		free(hist), free(osize), free(rret), free(big), free(rtop);
		goto oom;
	}
	/* Span occupancy by size class. */
	struct occ {
		uint64_t spans, nelems, nalloc, bytes, elemsize;
	} occ[256] = {{0}};
	for (size_t i = 0; i < d.nspans; i++) {
		const hd_span *s = &d.spans[i];
		struct occ *o = &occ[s->sizeclass & 255];
		o->spans++;
		o->nelems += s->nelems;
		o->nalloc += s->nalloc;
		o->bytes += s->npages * 8192;
		o->elemsize = s->elemsize;
	}
	uint64_t reach = r.retained[0];
	size_t ntop = top < m.n ? top : m.n;
	size_t nbig = top < d.nobjects ? top : d.nobjects;
	size_t nroot = top < d.nroots ? top : d.nroots;
#define U(x) ((unsigned long long)(x))
	if (json) {
		printf("{\"version\": %u, \"pid\": %llu, \"objects\": %zu, "
		       "\"bytes\": %llu, \"reachable_bytes\": %llu, "
		       "\"spans\": %zu, \"roots\": %zu, \"types\": [",
		       d.version, U(d.pid), d.nobjects, U(total), U(reach),
		       d.nspans, d.nroots);
		for (size_t i = 0; i < ntop; i++) {
			tkey *k = &m.k[hist[i]];
			const char *nm = hd_type_name(
				&d, &d.objects[k->first], nb, sizeof(nb));
			printf("%s{\"type\": ", i ? ", " : "");
			gcs_json_str(stdout, nm, strlen(nm));
			printf(", \"count\": %llu, \"bytes\": %llu, "
			       "\"retained\": %llu}", U(k->count),
			       U(k->bytes), U(k->retained));
		}
		printf("], \"largest\": [");
		for (size_t i = 0; i < nbig; i++) {
			const hd_object *o = &d.objects[big[i]];
			const char *nm = hd_type_name(&d, o, nb, sizeof(nb));
			printf("%s{\"addr\": %llu, \"size\": %llu, \"type\": ",
			       i ? ", " : "", U(o->addr), U(o->size));
			gcs_json_str(stdout, nm, strlen(nm));
			printf(", \"retained\": %llu}",
			       U(r.retained[r.obj0 + big[i]]));
		}
		printf("], \"classes\": [");
		int first = 1;
		for (int i = 0; i < 256; i++) {
			if (!occ[i].spans)
				continue;
			printf("%s{\"class\": %d, \"size\": %llu, \"spans\": "
			       "%llu, \"slots\": %llu, \"allocated\": %llu}",
			       first ? "" : ", ", i, U(occ[i].elemsize),
			       U(occ[i].spans), U(occ[i].nelems),
			       U(occ[i].nalloc));
			first = 0;
		}
		printf("], \"root_kinds\": [");
		for (int k = 1; k < HD_ROOT_NKINDS; k++) {
			size_t cnt = 0;
			for (size_t i = 0; i < d.nroots; i++)
				cnt += d.roots[i].kind == k;
			printf("%s{\"kind\": \"%s\", \"roots\": %zu, "
			       "\"retained\": %llu}", k > 1 ? ", " : "",
			       gcs_root_kind((unsigned)k), cnt,
			       U(r.retained[r.kind0 + (size_t)k - 1]));
		}
		printf("], \"top_roots\": [");
		for (size_t i = 0; i < nroot; i++) {
			const hd_root *rt = &d.roots[rtop[i]];
			printf("%s{\"kind\": \"%s\", \"thread\": %u, "
			       "\"where\": %llu, \"target\": %llu, "
			       "\"retained\": %llu}", i ? ", " : "",
			       gcs_root_kind(rt->kind), rt->thread,
			       U(rt->where),
			       U(rt->target), U(rret[rtop[i]]));
		}
		printf("]}\n");
	} else {
		printf("heap dump of pid %llu (format %u): %zu objects, %s; "
		       "%s reachable from %zu roots; %zu spans\n",
		       U(d.pid), d.version, d.nobjects,
		       gcs_bytes(a, sizeof(a), total),
		       gcs_bytes(b, sizeof(b), reach), d.nroots, d.nspans);
		printf("\nBy type (top %zu of %zu, by shallow bytes):\n", ntop,
		       m.n);
		printf("  %4s %10s %12s %12s  %s\n", "#", "objects", "bytes",
		       "retained", "type");
		for (size_t i = 0; i < ntop; i++) {
			tkey *k = &m.k[hist[i]];
			printf("  %4zu %10llu %12llu %12llu  %s\n", i + 1,
			       U(k->count), U(k->bytes), U(k->retained),
			       hd_type_name(&d, &d.objects[k->first], nb,
			                    sizeof(nb)));
		}
		printf("\nLargest objects:\n  %18s %12s %12s  %s\n", "address",
		       "size", "retained", "type");
		for (size_t i = 0; i < nbig; i++) {
			const hd_object *o = &d.objects[big[i]];
			printf("  %#18llx %12llu %12llu  %s\n", U(o->addr),
			       U(o->size), U(r.retained[r.obj0 + big[i]]),
			       hd_type_name(&d, o, nb, sizeof(nb)));
		}
		printf("\nSpans by size class:\n  %5s %7s %7s %10s %10s %9s "
		       "%11s\n", "class", "size", "spans", "slots", "allocated",
		       "occupancy", "span bytes");
		for (int i = 0; i < 256; i++) {
			if (!occ[i].spans)
				continue;
			char sz[24];
			if (i)
				snprintf(sz, sizeof(sz), "%llu",
				         U(occ[i].elemsize));
			else
				snprintf(sz, sizeof(sz), "large");
			printf("  %5d %7s %7llu %10llu %10llu %8.1f%% %11s\n",
			       i, sz, U(occ[i].spans), U(occ[i].nelems),
			       U(occ[i].nalloc),
			       occ[i].nelems ? 100.0 * occ[i].nalloc /
			                       occ[i].nelems : 0.0,
			       gcs_bytes(c, sizeof(c), occ[i].bytes));
		}
		printf("\nRetained by root kind:\n");
		for (int k = 1; k < HD_ROOT_NKINDS; k++) {
			size_t cnt = 0;
			for (size_t i = 0; i < d.nroots; i++)
				cnt += d.roots[i].kind == k;
			printf("  %-11s %6zu roots %12llu bytes only through "
			       "them\n", gcs_root_kind((unsigned)k), cnt,
			       U(r.retained[r.kind0 + (size_t)k - 1]));
		}
		printf("\nRoots that retain the most:\n  %-11s %6s %18s "
		       "%18s %12s  %s\n", "kind", "thread", "where", "target",
		       "retained", "type");
		for (size_t i = 0; i < nroot; i++) {
			const hd_root *rt = &d.roots[rtop[i]];
			long o = hd_find(&d, rt->target);
			printf("  %-11s %6u %#18llx %#18llx %12llu  %s\n",
			       gcs_root_kind(rt->kind), rt->thread,
			       U(rt->where),
			       U(rt->target), U(rret[rtop[i]]),
			       o >= 0 ? hd_type_name(&d, &d.objects[o], nb,
			                             sizeof(nb)) : "?");
		}
	}
	rc = 0;
	free(hist), free(osize), free(rret), free(big), free(rtop);
	goto done;
oom:
	gcs_error("%s: out of memory", path);
done:
	free(okey);
	free(m.k);
	free(m.slot);
	dom_free(&r);
	hd_free(&d);
	return rc;
}
