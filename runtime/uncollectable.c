/* runtime/uncollectable.c: gc_alloc_uncollectable and gc_free_uncollectable
 * (bdwgc's GC_malloc_uncollectable): objects that are roots themselves.
 *
 * An uncollectable object is an ordinary heap object of its type whose
 * address sits in this table; the table is a root (runtime_mark_globals
 * marks every entry precisely), so the object is never collected and is
 * scanned by its type like any live object. gc_free_uncollectable takes it
 * out of the table (shading it while marking: the deletion half of the
 * barrier) and it becomes an ordinary object, collected once unreachable.
 *
 * The table is an open-addressing hash set of object addresses (EMPTY 0,
 * GONE for a removed entry) in malloc'd memory, under uncoll.lock. Slots
 * are written with atomic stores: heap dumps and the marker read them as
 * root slots. */
#include "runtime/runtime.h"

#include <stdlib.h>

#define GONE ((uintptr_t)1)

static struct {
	gc_mutex lock;
	atomic_word *t;
	size_t cap;  /* a power of two, or 0 */
	size_t used; /* entries, removed ones included */
	size_t n;    /* live entries */
} uncoll = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

static size_t slot_of(uintptr_t p, size_t cap)
{
	return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ULL >> 17) & (cap - 1);
}

/* The slot of p, or the empty one where it would go (lock held). */
static atomic_word *find(uintptr_t p)
{
	atomic_word *gone = NULL;

	for (size_t i = slot_of(p, uncoll.cap);; i = (i + 1) &
	                                           (uncoll.cap - 1)) {
		uintptr_t v = aload(&uncoll.t[i]);
		if (v == p)
			return &uncoll.t[i];
		if (v == GONE && !gone)
			gone = &uncoll.t[i];
		if (!v)
			return gone ? gone : &uncoll.t[i];
	}
}

static bool grow(void)
{
	size_t cap = uncoll.cap ? uncoll.cap * 2 : 64, oldcap = uncoll.cap;
	atomic_word *old = uncoll.t, *t = calloc(cap, sizeof(*t));

	if (!t)
		return false;
	uncoll.t = t;
	uncoll.cap = cap;
	uncoll.used = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] > GONE) {
			astore(find(old[i]), old[i]);
			uncoll.used++;
		}
	free((void *)old);
	return true;
}

void *gc_alloc_uncollectable(size_t size, const gc_type *type)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_alloc_uncollectable");
		return NULL;
	}
	size_t mark = runtime_held_mark(t);
	void *p = runtime_new(t, size, type);
	if (!p || !gc_base(p)) {
		/* An error (reported), or the zero-size address: nothing
		 * to keep. */
		runtime_unhold(t, mark);
		return p;
	}
	mutex_lock(&uncoll.lock);
	bool ok = (uncoll.used + 1) * 2 <= uncoll.cap || grow();
	if (ok) {
		atomic_word *slot = find((uintptr_t)p);
		if (!aload(slot))
			uncoll.used++;
		astore(slot, (uintptr_t)p);
		uncoll.n++;
	}
	mutex_unlock(&uncoll.lock);
	runtime_unhold(t, mark);
	if (!ok) {
		runtime_error(GCHEAP_ERR_NOMEM, "gc_alloc_uncollectable(%zu): "
		              "no memory for the table of uncollectable "
		              "objects", size);
		return NULL;
	}
	return p;
}

gc_status gc_free_uncollectable(void *p)
{
	gc_thread *t = thread_current;

	if (!p)
		return GCHEAP_OK;
	if (!t) {
		runtime_not_attached("gc_free_uncollectable");
		return GCHEAP_ERR_NOT_ATTACHED;
	}
	mutex_lock(&uncoll.lock);
	atomic_word *slot = uncoll.cap ? find((uintptr_t)p) : NULL;
	bool found = slot && aload(slot) == (uintptr_t)p;
	if (found) {
		astore(slot, GONE);
		uncoll.n--;
	}
	mutex_unlock(&uncoll.lock);
	if (!found) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free_uncollectable(%p): not "
		              "an object from gc_alloc_uncollectable (or freed "
		              "already)", p);
		return GCHEAP_ERR_ARG;
	}
	/* The deletion barrier: a mark may not have seen the table yet,
	 * and the caller may still hold p. */
	if (wbbuf_barrier_on())
		wbbuf_put(&t->gc, (uintptr_t)p);
	return GCHEAP_OK;
}

bool runtime_is_uncollectable(const void *p)
{
	mutex_lock(&uncoll.lock);
	bool found = uncoll.n && aload(find((uintptr_t)p)) == (uintptr_t)p;
	mutex_unlock(&uncoll.lock);
	return found;
}

void runtime_mark_uncollectable(gcw *w)
{
	mutex_lock(&uncoll.lock);
	for (size_t i = 0; i < uncoll.cap; i++) {
		uintptr_t v = aload(&uncoll.t[i]);
		if (v > GONE)
			gcmark_value(w, v, true, 0, (uintptr_t)&uncoll.t[i]);
	}
	mutex_unlock(&uncoll.lock);
}

void runtime_each_uncollectable(void (*fn)(void **slot, void *arg),
                                void *arg)
{
	mutex_lock(&uncoll.lock);
	for (size_t i = 0; i < uncoll.cap; i++)
		if (aload(&uncoll.t[i]) > GONE)
			fn((void **)&uncoll.t[i], arg);
	mutex_unlock(&uncoll.lock);
}
