/* alloc/sys/lock.h: the mutex every lock in gcheap is made of. At check
 * level 2 and above a lock records its owner so that code can assert
 * "caller holds the lock" (mutex_assert_held).
 *
 * Lock order (outer first; never take an earlier lock while holding a later):
 *   runtime thread registry lock
 *   -> mcentral[spc].lock
 *   -> mheap_.lock
 * The metadata allocator runs under mheap_.lock. */
#ifndef GCHEAP_SYS_LOCK_H
#define GCHEAP_SYS_LOCK_H

#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

#include <pthread.h>

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

static inline void mutex_unlock(gc_mutex *l)
{
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, 0);
	pthread_mutex_unlock(&l->m);
}

static inline bool mutex_held(gc_mutex *l)
{
	return aload(&l->owner) == (uintptr_t)pthread_self();
}

#define mutex_assert_held(l) gc_assert(mutex_held(l))

/* pthread_cond_wait on a gc_mutex, keeping its owner record true. */
static inline void mutex_cond_wait(pthread_cond_t *c, gc_mutex *l)
{
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, 0);
	pthread_cond_wait(c, &l->m);
	if (GCHEAP_CHECK_LEVEL >= 2)
		astore(&l->owner, (uintptr_t)pthread_self());
}

#endif
