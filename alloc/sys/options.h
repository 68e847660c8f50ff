/* alloc/sys/options.h: every debug and tuning switch of gcheap, in one
 * struct (as Go's runtime.debug), in the lowest layer so that every layer
 * reads the same one.
 *
 * runtime/options.c fills it once, at initialisation, from the environment
 * (GCHEAP_DEBUG, GCHEAP_FINALIZERS, GCHEAP_EXPORT, GCHEAP_EXPORT_DIR,
 * GCHEAP_MEMPROFILERATE, GCHEAP_ATTACH; it is
 * the library's only reader of the environment, and docs/api.md lists the
 * variables); afterwards only the API setters named below write it. Plain
 * fields: a switch is set before the threads that read it exist; the two
 * the API changes at run time are atomic words (aload/astore), read where
 * a stale value is harmless (the next span or the next scan sees the new
 * one; plain fields raced, which ThreadSanitizer reported).
 *
 * Not here: the GOGC percent and the memory limit, which are the pacer's
 * and the heap's live state (mgc_.percent, set from GCHEAP_GC by
 * runtime/options.c and by gc_set_percent; mheap_.limit). */
#ifndef GCHEAP_SYS_OPTIONS_H
#define GCHEAP_SYS_OPTIONS_H

#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

typedef struct sys_options {
	/* GCHEAP_DEBUG's verification modes (read by gc/ unless noted). */
	bool checkmark;      /* STW re-mark after each mark, abort on a miss */
	bool stoptheworld;   /* the whole cycle with the world stopped */
	bool poison;         /* fill freed objects, check on reuse (alloc/) */
	unsigned invalidptr; /* 1: a precise slot into a span not in use is
	                      * fatal; 2: also into a free slot */
	bool verify;         /* heap verification around each cycle */
	uintptr_t stress;    /* a cycle every `stress` bytes (0: off) */
	bool gctrace;        /* a line per cycle on stderr */
	unsigned rootcheck;  /* objects kept only by unregistered globals:
	                      * 1 warn once and keep, 2 abort (runtime/) */
	/* GCHEAP_DEBUG's switches of the allocator and the runtime. */
	atomic_word record_types; /* small spans record each object's type id
	                      * (alloc/mspan.c; also gc_set_record_types) */
	atomic_word conservative; /* scan native stacks conservatively
	                      * (runtime/; also gc_set_conservative_stacks) */
	bool hugepages;      /* heap arenas ask for transparent huge pages
	                      * as they are committed (alloc/mheap.c) */
	bool prefault;       /* the background sweeper faults the heap's
	                      * memory in ahead of the mutators
	                      * (mheap_prefault; gc/mgc.c) */
	atomic_word forcegc_ms; /* a heap this long without a cycle gets
	                      * one, and its free memory back (gc/mgc.c's
	                      * sweeper, which reads it at each wait; 0:
	                      * never) */
	unsigned stopwarn_ms; /* warn about a thread that holds up a stop
	                       * this long (runtime/safepoint.c; 0: never) */
	bool greentea;       /* span-batched marking of small scan objects
	                      * (gc/mgcspanq.h; alloc/mspan.c gives their
	                      * spans scan bits) */
	/* The other variables (runtime/). */
	bool finalizers_manual; /* GCHEAP_FINALIZERS=manual */
	unsigned export_ms;  /* GCHEAP_EXPORT: 0 off, 1 the default
	                      * interval, else the interval in ms */
	const char *export_dir; /* GCHEAP_EXPORT_DIR, or NULL */
	uintptr_t memprofilerate; /* GCHEAP_MEMPROFILERATE: mean bytes
	                           * between heap profile samples, 0 off
	                           * (runtime/mprof.c) */
	bool attach_off;     /* GCHEAP_ATTACH=0: answer no gcstat requests
	                      * (runtime/attach.c) */
} sys_options;

/* GCHEAP_MEMPROFILERATE's default, as Go's MemProfileRate. */
#define MEMPROFILERATE_DEFAULT (512 * 1024)

extern sys_options options_;

#endif
