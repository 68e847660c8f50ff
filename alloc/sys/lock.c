/* alloc/sys/lock.c: mutex set-up. */
#include "alloc/sys/lock.h"

void mutex_init(gc_mutex *l)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	astore(&l->owner, 0);
}
