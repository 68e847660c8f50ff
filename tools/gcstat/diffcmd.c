/* tools/gcstat/diffcmd.c: `gcstat diff A B`, what grew from dump A to
 * dump B: per type (matched by name, since type ids are per process) the
 * change in objects, bytes and retained bytes, sorted by bytes grown; the
 * large objects of B that A does not have (a different address, or the
 * same address holding another size or type); and the types whose
 * retained size grew most. Retained sizes come from each dump's own
 * dominator tree (dominators.c). */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <stdlib.h>
#include <string.h>

typedef struct drow {
	const char *name;
	int64_t dcount, dbytes, dretained;
	uint64_t count, bytes, retained; /* in B */
} drow;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const gcs_typerow *)a)->name,
	              ((const gcs_typerow *)b)->name);
}

/* b - a, saturated to int64_t: a dump's totals are u64, and a negation
 * or sum of their int64_t casts overflowed (undefined) past 2^63. */
static int64_t delta(uint64_t a, uint64_t b)
{
	if (b >= a)
		return b - a > (uint64_t)INT64_MAX ? INT64_MAX
		                                   : (int64_t)(b - a);
	return a - b > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(a - b);
}

static int by_dbytes(const void *a, const void *b)
{
	const drow *x = a, *y = b;
	if (x->dbytes != y->dbytes)
		return x->dbytes < y->dbytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int by_dretained(const void *a, const void *b)
{
	const drow *x = a, *y = b;
	if (x->dretained != y->dretained)
		return x->dretained < y->dretained ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Load a dump, its dominators and its type rows (sorted by name). */
static int load(const char *path, hd_dump *d, dom_result *r,
                gcs_typerow **rows, size_t *n)
{
	if (hd_load(path, d))
		return 1;
	if (dom_compute(d, r) || gcs_type_rows(d, r, rows, n)) {
		dom_free(r);
		hd_free(d);
		return gcs_error("%s: out of memory", path);
	}
	qsort(*rows, *n, sizeof(**rows), by_name);
	/* Types of one name are one row: the API allows a name twice
	 * (every gc_type_new(NULL, ...) is "(anonymous)"), and pairing them
	 * one for one depended on the order of each dump's objects (growth
	 * reported in two identical heaps). Retained sizes add: an upper
	 * bound if objects of one dominate the other's. */
	gcs_typerow *r0 = *rows;
	size_t w = 0;
	for (size_t i = 0; i < *n; i++) {
		if (w && !strcmp(r0[w - 1].name, r0[i].name)) {
			r0[w - 1].count += r0[i].count;
			r0[w - 1].bytes += r0[i].bytes;
			r0[w - 1].retained += r0[i].retained;
		} else {
			r0[w++] = r0[i];
		}
	}
	*n = w;
	return 0;
}

/* Is B's large object o also in A (same address, size and type name)? */
static bool in_a(const hd_dump *a, const hd_dump *b, const hd_object *o)
{
	long i = hd_find(a, o->addr);
	char n1[64], n2[64];

	if (i < 0 || a->objects[i].addr != o->addr ||
	    a->objects[i].size != o->size)
		return false;
	return !strcmp(hd_type_name(a, &a->objects[i], n1, sizeof(n1)),
	               hd_type_name(b, o, n2, sizeof(n2)));
}

#define U(x) ((unsigned long long)(x))
#define S(x) ((long long)(x))

int gcs_cmd_diff(const char *pa, const char *pb, size_t top, bool json)
{
	hd_dump a, b;
	dom_result ra, rb;
	gcs_typerow *ta, *tb;
	size_t na, nb;
	char nm[64], x[32];

	if (load(pa, &a, &ra, &ta, &na))
		return 1;
	if (load(pb, &b, &rb, &tb, &nb)) {
		free(ta);
		dom_free(&ra);
		hd_free(&a);
		return 1;
	}
	int rc = 1;
	drow *rows = calloc(na + nb + 1, sizeof(*rows));
	uint32_t *fresh = malloc((b.nobjects ? b.nobjects : 1) *
	                         sizeof(*fresh));
	if (!rows || !fresh) {
		gcs_error("out of memory");
		goto out;
	}
	/* Merge the two name-sorted lists. */
	size_t n = 0;
	for (size_t i = 0, j = 0; i < na || j < nb;) {
		int c = i == na ? 1 : j == nb ? -1 :
		        strcmp(ta[i].name, tb[j].name);
		drow *w = &rows[n++];
		uint64_t ac = 0, ab = 0, ar = 0;
		if (c <= 0) {
			w->name = ta[i].name;
			ac = ta[i].count;
			ab = ta[i].bytes;
			ar = ta[i].retained;
		}
		if (c >= 0) {
			w->name = tb[j].name;
			w->count = tb[j].count;
			w->bytes = tb[j].bytes;
			w->retained = tb[j].retained;
		}
		w->dcount = delta(ac, w->count);
		w->dbytes = delta(ab, w->bytes);
		w->dretained = delta(ar, w->retained);
		i += c <= 0;
		j += c >= 0;
	}
	size_t nfresh = 0;
	uint64_t fresh_bytes = 0;
	for (size_t i = 0; i < b.nobjects; i++)
		if ((b.objects[i].flags & HD_F_LARGE) &&
		    !in_a(&a, &b, &b.objects[i])) {
			fresh[nfresh++] = (uint32_t)i;
			fresh_bytes += b.objects[i].size;
		}
	uint64_t tot_a = 0, tot_b = 0;
	for (size_t i = 0; i < a.nobjects; i++)
		tot_a += a.objects[i].size;
	for (size_t i = 0; i < b.nobjects; i++)
		tot_b += b.objects[i].size;
	size_t ngrow = 0;
	qsort(rows, n, sizeof(*rows), by_dbytes);
	while (ngrow < n && ngrow < top &&
	       (rows[ngrow].dbytes || rows[ngrow].dcount))
		ngrow++;
	if (json) {
		printf("{\"a\": {\"pid\": %llu, \"objects\": %zu, \"bytes\": "
		       "%llu}, \"b\": {\"pid\": %llu, \"objects\": %zu, "
		       "\"bytes\": %llu}, \"growth\": [", U(a.pid), a.nobjects,
		       U(tot_a), U(b.pid), b.nobjects, U(tot_b));
		for (size_t i = 0; i < ngrow; i++) {
			printf("%s{\"type\": ", i ? ", " : "");
			gcs_json_str(stdout, rows[i].name,
			             strlen(rows[i].name));
			printf(", \"objects\": %lld, \"bytes\": %lld, "
			       "\"retained\": %lld, \"objects_b\": %llu, "
			       "\"bytes_b\": %llu}", S(rows[i].dcount),
			       S(rows[i].dbytes), S(rows[i].dretained),
			       U(rows[i].count), U(rows[i].bytes));
		}
		printf("], \"new_large\": [");
		for (size_t i = 0; i < nfresh && i < top; i++) {
			const hd_object *o = &b.objects[fresh[i]];
			const char *t = hd_type_name(&b, o, nm, sizeof(nm));
			printf("%s{\"addr\": %llu, \"size\": %llu, \"type\": ",
			       i ? ", " : "", U(o->addr), U(o->size));
			gcs_json_str(stdout, t, strlen(t));
			printf(", \"retained\": %llu}",
			       U(rb.retained[rb.obj0 + fresh[i]]));
		}
	} else {
		char y[32];
		printf("heap dump %s (pid %llu): %zu objects, %s\n", pa,
		       U(a.pid), a.nobjects, gcs_bytes(x, sizeof(x), tot_a));
		printf("heap dump %s (pid %llu): %zu objects, %s (%+lld "
		       "objects, %+lld bytes)\n", pb, U(b.pid), b.nobjects,
		       gcs_bytes(y, sizeof(y), tot_b),
		       S(delta(a.nobjects, b.nobjects)),
		       S(delta(tot_a, tot_b)));
		printf("\nGrowth by type (top %zu, by bytes):\n  %10s %12s "
		       "%12s %10s %12s  %s\n", ngrow, "objects", "bytes",
		       "retained", "now", "now bytes", "type");
		for (size_t i = 0; i < ngrow; i++)
			printf("  %+10lld %+12lld %+12lld %10llu %12llu  %s\n",
			       S(rows[i].dcount), S(rows[i].dbytes),
			       S(rows[i].dretained), U(rows[i].count),
			       U(rows[i].bytes), rows[i].name);
		printf("\nNew large objects: %zu, %s\n", nfresh,
		       gcs_bytes(x, sizeof(x), fresh_bytes));
		if (nfresh)
			printf("  %18s %12s %12s  %s\n", "address", "size",
			       "retained", "type");
		for (size_t i = 0; i < nfresh && i < top; i++) {
			const hd_object *o = &b.objects[fresh[i]];
			printf("  %#18llx %12llu %12llu  %s\n", U(o->addr),
			       U(o->size), U(rb.retained[rb.obj0 + fresh[i]]),
			       hd_type_name(&b, o, nm, sizeof(nm)));
		}
	}
	qsort(rows, n, sizeof(*rows), by_dretained);
	size_t nret = 0;
	while (nret < n && nret < top && rows[nret].dretained > 0)
		nret++;
	if (json) {
		printf("], \"retained_growth\": [");
		for (size_t i = 0; i < nret; i++) {
			printf("%s{\"type\": ", i ? ", " : "");
			gcs_json_str(stdout, rows[i].name,
			             strlen(rows[i].name));
			printf(", \"retained\": %lld, \"retained_b\": %llu}",
			       S(rows[i].dretained), U(rows[i].retained));
		}
		printf("]}\n");
	} else {
		printf("\nTop retained growth (types whose retained bytes "
		       "grew):\n  %12s %12s  %s\n", "retained", "now", "type");
		for (size_t i = 0; i < nret; i++)
			printf("  %+12lld %12llu  %s\n", S(rows[i].dretained),
			       U(rows[i].retained), rows[i].name);
	}
	rc = 0;
out:
	free(rows);
	free(fresh);
	free(ta), free(tb);
	dom_free(&ra), dom_free(&rb);
	hd_free(&a), hd_free(&b);
	return rc;
}
