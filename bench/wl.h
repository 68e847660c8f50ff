/* bench/wl.h: the allocation shim the workload programs (bench/wl-*.c)
 * are written against, so that each workload is written once and compiled
 * three times, one executable per family:
 *
 *   WL_GCHEAP  gc_alloc with a pointer map (gc_type), gc_write for every
 *              pointer store into the heap, no free;
 *   WL_BDW     bdwgc: GC_malloc for objects with pointers, GC_malloc_atomic
 *              for the others, plain stores, no free. BENCH_BDW=noint
 *              calls GC_set_all_interior_pointers(0) first; BENCH_BDW=par
 *              does that too and starts the parallel marker threads;
 *   WL_MALLOC  malloc and an explicit free (glibc's, or jemalloc's and
 *              mimalloc's through LD_PRELOAD): the floor.
 *
 * The workloads initialise every field they read (malloc does not zero);
 * WL_ZEROED says when a fresh object's pointers are already NULL. Every
 * program prints its results on stdout as lines
 *   checksum HEX          compared across the families by bench/run
 *   figure NAME VALUE     the workload's own figures
 * plus the collector's counters (figure gc_cycles, gc_pause_max_ms,
 * gc_pause_total_ms) from wl_finish(). The Go twins (bench/go/) print the
 * same lines. */
#ifndef GCHEAP_BENCH_WL_H
#define GCHEAP_BENCH_WL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(WL_GCHEAP) + defined(WL_BDW) + defined(WL_MALLOC) != 1
#error "define exactly one of WL_GCHEAP, WL_BDW, WL_MALLOC"
#endif

#if defined(WL_GCHEAP)
#include "gcheap.h"
#define WL_FAMILY "gcheap"
#define WL_HAS_FREE 0
#define WL_ZEROED 1
#define WL_HAS_GC 1
#elif defined(WL_BDW)
#define GC_THREADS 1
#include <gc.h>
#define WL_FAMILY "bdwgc"
#define WL_HAS_FREE 0
#define WL_ZEROED 0 /* GC_malloc_atomic does not clear */
#define WL_HAS_GC 1
#else
#define WL_FAMILY "malloc"
#define WL_HAS_FREE 1
#define WL_ZEROED 0
#define WL_HAS_GC 0
#endif

/* ---- Output ------------------------------------------------------------ */

static inline void wl_die(const char *what)
{
	fprintf(stderr, "%s: %s\n", WL_FAMILY, what);
	exit(1);
}

static inline void wl_figure(const char *name, double v)
{
	printf("figure %s %.6g\n", name, v);
}

static inline void wl_checksum(uint64_t h)
{
	printf("checksum %016llx\n", (unsigned long long)h);
}

/* The fold every checksum uses (the Go twins have the same). */
static inline uint64_t wl_fold(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull;
}

#define WL_FOLD_INIT 0xcbf29ce484222325ull

/* xorshift64*: the same sequence in C and Go. */
static inline uint64_t wl_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline double wl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline double wl_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Keeps an object observable so that no allocation is optimised away. */
static void *volatile wl_sink;

/* ---- The shim ------------------------------------------------------------ */

#if defined(WL_GCHEAP)

typedef gc_type wl_type;

static inline wl_type *wl_type_new(const char *name, size_t size,
                                   const size_t *offs, size_t n)
{
	gc_type *t = n ? gc_type_new(name, size, offs, n, GCHEAP_TAIL_REPEAT)
	               : NULL;

	if (n && !t)
		wl_die("gc_type_new");
	return t;
}

static inline void *wl_alloc(size_t size, wl_type *t)
{
	void *p = gc_alloc(size, t);

	if (__builtin_expect(p == NULL, 0))
		wl_die("gc_alloc failed");
	return p;
}

static inline void wl_write(void *slot, void *v)
{
	gc_write(slot, v);
}

static inline void wl_thread_begin(void)
{
	if (gc_thread_attach() != GCHEAP_OK)
		wl_die("gc_thread_attach");
}

static inline void wl_thread_end(void)
{
	gc_thread_detach();
}

/* Around a wait (pthread_join) that does not touch the heap: an
 * attached thread that waits unannounced would stall the collector. */
static inline void wl_blocking_begin(void)
{
	gc_blocking_begin();
}

static inline void wl_blocking_end(void)
{
	gc_blocking_end();
}

/* In loops that do not allocate (a tree walk): a safepoint every 1024
 * calls, as a language runtime's compiled code polls at calls and loop
 * back-edges (Go's function prologues do). Without it one thread's walk
 * of a million nodes holds every stop of the world up for milliseconds
 * (time-to-safepoint). */
static inline void wl_poll(void)
{
	static __thread unsigned polls;

	if (!(++polls & 1023))
		gc_safepoint();
}

static inline void wl_collect(void)
{
	gc_collect();
}

static inline void wl_gc_off(void)
{
	gc_disable();
}

static inline void wl_gc_on(void)
{
	gc_enable();
}

static inline void wl_init(void)
{
	wl_thread_begin();
}

static inline double wl_marked_bytes(void)
{
	gc_stats s;

	gc_read_stats(&s, sizeof s);
	return (double)s.heap_marked;
}

static inline void wl_finish(void)
{
	gc_stats s;

	gc_read_stats(&s, sizeof s);
	wl_figure("gc_cycles", (double)s.gc_cycles);
	wl_figure("gc_pause_max_ms", s.pause_max_ns / 1e6);
	wl_figure("gc_pause_total_ms", s.pause_total_ns / 1e6);
	wl_figure("gc_last_mark_ms", s.last_mark_ns / 1e6);
	wl_figure("gc_heap_inuse_mb", s.heap_inuse / 1e6);
	wl_figure("gc_os_committed_mb", s.os_committed / 1e6);
	wl_figure("gc_os_released_mb", s.os_released / 1e6);
	wl_figure("gc_metadata_mb", s.metadata_bytes / 1e6);
	wl_figure("gc_assists", (double)s.assist_count);
	/* Assists that waited for the mark past the goal (mgc_park_assist):
	 * how many, and their wall time. */
	wl_figure("gc_assist_parks", (double)s.assist_parks);
	wl_figure("gc_assist_park_ms", s.assist_park_ns / 1e6);
	/* Per-object layout writes per 100 allocations (issue 16: <= 1). */
	wl_figure("gc_layout_writes_pct", s.alloc_objects ?
	          100.0 * s.alloc_layout_writes / s.alloc_objects : 0);
}

#elif defined(WL_BDW)

typedef struct wl_type {
	int scan;
} wl_type;

static wl_type wl_bdw_scan = {1};

static inline wl_type *wl_type_new(const char *name, size_t size,
                                   const size_t *offs, size_t n)
{
	(void)name, (void)size, (void)offs;
	return n ? &wl_bdw_scan : NULL;
}

static inline void *wl_alloc(size_t size, wl_type *t)
{
	void *p = t ? GC_malloc(size) : GC_malloc_atomic(size);

	if (__builtin_expect(p == NULL, 0))
		wl_die("GC_malloc failed");
	return p;
}

static inline void wl_write(void *slot, void *v)
{
	*(void **)slot = v;
}

/* Threads come through GC_pthread_create (GC_THREADS redirects it). */
static inline void wl_thread_begin(void)
{
}

static inline void wl_thread_end(void)
{
}

static inline void wl_blocking_begin(void)
{
}

static inline void wl_blocking_end(void)
{
}

static inline void wl_poll(void)
{
}

static inline void wl_collect(void)
{
	GC_gcollect();
}

static inline void wl_gc_off(void)
{
	GC_disable();
}

static inline void wl_gc_on(void)
{
	GC_enable();
}

/* bdwgc stops the world for the whole collection (it is not incremental
 * here): a pause is GC_EVENT_START .. GC_EVENT_END. */
static double wl_bdw_t0, wl_bdw_max, wl_bdw_total;
static unsigned long wl_bdw_cycles;

static void wl_bdw_event(GC_EventType e)
{
	if (e == GC_EVENT_START) {
		wl_bdw_t0 = wl_now_ns();
	} else if (e == GC_EVENT_END) {
		double d = wl_now_ns() - wl_bdw_t0;

		wl_bdw_total += d;
		if (d > wl_bdw_max)
			wl_bdw_max = d;
		wl_bdw_cycles++;
	}
}

static inline void wl_init(void)
{
	const char *v = getenv("BENCH_BDW");
	int noint = v && (!strcmp(v, "noint") || !strcmp(v, "par"));
	int par = v && !strcmp(v, "par");

	if (noint)
		GC_set_all_interior_pointers(0);
	GC_INIT();
	GC_set_on_collection_event(wl_bdw_event);
	if (par)
		GC_start_mark_threads();
}

static inline double wl_marked_bytes(void)
{
	return (double)(GC_get_heap_size() - GC_get_free_bytes());
}

static inline void wl_finish(void)
{
	wl_figure("gc_cycles", (double)wl_bdw_cycles);
	wl_figure("gc_pause_max_ms", wl_bdw_max / 1e6);
	wl_figure("gc_pause_total_ms", wl_bdw_total / 1e6);
	wl_figure("gc_markers", (double)GC_get_parallel() + 1);
}

#else /* WL_MALLOC */

typedef struct wl_type {
	int unused;
} wl_type;

static wl_type wl_malloc_type;

static inline wl_type *wl_type_new(const char *name, size_t size,
                                   const size_t *offs, size_t n)
{
	(void)name, (void)size, (void)offs, (void)n;
	return &wl_malloc_type;
}

static inline void *wl_alloc(size_t size, wl_type *t)
{
	void *p = malloc(size);

	(void)t;
	if (__builtin_expect(p == NULL, 0))
		wl_die("malloc failed");
	return p;
}

static inline void wl_write(void *slot, void *v)
{
	*(void **)slot = v;
}

static inline void wl_thread_begin(void)
{
}

static inline void wl_thread_end(void)
{
}

static inline void wl_blocking_begin(void)
{
}

static inline void wl_blocking_end(void)
{
}

static inline void wl_poll(void)
{
}

static inline void wl_collect(void)
{
}

static inline void wl_gc_off(void)
{
}

static inline void wl_gc_on(void)
{
}

/* BENCH_MALLOC names the malloc the runner preloaded; check that it is
 * the one in front (its own symbols are found with dlsym). */
static inline void wl_init(void)
{
	const char *want = getenv("BENCH_MALLOC");
	const char *got = "glibc";

	if (dlsym(RTLD_DEFAULT, "mi_version"))
		got = "mimalloc";
	else if (dlsym(RTLD_DEFAULT, "mallctl"))
		got = "jemalloc";
	if (want && strcmp(want, got) != 0) {
		fprintf(stderr, "malloc: asked for %s, running %s\n", want,
		        got);
		exit(1);
	}
}

static inline double wl_marked_bytes(void)
{
	return 0;
}

static inline void wl_finish(void)
{
}

#endif

#if !defined(WL_MALLOC)
static inline void wl_free(void *p)
{
	(void)p;
}
#else
static inline void wl_free(void *p)
{
	free(p);
}
#endif

/* A zeroed array of n pointer slots in the heap (a root table). */
static inline void **wl_alloc_slots(size_t n)
{
	static const size_t off0[] = {0};
	static wl_type *t;
	void **a;

	if (!t)
		t = wl_type_new("slots", sizeof(void *), off0, 1);
	a = wl_alloc(n * sizeof(void *), t);
	if (!WL_ZEROED || WL_HAS_FREE)
		memset(a, 0, n * sizeof(void *));
	return a;
}

/* Common command line: --quick for the smoke-test sizes, and a few
 * integer knobs, each workload reads those it knows (wl_arg). */
static int wl_argc;
static char **wl_argv;

static inline void wl_args(int argc, char **argv)
{
	wl_argc = argc;
	wl_argv = argv;
}

static inline int wl_quick(void)
{
	for (int i = 1; i < wl_argc; i++)
		if (!strcmp(wl_argv[i], "--quick"))
			return 1;
	return 0;
}

/* The value of --NAME V, or def. */
static inline double wl_arg(const char *name, double def)
{
	for (int i = 1; i + 1 < wl_argc; i++)
		if (wl_argv[i][0] == '-' && wl_argv[i][1] == '-' &&
		    !strcmp(wl_argv[i] + 2, name))
			return atof(wl_argv[i + 1]);
	return def;
}

#endif
