/* tests/stress/reglock.c: a thread that waits for the thread registry
 * (to stop the world, or for a handshake) counts as blocked, so whoever
 * holds the registry may scan its stack meanwhile: from the context it
 * saved for that wait. It once saved none, and the scan used the saved
 * context of the thread's last blocking region, here one in main: an
 * object held only in a frame 40 calls deeper was freed. A second thread
 * collects in a loop over a live list of 100,000 nodes; the main thread
 * blocks once from main, then, deep down, keeps an object only in a
 * frame and reads the stats, which under verify=1 stop the world.
 *
 *   reglock [ROUNDS]     exit 0: every object held that way survived */
#include "gcheap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))
#define WORDS 16
#define MAGIC ((uintptr_t)0x5a5a1234abcd0000ULL)

static int stop;

static void *collector(void *arg)
{
	size_t off = 0;
	void **head = NULL;

	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		exit(2);
	gc_set_conservative_stacks(1);
	gc_type *node = gc_type_new("node", 32, &off, 1, GCHEAP_TAIL_NOSCAN);
	for (int i = 0; i < 100000; i++) {
		void **n = gc_alloc(32, node);
		if (!n)
			exit(2);
		n[0] = head;
		head = n;
	}
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
		gc_collect();
	volatile void *keep = head;
	(void)keep;
	gc_thread_detach();
	return NULL;
}

static NOINLINE int intact(const uintptr_t *o)
{
	for (int i = 0; i < WORDS; i++)
		if (o[i] != MAGIC + (uintptr_t)i)
			return 0;
	return 1;
}

/* 1 if the object kept only in the deepest frame was lost. */
static NOINLINE int deep(int d)
{
	volatile uintptr_t pad[8];

	if (d > 0) {
		pad[0] = (uintptr_t)d;
		return deep(d - 1) + (int)(pad[0] & 0);
	}
	uintptr_t *o = gc_alloc(WORDS * sizeof(uintptr_t), NULL);
	if (!o)
		exit(2);
	for (int i = 0; i < WORDS; i++)
		o[i] = MAGIC + (uintptr_t)i;
	pad[3] = (uintptr_t)o; /* the only reference */
	o = NULL;
	gc_stats s;
	for (int k = 0; k < 3; k++)
		gc_read_stats(&s, sizeof s); /* verify=1: a stop of the world */
	gc_collect();
	gc_collect();
	return !intact((const uintptr_t *)pad[3]);
}

int main(int argc, char **argv)
{
	/* ThreadSanitizer runs a round ~20x slower. */
#if defined(__SANITIZE_THREAD__)
	int rounds = argc > 1 ? atoi(argv[1]) : 30;
#else
	int rounds = argc > 1 ? atoi(argv[1]) : 400;
#endif
	long lost = 0;
	pthread_t c;

	if (gc_thread_attach() != GCHEAP_OK)
		return 2;
	gc_set_conservative_stacks(1);
	if (pthread_create(&c, NULL, collector, NULL))
		return 2;
	for (int r = 0; r < rounds; r++) {
		gc_blocking_begin(); /* a saved context in main's frame */
		gc_blocking_end();
		lost += deep(40);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(c, NULL);
	gc_blocking_end();
	printf("reglock: %ld of %d objects held only in a deep frame were "
	       "lost\n", lost, rounds);
	gc_thread_detach();
	return lost != 0;
}
