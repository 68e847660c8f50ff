/* runtime/thread.c: initialisation, and attaching and detaching threads.
 * A gc_thread is plain malloc'd memory (metadata, never in the heap). */
#include "runtime/runtime.h"

#include "runtime/mprof.h"

#include <stdlib.h>
#include <unistd.h>

runtime_state runtime_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                          .hlock = {.m = PTHREAD_MUTEX_INITIALIZER}};

__thread gc_thread *thread_current __attribute__((tls_model("initial-exec")));
__thread gc_thread *thread_blocked __attribute__((tls_model("initial-exec")));
__thread bool thread_notifier;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The main thread's stack bounds, once known: glibc finds them by
 * reading /proc/self/maps, which made every attach of the main thread
 * cost the process's mappings (35 ms with 30,000 of them). Only the main
 * thread reads or writes them. */
static uintptr_t main_stack_base, main_stack_lo;

/* The calling thread's stack, [*lo, base): 0 if not known. */
static uintptr_t stack_bounds(uintptr_t *lo)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;
	bool is_main = gettid() == getpid();

	*lo = 0;
	if (is_main && main_stack_base) {
		*lo = main_stack_lo;
		return main_stack_base;
	}
	if (pthread_getattr_np(pthread_self(), &attr))
		return 0;
	int err = pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	if (err)
		return 0;
	*lo = (uintptr_t)addr;
	if (is_main) {
		main_stack_lo = *lo;
		main_stack_base = (uintptr_t)addr + size;
	}
	return (uintptr_t)addr + size;
}
static gc_status init_status = GCHEAP_OK;

static void detach_at_exit(void *arg);

static void forked_child(void)
{
	astore(&runtime_.forked, 1);
}

void runtime_fork_fatal(const char *fn)
{
	fatal("%s called in a child of fork(): the collector's threads are "
	      "not in it, and a lock may be held by a thread that is not "
	      "either; a child may only exec or exit, with no gcheap call "
	      "(docs/api.md, \"fork()\")", fn);
}

static void init_runtime(void)
{
	/* Cannot fail on glibc but for memory; then the check is lost,
	 * not the heap. */
	(void)pthread_atfork(NULL, NULL, forked_child);
	runtime_parse_options();
	mcache_prof_draw = mprof_first_distance; /* the next distance */
	if (mheap_init() != HEAP_OK || !runtime_zerobase_init()) {
		init_status = GCHEAP_ERR_NOMEM;
		return;
	}
	mcentral_init_all();
	runtime_weak_init();
	if (pthread_key_create(&runtime_.exit_key, detach_at_exit)) {
		init_status = GCHEAP_ERR_NOMEM;
		return;
	}
	if (!mgc_init(&runtime_gc_ops)) {
		init_status = GCHEAP_ERR_NOMEM;
		return;
	}
	export_from_env();
	attach_from_env();
}

gc_status gc_init(void)
{
	/* The options' messages are writes, cancellation points: a cancel
	 * taken there left the heap half made (alloc/sys/lock.h). */
	int cs = cancel_off();
	pthread_once(&init_once, init_runtime);
	cancel_restore(cs);
	if (init_status != GCHEAP_OK)
		runtime_error(init_status, "cannot initialise the heap");
	return init_status;
}

static void unlink_thread(gc_thread *t)
{
	mutex_lock(&runtime_.lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		runtime_.threads = t->next;
	if (t->next)
		t->next->prev = t->prev;
	astore(&runtime_.nthreads, aload(&runtime_.nthreads) - 1);
	mutex_unlock(&runtime_.lock);
}

gc_status gc_thread_attach(void)
{
	gc_status st = gc_init();

	if (st != GCHEAP_OK)
		return st;
	runtime_check_fork("gc_thread_attach");
	if (thread_notifier) {
		/* The cycle and finalizer callbacks' threads: the next mark
		 * would wait for one that never reaches a safepoint. */
		runtime_error(GCHEAP_ERR_ARG, "gc_thread_attach: called from "
		              "a cycle or finalizer-notify callback, whose "
		              "thread must not touch the heap");
		return GCHEAP_ERR_ARG;
	}
	if (thread_current || thread_blocked) {
		runtime_error(GCHEAP_ERR_DUPLICATE,
		              "gc_thread_attach: the thread is already "
		              "attached%s", thread_blocked ? " (and inside "
		              "gc_blocking_begin/end)" : "");
		return GCHEAP_ERR_DUPLICATE;
	}
	gc_thread *t = calloc(1, sizeof(*t));
	if (!t) {
		runtime_error(GCHEAP_ERR_NOMEM,
		              "gc_thread_attach: no memory for the thread");
		return GCHEAP_ERR_NOMEM;
	}
	mcache_init(&t->mcache);
	t->mcache.prof_left = mprof_first_distance(); /* runtime/mprof.h */
	t->self = pthread_self();
	t->tid = gettid();
	t->stack_base = stack_bounds(&t->stack_lo);
	/* Join as a blocked thread with an empty stack, then leave the
	 * blocking state the usual way: that waits out a stopped world. */
	t->saved_sp = t->stack_base;
	astore(&t->status, TS_BLOCKED);
	mutex_lock(&runtime_.lock);
	t->next = runtime_.threads;
	if (runtime_.threads)
		runtime_.threads->prev = t;
	runtime_.threads = t;
	astore(&runtime_.nthreads, aload(&runtime_.nthreads) + 1);
	mutex_unlock(&runtime_.lock);
	thread_blocked = t;
	pthread_setspecific(runtime_.exit_key, t);
	gc_blocking_end();
	/* Joined during a mark (after its start, or the start made it
	 * black already: start_black is idempotent): it allocates black at
	 * once. The phase cannot move before this thread's next safepoint. */
	if (aload_acq(&mgc_.phase) == GCPHASE_MARK && GCHEAP_SABOTAGE != 2) {
		runtime_start_black(t, &t->gc.gcw);
		gcw_dispose(&t->gc.gcw);
	}
	runtime_ok();
	return GCHEAP_OK;
}

/* Leave the registry. The thread flushes what it owes the collector, then
 * blocks (so a stopper never waits for it) before it takes the registry
 * lock; a handshake in progress may still flush it meanwhile. */
static void detach(gc_thread *t)
{
	runtime_safepoint(t);
	/* Release first: a span leaving the cache reports what it
	 * allocated black, and the flush hands that to the collector. */
	mcache_release_all(&t->mcache);
	/* What the cache handed out since its last slow path, which that
	 * slow path would have counted (runtime/malloc.c), less what the
	 * release gave back. */
	(void)mgc_count_alloc(mcache_take_handed(&t->mcache));
	runtime_flush_thread(t);
	t->frames = NULL;
	/* Nothing left to scan, the stack included. Written before the
	 * thread blocks: a collector that claims it meanwhile reads these
	 * (writing saved_sp after blocking raced with its stack scan). */
	t->stack_base = 0;
	runtime_blocking_begin(t);
	unlink_thread(t);
	free(t);
}

gc_status gc_thread_detach(void)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_thread_detach");
		return GCHEAP_ERR_NOT_ATTACHED;
	}
	if (t->in_finalizer || t->in_handler) {
		runtime_error(GCHEAP_ERR_ARG, "gc_thread_detach: called from "
		              "a %s, which runs on a thread the library goes "
		              "on using", t->in_finalizer ? "finalizer or "
		              "cleanup" : "error or OOM handler");
		return GCHEAP_ERR_ARG;
	}
	if (t->frames) {
		/* Detached, the thread's frames are no roots: what only they
		 * hold would be freed under it, and the frame could not be
		 * popped after a new attach. */
		runtime_error(GCHEAP_ERR_ARG, "gc_thread_detach: a gc_frame is "
		              "still pushed (%p): pop the thread's frames "
		              "first", (void *)t->frames);
		return GCHEAP_ERR_ARG;
	}
	pthread_setspecific(runtime_.exit_key, NULL);
	detach(t);
	thread_current = NULL;
	runtime_ok();
	return GCHEAP_OK;
}

/* The key destructor: the thread exited without detaching. */
static void detach_at_exit(void *arg)
{
	gc_thread *t = arg;

	thread_current = t;
	/* Frames still pushed died with their functions (the destructors'
	 * calls write over them): dropped before the thread's own
	 * safepoints could scan them. */
	if (thread_blocked) {
		/* It exited inside gc_blocking_begin/end. */
		thread_blocked = NULL;
		runtime_blocking_end_at_exit(t);
	} else {
		t->frames = NULL;
	}
	detach(t);
	thread_current = NULL;
}

int gc_thread_is_attached(void)
{
	return thread_current || thread_blocked;
}
