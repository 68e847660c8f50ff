/* runtime/stats.c: gc_read_stats, a snapshot of the heap's counters.
 * Objects are counted as Go counts them: when a thread caches a span, all
 * its free objects count as allocated, and the ones left unused are taken
 * back when the span is released; tiny objects are counted when the
 * thread's cache is released or the thread reads the stats. */
#include "runtime/runtime.h"

#include <string.h>

gc_status gc_read_stats(gc_stats *out, size_t size)
{
	gc_stats s;

	if (!out || size < 2 * sizeof(uint32_t)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_read_stats: no room for the "
		              "version and size fields");
		return GCHEAP_ERR_ARG;
	}
	memset(&s, 0, sizeof(s));
	s.version = GCHEAP_STATS_VERSION;
	s.size = (uint32_t)MIN(size, sizeof(s));
	if (mheap_.init) {
		heap_stats *h = &mheap_.stats;
		gc_thread *me = gc_current;
		if (me && me->mcache.tiny_allocs) {
			afetch_add(&h->tiny_allocs, me->mcache.tiny_allocs);
			me->mcache.tiny_allocs = 0;
		}
		for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
			uint64_t n = aload(&h->nmalloc[c]);
			s.alloc_objects += n;
			s.alloc_bytes += n * class_to_size[c];
		}
		s.tiny_allocs = aload(&h->tiny_allocs);
		s.alloc_objects += s.tiny_allocs + aload(&h->large_allocs);
		s.alloc_bytes += aload(&h->large_alloc_bytes);
		mutex_lock(&mheap_.lock);
		s.large_objects = h->large_objects;
		s.large_bytes = h->large_bytes;
		s.heap_inuse = h->inuse_pages * PAGE_SIZE;
		s.heap_free = h->committed - h->released - s.heap_inuse;
		s.spans_inuse = h->spans_inuse;
		s.os_reserved = h->reserved;
		s.os_committed = h->committed;
		s.os_released = h->released;
		s.metadata_bytes = h->meta_sys;
		s.arenas = h->arenas;
		mutex_unlock(&mheap_.lock);
		s.threads = aload(&runtime_.nthreads);
		s.gc_cycles = aload(&gc_.cycles);
		s.heap_live = aload(&h->heap_live);
		mutex_lock(&gc_.lock);
		s.heap_marked = gc_.heap_marked;
		s.heap_goal = aload(&gc_.goal);
		s.pause_total_ns = gc_.total_pause_ns;
		s.pause_max_ns = gc_.max_pause_ns;
		s.last_pause_ns = MAX(gc_.last_pause_ns[0],
		                      gc_.last_pause_ns[1]);
		s.last_mark_ns = gc_.last_mark_ns;
		mutex_unlock(&gc_.lock);
	}
	memcpy(out, &s, s.size);
	return GCHEAP_OK;
}

const char *gc_version(void)
{
	return GCHEAP_VERSION_STRING;
}
