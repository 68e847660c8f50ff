/* format/pprof.h: a heap profile as data, and its one encoder
 * (format/pprof.c) into pprof's format (github.com/google/pprof,
 * proto/profile.proto, gzipped). Two writers use it: the library's
 * gc_write_heap_profile (runtime/pprof.c gathers the profile in process)
 * and `gcstat profile DUMP` (tools/gcstat/dumpread.c reads it from a heap
 * dump's profile records, docs/heapdump.md). Like every format/ header it
 * may include the C library and the public header only, so that the
 * library and tools/ both can (docs/design.md, Layers); format/pprof.c is
 * compiled into both.
 *
 * Invariants of a pprof_profile: every sample's frames lie inside pcs
 * (stk + nstk <= npcs); strings are NUL-terminated and owned by the
 * profile (pprof_free frees them). Counters are as sampled, unscaled:
 * the encoder scales them as Go does. */
#ifndef GCHEAP_FORMAT_PPROF_H
#define GCHEAP_FORMAT_PPROF_H

#include <stddef.h>
#include <stdint.h>

/* One distinct allocation stack: pcs[stk .. stk + nstk), innermost first,
 * each a return address (the first into the function that allocated),
 * with the objects and bytes sampled there and freed since. */
typedef struct pprof_sample {
	uint64_t allocs, alloc_bytes, frees, free_bytes;
	size_t stk;
	uint32_t nstk;
} pprof_sample;

/* An executable mapping: [start, limit) holds the file's bytes from
 * offset on; build_id is the GNU build id in lower-case hex ("" none). */
typedef struct pprof_mapping {
	uint64_t start, limit, offset;
	char *file, *build_id;
} pprof_mapping;

/* The function that a sampled return address pc returns into. */
typedef struct pprof_name {
	uint64_t pc;
	char *name;
} pprof_name;

typedef struct pprof_profile {
	int64_t rate;        /* bytes per sample on average (the period) */
	uint64_t time_ns;    /* CLOCK_REALTIME when it was taken */
	pprof_sample *samples;
	size_t nsamples;
	uint64_t *pcs;
	size_t npcs;
	pprof_mapping *mappings;
	size_t nmappings;
	pprof_name *names;   /* any order; the first of a pc counts */
	size_t nnames;
} pprof_profile;

/* The distinct pcs of p's samples, sorted (location i + 1 of the
 * encoded profile is the i-th): malloc'd, *n of them; NULL if out of
 * memory. */
uint64_t *pprof_distinct_pcs(const pprof_profile *p, size_t *n);
/* The profile as a gzip file's bytes (malloc'd, *n of them), or NULL if
 * out of memory. */
uint8_t *pprof_encode(const pprof_profile *p, size_t *n);
/* Encode p into the file at path: 0, or an errno value. */
int pprof_write(const pprof_profile *p, const char *path);
/* Free what p owns and empty it. */
void pprof_free(pprof_profile *p);

#endif
