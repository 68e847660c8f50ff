/* bench/benchutil.h: what the allocation microbenchmarks share: the
 * command line, the size list, the per-size memory budget, the clock, the
 * output line, the timed loop (bench_chain, always inlined with each
 * bench's own allocation call, so that no allocator pays for an indirect
 * call the others do not) and the batches of a run (bench_run).
 * allocbench.c is gcheap's, bdwbench.c bdwgc's; mallocbench.c, with its
 * own warm mode and single kind, keeps its own loop.
 *
 * Output, one line per (allocator, kind, size, repetition) on stdout:
 *   alloc ALLOCATOR KIND SIZE ns=NS objs=N mode=MODE faults=F
 * (F: the minor page faults taken in the timed loop) and comment lines
 * starting with '#'. bench/run-alloc parses them. */
#ifndef GCHEAP_BENCHUTIL_H
#define GCHEAP_BENCHUTIL_H

/* clock_gettime, strtok_r, RTLD_DEFAULT. Include this header first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_SIZES 64
#define BENCH_DEFAULT_OBJS 4000000u
#define BENCH_DEFAULT_BUDGET_MIB 256u
#define BENCH_QUICK_OBJS 20000u
#define BENCH_QUICK_BUDGET_MIB 4u

static const size_t bench_default_sizes[] = {
	8, 16, 24, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
	16384, 32768,
};

struct bench_opts {
	size_t objs;           /* objects per (kind, size), before the budget */
	size_t budget;         /* bytes per (kind, size) at most */
	size_t sizes[BENCH_MAX_SIZES];
	size_t nsizes;
	unsigned reps;         /* repetitions inside the process */
	int noscan, scan;      /* which kinds to run */
	int warm;              /* --warm: memory faulted in and freed first */
	int no_interior;       /* --no-interior (bdwbench only) */
	int prewarm;           /* touch and unmap the batch's bytes first */
	const char *name;      /* allocator name printed on each line */
};

static long bench_faults_mark;

static inline long bench_minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static inline double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Objects to allocate of `size` bytes: o->objs, capped by the budget. */
static inline size_t bench_count(const struct bench_opts *o, size_t size)
{
	size_t n = o->budget / size;

	if (n > o->objs)
		n = o->objs;
	return n ? n : 1;
}

/* Touch fresh anonymous memory and unmap it again, untimed, just before
 * a timed loop of n objects of `size` bytes: enough for any of the
 * allocators' rounding and headers (glibc puts an 8-byte object in a
 * 32-byte chunk), n * (size + size/4 + 32) + 8 MiB.
 *
 * Why: on a VM whose balloon reports free pages to the host (this one), a
 * page the guest has not touched for a while costs a host fault on first
 * touch, 2-6 times the guest's own fault, and which pages are "cold" at a
 * given moment depends on timing, not on the allocator. The pages freed
 * here are the ones the kernel hands out next, so the timed loop pays the
 * guest's fault only, the same for every allocator. --no-prewarm turns it
 * off (mode fresh-cold on the output lines). Call it right before every
 * timed loop, prewarm or not: it also starts the fault count. */
static inline void bench_prewarm(const struct bench_opts *o, size_t n,
                                 size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = n * (size + size / 4 + 32) + ((size_t)8 << 20);
	unsigned char *p;

	if (o->prewarm) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			for (size_t i = 0; i < bytes; i += page)
				((volatile unsigned char *)p)[i] = 1;
			munmap(p, bytes);
		}
	}
	/* bench_report counts the faults from here: the timed loop's. */
	bench_faults_mark = bench_minflt();
}

static inline void bench_report(const struct bench_opts *o,
                                const char *kind, size_t size, size_t n,
                                double elapsed_ns)
{
	long faults = bench_minflt() - bench_faults_mark;

	printf("alloc %s %s %zu ns=%.2f objs=%zu mode=%s%s faults=%ld\n",
	       o->name, kind, size, elapsed_ns / (double)n, n,
	       o->warm ? "warm" : "fresh",
	       o->warm || o->prewarm ? "" : "-cold", faults);
	fflush(stdout);
}

static inline void bench_usage(const char *prog, const char *extra)
{
	fprintf(stderr,
	        "usage: %s [options]\n"
	        "  -n, --objs N        objects per (kind, size) (default %u)\n"
	        "  -b, --budget-mib M  at most M MiB per (kind, size) "
	        "(default %u)\n"
	        "  -s, --sizes LIST    comma-separated sizes in bytes\n"
	        "  -r, --reps R        repetitions in this process "
	        "(default 1)\n"
	        "  -k, --kinds LIST    noscan,scan (default both)\n"
	        "      --name NAME     allocator name on the output lines\n"
	        "      --quick         tiny smoke run (%u objs, %u MiB)\n"
	        "      --no-prewarm    do not fault in and release each "
	        "batch's\n"
	        "                      bytes before timing it "
	        "(see benchutil.h)\n"
	        "%s",
	        prog, BENCH_DEFAULT_OBJS, BENCH_DEFAULT_BUDGET_MIB,
	        BENCH_QUICK_OBJS, BENCH_QUICK_BUDGET_MIB, extra);
}

static inline int bench_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0 || v > (1ull << 40))
		return -1;
	*out = (size_t)v;
	return 0;
}

static inline int bench_parse_sizes(struct bench_opts *o, const char *arg)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(arg) >= sizeof buf)
		return -1;
	strcpy(buf, arg);
	o->nsizes = 0;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == BENCH_MAX_SIZES ||
		    bench_parse_size(t, &o->sizes[o->nsizes]) != 0)
			return -1;
		o->nsizes++;
	}
	return o->nsizes ? 0 : -1;
}

static inline int bench_parse_kinds(struct bench_opts *o, const char *arg)
{
	char buf[64];
	char *save = NULL;

	if (strlen(arg) >= sizeof buf)
		return -1;
	strcpy(buf, arg);
	o->noscan = o->scan = 0;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "noscan") == 0)
			o->noscan = 1;
		else if (strcmp(t, "scan") == 0)
			o->scan = 1;
		else
			return -1;
	}
	return o->noscan || o->scan ? 0 : -1;
}

/* Parse argv into `o`. `allow` names the optional flags this bench takes:
 * 'w' for --warm, 'i' for --no-interior. Exits on --help or a bad
 * argument. */
static inline void bench_parse(struct bench_opts *o, int argc, char **argv,
                               const char *name, const char *allow,
                               const char *extra_usage)
{
	size_t v;

	memset(o, 0, sizeof *o);
	o->objs = BENCH_DEFAULT_OBJS;
	o->budget = (size_t)BENCH_DEFAULT_BUDGET_MIB << 20;
	o->nsizes = sizeof bench_default_sizes / sizeof bench_default_sizes[0];
	memcpy(o->sizes, bench_default_sizes, sizeof bench_default_sizes);
	o->reps = 1;
	o->noscan = o->scan = 1;
	o->prewarm = 1;
	o->name = name;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			bench_usage(argv[0], extra_usage);
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			o->objs = BENCH_QUICK_OBJS;
			o->budget = (size_t)BENCH_QUICK_BUDGET_MIB << 20;
		} else if (strcmp(a, "--no-prewarm") == 0) {
			o->prewarm = 0;
		} else if (strcmp(a, "--warm") == 0 && strchr(allow, 'w')) {
			o->warm = 1;
		} else if (strcmp(a, "--no-interior") == 0 &&
		           strchr(allow, 'i')) {
			o->no_interior = 1;
		} else if (!val) {
			bad = 1;
		} else if (!strcmp(a, "-n") || !strcmp(a, "--objs")) {
			bad = bench_parse_size(val, &o->objs);
			i++;
		} else if (!strcmp(a, "-b") || !strcmp(a, "--budget-mib")) {
			bad = bench_parse_size(val, &v);
			o->budget = v << 20;
			i++;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--sizes")) {
			bad = bench_parse_sizes(o, val);
			i++;
		} else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
			bad = bench_parse_size(val, &v) || v > 1000;
			o->reps = (unsigned)v;
			i++;
		} else if (!strcmp(a, "-k") || !strcmp(a, "--kinds")) {
			bad = bench_parse_kinds(o, val);
			i++;
		} else if (!strcmp(a, "--name")) {
			o->name = val;
			i++;
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "%s: bad argument '%s'\n", argv[0], a);
			bench_usage(argv[0], extra_usage);
			exit(2);
		}
	}
}

/* Keeps the last object of each loop alive and observable, so that the
 * compiler cannot drop the allocations or the stores into them. */
static void *volatile bench_sink;
static volatile uintptr_t bench_xor;

/* The stores bench_chain links objects with: a plain one (noscan objects,
 * and every allocator without a barrier). */
static inline void bench_store(void **slot, void *prev)
{
	*slot = prev;
}

/* The timed loop of allocbench and bdwbench: n objects of `size` bytes
 * from alloc(size, arg), each holding the previous one in its first word
 * (written by store: bench_store, or gc_write for a pointer slot), a
 * chain that keeps every object reachable; the addresses are xored
 * together, which is all the touching the loop does. A NULL from alloc
 * calls nomem(size), which must not return. Returns the loop's time in
 * ns; the last object goes to bench_sink, the xor into bench_xor.
 *
 * Always inlined, and every caller passes functions known at compile
 * time, so the allocator is called directly, as in a program: no
 * allocator pays for an indirect call the others do not. */
static inline __attribute__((always_inline)) double
bench_chain(size_t size, size_t n, void *(*alloc)(size_t, const void *),
            const void *arg, void (*store)(void **, void *),
            void (*nomem)(size_t))
{
	void *prev = NULL;
	uintptr_t x = 0;
	double t0, t1;

	t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		void **p = alloc(size, arg);

		if (__builtin_expect(p == NULL, 0))
			nomem(size);
		store(p, prev);
		x ^= (uintptr_t)p;
		prev = p;
	}
	t1 = bench_now_ns();
	bench_sink = prev;
	bench_xor ^= x;
	return t1 - t0;
}

/* Every batch of a run: for each repetition and size, each kind the
 * options ask for, timed by run_noscan or run_scan (size, n) after
 * bench_prewarm and printed by bench_report. A size below a word (the
 * chain's link) is skipped with a note on stderr that names prog. */
static inline void bench_run(const struct bench_opts *o, const char *prog,
                             double (*run_noscan)(size_t, size_t),
                             double (*run_scan)(size_t, size_t))
{
	for (unsigned r = 0; r < o->reps; r++) {
		for (size_t i = 0; i < o->nsizes; i++) {
			size_t size = o->sizes[i];
			size_t n = bench_count(o, size);

			if (size < sizeof(void *)) {
				fprintf(stderr, "%s: size %zu < %zu, skipped\n",
				        prog, size, sizeof(void *));
				continue;
			}
			if (o->noscan) {
				bench_prewarm(o, n, size);
				bench_report(o, "noscan", size, n,
				             run_noscan(size, n));
			}
			if (o->scan) {
				bench_prewarm(o, n, size);
				bench_report(o, "scan", size, n,
				             run_scan(size, n));
			}
		}
	}
}

#endif
