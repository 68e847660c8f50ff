/* tools/gcstat/dumpread.c: the heap dump reader (format: docs/heapdump.md,
 * format/heapdump.h). Every length is checked against what is left of
 * the buffer before it is used, every count against the record's length,
 * and the END record's checksum and record count against the file, so
 * that truncated, corrupt and wrong-version dumps are rejected with a
 * one-line reason; the reader never reads outside the buffer (a fuzz
 * target, fuzz_dump.c, exercises it). Unknown record tags are skipped,
 * so that later versions can add records. The profile records
 * (PROFILE, then BUCKET, MAPPING, SYMBOL) become a pprof_profile that
 * keeps format/pprof.h's invariants: each bucket's pcs lie in the
 * profile's array, strings are terminated and hold no NUL. */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

bool hd_check_sums = true;

typedef struct cursor {
	const uint8_t *p;
	size_t n;
} cursor;

static uint64_t get(cursor *c, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += bytes;
	c->n -= bytes;
	return v;
}

static int fail(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Append to a growing array; false on no memory. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, c * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

static int cmp_obj(const void *a, const void *b)
{
	const hd_object *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_type(const void *a, const void *b)
{
	const hd_type *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Growth state of the profile's arrays. */
typedef struct prof_caps {
	size_t samples, pcs, mappings, names;
} prof_caps;

/* A u16-length string of r into *s (malloc'd); why not, or NULL. */
static const char *get_str(cursor *r, char **s)
{
	if (r->n < 2)
		return "a string's length runs past its record";
	size_t len = (size_t)get(r, 2);
	if (len > r->n)
		return "a string runs past its record";
	if (memchr(r->p, 0, len))
		return "a string holds a NUL byte";
	if (!(*s = malloc(len + 1)))
		return "out of memory";
	memcpy(*s, r->p, len);
	(*s)[len] = 0;
	r->p += len;
	r->n -= len;
	return NULL;
}

/* A type's name as every output shows it (and --path matches it): the
 * dump's bytes, with control characters (and NUL) as \xNN, so that a
 * name cannot move the terminal's cursor or end early. out holds
 * 4 * n + 1 bytes. */
static void escape_name(char *out, const uint8_t *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		if (in[i] < 0x20 || in[i] == 0x7f) {
			*out++ = '\\';
			*out++ = 'x';
			*out++ = hex[in[i] >> 4];
			*out++ = hex[in[i] & 15];
		} else {
			*out++ = (char)in[i];
		}
	}
	*out = 0;
}

/* One record of the profile (tag PROFILE .. SYMBOL); why it is bad, or
 * NULL. */
static const char *parse_profile(unsigned tag, cursor *r, hd_dump *d,
                                 prof_caps *caps)
{
	pprof_profile *p = &d->prof;

	if (tag == HD_PROFILE) {
		if (d->has_profile)
			return "a second PROFILE record";
		if (r->n != 8)
			return "a PROFILE record has the wrong length";
		uint64_t rate = get(r, 8);
		if (rate > INT64_MAX)
			return "a PROFILE's rate is out of range";
		p->rate = (int64_t)rate;
		p->time_ns = d->time_ns;
		d->has_profile = true;
		return NULL;
	}
	if (!d->has_profile)
		return "a profile record before the PROFILE record";
	if (tag == HD_BUCKET) {
		if (r->n < 36)
			return "a BUCKET record is short";
		pprof_sample s;
		s.allocs = get(r, 8);
		s.alloc_bytes = get(r, 8);
		s.frees = get(r, 8);
		s.free_bytes = get(r, 8);
		s.nstk = (uint32_t)get(r, 4);
		s.stk = p->npcs;
		if ((uint64_t)s.nstk * 8 != r->n)
			return "a BUCKET's frame count does not match its "
			       "length";
		if (!grow((void **)&p->samples, &caps->samples, p->nsamples,
		          sizeof(s)))
			return "out of memory";
		for (uint32_t k = 0; k < s.nstk; k++) {
			if (!grow((void **)&p->pcs, &caps->pcs, p->npcs,
			          sizeof(uint64_t)))
				return "out of memory";
			p->pcs[p->npcs++] = get(r, 8);
		}
		p->samples[p->nsamples++] = s;
		return NULL;
	}
	if (tag == HD_MAPPING) {
		if (r->n < 28)
			return "a MAPPING record is short";
		pprof_mapping m = {0};
		m.start = get(r, 8);
		m.limit = get(r, 8);
		m.offset = get(r, 8);
		if (m.start >= m.limit)
			return "a MAPPING ends before it starts";
		const char *bad = get_str(r, &m.file);
		if (!bad)
			bad = get_str(r, &m.build_id);
		if (!bad && r->n)
			bad = "a MAPPING's strings do not match its length";
		if (!bad && !grow((void **)&p->mappings, &caps->mappings,
		                  p->nmappings, sizeof(m)))
			bad = "out of memory";
		if (bad) {
			free(m.file);
			free(m.build_id);
			return bad;
		}
		p->mappings[p->nmappings++] = m;
		return NULL;
	}
	/* HD_SYMBOL */
	if (r->n < 10)
		return "a SYMBOL record is short";
	pprof_name nm = {0};
	nm.pc = get(r, 8);
	const char *bad = get_str(r, &nm.name);
	if (!bad && r->n)
		bad = "a SYMBOL's name does not match its length";
	if (!bad && !nm.name[0])
		bad = "a SYMBOL has an empty name";
	if (!bad && !grow((void **)&p->names, &caps->names, p->nnames,
	                  sizeof(nm)))
		bad = "out of memory";
	if (bad) {
		free(nm.name);
		return bad;
	}
	p->names[p->nnames++] = nm;
	return NULL;
}

void hd_free(hd_dump *d)
{
	for (size_t i = 0; i < d->ntypes; i++)
		free(d->types[i].name);
	free(d->types);
	free(d->objects);
	free(d->ptrs);
	free(d->offs);
	free(d->spans);
	free(d->roots);
	free(d->ephs);
	pprof_free(&d->prof);
	memset(d, 0, sizeof(*d));
}

int hd_parse(const uint8_t *buf, size_t len, hd_dump *d, char *err,
             size_t errlen)
{
	size_t cap_t = 0, cap_o = 0, cap_p = 0, cap_s = 0, cap_r = 0;
	size_t cap_e = 0, cap_f = 0;
	prof_caps caps = {0};
	uint64_t records = 0;
	bool end = false;

	memset(d, 0, sizeof(*d));
	if (len < 8 || memcmp(buf, HEAPDUMP_MAGIC, 8))
		return fail(err, errlen, "not a gcheap heap dump (bad magic)");
	if (len < HEAPDUMP_HEADER_SIZE)
		return fail(err, errlen, "truncated: %zu bytes, the header "
		            "alone is %d", len, HEAPDUMP_HEADER_SIZE);
	cursor c = {buf + 8, len - 8};
	d->version = (uint32_t)get(&c, 4);
	uint32_t hsize = (uint32_t)get(&c, 4);
	if (d->version != HEAPDUMP_VERSION)
		return fail(err, errlen, "heap dump version %u; this gcstat "
		            "reads version %d", d->version, HEAPDUMP_VERSION);
	if (hsize < HEAPDUMP_HEADER_SIZE || hsize > len)
		return fail(err, errlen, "corrupt: header size %u", hsize);
	d->pid = get(&c, 8);
	d->time_ns = get(&c, 8);
	c.p = buf + hsize;
	c.n = len - hsize;
	uint64_t sum = heapdump_fnv(HEAPDUMP_FNV_OFFSET, buf, hsize);

	unsigned last = 0; /* the record before: an OFFSETS follows its
	                    * OBJECT, once */
	while (c.n && !end) {
		size_t off = (size_t)(c.p - buf);
		if (c.n < 5) {
			hd_free(d);
			return fail(err, errlen, "truncated: a record header "
			            "at offset %zu", off);
		}
		const uint8_t *rec = c.p;
		unsigned tag = (unsigned)get(&c, 1);
		uint32_t rlen = (uint32_t)get(&c, 4);
		if (rlen > HEAPDUMP_MAX_RECORD || rlen > c.n) {
			hd_free(d);
			return fail(err, errlen, "truncated: the record at "
			            "offset %zu says %u bytes, %zu are left",
			            off, rlen, c.n);
		}
		cursor r = {c.p, rlen};
		c.p += rlen;
		c.n -= rlen;
		const char *bad = NULL;
		unsigned prev = last;
		last = tag;
		switch (tag) {
		case HD_TYPE: {
			if (rlen < 18) {
				bad = "a TYPE record is short";
				break;
			}
			hd_type t;
			t.id = (uint32_t)get(&r, 4);
			t.size = get(&r, 8);
			t.flags = (uint32_t)get(&r, 4);
			size_t nlen = (size_t)get(&r, 2);
			if (nlen != r.n) {
				bad = "a TYPE name length does not match";
				break;
			}
			/* Ids from 1 up, in order: names are found by a
			 * binary search. */
			if (!t.id || (d->ntypes &&
			              t.id <= d->types[d->ntypes - 1].id)) {
				bad = "a TYPE id is 0 or not above the last";
				break;
			}
			if (!grow((void **)&d->types, &cap_t, d->ntypes,
			          sizeof(hd_type)) ||
			    !(t.name = malloc(4 * nlen + 1))) {
				bad = "out of memory";
				break;
			}
			escape_name(t.name, r.p, nlen);
			d->types[d->ntypes++] = t;
			break;
		}
		case HD_SPAN: {
			if (rlen != 37) {
				bad = "a SPAN record has the wrong length";
				break;
			}
			hd_span s;
			s.base = get(&r, 8);
			s.npages = get(&r, 8);
			s.elemsize = get(&r, 8);
			s.sizeclass = (uint32_t)get(&r, 4);
			s.nelems = (uint32_t)get(&r, 4);
			s.nalloc = (uint32_t)get(&r, 4);
			s.flags = (uint8_t)get(&r, 1);
			if (s.nalloc > s.nelems || !s.npages ||
			    s.npages > (1ull << 40)) {
				bad = "a SPAN record is inconsistent";
				break;
			}
			if (!grow((void **)&d->spans, &cap_s, d->nspans,
			          sizeof(hd_span))) {
				bad = "out of memory";
				break;
			}
			d->spans[d->nspans++] = s;
			break;
		}
		case HD_OBJECT: {
			if (rlen < 25) {
				bad = "an OBJECT record is short";
				break;
			}
			hd_object o;
			o.addr = get(&r, 8);
			o.size = get(&r, 8);
			o.type = (uint32_t)get(&r, 4);
			o.flags = (uint8_t)get(&r, 1);
			o.nptrs = (uint32_t)get(&r, 4);
			if ((uint64_t)o.nptrs * 8 != r.n) {
				bad = "an OBJECT's pointer count does not "
				      "match its length";
				break;
			}
			if (!o.size || o.addr + o.size < o.addr) {
				bad = "an OBJECT has a bad size";
				break;
			}
			o.ptrs = d->nptrs;
			if (!grow((void **)&d->objects, &cap_o, d->nobjects,
			          sizeof(hd_object))) {
				bad = "out of memory";
				break;
			}
			for (uint32_t k = 0; k < o.nptrs && !bad; k++) {
				if (!grow((void **)&d->ptrs, &cap_p, d->nptrs,
				          sizeof(uint64_t)) ||
				    !grow((void **)&d->offs, &cap_f, d->nptrs,
				          sizeof(uint32_t))) {
					bad = "out of memory";
				} else {
					d->offs[d->nptrs] = HD_NO_OFFSET;
					d->ptrs[d->nptrs++] = get(&r, 8);
				}
			}
			if (!bad)
				d->objects[d->nobjects++] = o;
			break;
		}
		case HD_ROOT: {
			if (rlen != 21) {
				bad = "a ROOT record has the wrong length";
				break;
			}
			hd_root rt;
			rt.kind = (uint8_t)get(&r, 1);
			rt.thread = (uint32_t)get(&r, 4);
			rt.where = get(&r, 8);
			rt.target = get(&r, 8);
			if (rt.kind == 0 || rt.kind >= HD_ROOT_NKINDS) {
				bad = "a ROOT record has an unknown kind";
				break;
			}
			if (!grow((void **)&d->roots, &cap_r, d->nroots,
			          sizeof(hd_root))) {
				bad = "out of memory";
				break;
			}
			d->roots[d->nroots++] = rt;
			break;
		}
		case HD_OFFSETS: {
			if (rlen < 12) {
				bad = "an OFFSETS record is short";
				break;
			}
			uint64_t addr = get(&r, 8);
			uint32_t n = (uint32_t)get(&r, 4);
			const hd_object *o = d->nobjects ?
			        &d->objects[d->nobjects - 1] : NULL;
			if ((uint64_t)n * 4 != r.n || !o || o->addr != addr ||
			    o->nptrs != n || prev != HD_OBJECT) {
				bad = "an OFFSETS record does not match the "
				      "OBJECT just before it";
				break;
			}
			for (uint32_t k = 0; k < n; k++)
				d->offs[o->ptrs + k] = (uint32_t)get(&r, 4);
			break;
		}
		case HD_EPHEMERON: {
			if (rlen != 24) {
				bad = "an EPHEMERON record has the wrong "
				      "length";
				break;
			}
			hd_ephemeron e;
			e.addr = get(&r, 8);
			e.key = get(&r, 8);
			e.value = get(&r, 8);
			if (!grow((void **)&d->ephs, &cap_e, d->nephs,
			          sizeof(e))) {
				bad = "out of memory";
				break;
			}
			d->ephs[d->nephs++] = e;
			break;
		}
		case HD_PROFILE:
		case HD_BUCKET:
		case HD_MAPPING:
		case HD_SYMBOL:
			bad = parse_profile(tag, &r, d, &caps);
			break;
		case HD_END: {
			if (rlen != 24) {
				bad = "the END record has the wrong length";
				break;
			}
			uint64_t nrec = get(&r, 8);
			uint64_t nobj = get(&r, 8);
			uint64_t want = get(&r, 8);
			if (want != sum && hd_check_sums)
				bad = "checksum mismatch";
			else if ((nrec != records || nobj != d->nobjects) &&
			         hd_check_sums)
				bad = "the record counts do not match END";
			end = true;
			break;
		}
		default:
			break; /* a later version's record: skip it */
		}
		if (bad) {
			hd_free(d);
			return fail(err, errlen, "corrupt: %s (record at "
			            "offset %zu)", bad, off);
		}
		if (!end) {
			sum = heapdump_fnv(sum, rec, 5 + (size_t)rlen);
			records++;
		}
	}
	if (!end) {
		hd_free(d);
		return fail(err, errlen, "truncated: no END record (%zu bytes)",
		            len);
	}
	if (c.n) {
		hd_free(d);
		return fail(err, errlen, "corrupt: %zu bytes after the END "
		            "record", c.n);
	}
	if (d->nobjects)
		qsort(d->objects, d->nobjects, sizeof(hd_object), cmp_obj);
	if (d->ntypes)
		qsort(d->types, d->ntypes, sizeof(hd_type), cmp_type);
	for (size_t i = 1; i < d->nobjects; i++)
		if (d->objects[i].addr < d->objects[i - 1].addr +
		                         d->objects[i - 1].size) {
			unsigned long long at = d->objects[i].addr;
			hd_free(d);
			return fail(err, errlen, "corrupt: objects overlap at "
			            "%#llx", at);
		}
	return 0;
}

int hd_load(const char *path, hd_dump *d)
{
	FILE *f = fopen(path, "rb");
	char err[256];

	if (!f)
		return gcs_error("%s: %s", path, strerror(errno));
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			size_t c = cap ? cap * 2 : 1 << 16;
			uint8_t *b = realloc(buf, c);
			if (!b) {
				free(buf);
				fclose(f);
				return gcs_error("%s: out of memory", path);
			}
			buf = b;
			cap = c;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
		/* Not a dump: say so before reading on (/dev/zero, a
		 * random device or a large other file were read whole, or
		 * until memory ran out, before the header was looked at). */
		if (n >= 8 && n - k < 8 && memcmp(buf, HEAPDUMP_MAGIC, 8)) {
			free(buf);
			fclose(f);
			return gcs_error("%s: not a gcheap heap dump (bad "
			                 "magic)", path);
		}
	}
	bool ioerr = ferror(f);
	fclose(f);
	if (ioerr) {
		free(buf);
		return gcs_error("%s: read error", path);
	}
	int r = hd_parse(buf, n, d, err, sizeof(err));
	free(buf);
	if (r)
		return gcs_error("%s: %s", path, err);
	return 0;
}

long hd_find(const hd_dump *d, uint64_t addr)
{
	size_t lo = 0, hi = d->nobjects;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const hd_object *o = &d->objects[mid];
		if (addr < o->addr)
			hi = mid;
		else if (addr >= o->addr + o->size)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

const char *hd_type_name(const hd_dump *d, const hd_object *o, char *buf,
                         size_t n)
{
	size_t lo = 0, hi = d->ntypes;
	while (o->type && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->types[mid].id == o->type)
			return d->types[mid].name;
		if (d->types[mid].id < o->type)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (o->flags & HD_F_TINY)
		snprintf(buf, n, "(tiny blocks)");
	else
		snprintf(buf, n, "(%s %llu B)", o->flags & HD_F_NOSCAN ?
		         "noscan" : "scan", (unsigned long long)o->size);
	return buf;
}
