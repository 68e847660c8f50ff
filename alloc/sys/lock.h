/* alloc/sys/lock.h: the mutex every lock in gcheap is made of. At check
 * level 2 and above a lock records its owner so that code can assert
 * "caller holds the lock" (mutex_assert_held).
 *
 * The lock order: every lock in gcheap, outer first. Never take a lock
 * while holding one listed after it. (Locks never held together are
 * listed in an order that would also be safe.)
 *   1. runtime_.lock      the thread registry; held by whoever stops the
 *                         world or runs a handshake, for the whole of it
 *                         (runtime/runtime.h, runtime/safepoint.c)
 *   2. exporter.lock      the live stats export, with its cond (its
 *                         thread drops it to publish) (runtime/export.c)
 *   3. mgc_.lock          cycle bookkeeping and the pacer, with mgc_.cond
 *                         (gc/mgc.h)
 *   4. globals.lock       the registered global roots (runtime/roots.c)
 *   5. uncoll.lock        the table of uncollectable objects; marking
 *                         its entries may hand a full work buffer to
 *                         gcwork_.lock (runtime/uncollectable.c)
 *   6. mcentral_[spc].lock one class's span lists (alloc/mcentral.h)
 *   7. mheap_.lock        pages, arenas, spans[]; the metadata allocator
 *                         runs under it, and object lookups hold it
 *                         (mheap_find_object) (alloc/mheap.h)
 *   8. specials_.lock     every span's specials (gc/mfinal.c)
 *   9. finq_.lock         the finalizer queue, with its cond (gc/mfinal.c)
 *  10. gcwork_.lock       the global lists of work buffers (gc/mgcwork.h)
 *  11. gcstats_.lock      timing bookkeeping (gc/mgcstats.h)
 *  12. registry.lock      type ids (alloc/gctype.c)
 *  13. world_lock         thread status changes, with world_cond
 *                         (runtime/safepoint.c)
 *  14. runtime_.hlock     the error and OOM handlers, never held while
 *                         one runs (runtime/runtime.h)
 * Leaves, which take no other lock while held:
 *  15. mfree_.lock        the objects gc_free recorded in the debug
 *                         modes; taken by gc_free with no lock held, and
 *                         with the world stopped (runtime_.lock) by mark
 *                         termination and checkmark (gc/mfree.c)
 *  16. mprof_.lock        the heap profiler's buckets; taken with no
 *                         other lock held, by a sampled allocation after
 *                         it is made and by the profile writer
 *                         (runtime/mprof.c)
 *  17. cyc.lock, fin.lock the two notifiers' registrations, each with its
 *                         cond idle; taken with no other lock held, never
 *                         both (runtime/notify.c)
 *  18. ephtab_.lock       the running mark's ephemeron table; taken by
 *                         any marker that marks an object an ephemeron
 *                         waits for, whatever it holds (runtime_.lock
 *                         when it stops the world, specials_.lock in the
 *                         root job, uncoll.lock), and by the ephemeron
 *                         pass and specials_set_finalizer with no lock
 *                         held (gc/mephemeron.c)
 * Nothing else locks: atomics (alloc/sys/atomic.h) and pthread_once. */
#ifndef GCHEAP_SYS_LOCK_H
#define GCHEAP_SYS_LOCK_H

#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

#include <pthread.h>
#include <time.h>

typedef struct gc_mutex {
	pthread_mutex_t m;
	atomic_word owner; /* pthread_self() of the holder, checks >= 2 */
} gc_mutex;

void mutex_init(gc_mutex *l);

static inline void mutex_lock(gc_mutex *l)
{
	pthread_mutex_lock(&l->m);
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, (uintptr_t)pthread_self());
}

/* True (and held) if the lock was free. */
static inline bool mutex_trylock(gc_mutex *l)
{
	if (pthread_mutex_trylock(&l->m))
		return false;
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, (uintptr_t)pthread_self());
	return true;
}

static inline void mutex_unlock(gc_mutex *l)
{
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, 0);
	pthread_mutex_unlock(&l->m);
}

/* A lock that a long holder lets go of for waiters (the mark's root
 * jobs): others take it counting themselves in *waiting while they wait;
 * the holder, having dropped it because *waiting was non-zero, calls
 * mutex_let_waiters_in before taking it again, since the lock is not
 * fair and would go straight back to it: it waits until the waiters
 * have had the lock, for at most max_ns. */
static inline void mutex_lock_counted(gc_mutex *l, atomic_word *waiting)
{
	if (mutex_trylock(l))
		return;
	afetch_add(waiting, 1);
	mutex_lock(l);
	afetch_add(waiting, (uintptr_t)-1);
}

void mutex_let_waiters_in(const atomic_word *waiting, uint64_t max_ns);

static inline bool mutex_held(gc_mutex *l)
{
	return aload(&l->owner) == (uintptr_t)pthread_self();
}

#define mutex_assert_held(l) gc_assert(mutex_held(l))

/* The library's waits are not cancellation points (pthread_cancel): a
 * thread cancelled inside pthread_cond_wait leaves with the mutex held
 * (POSIX re-takes it first), and every thread then waits for it, the
 * exiting one too (its detach takes the same locks). A cancel that
 * arrives meanwhile takes effect at the thread's next cancellation point
 * outside gcheap (docs/api.md). */
static inline int cancel_off(void)
{
	int old;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

static inline void cancel_restore(int old)
{
	pthread_setcancelstate(old, NULL);
}

/* A short sleep of a polling wait or a pause, not a cancellation point
 * (as the waits below). */
static inline void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
	                      (long)(ns % 1000000000u)};
	int cs = cancel_off();

	nanosleep(&ts, NULL);
	cancel_restore(cs);
}

/* pthread_cond_wait on a gc_mutex, keeping its owner record true. */
static inline void mutex_cond_wait(pthread_cond_t *c, gc_mutex *l)
{
	int cs = cancel_off();
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, 0);
	pthread_cond_wait(c, &l->m);
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, (uintptr_t)pthread_self());
	cancel_restore(cs);
}

/* The monotonic clock where the C library can wait by it (glibc 2.30's
 * pthread_cond_clockwait): a step of the wall clock must not stretch the
 * bound of a parked assist or of the sweeper's poll (set back by an hour:
 * an hour). */
#if defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define MUTEX_WAIT_CLOCK CLOCK_MONOTONIC
#else
#define MUTEX_WAIT_CLOCK CLOCK_REALTIME
#endif

/* pthread_cond_timedwait on a gc_mutex until the deadline ts of `clock`
 * (CLOCK_REALTIME, or MUTEX_WAIT_CLOCK), keeping its owner record true;
 * returns what the wait did. */
static inline int mutex_cond_clockwait(pthread_cond_t *c, gc_mutex *l,
                                       clockid_t clock,
                                       const struct timespec *ts)
{
	int cs = cancel_off(), r;
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, 0);
#if MUTEX_WAIT_CLOCK == CLOCK_MONOTONIC
	if (clock == CLOCK_MONOTONIC)
		r = pthread_cond_clockwait(c, &l->m, clock, ts);
	else
		r = pthread_cond_timedwait(c, &l->m, ts);
#else
	(void)clock;
	r = pthread_cond_timedwait(c, &l->m, ts);
#endif
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, (uintptr_t)pthread_self());
	cancel_restore(cs);
	return r;
}

/* The same with a CLOCK_REALTIME deadline. */
static inline int mutex_cond_timedwait(pthread_cond_t *c, gc_mutex *l,
                                       const struct timespec *ts)
{
	return mutex_cond_clockwait(c, l, CLOCK_REALTIME, ts);
}

/* Wait on c for at most ns from now. */
static inline int mutex_cond_wait_ns(pthread_cond_t *c, gc_mutex *l,
                                     uint64_t ns)
{
	struct timespec ts;

	clock_gettime(MUTEX_WAIT_CLOCK, &ts);
	uint64_t t = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	return mutex_cond_clockwait(c, l, MUTEX_WAIT_CLOCK, &ts);
}

#endif
