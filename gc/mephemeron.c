/* gc/mephemeron.c: the ephemeron fixpoint: marking the value of every
 * live ephemeron whose key is marked, in time linear in the ephemerons
 * and in what their values reach, however they are chained.
 *
 * A pass walks the ephemerons (gc/mfinal.c's records). A live one (marked,
 * or with a finalizer, which keeps it whole) whose key is marked has its
 * value marked at once; one whose key is not marked yet goes into the
 * pass's watch, a table from key object to its pending ephemerons. The
 * pass then drains its gcw with the watch on: greyobject (gc/mgcmark.c)
 * hands every object the drain greys to ephemeron_watch_hit, and a key
 * found in the table leaves it, its ephemerons' values to be marked by
 * the same drain. So a chain of ephemerons, each value leading to the
 * next key, closes in one pass in whatever order the walk meets it; a
 * pass that only looked at keys already marked closed one link per walk
 * of every ephemeron (16 k links took 2.75 s).
 *
 * The watch speeds the fixpoint up; it is never what proves it done.
 * Keys greyed by other markers (a worker, a barrier flush), or marked
 * locally on a span this drain took from the global queue (those marks
 * skip greyobject), are not seen, and entries that find no memory are
 * dropped. Marking is complete only after a whole pass marks nothing
 * (gc/mgc.c's mark_done), and a pass that marks nothing has checked
 * every live ephemeron's key, so a key missed here has its value marked
 * by the next pass. With the watch on, greyobject queues objects, not
 * spans: a span's owner marks on it locally, past the watch.
 *
 * Nothing is freed during a mark, so the ephemerons in the table stay
 * valid after the walk has let the specials' lock go. Only the pass's
 * own thread touches its watch. */
#include "gc/mgc.h"

#include "alloc/sys/addrset.h"

#include <stdlib.h>

/* A pending ephemeron; `next` is the index + 1 of the next one of the
 * same key (0: the last). */
typedef struct eph_node {
	uintptr_t e;
	size_t next;
} eph_node;

/* The first and last pending ephemeron of a key (indices + 1). */
typedef struct eph_chain {
	size_t head, tail;
} eph_chain;

struct eph_watch {
	addrset keys;     /* key object -> eph_chain */
	eph_node *nodes;  /* malloc'd */
	size_t nnodes, cap;
	size_t fired;     /* ephemerons whose key was greyed, a stack */
};

static struct {
	atomic_word passes, fired;
} eph_;

static ephemeron_obj *eph_at(uintptr_t e)
{
	return (ephemeron_obj *)e;
}

static void mark_eph_value(gcw *w, uintptr_t e)
{
	ephemeron_obj *eo = eph_at(e);
	uintptr_t v = aload(&eo->value);

	if (v)
		gcmark_value(w, v, true, e, (uintptr_t)&eo->value);
}

/* Note e as pending on the key object at k; on no memory, leave it to
 * the next pass. */
static void watch_add(struct eph_watch *x, uintptr_t k, uintptr_t e)
{
	if (x->nnodes == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 256;
		eph_node *n = realloc(x->nodes, cap * sizeof(*n));
		if (!n)
			return;
		x->nodes = n;
		x->cap = cap;
	}
	bool added;
	size_t i = addrset_add(&x->keys, k, &added);
	if (i == SIZE_MAX)
		return;
	eph_chain *c = addrset_val(&x->keys, i);
	size_t n = ++x->nnodes;
	x->nodes[n - 1] = (eph_node){e, 0};
	if (added)
		c->head = n;
	else
		x->nodes[c->tail - 1].next = n;
	c->tail = n;
}

void ephemeron_watch_hit(gcw *w, uintptr_t obj)
{
	struct eph_watch *x = w->watch;
	size_t i = addrset_find(&x->keys, obj);

	if (i == SIZE_MAX)
		return;
	eph_chain c = *(eph_chain *)addrset_val(&x->keys, i);
	addrset_remove_at(&x->keys, i);
	x->nodes[c.tail - 1].next = x->fired;
	x->fired = c.head;
}

/* Mark the values of the ephemerons whose keys were greyed; false if
 * there were none. Their marks may grey more keys, which join the
 * stack. */
static bool watch_fire(gcw *w, struct eph_watch *x)
{
	if (!x->fired)
		return false;
	uintptr_t n = 0;
	while (x->fired) {
		eph_node *e = &x->nodes[x->fired - 1];
		x->fired = e->next;
		mark_eph_value(w, e->e);
		n++;
	}
	afetch_add(&eph_.fired, n);
	return true;
}

typedef struct eph_pass {
	gcw *w;
	struct eph_watch watch;
} eph_pass;

/* specials_each_ephemeron's callback (the specials' lock held). */
static void eph_visit(void *ctx, uintptr_t e, bool fin)
{
	eph_pass *p = ctx;

	if (!fin && !gcmark_is_marked(e))
		return;
	weak_cell *cell = (weak_cell *)aload(&eph_at(e)->key);
	uintptr_t k = cell ? aload_acq(&cell->target) : 0;
	if (!k)
		return;
	if (gcmark_is_marked(k)) {
		mark_eph_value(p->w, e);
		return;
	}
	/* Unmarked, so a heap object: the watch knows it by its base,
	 * as greyobject names it. */
	mspan *s = spanof_heap(k);
	watch_add(&p->watch, s->base + mspan_object_index(s, k) * s->elemsize,
	          e);
}

bool ephemeron_pass(gcw *w)
{
	uintptr_t before = w->nmarked;
	eph_pass p = {w, {.keys = {.vsize = sizeof(eph_chain)}}};

	if (!ephemeron_count())
		return false;
	afetch_add(&eph_.passes, 1);
	w->watch = &p.watch;
	specials_each_ephemeron(eph_visit, &p);
	/* Values marked by the drain may grey more keys, and so on; once
	 * no key is left to watch for, the caller drains what is left. */
	while (p.watch.keys.n || p.watch.fired) {
		gcmark_drain(w, -1);
		if (!watch_fire(w, &p.watch))
			break;
	}
	w->watch = NULL;
	free((void *)p.watch.keys.keys);
	free(p.watch.keys.vals);
	free(p.watch.nodes);
	return w->nmarked != before;
}

ephemeron_counts ephemeron_counters(void)
{
	return (ephemeron_counts){aload(&eph_.passes), aload(&eph_.fired)};
}
