/* gc/mwbbuf.c: the hybrid write barrier's per-thread buffers (Go's
 * mbarrier.go and mwbbuf.go).
 *
 * While the collector marks, every pointer store *slot = ptr into the heap
 * or a registered global goes through gc_write (gcheap.h), which does, in
 * effect (Go's hybrid barrier, Yuasa deletion + Dijkstra insertion):
 *
 *     shade(*slot)     the value being overwritten
 *     shade(ptr)       the value being written
 *     *slot = ptr
 *
 * Why both. shade(*slot) keeps the snapshot at the start of marking: a
 * mutator cannot hide an object by moving the only pointer to it from the
 * heap into its (already scanned, black) stack and deleting the heap
 * copy. shade(ptr) covers the other way: a thread whose stack is not yet
 * scanned (grey) can move a pointer it holds only on its stack into a
 * black object and then drop it from the stack. With both, stacks are
 * scanned once, with no rescan at mark termination; new objects are
 * allocated black. Stores into a thread's own stack and shadow-stack
 * frames need no barrier (they are scanned as roots). The deletion half
 * is skipped for a slot whose object this mark has read already, or
 * allocated black (runtime/barrier.c, gcmark_slot_scanned).
 *
 * Shading is deferred: the barrier appends both values to the thread's
 * wbbuf (wbbuf_put, gc/mgc.h) and flushes it into the thread's gcw when
 * full, and at the mark termination handshake. The buffer, its thread
 * state (mgc_thread) and the switch's accessors are declared in gc/mgc.h;
 * the switch gc_barrier_enabled is public so that the inlined gc_write
 * can read it with one relaxed load; inside the library it is read and
 * written only through wbbuf_barrier_on and wbbuf_set_barrier. */
#include "gc/mgc.h"

__attribute__((visibility("default"))) int gc_barrier_enabled;

void wbbuf_flush(wbbuf *b, gcw *w)
{
	gcmark_values(w, b->ptr, b->n);
	b->n = 0;
}
