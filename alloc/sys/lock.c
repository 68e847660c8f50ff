/* alloc/sys/lock.c: mutex set-up. */
#include "alloc/sys/lock.h"

void mutex_init(gc_mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
	astore(&l->owner, 0);
}
