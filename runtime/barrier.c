/* runtime/barrier.c: the write barrier's slow path and the bulk barrier
 * (the rules and the proof sketch are in gc/mwbbuf.c and docs/design.md;
 * the buffer and the switch are the collector's, gc/mgc.h). gc_write's
 * inline fast path in gcheap.h stores directly while the collector is not
 * marking. */
#include "runtime/runtime.h"

#include <string.h>

void gc_write_slow(void *slot, void *value)
{
	gc_thread *t = thread_current;
	atomic_word *s = (atomic_word *)slot;
	int bar = aload_int_acq(&gc_barrier_enabled);

	if (!(bar & GCBAR_MARK) || GCHEAP_SABOTAGE == 1) {
		/* Only the cards (generational collection between marks):
		 * the path every store takes then, kept short. */
		astore(s, (uintptr_t)value);
		if ((bar & GCBAR_CARDS) && value)
			mcard_dirty((uintptr_t)slot);
		return;
	}
	if (t) {
		/* The deletion half, unless the slot's object is
		 * black: one this thread allocated in this mark, or
		 * an oblet already scanned. Skipping it there skips
		 * the load of the old value too, a cache miss for a
		 * random slot of a big table (the pause probe). */
		uintptr_t a = (uintptr_t)slot;
		if (!mcache_fresh_black(&t->mcache, a) &&
		    !gcmark_slot_scanned(a)) {
			uintptr_t old = aload(s);
			if (old)
				wbbuf_put(&t->gc, old);
		}
		/* A value this thread allocated black needs no
		 * shade (mcache_fresh_black). */
		if (value && !mcache_fresh_black(&t->mcache,
		                                 (uintptr_t)value))
			wbbuf_put(&t->gc, (uintptr_t)value);
	} else {
		/* Unattached threads should not touch the heap;
		 * shade at once so the store is still safe. */
		gcw w = {0};
		gcmark_value(&w, aload(s), true, 0, (uintptr_t)slot);
		gcmark_value(&w, (uintptr_t)value, true, 0, 0);
		gcw_dispose(&w);
	}
	astore(s, (uintptr_t)value);
	/* The remembered set: after the store (a minor mark's scan of the
	 * card then finds the value; one racing with the store is the
	 * mark's own, which needs no card: alloc/mcard.h). */
	if ((bar & GCBAR_CARDS) && value)
		mcard_dirty((uintptr_t)slot);
}

/* Shade every word of [p, p + n) that points into an allocated object. */
static void shade_range(gcw *w, const void *p, size_t n)
{
	const atomic_word *a = p;
	for (size_t i = 0; i < n / sizeof(void *); i++) {
		uintptr_t v = aload(&a[i]);
		if (v)
			gcmark_value(w, v, false, 0, 0);
	}
}

void gc_copy(void *dst, const void *src, size_t nbytes)
{
	if (nbytes == 0)
		return; /* memmove(NULL, NULL, 0) is undefined */
	if (!dst || !src) { /* every level: a branch, as documented */
		runtime_error(GCHEAP_ERR_ARG, "gc_copy(%p, %p, %zu): NULL "
		              "address", dst, src, nbytes);
		return;
	}
	if (wbbuf_cards_on())
		mcard_dirty_range((uintptr_t)dst, nbytes);
	if (wbbuf_barrier_on()) {
		gc_thread *t = thread_current;
		gcw local = {0};
		gcw *w = t ? &t->gc.gcw : &local;
		shade_range(w, dst, nbytes);
		shade_range(w, src, nbytes);
		gcw_dispose(w);
		if (((uintptr_t)dst | (uintptr_t)src | nbytes) %
		    sizeof(void *) == 0) {
			/* Word by word, atomically: the marker may be reading
			 * these slots. */
			atomic_word *d = dst;
			const atomic_word *s = src;
			size_t n = nbytes / sizeof(void *);
			if (d < s)
				for (size_t i = 0; i < n; i++)
					astore(&d[i], aload(&s[i]));
			else
				for (size_t i = n; i-- > 0;)
					astore(&d[i], aload(&s[i]));
			return;
		}
	}
	memmove(dst, src, nbytes);
}
