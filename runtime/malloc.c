/* runtime/malloc.c: gc_alloc, Go's mallocgc in C.
 *
 * An allocation is one of four kinds, chosen once:
 *   tiny        noscan and under 16 bytes: packed into the thread's 16-byte
 *               tiny block (Go's tiny allocator), aligned by its size;
 *   small       up to 32 KiB: the size class's span in the thread's mcache,
 *               ctz on its alloc_cache (no lock, no atomic RMW);
 *   small scan  as small, plus the pointer layout: heap bits beside the span
 *               for objects up to 512 bytes, the type in the span's type
 *               array for larger ones;
 *   large       over 32 KiB: a span of its own from the heap.
 * The fast path (gc_alloc_fast) covers the first three when the cache has
 * room; everything else, every error and every refill goes through
 * gc_alloc_slow, which is never inlined. Small objects are zeroed in bulk
 * when their span is cached (unless fresh from the OS); large ones here,
 * but for gc_alloc_uninit's and gc_realloc's bytes (gc_thread.nozero).
 * gc_alloc(0) returns zerobase, a reserved page outside the heap that
 * faults on any access.
 *
 * While the collector marks, new objects are allocated black (small ones
 * by their span's range, alloc/mcache.h; large ones here), and the slow
 * path makes the thread pay an assist: scanning
 * in proportion to the bytes it takes. The slow path is also a safepoint
 * and where a cycle is started when the heap passes the pacer's trigger.
 *
 * The thread is found through the initial-exec TLS variable thread_current. */
#include "runtime/runtime.h"
#include "runtime/mprof.h"

#include <stdio.h>
#include <string.h>

/* The address of every zero-size allocation: not in the heap, and a
 * PROT_NONE page, so that a write through it faults at once. */
static void *zerobase;

bool runtime_is_zerobase(const void *p)
{
	return p && p == zerobase;
}

bool runtime_zerobase_init(void)
{
	zerobase = os_reserve(PAGE_SIZE, PAGE_SIZE, NULL);
	return zerobase != NULL;
}

static void *alloc_error(gc_status code, const char *what, size_t size,
                         const gc_type *t)
{
	char call[96];

	if (!t || gctype_valid(t))
		snprintf(call, sizeof(call), "gc_alloc(%zu, %s)", size,
		         t ? t->name : "NULL");
	else
		snprintf(call, sizeof(call), "gc_alloc(%zu, %p)", size,
		         (const void *)t);
	if (code == GCHEAP_ERR_NOT_ATTACHED)
		runtime_not_attached(call);
	else
		runtime_error(code, "%s: %s", call, what);
	return NULL;
}

/* The slow path's collector duties (Go's deductSweepCredit,
 * deductAssistCredit and the trigger test): answer requests, sweep what
 * the sweep pace says is owed, start a cycle if due, and pay for `bytes`
 * of allocation while marking. */
static void collector_duties(gc_thread *th, uintptr_t bytes)
{
	runtime_safepoint(th);
	sweep_credit();
	if (mgc_count_alloc(bytes)) {
		mgc_maybe_start();
		runtime_safepoint(th);
	}
	mgc_assist(&th->gc, bytes);
}

/* The small-object allocation the slow path pays for: what the thread's
 * cache handed out since its last slow path (the object it took and the
 * window it gave the fast path, less what it gave back: alloc/mcache.h),
 * paid one slow path late. The allocation count that the sweep pace, the
 * pacer's rate and the assists go by is charged this; charging a whole
 * window (64 objects) counted the free slots of a half-full span twice
 * over, and charging the span 16-byte objects 32 times. */
static uintptr_t slow_path_bytes(gc_thread *th)
{
	return mcache_take_handed(&th->mcache);
}

/* A fresh block for a tiny object of `size` from the window of the
 * cached tiny span, or 0 (the slow path refills): inline, so that a run
 * of 8-byte objects leaves the fast path once a window, not every other
 * object. Zeroed when the span was cached; black by its span's range. */
static ALWAYS_INLINE uintptr_t tiny_block_fast(mcache *c, size_t size)
{
	mspan *s = c->alloc[TINY_SPANCLASS];
	if (unlikely(!s->alloc_cache))
		return 0;
	uintptr_t p = mspan_take_cached(s);
	mspan_set_tiny_block(s, p);
	mcache_tiny_refill(c, p, size);
	return p;
}

static void *alloc_tiny(gc_thread *th, size_t size, int *err)
{
	mcache *c = &th->mcache;
	uintptr_t p;

	if (mcache_tiny_alloc(c, size, &p) ||
	    (p = tiny_block_fast(c, size)) != 0)
		return (void *)p;
	collector_duties(th, slow_path_bytes(th));
	mspan *s = c->alloc[TINY_SPANCLASS];
	p = mcache_next_free(c, TINY_SPANCLASS, TINY_SPANCLASS, &s, err);
	if (!p)
		return NULL;
	/* Zeroed when the span was cached; black by its span's range. */
	mspan_set_tiny_block(s, p);
	mcache_tiny_refill(c, p, size);
	return (void *)p;
}

void (*runtime_large_test_hook)(uintptr_t base);

static void *alloc_large(gc_thread *th, size_t size, const gc_type *t,
                         bool noscan, int *err)
{
	/* gc_realloc's room to grow into past size (runtime/realloc.c),
	 * taken at once as nozero below. */
	size_t room = th->slack < GCHEAP_MAX_ALLOC - size ? th->slack : 0;
	th->slack = 0;
	uintptr_t npages = (size + room + PAGE_SIZE - 1) / PAGE_SIZE;
	heap_err e;
	/* gc_realloc's prefix, which it copies over before it returns (and
	 * before any safepoint), is not zeroed first. Taken before anything
	 * else can run here (an assist, a cycle callback that allocates),
	 * so that any other allocation zeroes in full. Noscan only: no
	 * marker, checkmark, verifier or heap dump reads a noscan object's
	 * bytes, and nothing else can reach the object before it returns. */
	size_t keep = noscan ? MIN(th->nozero, size) : 0;
	th->nozero = 0;

	collector_duties(th, npages * PAGE_SIZE);
	mspan *s = mheap_alloc_span(npages, make_spanclass(0, noscan), &e);
	if (!s) {
		*err = e;
		return NULL;
	}
	/* Zeroed and typed before it counts as allocated (freeindex 1,
	 * published last): a marker that finds it through a stale word (a
	 * conservative stack slot that pointed at the pages' last object)
	 * must not read the old bytes as the new type's pointers, as Go
	 * clears a large object before it publishes it. */
	if (unlikely(runtime_large_test_hook != NULL))
		runtime_large_test_hook(s->base);
	if (s->needzero) {
		memset((char *)s->base + keep, 0, s->elemsize - keep);
		afetch_add(&mheap_.stats.large_zeroed, s->elemsize - keep);
	}
	s->alloc_count = 1;
	s->alloc_cache = 0;
	if (!noscan)
		mspan_set_type(s, s->base, t, size);
	else {
		s->largetype = t; /* its name, for heap dumps (no pointers) */
		/* Bytes past it are zero (or the program's, in the slot's
		 * tail): gc_realloc grows in place from here. */
		s->large_size = size;
	}
	astore_rel(&s->freeindex, 1);
	afetch_add(&mheap_.stats.heap_live, s->elemsize);
	mgc_alloc_black(&th->gc, s, s->base);
	/* Visible to the sweeper as a full, swept span of class 0. */
	mcentral_push_swept(&mcentral_[s->spc], s);
	return (void *)s->base;
}

/* The rest of a small allocation whose free slots do not already carry
 * this object's layout (the span's first typed object, a second type in
 * the span), or that needs its type id (type recording). The memory is
 * zeroed and, while marking, black: both were done for the span when the
 * thread cached it. Out of line so that the fast path saves no
 * registers. */
static NOINLINE void *alloc_finish(mcache *c, mspan *s, uintptr_t p,
                                   size_t size, const gc_type *t)
{
	c->layout_writes++;
	if (t && !t->noscan && (s->freetype != t || s->freesize != size)) {
		if (!s->freetype)
			mspan_fill_type(s, mspan_object_index(s, p), t, size);
		else
			mspan_set_type(s, p, t, size);
	}
	if (s->typeids)
		mspan_set_typeid(s, p, t);
	return (void *)p;
}

/* Do the span's free slots already carry this object's layout, and need
 * it no type id? Then a new object needs nothing written at all. */
static ALWAYS_INLINE bool layout_ready(const mspan *s, size_t size,
                                       const gc_type *t, bool noscan)
{
	return !s->typeids &&
	       (noscan || (s->freetype == t && s->freesize == size));
}

/* One attempt at a non-empty allocation of any kind; NULL and *err on
 * out-of-memory. */
static void *alloc_any(gc_thread *th, size_t size, const gc_type *t,
                       int *err)
{
	bool noscan = !t || t->noscan;
	if (size > MAX_SMALL_SIZE)
		return alloc_large(th, size, t, noscan, err);
	mcache *c = &th->mcache;
	if (noscan && size < TINY_SIZE)
		return alloc_tiny(th, size, err);

	spanclass spc = make_spanclass(size_to_class(size), noscan);
	bool typed = !noscan && size == t->size;
	unsigned slot = typed ? mcache_typed_slot(c, t, spc) : spc;
	mspan *s = c->alloc[slot];
	uintptr_t p = mspan_next_free_fast(s);
	if (!p) {
		collector_duties(th, slow_path_bytes(th));
		/* The duties may have released the cache. */
		slot = typed ? mcache_typed_slot(c, t, spc) : spc;
		s = c->alloc[slot];
		p = mcache_next_free(c, slot, spc, &s, err);
		if (!p)
			return NULL;
	}
	if (!layout_ready(s, size, t, noscan))
		return alloc_finish(c, s, p, size, t);
	return (void *)p;
}

static ALWAYS_INLINE void *alloc_slow(gc_thread *th, size_t size,
                                      const gc_type *t, void *ra)
{
	if (t && !gctype_valid(t))
		return alloc_error(GCHEAP_ERR_TYPE, "not a gc_type (made by "
		                   "gc_type_new)", size, t);
	if (size == 0)
		return zerobase;
	if (size > GCHEAP_MAX_ALLOC)
		return alloc_error(GCHEAP_ERR_SIZE, "over GCHEAP_MAX_ALLOC",
		                   size, t);
	if (t && size < t->size)
		return alloc_error(GCHEAP_ERR_SIZE,
		                   "smaller than the type's size", size, t);
	int err = 0;
	void *p = alloc_any(th, size, t, &err);
	if (!p && err) {
		/* Out of memory or over the limit: a full collection may
		 * free enough; try once more before giving up. */
		mgc_run_cycle(true);
		runtime_safepoint(th);
		err = 0;
		p = alloc_any(th, size, t, &err);
		/* Over the limit while free pages are held elsewhere (the
		 * request needs a run they do not make): give them back, as
		 * Go's heap growth does under GOMEMLIMIT, and try again. */
		if (!p && err == HEAP_LIMIT && mheap_release_free(SIZE_MAX)) {
			err = 0;
			p = alloc_any(th, size, t, &err);
		}
		if (!p)
			runtime_oom(size, (heap_err)err);
	}
	/* A small object that ran the profiler's countdown out (by either
	 * attempt: one left pending would charge its span's window again
	 * at the next slow path, and sample that path's object). */
	if (unlikely(th->mcache.prof_span != NULL))
		mprof_sample_due(th, p, ra);
	return p;
}

/* The slow path inside its entry (runtime.h, "Entries"). */
static NOINLINE void *alloc_slow_entered(gc_thread *th, size_t size,
                                         const gc_type *t, void *ra)
{
	runtime_check_fork("gc_alloc");
	if (!th)
		return alloc_error(GCHEAP_ERR_NOT_ATTACHED, NULL, size, t);
	uintptr_t prev = runtime_enter(th, (uintptr_t)__builtin_dwarf_cfa());
	void *p = alloc_slow(th, size, t, ra);
	runtime_leave(th, prev);
	return p;
}

/* The entry of the allocation slow path: its prologue saves every
 * callee-saved register, where the scans of the thread start. Nothing
 * else is in its frame, but for a slot the stack's alignment may leave:
 * a local's slot would be a stale word for them (a zeroed local took
 * two more on x86-64). */
static NOINLINE void *gc_alloc_slow(gc_thread *th, size_t size,
                                    const gc_type *t)
{
	__builtin_unwind_init();
	void *p = alloc_slow_entered(th, size, t,
	                             __builtin_return_address(0));
	/* Not a tail call: this frame holds the registers. */
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

/* The requests that leave the fast path early (no thread, an unusual
 * type, a large size) are counted down for the heap profiler here, by
 * their size (inline: the profiler's stacks start at the caller of the
 * public entry); small objects are counted a window at a time
 * (alloc/mcache.h), tiny ones on the tiny path. */
static ALWAYS_INLINE void *gc_alloc_unusual(gc_thread *th, size_t size,
                                            const gc_type *t)
{
	if (th && size <= GCHEAP_MAX_ALLOC &&
	    (th->mcache.prof_left -= (intptr_t)size) < 0)
		return mprof_alloc(th, size, t);
	return gc_alloc_slow(th, size, t);
}

/* The fast path: a small or tiny object from the thread's cached span,
 * with no zeroing, no mark bit and no heap bits (all done per span when
 * the thread cached it: alloc/mcache.h): a scan object only from a span
 * whose free slots already carry its (type, size), which the type's own
 * typed slot does for objects of the type's size: for those one compare of
 * layout keys (alloc/gctype.h) stands for every test. Anything unusual goes
 * to gc_alloc_slow, a type id (type recording) to alloc_finish, both as
 * tail calls. A type is checked by its address alone (a mask test:
 * gctype.h) before any field is read; a slot of the type region not yet
 * used has nfast 0 and goes to the slow path's full check. A thread
 * inside gc_blocking_begin/end has no thread_current. */
static ALWAYS_INLINE void *gc_alloc_fast(gc_thread *th, size_t size,
                                        const gc_type *t)
{
	bool noscan = true;
	unsigned slot; /* in mcache.alloc: alloc/mcache.h */

	if (t) {
		/* At every check level: the API promises any pointer that
		 * is not a type is refused (a mask test, three or four
		 * instructions). */
		if (unlikely(!gctype_in_region(t)))
			return gc_alloc_unusual(th, size, t);
		/* The type's own size, from its slot's span when that
		 * span's free slots need nothing for it (equal keys; a
		 * type the path must not take has a key no span has). */
		if (likely(th != NULL && size == t->size)) {
			mspan *s = th->mcache.alloc[t->cslot];
			if (likely(s->freekey == t->key && s->alloc_cache))
				return (void *)mspan_take_cached(s);
		}
		/* size in [t->size, MAX_SMALL_SIZE] */
		if (unlikely(!th || size - t->size >= t->nfast))
			return gc_alloc_unusual(th, size, t);
		noscan = t->noscan;
		/* The type's own size (most requests): its slot is kept in
		 * the type. */
		slot = size == t->size ? t->cslot :
		       make_spanclass(size_to_class(size), noscan);
	} else if (unlikely(!th || size - 1 >= MAX_SMALL_SIZE)) {
		return gc_alloc_unusual(th, size, t);
	} else {
		slot = make_spanclass(size_to_class(size), true);
	}
	mcache *c = &th->mcache;
	if (noscan && size < TINY_SIZE) {
		uintptr_t p;
		/* The heap profiler's countdown, per tiny object
		 * (runtime/mprof.h; small objects are charged by the
		 * window, off this path). */
		if (unlikely((c->prof_left -= (intptr_t)size) < 0))
			return mprof_alloc(th, size, t);
		if (likely(mcache_tiny_alloc(c, size, &p)) ||
		    likely((p = tiny_block_fast(c, size)) != 0))
			return (void *)p;
		return gc_alloc_slow(th, size, t);
	}
	mspan *s = c->alloc[slot];
	/* A typed slot's span may be another type's, of another class:
	 * tested before the take. Then the type's objects may be in its
	 * class slot (mcache_typed_slot). */
	if (!noscan && unlikely(s->freetype != t || s->freesize != size)) {
		s = c->alloc[t->spc];
		if (size != t->size || s->freetype != t || s->freesize != size)
			return gc_alloc_slow(th, size, t);
	}
	if (unlikely(!s->alloc_cache))
		return gc_alloc_slow(th, size, t);
	uintptr_t p = mspan_take_cached(s);
	if (likely(!s->typeids))
		return (void *)p;
	return alloc_finish(c, s, p, size, t);
}

void *gc_alloc(size_t size, const gc_type *type)
{
	return gc_alloc_fast(thread_current, size, type);
}

void *gc_alloc_array(size_t count, const gc_type *elem)
{
	size_t bytes;

	if (!elem) {
		runtime_error(GCHEAP_ERR_ARG, "gc_alloc_array(%zu, NULL): no "
		              "element type", count);
		return NULL;
	}
	if (!gctype_valid(elem))
		return alloc_error(GCHEAP_ERR_TYPE, "not a gc_type", count,
		                   elem);
	if (__builtin_mul_overflow(count, elem->size, &bytes)) {
		runtime_error(GCHEAP_ERR_OVERFLOW,
		              "gc_alloc_array(%zu, %s): %zu elements of %zu "
		              "bytes overflow", count, elem->name, count,
		              elem->size);
		return NULL;
	}
	return gc_alloc_fast(thread_current, bytes, elem);
}

void *gc_alloc_uninit(size_t size)
{
	gc_thread *t = thread_current;

	/* Small objects come from spans cleared in bulk when cached: only
	 * a large one's clearing is skipped (alloc_large's nozero). */
	if (t && size > MAX_SMALL_SIZE && size <= GCHEAP_MAX_ALLOC)
		t->nozero = size;
	void *p = gc_alloc_fast(t, size, NULL);
	if (t)
		t->nozero = 0;
	return p;
}

void *runtime_new(gc_thread *t, size_t size, const gc_type *type)
{
	void *p = gc_alloc_fast(t, size, type);
	if (p)
		runtime_hold(t, p);
	return p;
}

void *runtime_new_array(gc_thread *t, size_t count, const gc_type *elem)
{
	void *p = gc_alloc_array(count, elem);
	if (p)
		runtime_hold(t, p);
	return p;
}

size_t gc_size(const void *p)
{
	mspan *s = NULL;

	if (!mheap_ready() || !mheap_find_object((uintptr_t)p, &s))
		return 0;
	return s->elemsize;
}

void *gc_base(const void *p)
{
	if (!mheap_ready())
		return NULL;
	return (void *)mheap_find_object((uintptr_t)p, NULL);
}

void gc_set_memory_limit(size_t bytes)
{
	if (gc_init() != GCHEAP_OK)
		return;
	mutex_lock(&mheap_.lock);
	astore(&mheap_.limit, bytes);
	mutex_unlock(&mheap_.lock);
	/* The goal and trigger follow at once, as gc_set_percent's do: a
	 * goal left above a lowered limit until the next mark's end made
	 * that mark the emergency collection of an allocation refused at
	 * the limit. */
	mutex_lock(&mgc_.lock);
	pacer_end_cycle(mgc_.heap_marked, mgc_.mark_grown);
	mutex_unlock(&mgc_.lock);
}

size_t gc_memory_limit(void)
{
	/* An atomic read, no lock: a signal handler may call it. */
	return mheap_ready() ? (size_t)aload(&mheap_.limit) : 0;
}

size_t gc_release_memory(void)
{
	return mheap_ready() ? mheap_release_free(SIZE_MAX) : 0;
}
