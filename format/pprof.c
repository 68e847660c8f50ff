/* format/pprof.c: the pprof encoder (format/pprof.h), compiled into the
 * library and gcstat alike: a pprof_profile as a gzipped Profile message,
 * hand-encoded, with the four sample types of a Go heap profile
 * (alloc_objects, alloc_space, inuse_objects, inuse_space; inuse_space
 * the default) and period = the sampling rate.
 *
 * Values are scaled as Go scales them: a sample whose objects average
 * `avg` bytes stands for 1 / (1 - exp(-avg / rate)) times as many objects
 * and bytes (the chance that an object of that size is sampled). In use
 * is allocated minus freed (a free counted before its allocation is
 * clamped away).
 *
 * Locations are the sampled return addresses minus 1 (inside the call),
 * each with its mapping and, when the profile names its pc, a line of
 * that function. Mappings are written with file, offsets and build id and
 * without has_functions, so that pprof symbolizes the addresses again
 * from the binary (every function, with file and line) when it can read
 * it; the names are the fallback.
 *
 * gzip: stored (uncompressed) deflate blocks and a CRC-32, so that no
 * compression library is needed; profiles are small. Nothing here trusts
 * the profile beyond format/pprof.h's invariants: counters and addresses
 * may be anything (a heap dump's reader hands them over as read). */
#include "format/pprof.h"

#include <errno.h>
#include <math.h> /* ldexp: in the C library, not libm */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- A growing byte buffer and protobuf's wire format -------------------- */

typedef struct pbuf {
	uint8_t *b;
	size_t n, cap;
	bool oom;
} pbuf;

static void pb_bytes(pbuf *p, const void *v, size_t n)
{
	if (p->oom || !n)
		return;
	if (p->n + n > p->cap) {
		size_t c = p->cap ? p->cap * 2 : 4096;
		while (c < p->n + n)
			c *= 2;
		uint8_t *nb = realloc(p->b, c);
		if (!nb) {
			p->oom = true;
			return;
		}
		p->b = nb;
		p->cap = c;
	}
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

static void pb_varint(pbuf *p, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_bytes(p, b, n);
}

/* A varint field (wire type 0). */
static void pb_uint(pbuf *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3);
	pb_varint(p, v);
}

/* A length-delimited field (wire type 2). */
static void pb_len(pbuf *p, unsigned field, const void *v, size_t n)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, n);
	pb_bytes(p, v, n);
}

/* A nested message from a scratch buffer, which is emptied. */
static void pb_msg(pbuf *p, unsigned field, pbuf *m)
{
	if (m->oom)
		p->oom = true;
	pb_len(p, field, m->b, m->n);
	m->n = 0;
}

/* ---- The string table ---------------------------------------------------- */

/* The strings, and an open-addressing hash of their indexes (index + 1;
 * 0 empty) of at least twice as many slots: a linear search per string
 * made a profile of 40,000 functions take minutes. fn: per string, the
 * function (index + 1) named by it, or 0 (encode_locations). */
typedef struct strtab {
	char **s;
	uint32_t *fn;
	size_t n, cap;
	uint32_t *h;
	size_t hcap;
	bool oom;
} strtab;

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Rebuild the hash with hcap slots (a power of two). */
static bool str_rehash(strtab *t, size_t hcap)
{
	uint32_t *h = calloc(hcap, sizeof(*h));
	if (!h)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		size_t k = str_hash(t->s[i]) & (hcap - 1);
		while (h[k])
			k = (k + 1) & (hcap - 1);
		h[k] = (uint32_t)i + 1;
	}
	free(t->h);
	t->h = h;
	t->hcap = hcap;
	return true;
}

/* The index of s (copied if new); 0 ("") if out of memory. */
static uint64_t str_id(strtab *t, const char *s)
{
	if (t->oom)
		return 0;
	if ((t->n + 1) * 2 > t->hcap &&
	    (t->n >= UINT32_MAX / 2 ||
	     !str_rehash(t, t->hcap ? t->hcap * 2 : 128))) {
		t->oom = true;
		return 0;
	}
	size_t k = str_hash(s) & (t->hcap - 1);
	for (; t->h[k]; k = (k + 1) & (t->hcap - 1))
		if (!strcmp(t->s[t->h[k] - 1], s))
			return t->h[k] - 1;
	if (t->n == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 64;
		char **ns = realloc(t->s, c * sizeof(*ns));
		if (ns)
			t->s = ns;
		uint32_t *nf = ns ? realloc(t->fn, c * sizeof(*nf)) : NULL;
		if (nf)
			t->fn = nf;
		if (!ns || !nf) {
			t->oom = true;
			return 0;
		}
		t->cap = c;
	}
	char *d = strdup(s);
	if (!d) {
		t->oom = true;
		return 0;
	}
	t->s[t->n] = d;
	t->fn[t->n] = 0;
	t->h[k] = (uint32_t)t->n + 1;
	return t->n++;
}

/* ---- gzip ---------------------------------------------------------------- */

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t table[256], c = 0xffffffffu;

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t k = i;
		for (int b = 0; b < 8; b++)
			k = k & 1 ? 0xedb88320u ^ (k >> 1) : k >> 1;
		table[i] = k;
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* data as a gzip member of stored deflate blocks, into out. */
static void gzip(pbuf *out, const uint8_t *data, size_t n)
{
	static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
	                                 3 /* Unix */};
	size_t off = 0;

	pb_bytes(out, head, sizeof(head));
	do {
		size_t len = n - off > 65535 ? 65535 : n - off;
		uint8_t bh[5] = {off + len == n ? 1 : 0, (uint8_t)len,
		                 (uint8_t)(len >> 8), (uint8_t)~len,
		                 (uint8_t)(~len >> 8)};
		pb_bytes(out, bh, 5);
		pb_bytes(out, data + off, len);
		off += len;
	} while (off < n);
	uint32_t crc = crc32(data, n), isize = (uint32_t)n;
	uint8_t tail[8] = {(uint8_t)crc, (uint8_t)(crc >> 8),
	                   (uint8_t)(crc >> 16), (uint8_t)(crc >> 24),
	                   (uint8_t)isize, (uint8_t)(isize >> 8),
	                   (uint8_t)(isize >> 16), (uint8_t)(isize >> 24)};
	pb_bytes(out, tail, 8);
}

/* ---- The profile --------------------------------------------------------- */

/* exp(-x) for x >= 0, without libm: x = k ln 2 + r, r in [0, ln 2). */
static double exp_neg(double x)
{
	if (!(x <= 700)) /* NaN too */
		return 0;
	int k = (int)(x / 0.69314718055994530942);
	double r = x - k * 0.69314718055994530942, term = 1, sum = 1;

	for (int i = 1; i <= 16; i++) {
		term *= -r / i;
		sum += term;
	}
	return ldexp(sum, -k);
}

/* v scaled and rounded, saturated at UINT64_MAX. */
static uint64_t scaled(uint64_t v, double scale)
{
	double d = (double)v * scale + 0.5;
	return d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_name(const void *a, const void *b)
{
	const pprof_name *x = *(pprof_name *const *)a;
	const pprof_name *y = *(pprof_name *const *)b;
	if (x->pc != y->pc)
		return x->pc < y->pc ? -1 : 1;
	return x < y ? -1 : x > y; /* the first of a pc first */
}

/* The index of pc in the sorted unique array (n if absent). */
static size_t pc_index(const uint64_t *pcs, size_t n, uint64_t pc)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pcs[mid] < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The name of pc, from names sorted by pc; NULL if none. */
static const char *name_of(pprof_name *const *by_pc, size_t n, uint64_t pc)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (by_pc[mid]->pc < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && by_pc[lo]->pc == pc ? by_pc[lo]->name : NULL;
}

/* A mapping's start and index, to search the mappings by address. */
typedef struct map_key {
	uint64_t start;
	uint64_t index;
} map_key;

static int cmp_map_key(const void *a, const void *b)
{
	const map_key *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The index + 1 of a mapping holding addr, or 0: a binary search of the
 * keys sorted by start (a linear search per pc was quadratic) for the
 * last mapping that starts at or below addr; before it, with overlapping
 * mappings (a malformed dump), a few more. */
static uint64_t mapping_of(const pprof_profile *p, const map_key *keys,
                           uint64_t addr)
{
	size_t lo = 0, hi = p->nmappings;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keys[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0 && lo - i <= 64;)
		if (addr < p->mappings[keys[i].index].limit)
			return keys[i].index + 1;
	return 0;
}

static void encode_samples(const pprof_profile *p, const uint64_t *pcs,
                           size_t nu, pbuf *out, pbuf *m, pbuf *sub)
{
	for (size_t s = 0; s < p->nsamples; s++) {
		const pprof_sample *b = &p->samples[s];
		uint64_t a = b->allocs, ab = b->alloc_bytes;
		uint64_t f = b->frees, fb = b->free_bytes;
		if (f > a || fb > ab) /* a free counted before its alloc */
			f = a, fb = ab;
		double scale = 1;
		if (a && p->rate > 1) {
			double q = 1 - exp_neg((double)ab / (double)a /
			                       (double)p->rate);
			scale = q > 0 ? 1 / q : 1;
		}
		for (uint32_t i = 0; i < b->nstk; i++)
			pb_varint(sub, pc_index(pcs, nu,
			                        p->pcs[b->stk + i]) + 1);
		pb_msg(m, 1, sub);
		pb_varint(sub, scaled(a, scale));
		pb_varint(sub, scaled(ab, scale));
		pb_varint(sub, scaled(a - f, scale));
		pb_varint(sub, scaled(ab - fb, scale));
		pb_msg(m, 2, sub);
		pb_msg(out, 2, m);
	}
}

/* Locations, each with its function's name as its line when the profile
 * has one; then the functions (ids: first use order, one per name). */
static bool encode_locations(const pprof_profile *p, const uint64_t *pcs,
                             size_t nu, strtab *st, pbuf *out, pbuf *m,
                             pbuf *sub)
{
	pprof_name **by_pc = malloc((p->nnames ? p->nnames : 1) *
	                            sizeof(*by_pc));
	uint64_t *fn = malloc((nu ? nu : 1) * sizeof(*fn));
	map_key *keys = malloc((p->nmappings ? p->nmappings : 1) *
	                       sizeof(*keys));
	size_t nfn = 0;

	if (!by_pc || !fn || !keys) {
		free(by_pc);
		free(fn);
		free(keys);
		return false;
	}
	for (size_t i = 0; i < p->nnames; i++)
		by_pc[i] = &p->names[i];
	qsort(by_pc, p->nnames, sizeof(*by_pc), cmp_name);
	for (size_t i = 0; i < p->nmappings; i++)
		keys[i] = (map_key){p->mappings[i].start, i};
	qsort(keys, p->nmappings, sizeof(*keys), cmp_map_key);
	for (size_t i = 0; i < nu; i++) {
		uint64_t addr = pcs[i] - 1;
		const char *name = name_of(by_pc, p->nnames, pcs[i]);
		pb_uint(m, 1, i + 1);
		uint64_t mid = mapping_of(p, keys, addr);
		if (mid)
			pb_uint(m, 2, mid);
		pb_uint(m, 3, addr);
		if (name) {
			uint64_t id = str_id(st, name);
			/* Its function: the one this string names, or new. */
			size_t k = st->oom ? 0 : st->fn[id];
			if (!k) {
				fn[nfn++] = id;
				k = nfn;
				if (!st->oom)
					st->fn[id] = (uint32_t)k;
			}
			pb_uint(sub, 1, k);
			pb_msg(m, 4, sub);
		}
		pb_msg(out, 4, m);
	}
	for (size_t k = 0; k < nfn; k++) {
		pb_uint(m, 1, k + 1);
		pb_uint(m, 2, fn[k]);
		pb_uint(m, 3, fn[k]);
		pb_msg(out, 5, m);
	}
	free(by_pc);
	free(fn);
	free(keys);
	return true;
}

uint64_t *pprof_distinct_pcs(const pprof_profile *p, size_t *n)
{
	uint64_t *pcs = malloc((p->npcs ? p->npcs : 1) * sizeof(*pcs));
	size_t nu = 0;

	if (!pcs)
		return NULL;
	if (p->npcs) /* a profile without samples may have no array */
		memcpy(pcs, p->pcs, p->npcs * sizeof(*pcs));
	qsort(pcs, p->npcs, sizeof(*pcs), cmp_u64);
	for (size_t i = 0; i < p->npcs; i++)
		if (!nu || pcs[i] != pcs[nu - 1])
			pcs[nu++] = pcs[i];
	*n = nu;
	return pcs;
}

/* The Profile message into out; false on no memory. */
static bool encode(const pprof_profile *p, pbuf *out)
{
	strtab st = {0};
	pbuf m = {0}, sub = {0};
	bool ok = false;
	size_t nu = 0;
	uint64_t *pcs = pprof_distinct_pcs(p, &nu);

	str_id(&st, "");
	if (!pcs)
		goto out;

	/* sample_type, in Go's order. */
	static const char *const types[4][2] = {
		{"alloc_objects", "count"}, {"alloc_space", "bytes"},
		{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
	for (int i = 0; i < 4; i++) {
		pb_uint(&m, 1, str_id(&st, types[i][0]));
		pb_uint(&m, 2, str_id(&st, types[i][1]));
		pb_msg(out, 1, &m);
	}
	encode_samples(p, pcs, nu, out, &m, &sub);
	for (size_t i = 0; i < p->nmappings; i++) {
		const pprof_mapping *mp = &p->mappings[i];
		pb_uint(&m, 1, i + 1);
		pb_uint(&m, 2, mp->start);
		pb_uint(&m, 3, mp->limit);
		pb_uint(&m, 4, mp->offset);
		pb_uint(&m, 5, str_id(&st, mp->file));
		pb_uint(&m, 6, str_id(&st, mp->build_id));
		pb_msg(out, 3, &m);
	}
	if (!encode_locations(p, pcs, nu, &st, out, &m, &sub))
		goto out;
	/* The rest refer to strings: ids before the table is written. */
	uint64_t space = str_id(&st, "space"), bytes = str_id(&st, "bytes");
	uint64_t deflt = str_id(&st, "inuse_space");
	uint64_t note = str_id(&st, "gcheap heap profile: sampled once per "
	                            "GCHEAP_MEMPROFILERATE bytes on average");
	for (size_t i = 0; i < st.n; i++)
		pb_len(out, 6, st.s[i], strlen(st.s[i]));
	pb_uint(out, 9, p->time_ns);
	pb_uint(&m, 1, space);
	pb_uint(&m, 2, bytes);
	pb_msg(out, 11, &m);
	pb_uint(out, 12, (uint64_t)p->rate);
	pb_uint(out, 13, note);
	pb_uint(out, 14, deflt);
	ok = !out->oom && !m.oom && !sub.oom && !st.oom;
out:
	for (size_t i = 0; i < st.n; i++)
		free(st.s[i]);
	free(st.s);
	free(st.fn);
	free(st.h);
	free(m.b);
	free(sub.b);
	free(pcs);
	return ok;
}

uint8_t *pprof_encode(const pprof_profile *p, size_t *n)
{
	pbuf msg = {0}, gz = {0};

	if (encode(p, &msg))
		gzip(&gz, msg.b, msg.n);
	else
		gz.oom = true;
	free(msg.b);
	if (gz.oom) {
		free(gz.b);
		return NULL;
	}
	*n = gz.n;
	return gz.b;
}

int pprof_write(const pprof_profile *p, const char *path)
{
	size_t n;
	uint8_t *gz = pprof_encode(p, &n);

	if (!gz)
		return ENOMEM;
	FILE *f = fopen(path, "wb");
	if (!f) {
		int e = errno;
		free(gz);
		return e;
	}
	bool ok = fwrite(gz, 1, n, f) == n;
	int e = errno;
	free(gz);
	if (fclose(f) || !ok)
		return ok ? errno : e ? e : EIO;
	return 0;
}

void pprof_free(pprof_profile *p)
{
	for (size_t i = 0; i < p->nmappings; i++) {
		free(p->mappings[i].file);
		free(p->mappings[i].build_id);
	}
	for (size_t i = 0; i < p->nnames; i++)
		free(p->names[i].name);
	free(p->samples);
	free(p->pcs);
	free(p->mappings);
	free(p->names);
	memset(p, 0, sizeof(*p));
}
