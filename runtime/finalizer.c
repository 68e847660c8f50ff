/* runtime/finalizer.c: the public finalizer and cleanup API and the
 * finalizer thread (Go's SetFinalizer, AddCleanup and runfinq). The
 * records and the queue are the collector's (gc/mfinal.c); this file
 * checks arguments and runs what the collector queued.
 *
 * Queued entries run on one background thread, attached like any other
 * (so finalizers may allocate and must answer safepoints: they run as
 * ordinary mutator code), started with the first finalizer or cleanup,
 * unless the embedder asked for manual mode; gc_run_finalizers() runs them
 * on the caller in either mode. An entry stays a root until it has run. */
#include "runtime/runtime.h"

#include <time.h>

static struct {
	pthread_once_t once;
	atomic_word enabled; /* the thread runs entries */
	atomic_word started; /* 0 no, 1 starting or running */
	atomic_word used;    /* a finalizer or cleanup was ever set */
	atomic_word busy;    /* the thread is past its look at `enabled`
	                      * and has not finished the entry it took */
	atomic_word thread;  /* its gc_thread, once attached */
	atomic_word attach;  /* its attach: 0 pending, 1 done, 2 failed */
} fin_ = {.once = PTHREAD_ONCE_INIT};

/* The mode GCHEAP_FINALIZERS chose (runtime/options.c parsed it). */
static void read_mode(void)
{
	astore(&fin_.enabled, !options_.finalizers_manual);
}

static void fin_init(void)
{
	pthread_once(&fin_.once, read_mode);
}

/* Run one entry on t; the entry stays a root while it runs. */
static void run_entry(gc_thread *t, finq_entry *e)
{
	gc_frame *frames = t->frames;

	t->in_finalizer++; /* gc_thread_detach refuses meanwhile: t stays */
	uintptr_t entry = runtime_callout(t);
	if (e->kind == SPECIAL_FINALIZER)
		e->fin((void *)e->obj, e->arg);
	else
		e->cleanup(e->arg);
	runtime_leave(t, entry);
	t->in_finalizer--;
	/* What it left behind would outlive it: a blocking region its
	 * caller never entered (gc_run_finalizers' caller came back unable
	 * to allocate), frames in its dead stack frames. */
	if (thread_blocked == t) {
		runtime_error(GCHEAP_ERR_ARG, "a finalizer or cleanup returned "
		              "inside gc_blocking_begin/end; ended for it");
		gc_blocking_end();
	}
	if (t->frames != frames) {
		runtime_error(GCHEAP_ERR_ARG, "a finalizer or cleanup returned "
		              "with a gc_frame pushed; dropped");
		t->frames = frames;
	}
	finq_done(e, &t->gc.gcw);
}

static void *finalizer_main(void *arg)
{
	(void)arg;
	sys_thread_name("final");
	if (gc_thread_attach() != GCHEAP_OK) {
		/* No memory for its record: start_thread says so. */
		astore_rel(&fin_.attach, 2);
		return NULL;
	}
	astore_rel(&fin_.thread, (uintptr_t)thread_current);
	astore_rel(&fin_.attach, 1);
	for (;;) {
		gc_blocking_begin();
		finq_wait(&fin_.enabled);
		gc_blocking_end();
		finq_entry *e;
		do {
			/* busy first, a full barrier, then enabled: see
			 * gc_set_finalizer_thread. */
			afetch_add(&fin_.busy, 1);
			afence();
			e = aload(&fin_.enabled) ? finq_take() : NULL;
			if (e)
				run_entry(thread_current, e);
			afetch_add(&fin_.busy, (uintptr_t)-1);
		} while (e);
	}
	return NULL;
}


/* Wait until the thread being started has attached (true) or its start
 * has failed (false): as a blocked thread, since its attach may wait for
 * a stop of the world. */
static bool wait_started(void)
{
	gc_thread *me = thread_current;
	uintptr_t st;

	if (me)
		runtime_blocking_begin(me);
	while (!(st = aload_acq(&fin_.attach)) && aload_acq(&fin_.started))
		sleep_ns(20000);
	if (me)
		runtime_blocking_end(me);
	return st == 1;
}

/* Start the finalizer thread if it is on and not started, and wait
 * until it has attached; false (nothing started) if it cannot be made or
 * cannot attach, which the caller reports: a record is set only with a
 * thread to run it. A call that finds another starting it waits for the
 * outcome too. */
static bool start_thread(void)
{
	astore(&fin_.used, 1);
	if (!aload(&fin_.enabled) || aload_acq(&fin_.attach) == 1)
		return true;
	if (!acas(&fin_.started, 0, 1))
		return wait_started();
	pthread_t th;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	bool made = !sys_thread_create(&th, &a, finalizer_main, NULL);
	pthread_attr_destroy(&a);
	if (made && wait_started())
		return true;
	astore(&fin_.attach, 0);
	astore_rel(&fin_.started, 0);
	return false;
}

static void thread_failed(const char *fn, const char *what)
{
	runtime_error(GCHEAP_ERR_NOMEM, "%s: cannot start the finalizer "
	              "thread (no memory); %s", fn, what);
}

/* A finalizer or cleanup just added to the object at base, with arg
 * (Go's addfinalizer and addCleanup do the same). While marking, the root
 * job that scans a finalizable object's contents and marks the args may
 * have run already: the caller holds the object, but perhaps only in a
 * frame or register not yet scanned, which it may drop before the scan,
 * leaving the object unmarked at the end of the mark. Sweep would then
 * keep it for its finalizer while what it points to, and the arg, died
 * with nothing to mark them. Scan and shade them here instead
 * (`contents`: a finalizer's object, whose finalizer sees it whole). */
static void mark_added(uintptr_t base, const void *arg, bool contents)
{
	gc_thread *t = thread_current;

	if (!wbbuf_barrier_on())
		return;
	if (contents)
		gcmark_scan_object(&t->gc.gcw, base);
	if (arg)
		gcmark_value(&t->gc.gcw, (uintptr_t)arg, false, 0, 0);
	gcw_dispose(&t->gc.gcw);
}

/* The object that contains p, for an attached caller: its base, or 0
 * after reporting the error. */
static uintptr_t object_of(const char *fn, const void *p, mspan **sp)
{
	if (!thread_current) {
		runtime_not_attached(fn);
		return 0;
	}
	uintptr_t base = p ? mheap_find_object((uintptr_t)p, sp) : 0;
	if (!base)
		runtime_error(GCHEAP_ERR_ARG, "%s(%p): not an address inside "
		              "an allocated heap object", fn, p);
	return base;
}

/* An arg that points into the object would keep it alive forever. */
static bool arg_ok(const char *fn, uintptr_t base, const void *arg)
{
	if (arg && mheap_find_object((uintptr_t)arg, NULL) == base) {
		runtime_error(GCHEAP_ERR_ARG, "%s: arg %p points into the "
		              "object %p itself, which could then never be "
		              "collected", fn, arg, (void *)base);
		return false;
	}
	return true;
}

gc_status gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *arg)
{
	mspan *s = NULL;
	uintptr_t base = object_of("gc_set_finalizer", obj, &s);

	if (!base)
		return gc_last_error();
	if (base != (uintptr_t)obj &&
	    !mspan_is_tiny_block(s, mspan_object_index(s, base))) {
		runtime_error(GCHEAP_ERR_ARG, "gc_set_finalizer(%p): not the "
		              "start of its object %p", obj, (void *)base);
		return GCHEAP_ERR_ARG;
	}
	if (!fn) {
		specials_clear_finalizer(s, (uintptr_t)obj);
		return GCHEAP_OK;
	}
	if (!arg_ok("gc_set_finalizer", base, arg))
		return GCHEAP_ERR_ARG;
	fin_init();
	if (!start_thread()) {
		thread_failed("gc_set_finalizer", "nothing was set");
		return GCHEAP_ERR_NOMEM;
	}
	if (!specials_set_finalizer(s, (uintptr_t)obj, fn, arg)) {
		runtime_error(GCHEAP_ERR_NOMEM, "gc_set_finalizer: no memory "
		              "for the record");
		return GCHEAP_ERR_NOMEM;
	}
	mark_added(base, arg, true);
	return GCHEAP_OK;
}

uint64_t gc_add_cleanup(void *obj, gc_cleanup_fn fn, void *arg)
{
	mspan *s = NULL;
	uintptr_t base = object_of("gc_add_cleanup", obj, &s);

	if (!base)
		return 0;
	if (!fn) {
		runtime_error(GCHEAP_ERR_ARG, "gc_add_cleanup: fn is NULL");
		return 0;
	}
	if (!arg_ok("gc_add_cleanup", base, arg))
		return 0;
	fin_init();
	if (!start_thread()) {
		thread_failed("gc_add_cleanup", "nothing was set");
		return 0;
	}
	uint64_t id = specials_add_cleanup(s, base, fn, arg);
	if (!id) {
		runtime_error(GCHEAP_ERR_NOMEM, "gc_add_cleanup: no memory "
		              "for the record");
		return 0;
	}
	mark_added(base, arg, false);
	return id;
}

gc_status gc_cancel_cleanup(void *obj, uint64_t id)
{
	mspan *s = NULL;
	uintptr_t base = object_of("gc_cancel_cleanup", obj, &s);

	if (!base)
		return gc_last_error();
	if (!specials_cancel_cleanup(s, base, id)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_cancel_cleanup(%p, %llu): "
		              "no such cleanup (already queued, or never "
		              "added)", obj, (unsigned long long)id);
		return GCHEAP_ERR_ARG;
	}
	return GCHEAP_OK;
}

size_t gc_run_finalizers(void)
{
	gc_thread *t = thread_current;
	size_t n = 0;
	finq_entry *e;

	if (!t) {
		runtime_not_attached("gc_run_finalizers");
		return 0;
	}
	while ((e = finq_take())) {
		run_entry(t, e);
		n++;
	}
	return n;
}

/* Turning the thread off returns once it has finished the entry it may
 * be running, so that no finalizer runs on it afterwards: enabled is
 * cleared, a full barrier, then busy is read; the thread raises busy, a
 * full barrier, then reads enabled. Either it sees the thread off, or it
 * is seen busy and waited for. Not waited for: a finalizer that turns
 * its own thread off (itself), a notification callback (a finalizer may
 * be waiting for it, in gc_set_finalizer_notify), and a wait that
 * another thread ends by turning the thread back on. */
void gc_set_finalizer_thread(int on)
{
	fin_init();
	astore(&fin_.enabled, on != 0);
	afence();
	if (on && aload(&fin_.used) && !start_thread())
		thread_failed("gc_set_finalizer_thread", "queued entries "
		              "wait for gc_run_finalizers or a later call");
	finq_wake();
	gc_thread *me = thread_current;
	if (on || thread_notifier ||
	    (me && (uintptr_t)me == aload_acq(&fin_.thread)))
		return;
	if (!aload_acq(&fin_.busy))
		return;
	if (me)
		runtime_blocking_begin(me);
	while (aload_acq(&fin_.busy) && !aload(&fin_.enabled))
		sleep_ns(50000);
	if (me)
		runtime_blocking_end(me);
}

size_t gc_finalizers_pending(void)
{
	return finq_pending();
}
