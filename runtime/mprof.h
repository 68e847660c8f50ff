/* runtime/mprof.h: the heap profiler's hooks into the allocation paths
 * (runtime/mprof.c owns the rest).
 *
 * Each attached thread counts down the bytes it may still allocate before
 * the next sample (its mcache's prof_left). Every allocation is taken off
 * exactly once, and none on the fast path of small objects:
 *   - small objects by their class size, a window of 64 slots at a time,
 *     when the slow path loads the window (alloc/mcache.h); a window in
 *     which the countdown runs out is cut short before the object that
 *     runs it out, so that object comes to the slow path, which samples
 *     it (mprof_sample_due) and re-arms the countdown;
 *   - tiny objects by their size, one by one on the tiny fast path;
 *   - the requests that leave the fast path before it (large objects,
 *     unusual sizes) by their size, at the start of the slow path.
 * Weighing a small object by its class size is what Go's mallocgc does.
 * Each attach draws the thread's first distance (mprof_first_distance:
 * a countdown that started at 0 sampled the first allocation of every
 * attachment, and a program that attached per callback had its profile
 * inflated thousands of times); with profiling off it is set so high
 * that it never runs out. */
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

/* The small object p (of the span the thread's mcache.prof_span names)
 * ran the countdown out on the slow path (or was due: alloc/mcache.h):
 * record a sample of it, weighed by its class size, and charge the rest
 * of its window (mcache_prof_sampled; the next distance was drawn when
 * the countdown ran out). ra: the slow path's return
 * address (its caller is gc_alloc's caller, or an entry point). */
void mprof_sample_due(struct gc_thread *th, void *p, void *ra);

/* A newly attached thread's countdown: the first distance, drawn from
 * the rate (out of reach with profiling off). */
intptr_t mprof_first_distance(void);

#endif
