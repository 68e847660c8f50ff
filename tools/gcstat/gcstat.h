/* tools/gcstat/gcstat.h: gcstat's modules, as main.c dispatches to them:
 * live.c (the export files: list, summary, intervals), dumpread.c (the
 * bounds-checked heap dump reader), dominators.c (dominator tree and
 * retained sizes), dumpcmd.c (`gcstat dump`), plot.c (`gcstat plot`),
 * mmu.c (`gcstat mmu`), and the small output helpers in util.c. Every
 * error is one line on stderr and a non-zero exit status; nothing here
 * aborts on bad input. */
#ifndef GCSTAT_H
#define GCSTAT_H

#include "format/pprof.h"
#include "gcheap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- util.c -------------------------------------------------------------- */

extern const char *gcstat_prog;

/* Print "gcstat: <message>" on stderr; returns 1 (the exit status). */
int gcs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "12.3 MiB" style, into buf. */
const char *gcs_bytes(char *buf, size_t n, double bytes);
/* A dump root kind's name (format/heapdump.h), "?" if none. */
const char *gcs_root_kind(unsigned kind);
/* "1.23 ms" style. */
const char *gcs_dur(char *buf, size_t n, double ns);
/* A JSON string literal of s (len bytes), escaped. */
void gcs_json_str(FILE *f, const char *s, size_t len);
/* Parse "1s", "500ms", "2m", "250us" or a plain number of seconds. */
bool gcs_parse_duration(const char *s, uint64_t *ns);
/* The p-th percentile (0..100) of n values (sorted in place). */
uint64_t gcs_percentile(uint64_t *v, size_t n, unsigned p);

/* ---- live.c -------------------------------------------------------------- */

typedef struct gcs_snapshot {
	long pid;
	char comm[32];
	uint64_t updated_ns;
	gc_stats st;
} gcs_snapshot;

/* The export directory ($GCHEAP_EXPORT_DIR, or /tmp/gcheap-<uid>); 1
 * (reported) when its path is too long. */
int gcs_export_dir(char *buf, size_t n);
/* Read the export file of pid; 0, or 1 after printing the error. */
int gcs_read_live(long pid, gcs_snapshot *out);
int gcs_cmd_list(bool json);
int gcs_cmd_summary(long pid, bool json);
int gcs_cmd_interval(long pid, uint64_t interval_ns, long count, bool json);

/* ---- dumpread.c ---------------------------------------------------------- */

typedef struct hd_type {
	uint32_t id;
	uint32_t flags;
	uint64_t size;
	char *name;
} hd_type;

typedef struct hd_object {
	uint64_t addr, size;
	uint32_t type;      /* the dump's type id (0: none recorded) */
	uint8_t flags;      /* HD_F_* */
	uint32_t nptrs;
	size_t ptrs;        /* index of the first target in hd_dump.ptrs */
} hd_object;

typedef struct hd_span {
	uint64_t base, npages, elemsize;
	uint32_t sizeclass, nelems, nalloc;
	uint8_t flags;
} hd_span;

typedef struct hd_root {
	uint8_t kind;
	uint32_t thread;
	uint64_t where, target;
} hd_root;

/* An ephemeron (a weak-map entry too): its value is reachable when the
 * ephemeron and its key are. 0: no key (cleared) or no value. */
typedef struct hd_ephemeron {
	uint64_t addr, key, value;
} hd_ephemeron;

#define HD_NO_OFFSET UINT32_MAX

typedef struct hd_dump {
	uint32_t version;
	uint64_t pid, time_ns;
	hd_type *types;
	size_t ntypes;
	hd_object *objects;  /* sorted by address, no overlaps */
	size_t nobjects;
	uint64_t *ptrs;      /* target addresses of all objects' pointers */
	uint32_t *offs;      /* each one's slot offset (HD_NO_OFFSET: none) */
	size_t nptrs;
	hd_span *spans;
	size_t nspans;
	hd_root *roots;
	size_t nroots;
	hd_ephemeron *ephs;
	size_t nephs;
	/* The heap profile (PROFILE and the records after it); none in a
	 * dump written before dumps carried it. */
	bool has_profile;
	pprof_profile prof;
} hd_dump;

/* Check END's checksum and counts (the fuzz target turns this off to
 * reach past them; everything else is checked regardless). */
extern bool hd_check_sums;

/* Parse a dump held in memory. 0 on success; otherwise -1 with a
 * one-line reason in err. Never reads outside buf. */
int hd_parse(const uint8_t *buf, size_t len, hd_dump *d, char *err,
             size_t errlen);
/* Read and parse a file; 0, or 1 after printing the error. */
int hd_load(const char *path, hd_dump *d);
void hd_free(hd_dump *d);
/* The index of the object that contains addr, or -1. */
long hd_find(const hd_dump *d, uint64_t addr);
/* The name of an object's type ("node", or "(noscan 48 B)"): into buf. */
const char *hd_type_name(const hd_dump *d, const hd_object *o, char *buf,
                         size_t n);

/* ---- dominators.c -------------------------------------------------------- */

/* The graph: node 0 is a virtual root with an edge to each root-kind node
 * (1..HD_ROOT_NKINDS-1), each kind node to its roots' nodes, each root
 * node to the object it points at, and each object to its targets; and
 * for each ephemeron that is reachable and whose key is, an edge from
 * the key to the value (the value lives as long as the key while the
 * ephemeron does: a key retains its value). */
typedef struct dom_result {
	size_t nnodes;
	size_t kind0, root0, obj0; /* first node of each group */
	uint32_t *idom;            /* UINT32_MAX: unreachable */
	uint64_t *retained;        /* shallow sizes summed over the subtree */
	uint32_t *postorder;       /* nodes reachable, in postorder */
	size_t nreach;
} dom_result;

/* The graph itself, as CSR: the successors of v are
 * succ[start[v] .. start[v+1]); size[v] is v's shallow size. */
typedef struct dom_graph {
	size_t n, kind0, root0, obj0;
	size_t *start;
	uint32_t *succ;
	uint64_t *size;
} dom_graph;

int dom_build_graph(const hd_dump *d, dom_graph *g);
void dom_graph_free(dom_graph *g);

/* Build the graph from a dump and compute dominators (Cooper, Harvey and
 * Kennedy's iterative algorithm) and retained sizes. 0 or -1 (no
 * memory). */
int dom_compute(const hd_dump *d, dom_result *r);
/* The same over an explicit graph (tests): n nodes, node 0 the root,
 * edges as CSR (succ[start[v] .. start[v+1])), shallow sizes. */
int dom_compute_graph(size_t n, const size_t *start, const uint32_t *succ,
                      const uint64_t *size, dom_result *r);
void dom_free(dom_result *r);

/* ---- dumpcmd.c, plot.c --------------------------------------------------- */

int gcs_cmd_dump(const char *path, size_t top, bool json);

/* A dump's objects by type (named as `gcstat dump` names them). */
typedef struct gcs_typerow {
	char name[128];
	uint64_t count, bytes, retained;
} gcs_typerow;

/* The rows of every type, in no order; 0, or -1 on no memory. */
int gcs_type_rows(const hd_dump *d, const dom_result *r, gcs_typerow **rows,
                  size_t *n);

/* request.c: ask a running process (runtime/attach.c) to "export",
 * "dump" or "profile"; 0 with the path of what it wrote, or 1 after
 * printing the error. */
int gcs_request(long pid, const char *what, char *path, size_t n);
/* `gcstat profile PID [-o FILE]`. */
int gcs_cmd_profile(long pid, const char *out);
/* profcmd.c: `gcstat profile DUMP [-o FILE]`, the pprof profile of a heap
 * dump's profile records (default FILE: DUMP.pb.gz). */
int gcs_cmd_profile_dump(const char *dump, const char *out);

/* diffcmd.c: `gcstat diff A B`; pathcmd.c: `gcstat dump --path`. */
int gcs_cmd_diff(const char *a, const char *b, size_t top, bool json);
int gcs_cmd_path(const char *dump, const char *what, bool json);
int gcs_cmd_plot(int argc, char **argv);
/* plot.c's SVG helpers: the output file (stdout for NULL or "-"; NULL
 * after printing the error), its closing (0, or 1 after printing the
 * error), and text with < and & escaped. */
FILE *gcs_open_out(const char *path);
int gcs_close_out(FILE *f, const char *path);
void gcs_svg_text(FILE *f, const char *s);

/* mmu.c: `gcstat mmu [-w LIST] FILE` (argv after "mmu"), and `gcstat plot
 * mmu FILE`: minimum mutator utilization from a trace. */
int gcs_cmd_mmu(int argc, char **argv, bool json);
int gcs_plot_mmu(const char *in, const char *out);

#define GCS_TRACE_PAUSES 16 /* pauses a line places (GCSTATS_STOPS) */
/* The largest number a trace line may carry in any field (seconds, ms,
 * MB, %): a bigger one, or an infinite one, is not a trace line. */
#define GCS_TRACE_MAX 1e9

/* One GCHEAP_DEBUG=gctrace=1 line (docs/tools.md). */
typedef struct gcs_trace {
	unsigned long cycle;
	double at;          /* seconds since start */
	double cpu_pct;     /* GC CPU fraction, % */
	double clock[3];    /* ms: pause 1, concurrent mark, pause 2 */
	double cpu[4];      /* ms: pause 1, assist / workers, pause 2 */
	double heap0, heap1, live, goal; /* MB (10^6 bytes) */
	unsigned workers;
	/* The pauses in order, ms: start (since the heap began) and length;
	 * npauses 0 in a line from before the field. */
	unsigned npauses;
	double pause_at[GCS_TRACE_PAUSES], pause_len[GCS_TRACE_PAUSES];
} gcs_trace;

/* Parse a trace line; 0, or -1 if it is not one. */
int gcs_parse_trace_line(const char *line, gcs_trace *t);

#endif
