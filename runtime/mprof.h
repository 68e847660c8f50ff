/* runtime/mprof.h: the heap profiler's hook into the allocation fast path
 * (runtime/mprof.c owns the rest).
 *
 * Each thread counts down the bytes it may still allocate before the next
 * sample (mprof_left, initial-exec TLS: one subtract and one branch on
 * x86-64). It starts at 0, so a thread's first allocation takes
 * mprof_alloc, which reads the rate (GCHEAP_MEMPROFILERATE) and draws the
 * first distance; with profiling off the countdown is set so high that it
 * never runs out. */
#ifndef GCHEAP_RUNTIME_MPROF_H
#define GCHEAP_RUNTIME_MPROF_H

#include "gcheap.h"

#include <stddef.h>
#include <stdint.h>

extern __thread intptr_t mprof_left __attribute__((tls_model("initial-exec")));

/* The countdown ran out: allocate (through gc_alloc) and record a sample
 * of the allocation, whose caller returns to `ra`. */
void *mprof_alloc(size_t size, const gc_type *t, void *ra);

#endif
