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
 * The table is an address set (alloc/sys/addrset.h) in malloc'd memory,
 * under uncoll.lock; its keys, written with atomic stores, are the root
 * slots heap dumps and the marker read. */
#include "runtime/runtime.h"

#include "alloc/sys/addrset.h"

static struct {
	gc_mutex lock;
	addrset set; /* the objects; its keys are root slots */
	/* How many, written under the lock: gc_free and gc_realloc ask
	 * about every object, and a program with none (most) must not
	 * serialise them on the lock (a port of malloc-style code spent
	 * 17% of its time there). */
	atomic_word count;
} uncoll = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

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
	bool added;
	mutex_lock(&uncoll.lock);
	bool ok = addrset_add(&uncoll.set, (uintptr_t)p, &added) != SIZE_MAX;
	if (ok && added)
		astore_rel(&uncoll.count, aload(&uncoll.count) + 1);
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

	if (!p || runtime_is_zerobase(p))
		return GCHEAP_OK;
	if (!t) {
		runtime_not_attached("gc_free_uncollectable");
		return GCHEAP_ERR_NOT_ATTACHED;
	}
	mutex_lock(&uncoll.lock);
	size_t i = addrset_find(&uncoll.set, (uintptr_t)p);
	bool found = i != SIZE_MAX;
	if (found) {
		addrset_remove_at(&uncoll.set, i);
		astore_rel(&uncoll.count, aload(&uncoll.count) - 1);
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
	/* The caller got p after the call that made it uncollectable
	 * returned, and so sees its count. */
	if (!aload_acq(&uncoll.count))
		return false;
	mutex_lock(&uncoll.lock);
	bool found = addrset_find(&uncoll.set, (uintptr_t)p) != SIZE_MAX;
	mutex_unlock(&uncoll.lock);
	return found;
}

void runtime_mark_uncollectable(gcw *w)
{
	addrset *set = &uncoll.set;

	mutex_lock(&uncoll.lock);
	addrset_settle(set);
	for (size_t i = 0; i < set->cap; i++)
		if (addrset_live(set, i))
			gcmark_value(w, aload(&set->keys[i]), true, 0,
			             (uintptr_t)&set->keys[i]);
	mutex_unlock(&uncoll.lock);
}

void runtime_each_uncollectable(void (*fn)(void **slot, void *arg),
                                void *arg)
{
	addrset *set = &uncoll.set;

	mutex_lock(&uncoll.lock);
	addrset_settle(set);
	for (size_t i = 0; i < set->cap; i++)
		if (addrset_live(set, i))
			fn((void **)&set->keys[i], arg);
	mutex_unlock(&uncoll.lock);
}
