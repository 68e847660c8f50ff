/* runtime/stats.c: gc_read_stats, a snapshot of the heap's counters.
 * Objects are counted as Go counts them: when a thread caches a span, all
 * its free objects count as allocated, and the ones left unused are taken
 * back when the span is released; tiny objects are counted when the
 * thread's cache is released or the thread reads the stats.
 *
 * Per size class: objects in use = mallocs - frees (counted at refill and
 * at sweep), spans from the heap's counters. At check level 3 with
 * GCHEAP_DEBUG=verify=1, every read recounts the classes span by span with
 * the world stopped and sweepers held off, and a difference is fatal. */
#include "runtime/runtime.h"

#include <string.h>

static void fill_classes(gc_stats *s)
{
	heap_stats *h = &mheap_.stats;

	s->nclasses = NUM_SIZE_CLASSES;
	mutex_lock(&mheap_.lock);
	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++)
		s->classes[c].spans = h->class_spans[c];
	s->classes[0].span_bytes = h->large_bytes;
	s->classes[0].objects = h->large_objects;
	s->classes[0].bytes = h->large_bytes;
	/* Counted with large_objects, under the lock (alloc/mheap.c). */
	s->classes[0].mallocs = aload(&h->large_allocs);
	mutex_unlock(&mheap_.lock);
	s->classes[0].frees = s->classes[0].mallocs - s->classes[0].objects;
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		struct gc_class_stats *k = &s->classes[c];
		k->size = class_to_size[c];
		k->span_bytes = k->spans * class_to_npages[c] * PAGE_SIZE;
		k->mallocs = aload(&h->nmalloc[c]);
		k->frees = aload(&h->nfree[c]);
		k->objects = k->mallocs - k->frees;
		k->bytes = k->objects * k->size;
		k->free_bytes = k->span_bytes - k->bytes;
	}
	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
		s->heap_objects += s->classes[c].objects;
		s->heap_alloc += s->classes[c].bytes;
		if (c)
			s->frees += s->classes[c].frees;
	}
	s->frees += s->classes[0].frees;
}

/* The slow recount (check level 3, verify=1): world stopped, sweepers
 * held off, so that no counter moves. */
static void verify_classes(gc_stats *s)
{
	mgc_.ops->stop_world();
	sweep_block();
	fill_classes(s);
	uintptr_t spans[NUM_SIZE_CLASSES], objs[NUM_SIZE_CLASSES];
	mheap_recount_classes(spans, objs);
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
		if (spans[c] != s->classes[c].spans ||
		    objs[c] != s->classes[c].objects)
			fatal("gc_read_stats: class %u counts %zu spans, %zu "
			      "objects; the recount finds %zu, %zu", c,
			      (size_t)s->classes[c].spans,
			      (size_t)s->classes[c].objects, (size_t)spans[c],
			      (size_t)objs[c]);
	sweep_unblock();
	mgc_.ops->start_world();
	/* Requests that came while we stopped the world (a cache flush
	 * after mark termination) must be answered before this thread
	 * allocates again, as after gc_start. */
	if (thread_current)
		runtime_safepoint(thread_current);
}

static void fill_v2(gc_stats *s)
{
	if (GCHEAP_CHECK_LEVEL >= 3 && options_.verify && mgc_.init)
		verify_classes(s);
	else
		fill_classes(s);
	mutex_lock(&gcstats_.lock);
	uint64_t now = gcstats_now_ns();
	s->uptime_ns = now - gcstats_.start_ns;
	for (int i = 0; i < GCHEAP_NPHASES; i++) {
		s->phase_last_ns[i] = gcstats_.phase_last[i];
		s->phase_total_ns[i] = gcstats_.phase_total[i];
	}
	s->pause_count = gcstats_.npauses;
	s->pause_total_ns = gcstats_.phase_total[GCSTATS_SWEEPTERM] +
	                    gcstats_.phase_total[GCSTATS_MARKTERM] +
	                    gcstats_.other_total;
	s->pause_max_ns = gcstats_.max_pause;
	s->last_pause_ns = MAX(gcstats_.last_pause[0],
	                       gcstats_.last_pause[1]);
	s->last_mark_ns = gcstats_.last_mark;
	for (int i = 0; i < GCHEAP_PAUSE_RING; i++)
		s->pause_ring[i] = gcstats_.ring[i];
	for (int i = 0; i < GCHEAP_PAUSE_HIST; i++)
		s->pause_hist[i] = gcstats_.hist[i];
	s->last_assist_ns = gcstats_.last_assist;
	s->last_worker_ns = gcstats_.last_worker;
	s->stop_count = gcstats_.nstops;
	s->ttsp_total_ns = gcstats_.ttsp_total;
	s->ttsp_max_ns = gcstats_.ttsp_max;
	s->last_ttsp_ns = gcstats_.ttsp_last;
	s->ttsp_max_tid = gcstats_.ttsp_max_tid;
	s->last_ttsp_tid = gcstats_.ttsp_last_tid;
	s->last_assist_count = gcstats_.last_assists;
	s->ncpu = (uint32_t)gcstats_.ncpu;
	s->mark_workers = gcstats_.workers;
	mutex_unlock(&gcstats_.lock);
	s->assist_ns = aload(&gcstats_.assist_ns);
	s->assist_count = aload(&gcstats_.assists);
	s->assist_parks = aload(&gcstats_.parks);
	s->assist_park_ns = aload(&gcstats_.park_ns);
	s->mark_worker_ns = aload(&gcstats_.worker_ns);
	s->sweeper_ns = aload(&gcstats_.sweeper_ns);
	double ncpu = s->ncpu ? s->ncpu : 1;
	double gc = (s->phase_total_ns[GCSTATS_SWEEPTERM] +
	             s->phase_total_ns[GCSTATS_MARKTERM]) * ncpu +
	            (double)s->assist_ns + s->mark_worker_ns + s->sweeper_ns;
	s->gc_cpu_fraction = s->uptime_ns ? gc / (s->uptime_ns * ncpu) : 0;
}

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
	/* Whole fields only: none straddles a multiple of 8 bytes. */
	s.size = (uint32_t)(MIN(size, sizeof(s)) & ~(size_t)7);
	if (mheap_ready()) {
		heap_stats *h = &mheap_.stats;
		gc_thread *me = thread_current;
		if (me && me->mcache.tiny_allocs) {
			afetch_add(&h->tiny_allocs, me->mcache.tiny_allocs);
			me->mcache.tiny_allocs = 0;
		}
		if (me && me->mcache.layout_writes) {
			afetch_add(&h->layout_writes,
			           me->mcache.layout_writes);
			me->mcache.layout_writes = 0;
		}
		for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
			uint64_t n = aload(&h->nmalloc[c]);
			s.alloc_objects += n;
			s.alloc_bytes += n * class_to_size[c];
		}
		s.tiny_allocs = aload(&h->tiny_allocs);
		s.alloc_objects += s.tiny_allocs + aload(&h->large_allocs);
		s.alloc_bytes += aload(&h->large_alloc_bytes);
		s.alloc_layout_writes = aload(&h->layout_writes);
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
		s.gc_cycles = aload(&mgc_.cycles);
		s.minor_cycles = aload(&mgc_.minors);
		s.cards_scanned = aload(&mgc_.cards_scanned);
		s.generational = aload(&mgc_.gen_want) != 0;
		s.last_minor = aload(&mgc_.minor) != 0;
		s.heap_live = aload(&h->heap_live);
		mutex_lock(&mgc_.lock);
		s.heap_marked = mgc_.heap_marked;
		s.heap_goal = aload(&mgc_.goal);
		mutex_unlock(&mgc_.lock);
	}
	if (mheap_ready())
		fill_v2(&s);
	memcpy(out, &s, s.size);
	return GCHEAP_OK;
}

const char *gc_version(void)
{
	return GCHEAP_VERSION_STRING;
}
