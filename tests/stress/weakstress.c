/* tests/stress/weakstress.c: weak references under concurrent marking.
 *
 * Mutator threads (precise roots only: conservative scanning off) keep
 * objects in a few frame slots and weak references to many of them in a
 * table. Overwriting a frame slot drops an object, which then lives only
 * weakly; reading its weak reference later, often while a mark is running
 * and the thread's roots are already scanned, makes it strong again and
 * puts it back in a frame slot. gc_weak_get must shade it, or the mark
 * misses it: checkmark (a precise frame slot to an unmarked object) or the
 * payload check (poisoned memory) catches that, which is what the
 * sabotage build 4 (no shade in gc_weak_get) proves. Every object read
 * through a weak reference must be intact and be the one that reference
 * was made for; weak references to objects that died read NULL.
 *
 * Each mutator also keeps a weak map (gc_weakmap) keyed by the objects in
 * its frame slots, remade every MAP_EVERY operations: an entry set for
 * an object still in its slot must read back intact (the key is live, so
 * the entry and its value must be), whatever cycles ran meanwhile. This
 * exercises the library's own allocations (the map, its slot arrays, the
 * entries) at every safepoint inside them, in precise mode.
 *
 *   weakstress [--threads N] [--ops N] [--sabotage]
 * GCHEAP_SEED replays a run. Exit 0 on success; a failed check exits 1. */
#include "gcheap.h"
#include "tests/rng.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NWEAK 512
#define NSLOTS 8
#define MAP_SLOT (NSLOTS + 1) /* the frame slot holding the weak map */
#define VAL_SLOT (NSLOTS + 2) /* a new value, rooted while it is set */
#define MAP_EVERY 4000
#define COLLECT_EVERY 10000 /* operations between gc_collect calls */

typedef struct wobj {
	struct wobj *next; /* a pointer slot: objects link to each other */
	uint64_t key;
	uint64_t check;    /* mix(key) */
	uint64_t pad[3];
} wobj;

static gc_type *t_wobj, *t_ptr;
static uint64_t seed;
static long nops = 100000;

typedef struct worker {
	pthread_t tid;
	unsigned id;
	unsigned long gets, revived, dead, mapped;
} worker;

static void fail(const char *what, const wobj *p)
{
	fprintf(stderr, "weakstress: %s (object %p key %#llx check %#llx); "
	        "replay with GCHEAP_SEED=%llu\n", what, (const void *)p,
	        p ? (unsigned long long)p->key : 0,
	        p ? (unsigned long long)p->check : 0,
	        (unsigned long long)seed);
	exit(1);
}

/* A map value: {key of the object it was set for, mix(key)}, noscan. */
static void map_op(worker *w, test_rng *r, void **slots, void **mapped)
{
	size_t s = 1 + (size_t)rng_below(r, NSLOTS);
	wobj *k = slots[s];
	gc_weakmap *m = slots[MAP_SLOT];

	if (!k)
		return;
	uint64_t *v = gc_weakmap_get(m, k);
	if (mapped[s] == k && !v)
		fail("the weak map lost the entry of a live key", k);
	if (v && (v[0] != k->key || v[1] != mix(k->key)))
		fail("a weak-map value is not intact", k);
	if (v && rng_below(r, 2))
		return;
	v = gc_alloc(2 * sizeof(uint64_t), NULL);
	if (!v)
		fail("out of memory", NULL);
	v[0] = k->key;
	v[1] = mix(k->key);
	slots[VAL_SLOT] = v; /* gc_weakmap_set allocates: a safepoint */
	if (gc_weakmap_set(m, k, v) != GCHEAP_OK)
		fail("gc_weakmap_set", k);
	slots[VAL_SLOT] = NULL;
	mapped[s] = k;
	w->mapped++;
}

static void *run(void *arg)
{
	worker *w = arg;
	void *slots[NSLOTS + 3] = {0};
	void *mapped[NSLOTS + 1] = {0}; /* off-heap: not roots */
	gc_frame f;
	test_rng r = {mix(seed + w->id) | 1};

	if (gc_thread_attach() != GCHEAP_OK)
		fail("attach", NULL);
	gc_frame_push(&f, slots, NSLOTS + 3);
	gc_weak **weak = gc_alloc_array(NWEAK, t_ptr);
	uint64_t *want = calloc(NWEAK, sizeof(*want)); /* keys, off-heap */
	if (!weak || !want)
		fail("out of memory", NULL);
	slots[0] = weak;
	for (long op = 0; op < nops; op++) {
		/* A full collection now and then: with generational
		 * collection on, a dropped object that a mark has seen is
		 * old and dies only in a major mark, which minor marks may
		 * put off past the end of the run (twice in 40 runs no
		 * weak reference read NULL). */
		if (op && op % COLLECT_EVERY == 0)
			gc_collect();
		if (op % MAP_EVERY == 0) {
			slots[MAP_SLOT] = gc_weakmap_new();
			if (!slots[MAP_SLOT])
				fail("gc_weakmap_new", NULL);
			memset(mapped, 0, sizeof(mapped));
		}
		if (rng_below(&r, 4) == 0) {
			map_op(w, &r, slots, mapped);
			continue;
		}
		size_t k = (size_t)rng_below(&r, NWEAK);
		size_t s = 1 + (size_t)rng_below(&r, NSLOTS);
		if (!weak[k]) {
			wobj *o = gc_alloc(sizeof(*o), t_wobj);
			if (!o)
				fail("out of memory", NULL);
			o->key = ((uint64_t)w->id << 48) | ((uint64_t)k << 32) |
			         (uint64_t)op;
			o->check = mix(o->key);
			gc_write(&o->next, slots[1 + rng_below(&r, NSLOTS)]);
			/* Rooted first: gc_weak_new allocates, a safepoint
			 * (precise mode: C locals are not roots). */
			slots[s] = o; /* drops what was there */
			mapped[s] = NULL;
			gc_weak *h = gc_weak_new(o);
			if (!h)
				fail("gc_weak_new", o);
			gc_write(&weak[k], h);
			want[k] = o->key;
			continue;
		}
		wobj *p = gc_weak_get(weak[k]);
		w->gets++;
		if (!p) {
			w->dead++;
			gc_write(&weak[k], NULL);
			continue;
		}
		if (p->key != want[k] || p->check != mix(p->key))
			fail("an object read through a weak reference is not "
			     "intact", p);
		for (wobj *q = p->next; q; q = q->next)
			if (q->check != mix(q->key))
				fail("an object reached from a weakly read one "
				     "is not intact", q);
		w->revived++;
		slots[s] = p; /* strong again, in a scanned frame */
		mapped[s] = NULL;
		/* Garbage, to keep the collector busy. */
		char *g = gc_alloc(16 + rng_below(&r, 200), NULL);
		if (!g)
			fail("out of memory", NULL);
		g[0] = 1;
	}
	gc_frame_pop(&f);
	free(want);
	gc_thread_detach();
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned nthreads = 2;
	int sabotage = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			nops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--sabotage"))
			sabotage = 1;
		else {
			fprintf(stderr, "usage: weakstress [--threads N] "
			        "[--ops N] [--sabotage]\n");
			return 2;
		}
	}
	const char *e = getenv("GCHEAP_SEED");
	seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^
	                                  (uint64_t)clock();
	printf("weakstress: seed=%llu (replay with GCHEAP_SEED=%llu), %u "
	       "mutators x %ld operations%s\n", (unsigned long long)seed,
	       (unsigned long long)seed, nthreads, nops,
	       sabotage ? ", sabotage build" : "");
	fflush(stdout);
	static const size_t off[] = {offsetof(wobj, next)}, z = 0;
	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(0);
	t_wobj = gc_type_new("wobj", sizeof(wobj), off, 1, GCHEAP_TAIL_NOSCAN);
	t_ptr = gc_type_new("ptr", sizeof(void *), &z, 1, GCHEAP_TAIL_REPEAT);
	if (!t_wobj || !t_ptr)
		return 1;
	worker *ws = calloc(nthreads, sizeof(*ws));
	if (!ws)
		return 1;
	gc_blocking_begin();
	for (unsigned i = 0; i < nthreads; i++) {
		ws[i].id = i;
		if (pthread_create(&ws[i].tid, NULL, run, &ws[i]))
			return 1;
	}
	unsigned long gets = 0, revived = 0, dead = 0, mapped = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(ws[i].tid, NULL);
		gets += ws[i].gets;
		revived += ws[i].revived;
		dead += ws[i].dead;
		mapped += ws[i].mapped;
	}
	gc_blocking_end();
	gc_stats st;
	gc_read_stats(&st, sizeof(st));
	printf("weakstress: %lu weak reads, %lu revived, %lu dead, %lu map "
	       "sets, %llu cycles: ok\n", gets, revived, dead, mapped,
	       (unsigned long long)st.gc_cycles);
	if (!dead || !revived || !mapped || st.gc_cycles < 3) {
		printf("weakstress: the run did not exercise weak references "
		       "across cycles\n");
		free(ws); /* else LeakSanitizer's abort hides the message */
		return 1;
	}
	free(ws);
	gc_thread_detach();
	return 0;
}
