/* runtime/mprof.h: the heap profiler's hooks into the allocation paths
 * (runtime/mprof.c owns the rest).
 *
 * Each attached thread counts down the bytes it may still allocate before
 * the next sample (gc_thread.mprof_left: one subtract from memory and one
 * branch on the fast path, once the thread is known). Every allocation is
 * taken off exactly once: on the fast path, or at the start of the slow
 * path for the requests that leave the fast path before its countdown
 * (large objects, unusual sizes). The countdown starts at 0, so a
 * thread's first allocation goes to mprof_alloc, which reads the rate
 * (GCHEAP_MEMPROFILERATE) and draws the first distance; with profiling
 * off it is set so high that it never runs out. */
#ifndef GCHEAP_RUNTIME_MPROF_H
#define GCHEAP_RUNTIME_MPROF_H

#include "gcheap.h"

#include <stddef.h>
#include <stdint.h>

struct gc_thread;

/* The countdown ran out: allocate (through gc_alloc) and record a sample
 * of the allocation, whose stack starts at the first frame outside
 * mprof_alloc and the allocation entry points (gc_alloc, gc_alloc_array,
 * runtime_new, runtime_new_array: it is called from them, inlined, as a
 * sibling call or not). */
void *mprof_alloc(struct gc_thread *th, size_t size, const gc_type *t);

#endif
