/* runtime/collect.c: the public collection controls: gc_collect,
 * gc_disable/gc_enable, the GOGC percent, gc_free_os_memory and the
 * number of mark workers. */
#include "runtime/runtime.h"

static void collect(gc_thread *t, void *arg)
{
	(void)arg;
	mgc_run_cycle(true);
	runtime_safepoint(t);
}

void gc_collect(void)
{
	gc_thread *t = thread_current;

	runtime_check_fork("gc_collect");
	if (!t) {
		runtime_not_attached("gc_collect");
		return;
	}
	runtime_call_entered(t, collect, NULL);
}

void gc_disable(void)
{
	if (gc_init() == GCHEAP_OK)
		afetch_add(&mgc_.disabled, 1);
}

void gc_enable(void)
{
	for (;;) {
		uintptr_t n = aload(&mgc_.disabled);
		if (n == 0) {
			runtime_error(GCHEAP_ERR_ARG,
			              "gc_enable without gc_disable");
			return;
		}
		if (acas(&mgc_.disabled, n, n - 1))
			return;
	}
}

int gc_set_percent(int percent)
{
	if (gc_init() != GCHEAP_OK)
		return 0;
	mutex_lock(&mgc_.lock);
	int old = (int)(intptr_t)aload(&mgc_.percent);
	astore(&mgc_.percent,
	       (uintptr_t)(intptr_t)(percent < 0 ? -1 : percent));
	pacer_end_cycle(mgc_.heap_marked, mgc_.mark_grown);
	mutex_unlock(&mgc_.lock);
	return old;
}

int gc_set_generational(int on)
{
	if (gc_init() != GCHEAP_OK)
		return 0;
	/* Read at mark terminations (gc/mgcgen.c), under the lock here so
	 * that concurrent callers each get the value they replaced. */
	mutex_lock(&mgc_.lock);
	int old = aload(&mgc_.gen_want) != 0;
	astore(&mgc_.gen_want, on != 0);
	mutex_unlock(&mgc_.lock);
	return old;
}

int gc_set_mark_workers(int n)
{
	if (gc_init() != GCHEAP_OK)
		return -1;
	if (n < 0 || n > GCHEAP_MAX_MARKERS) {
		runtime_error(GCHEAP_ERR_ARG, "gc_set_mark_workers(%d): not "
		              "in 0..%d", n, GCHEAP_MAX_MARKERS);
		return -1;
	}
	return (int)mgc_set_markers((unsigned)n);
}

void gc_set_record_types(int on)
{
	astore(&options_.record_types, on != 0);
}

size_t gc_free_os_memory(void)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_free_os_memory");
		return 0;
	}
	runtime_call_entered(t, collect, NULL);
	return mheap_release_free(SIZE_MAX);
}
