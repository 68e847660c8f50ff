/* runtime/free.c: gc_free, a hint that an object is dead, and
 * gc_keep_alive (Go's runtime.KeepAlive).
 *
 * gc_free does not hand the slot back at once: a concurrent collector may
 * hold the object in a work list, and a stale word (a conservative stack)
 * may still point at it. It clears a scan object instead, so that nothing
 * it pointed to stays alive through it (a noscan one is left as it is:
 * it holds nothing), and leaves the slot to the next collection that
 * finds it unreachable. In the debug modes (poison=1 or
 * checkmark=1) it fills the object with the poison (poison=1) or zeros and
 * records it (gc/mfree.c): a second gc_free is refused, a write after it
 * is reported when the object dies, and checkmark reports a freed object
 * still held by a reachable one. The clearing goes through the deletion
 * half of the barrier while marking, as any overwrite of pointer slots. */
#include "runtime/runtime.h"

#include <string.h>

void runtime_wipe(gc_thread *t, void *p, size_t n, uint8_t byte, bool scan)
{
	atomic_word *a = p;
	size_t nw = n / sizeof(void *);

	if (!scan) {
		memset(p, byte, n);
		return;
	}
	if (wbbuf_barrier_on()) {
		for (size_t i = 0; i < nw; i++) {
			uintptr_t v = aload(&a[i]);
			if (v)
				gcmark_value(&t->gc.gcw, v, false, 0, 0);
		}
		gcw_dispose(&t->gc.gcw);
	}
	uintptr_t w;
	memset(&w, byte, sizeof(w));
	for (size_t i = 0; i < nw; i++)
		astore(&a[i], w);
	memset((char *)p + nw * sizeof(void *), byte, n % sizeof(void *));
}

void gc_free(void *p)
{
	gc_thread *t = thread_current;
	mspan *s = NULL;

	if (!p || runtime_is_zerobase(p))
		return; /* as NULL: the zero-size address holds nothing */
	if (!t) {
		runtime_not_attached("gc_free");
		return;
	}
	uintptr_t base = mheap_find_object((uintptr_t)p, &s);
	if (!base) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free(%p): not an allocated "
		              "heap object (freed twice after a collection "
		              "reused it, or never from gc_alloc)", p);
		return;
	}
	if (runtime_is_uncollectable(p)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free(%p): an uncollectable "
		              "object; free it with gc_free_uncollectable", p);
		return;
	}
	/* Its record stays with the collector, which would follow the
	 * cleared (or poisoned) fields. (Before the tiny test: a gc_weak is
	 * a 16-byte object in the tiny blocks' class.) */
	if (runtime_is_handle((void *)base, s)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free(%p): a weak handle "
		              "(gc_weak, gc_ephemeron or gc_weakmap); drop it, "
		              "and the collector frees it", p);
		return;
	}
	/* A tiny block: the extent of p's object in it is not known. A
	 * 16-byte object of the same class is freed as any other. */
	if (mspan_is_tiny_block(s, mspan_object_index(s, base)))
		return;
	if (base != (uintptr_t)p) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free(%p): an interior "
		              "pointer; its object starts at %p", p,
		              (void *)base);
		return;
	}
	bool scan = !spanclass_noscan(s->spc);
	size_t n = spanclass_sizeclass(s->spc) ? s->elemsize :
	           (scan ? s->large_size : s->npages * PAGE_SIZE);
	if (!options_.poison && !options_.checkmark) {
		/* A noscan object keeps nothing alive: nothing to clear
		 * (a 4 MiB buffer's free cost a 4 MiB memset). */
		if (scan)
			runtime_wipe(t, p, n, 0, true);
		return;
	}
	uint8_t fill = options_.poison ? POISON_BYTE : 0;
	int r = mfree_track(base, n, fill);
	if (r == 0) {
		runtime_error(GCHEAP_ERR_ARG, "gc_free(%p): freed twice (it "
		              "was freed with gc_free already)", p);
		return;
	}
	/* No memory for the record: the object is still cleared. */
	runtime_wipe(t, p, n, r < 0 ? 0 : fill, scan);
}

__attribute__((noinline)) void gc_keep_alive(const void *p)
{
	/* The value must be in a register or on the stack here, where the
	 * conservative scan sees it, and the compiler cannot drop it. */
	__asm__ volatile("" : : "r"(p) : "memory");
}
