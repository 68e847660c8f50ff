/* tests/tools/dumpgen.h: heap dumps built by hand, for the reader's tests
 * (test_dominators.c, test_dumpprof.c): a buffer, little-endian fields,
 * record headers that count themselves, and a header and an END record
 * whose counts and checksum match what was written (docs/heapdump.md), so
 * that each test damages exactly what it means to; and the check that
 * every cut and bit flip of a dump is rejected. */
#ifndef GCHEAP_TESTS_TOOLS_DUMPGEN_H
#define GCHEAP_TESTS_TOOLS_DUMPGEN_H

#include "format/heapdump.h"
#include "tests/testing.h"
#include "tools/gcstat/gcstat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct wbuf {
	uint8_t b[8192];
	size_t n;
	size_t nrec; /* records written, for END */
} wbuf;

static inline void w(wbuf *o, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		o->b[o->n++] = (uint8_t)(v >> (8 * i));
}

static inline void wbytes(wbuf *o, const void *p, size_t n)
{
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

/* A record header: tag and payload length. */
static inline void rec(wbuf *o, unsigned tag, uint32_t len)
{
	w(o, tag, 1);
	w(o, len, 4);
	o->nrec++;
}

/* An empty buffer and a version-1 header of process pid. */
static inline void dump_begin(wbuf *o, uint64_t pid)
{
	memset(o, 0, sizeof(*o));
	wbytes(o, HEAPDUMP_MAGIC, 8);
	w(o, HEAPDUMP_VERSION, 4), w(o, HEAPDUMP_HEADER_SIZE, 4);
	w(o, pid, 8), w(o, 0, 8);
}

/* The END record of a dump of nobjects objects; the dump's length. */
static inline size_t dump_end(wbuf *o, uint64_t nobjects)
{
	uint64_t sum = heapdump_fnv(HEAPDUMP_FNV_OFFSET, o->b, o->n);
	size_t records = o->nrec;
	rec(o, HD_END, 24);
	w(o, records, 8), w(o, nobjects, 8), w(o, sum, 8);
	return o->n;
}

static inline void obj(wbuf *o, uint64_t addr, uint64_t size, uint32_t type,
                       const uint64_t *ptrs, uint32_t n)
{
	rec(o, HD_OBJECT, 25 + 8 * n);
	w(o, addr, 8), w(o, size, 8), w(o, type, 4), w(o, 0, 1), w(o, n, 4);
	for (uint32_t i = 0; i < n; i++)
		w(o, ptrs[i], 8);
}

static inline void root(wbuf *o, unsigned kind, uint64_t target)
{
	rec(o, HD_ROOT, 21);
	w(o, kind, 1), w(o, 0, 4), w(o, 0x1000, 8), w(o, target, 8);
}

/* Every prefix of the dump b (n bytes, at most 8192), and every change
 * of bit 0, 3 or 6 of one of its bytes, must be rejected by the reader. */
static inline void dump_check_damage(const uint8_t *b, size_t n)
{
	static uint8_t copy[8192];
	hd_dump d;
	char err[256];

	ck_assert(n <= sizeof(copy));
	for (size_t len = 0; len < n; len++) {
		/* An exact-size heap copy: ASan sees any overread. */
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, b, len);
		ck_assert_msg(hd_parse(cut, len, &d, err, sizeof(err)) != 0,
		              "a dump cut to %zu of %zu bytes parsed", len, n);
		free(cut);
	}
	for (size_t i = 0; i < n; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			memcpy(copy, b, n);
			copy[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(hd_parse(copy, n, &d, err, sizeof(err))
			              != 0, "flipping bit %u of byte %zu "
			              "parsed", bit, i);
		}
	}
}

#endif
