/* runtime/notify.c: callbacks the embedder registers to hear about the
 * collector: gc_set_cycle_callback (mark start, mark end, sweep end of
 * every cycle) and gc_set_finalizer_notify (finalizers or cleanups were
 * queued: the manual mode's wake-up, instead of polling).
 *
 * Each kind has its own library thread, not attached, started by the
 * first registration and never stopped. The cycle thread waits on the
 * collector's condition variable (broadcast at each of the three events)
 * and reads its counters mgc_.started, mgc_.ended and mgc_.swept, which
 * are set with the world running, after each event. The events form one
 * sequence (cycle c has events 3(c-1), 3(c-1)+1 and 3(c-1)+2, in that
 * order), delivered in order with no gap, late rather than never. The
 * finalizer thread waits on the finalizer queue's count of entries ever
 * queued. Either calls its function with no lock held, on a thread that
 * no stop of the world waits for: the callback may block, take the
 * embedder's locks, or call gc_ functions that need no attached thread
 * (gc_read_stats); it must not attach the thread (which then waits in
 * the library between calls without answering safepoints): to act on
 * the heap, wake a thread of the embedder's. Registration is under the
 * notifier's lock; a callback replaced or cleared is not called again
 * once gc_set_* has returned (the setter waits for a running call to
 * return, unless it is called from the callback itself). */
#include "runtime/runtime.h"

#include <stdio.h>

typedef struct notifier {
	gc_mutex lock;
	pthread_cond_t idle;   /* a call has returned */
	bool started;
	bool calling;          /* the thread is inside the callback */
	pthread_t thread;
	void (*fn)(void);      /* the registered function (cast) */
	void *data;
	atomic_word gen;       /* bumped at each registration */
} notifier;

static notifier cyc = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                       .idle = PTHREAD_COND_INITIALIZER};
static notifier fin = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                       .idle = PTHREAD_COND_INITIALIZER};

/* Events of the cycle sequence that have happened. */
static uint64_t events_done(void)
{
	uint64_t s = aload_acq(&mgc_.started), m = aload_acq(&mgc_.ended);
	uint64_t w = aload_acq(&mgc_.swept), n = 0;

	if (s)
		n = 3 * s - 2;
	if (m && 3 * m - 1 > n)
		n = 3 * m - 1;
	if (w && 3 * w > n)
		n = 3 * w;
	return n;
}

/* Take the registered function for a call, or false if there is none. */
static bool begin_call(notifier *n, void (**fn)(void), void **data,
                       uintptr_t *gen)
{
	mutex_lock(&n->lock);
	*fn = n->fn;
	*data = n->data;
	*gen = aload(&n->gen);
	n->calling = *fn != NULL;
	mutex_unlock(&n->lock);
	return *fn != NULL;
}

static void end_call(notifier *n)
{
	mutex_lock(&n->lock);
	n->calling = false;
	pthread_cond_broadcast(&n->idle);
	mutex_unlock(&n->lock);
}

static void *cycle_main(void *arg)
{
	uint64_t done = (uint64_t)(uintptr_t)arg;

	sys_thread_name("cycle-cb");
	thread_notifier = true;
	for (;;) {
		mutex_lock(&mgc_.lock);
		uint64_t now;
		while ((now = events_done()) == done)
			mutex_cond_wait(&mgc_.cond, &mgc_.lock);
		mutex_unlock(&mgc_.lock);
		void (*fn)(void);
		void *data;
		uintptr_t gen;
		for (; done < now; done++) {
			if (!begin_call(&cyc, &fn, &data, &gen)) {
				done = now;
				break;
			}
			((gc_cycle_fn)fn)((gc_cycle_event)(done % 3),
			                  done / 3 + 1, data);
			end_call(&cyc);
		}
	}
	return NULL;
}

static void *finalizer_notify_main(void *arg)
{
	uintptr_t seen = (uintptr_t)arg;

	sys_thread_name("final-cb");
	thread_notifier = true;
	for (;;) {
		uintptr_t now = finq_wait_queued(seen, &fin.gen);
		void (*fn)(void);
		void *data;
		uintptr_t gen;
		if (now == seen)
			continue; /* a new registration */
		seen = now;
		if (!begin_call(&fin, &fn, &data, &gen))
			continue;
		((gc_finalizer_notify_fn)fn)(gc_finalizers_pending(), data);
		end_call(&fin);
	}
	return NULL;
}

/* Register fn (NULL: none) with n, starting its thread with `start` the
 * first time; false if the thread cannot be started. */
static bool set_notifier(notifier *n, void (*fn)(void), void *data,
                         void *(*start)(void *), void *start_arg,
                         const char *what)
{
	bool ok = true;

	mutex_lock(&n->lock);
	n->fn = fn;
	n->data = data;
	afetch_add(&n->gen, 1);
	if (fn && !n->started) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		n->started = !sys_thread_create(&n->thread, &a, start,
		                                start_arg);
		pthread_attr_destroy(&a);
		if (!n->started) {
			n->fn = NULL;
			ok = false;
		}
	}
	/* A replaced callback may be running: wait for it, unless this
	 * is that callback's own thread. An attached caller counts as
	 * blocked meanwhile: the callback may wait for a collection (a
	 * lock its gc_collect caller holds, a stats call that stops the
	 * world in verify mode), and the collection for this thread. */
	gc_thread *me = thread_current;
	bool own = n->started && pthread_equal(n->thread, pthread_self());
	bool blocked = n->calling && !own && me;
	if (blocked) {
		mutex_unlock(&n->lock);
		runtime_blocking_begin(me);
		mutex_lock(&n->lock);
	}
	while (n->calling && !own)
		mutex_cond_wait(&n->idle, &n->lock);
	mutex_unlock(&n->lock);
	if (blocked)
		runtime_blocking_end(me);
	if (!ok)
		runtime_error(GCHEAP_ERR_NOMEM, "%s: cannot start the "
		              "notification thread", what);
	return ok;
}

gc_status gc_set_cycle_callback(gc_cycle_fn fn, void *data)
{
	gc_status st = gc_init();
	if (st != GCHEAP_OK)
		return st;
	/* Events from now on: the ones that happened are not replayed. */
	mutex_lock(&mgc_.lock);
	uint64_t now = events_done();
	mutex_unlock(&mgc_.lock);
	if (!set_notifier(&cyc, (void (*)(void))fn, data, cycle_main,
	                  (void *)(uintptr_t)now, "gc_set_cycle_callback"))
		return GCHEAP_ERR_NOMEM;
	/* Wake the thread, so that it sees the registration. */
	mutex_lock(&mgc_.lock);
	pthread_cond_broadcast(&mgc_.cond);
	mutex_unlock(&mgc_.lock);
	return GCHEAP_OK;
}

gc_status gc_set_finalizer_notify(gc_finalizer_notify_fn fn, void *data)
{
	gc_status st = gc_init();
	if (st != GCHEAP_OK)
		return st;
	if (!set_notifier(&fin, (void (*)(void))fn, data,
	                  finalizer_notify_main,
	                  (void *)finq_queued(), "gc_set_finalizer_notify"))
		return GCHEAP_ERR_NOMEM;
	finq_wake();
	return GCHEAP_OK;
}
