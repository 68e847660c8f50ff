/* alloc/sys/lock.c: mutex set-up, and a holder letting waiters in. */
#include "alloc/sys/lock.h"

#include <sched.h>

void mutex_init(gc_mutex *l)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	astore(&l->owner, 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mutex_let_waiters_in(const atomic_word *waiting, uint64_t max_ns)
{
	uint64_t t0 = now_ns();
	while (aload(waiting) && now_ns() - t0 < max_ns)
		sched_yield();
}
