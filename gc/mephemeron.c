/* gc/mephemeron.c: the ephemeron fixpoint: marking the value of every
 * live ephemeron whose key is marked, in time linear in the ephemerons
 * and in what their values reach, however they are chained.
 *
 * A pass walks the ephemerons (gc/mfinal.c's records). A live one (marked,
 * or with a finalizer, which keeps it whole) whose key is marked has its
 * value marked at once; any other whose key lives is *pending*, waiting
 * for an object to be marked: itself if it is not, else its key. Pending
 * ephemerons go into an array, a word each. If the walk marked nothing,
 * or left none pending, the pass is over: the last pass of every mark,
 * and a weak map whose values lead to no other entry, cost the walk and
 * the array. Else the pass drains its work and looks at the pending ones
 * again; if some are ready now, they form a chain (a value that leads to
 * another entry's key or ephemeron), and the pass follows it through a
 * *watch*: a table from each awaited object to its pending ephemerons,
 * and a drain in which greyobject (gc/mgcmark.c) hands every object it
 * greys to ephemeron_watch_hit. An awaited object found there releases
 * its ephemerons, which are looked at again in the same drain: their
 * values are marked, or they wait for their key. So a chain closes in one
 * pass in whatever order the walk meets it, where passes alone closed one
 * link per walk of every ephemeron (16 k links took 2.75 s). The table
 * costs ~100 bytes a pending ephemeron while the pass runs; only chains
 * pay it.
 *
 * The watch speeds the fixpoint up; it is never what proves it done.
 * Objects greyed by other markers (a worker, a barrier flush), or marked
 * locally on a span this drain took from the global queue (those marks
 * skip greyobject), are not seen, and entries that find no memory are
 * dropped. Marking is complete only after a whole pass marks nothing
 * (gc/mgc.c's mark_done), and a pass that marks nothing has looked at
 * every ephemeron, so an object missed here has its ephemerons resolved
 * by the next pass. With the watch on, greyobject queues objects, not
 * spans, and the drain takes no span from the global queue: a span's
 * owner marks on it locally, past the watch.
 *
 * Nothing is freed during a mark, so the pending ephemerons stay valid
 * after the walk has let the specials' lock go. Only the pass's own
 * thread touches its array and its watch. */
#include "gc/mgc.h"

#include "alloc/sys/addrset.h"

#include <stdlib.h>

/* An ephemeron with EPH_FIN set if it has a finalizer (it is live
 * unmarked). */
#define EPH_FIN ((uintptr_t)1)

/* A pending ephemeron; `next` is the index + 1 of the next one waiting
 * for the same object (0: the last). */
typedef struct eph_node {
	uintptr_t e;
	size_t next;
} eph_node;

/* The first and last ephemeron waiting for an object (indices + 1). */
typedef struct eph_chain {
	size_t head, tail;
} eph_chain;

struct eph_watch {
	addrset awaited; /* object -> eph_chain */
	eph_node *nodes; /* malloc'd */
	size_t nnodes, cap;
	size_t fired;    /* released ephemerons, a stack */
};

/* The pass: its gcw and the pending ephemerons (e | EPH_FIN). */
typedef struct eph_pass {
	gcw *w;
	uintptr_t *pending; /* malloc'd */
	size_t n, cap;
	bool lost;          /* an ephemeron found no room */
} eph_pass;

static struct {
	atomic_word passes, watched, released;
} eph_;

static ephemeron_obj *eph_at(uintptr_t e)
{
	return (ephemeron_obj *)(e & ~EPH_FIN);
}

/* What ephemeron e (| EPH_FIN) needs: 0 if it is ready, and its value
 * marked into w now, or dead (its key gone); else the base of the object
 * it waits for, itself or its key. */
static uintptr_t eph_resolve(gcw *w, uintptr_t e)
{
	ephemeron_obj *eo = eph_at(e);

	if (!(e & EPH_FIN) && !gcmark_is_marked((uintptr_t)eo))
		return (uintptr_t)eo;
	weak_cell *cell = (weak_cell *)aload(&eo->key);
	uintptr_t k = cell ? aload_acq(&cell->target) : 0;
	if (!k)
		return 0;
	if (!gcmark_is_marked(k)) {
		/* Unmarked, so a heap object: awaited by its base, as
		 * greyobject names it. */
		mspan *s = spanof_heap(k);
		return s->base + mspan_object_index(s, k) * s->elemsize;
	}
	uintptr_t v = aload(&eo->value);
	if (v)
		gcmark_value(w, v, true, (uintptr_t)eo, (uintptr_t)&eo->value);
	return 0;
}

static void pending_add(eph_pass *p, uintptr_t e)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 256;
		uintptr_t *a = realloc(p->pending, cap * sizeof(*a));
		if (!a) {
			p->lost = true;
			return;
		}
		p->pending = a;
		p->cap = cap;
	}
	p->pending[p->n++] = e;
}

/* specials_each_ephemeron's callback (the specials' lock held). */
static void eph_visit(void *ctx, uintptr_t e, bool fin)
{
	eph_pass *p = ctx;
	uintptr_t x = e | (fin ? EPH_FIN : 0);

	if (eph_resolve(p->w, x))
		pending_add(p, x);
}

/* Look at the pending ephemerons again, keeping those still waiting;
 * true if any was not. */
static bool pending_recheck(eph_pass *p)
{
	size_t kept = 0;

	for (size_t i = 0; i < p->n; i++)
		if (eph_resolve(p->w, p->pending[i]))
			p->pending[kept++] = p->pending[i];
	bool moved = kept != p->n;
	p->n = kept;
	return moved;
}

/* ---- The watch ----------------------------------------------------------- */

/* Note e as waiting for the object at `on`; on no memory, leave it to
 * the next pass. */
static void watch_add(struct eph_watch *x, uintptr_t on, uintptr_t e)
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
	size_t i = addrset_add(&x->awaited, on, &added);
	if (i == SIZE_MAX)
		return;
	eph_chain *c = addrset_val(&x->awaited, i);
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
	size_t i = addrset_find(&x->awaited, obj);

	if (i == SIZE_MAX)
		return;
	eph_chain c = *(eph_chain *)addrset_val(&x->awaited, i);
	addrset_remove_at(&x->awaited, i);
	x->nodes[c.tail - 1].next = x->fired;
	x->fired = c.head;
}

/* Look again at the ephemerons released since the last call: mark their
 * values, or watch for their keys. False if none was released. Marking
 * may release more, which join the stack. */
static bool watch_fire(gcw *w, struct eph_watch *x)
{
	if (!x->fired)
		return false;
	uintptr_t n = 0;
	while (x->fired) {
		eph_node *node = &x->nodes[x->fired - 1];
		uintptr_t e = node->e, on;
		x->fired = node->next;
		if ((on = eph_resolve(w, e)))
			watch_add(x, on, e);
		n++;
	}
	afetch_add(&eph_.released, n);
	return true;
}

/* After the walk and a drain: look at the pending ephemerons again, and
 * if some are ready now, follow their chains through a watch. The watch
 * is on from the second look: the values it marks must be queued as
 * objects, not spans, for the drain to see what they reach. */
static void follow_chains(gcw *w, eph_pass *p)
{
	struct eph_watch x = {.awaited = {.vsize = sizeof(eph_chain)}};

	w->watch = &x;
	if (pending_recheck(p) && p->n) {
		afetch_add(&eph_.watched, 1);
		for (size_t i = 0; i < p->n; i++) {
			uintptr_t on = eph_resolve(w, p->pending[i]);
			if (on)
				watch_add(&x, on, p->pending[i]);
		}
		/* What is marked may release more, and so on; once
		 * nothing is awaited, the caller drains what is left. */
		while (x.awaited.n || x.fired) {
			gcmark_drain(w, -1);
			if (!watch_fire(w, &x))
				break;
		}
	}
	w->watch = NULL;
	addrset_free(&x.awaited);
	free(x.nodes);
}

bool ephemeron_pass(gcw *w)
{
	uintptr_t before = w->nmarked;
	eph_pass p = {w, NULL, 0, 0, false};

	if (!ephemeron_count())
		return false;
	afetch_add(&eph_.passes, 1);
	specials_each_ephemeron(eph_visit, &p);
	if (w->nmarked != before && p.n && !p.lost) {
		gcmark_drain(w, -1);
		follow_chains(w, &p);
	}
	free(p.pending);
	return w->nmarked != before;
}

ephemeron_counts ephemeron_counters(void)
{
	return (ephemeron_counts){aload(&eph_.passes), aload(&eph_.watched),
	                          aload(&eph_.released)};
}
