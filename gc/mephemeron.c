/* gc/mephemeron.c: the ephemeron fixpoint: marking the value of every
 * live ephemeron whose key is marked, with one walk of the ephemerons a
 * mark, however they are chained and whoever marks their keys.
 *
 * The first pass of a mark walks the ephemerons (gc/mfinal.c's records).
 * A live one (marked, or with a finalizer, which keeps it whole) whose
 * key is marked has its value marked at once; any other whose key lives
 * is *pending*, waiting for an object to be marked: itself if it is not,
 * else its key. Each pending ephemeron goes into the mark's table, from
 * the awaited object to the ephemerons waiting for it, and the object's
 * span is stamped with the table's generation (mspan.eph_gen). Every
 * marker that sets an object's mark bit, in greyobject or when it
 * publishes a span's local marks (gc/mgcmark.c), and finds the span
 * stamped, calls ephemeron_marked: an awaited object's ephemerons are
 * *fired*, moved to a stack that the next pass takes, looks at again
 * (marking values, or waiting for the key now) and drains, until
 * nothing more fires. So a chain of any length closes in one pass, and
 * a mutator that marks keys meanwhile (reading weak handles, as an
 * interning table does) costs what it marks, not a walk of every
 * ephemeron each time (a weak map of 400,000 such entries took 50-70
 * walks of 30-190 ms a mark).
 *
 * Arming races with marking: the pass stamps the span (a full barrier
 * after it) and then looks at the awaited object's mark bit; a marker
 * sets the bit (a full-barrier fetch-or) and then reads the stamp. One
 * of them sees the other: an object marked while it was being added is
 * fired by the pass itself. Firing twice finds the table entry gone.
 *
 * Marking is complete when a pass fires nothing and, at the stopped
 * check, nothing has fired since (ephemeron_settled, which settles a few
 * late ones inside the stop). Ephemerons made while marking shade their
 * values; setting a value shades it. The walk reads whether an
 * ephemeron has a finalizer; one set on a waiting ephemeron later in the
 * mark fires it with the finalizer noted (ephemeron_finalizer_added: the
 * thread that set it may have held it only on a stack not yet scanned,
 * and dropped it since). If the table finds no memory, it is
 * *lost*: every later pass of the mark walks all ephemerons again, and
 * the stopped check falls back to the count of objects marked
 * (gcwork_.nmarked) not moving since the last pass began.
 *
 * Nothing is freed during a mark, so a waiting ephemeron and its
 * awaited object stay valid until the mark ends. The table is the
 * mark's: a new generation at each mark's start (and checkmark's
 * re-mark), hooks off at its end, memory returned after the world
 * restarts (ephemeron_release). One thread runs passes at a time
 * (mark_done's holder, or the stopper); ephtab_.lock guards the table
 * against the markers' ephemeron_marked calls. */
#include "gc/mgc.h"

#include "alloc/sys/addrset.h"

#include <stdlib.h>

/* An ephemeron with EPH_FIN set if it has a finalizer (it is live
 * unmarked). */
#define EPH_FIN ((uintptr_t)1)

/* A pending ephemeron; `next` is the index + 1 of the next one waiting
 * for the same object, or on the fired stack (0: the last). */
typedef struct eph_node {
	uintptr_t e;
	size_t next;
} eph_node;

/* The first and last ephemeron waiting for an object (indices + 1). */
typedef struct eph_chain {
	size_t head, tail;
} eph_chain;

/* A pending ephemeron found by the walk, before it is armed. */
typedef struct eph_wait {
	uintptr_t on, e;
} eph_wait;

atomic_word ephemeron_gen;

static struct {
	gc_mutex lock;
	uintptr_t last_gen;  /* the last ephemeron_gen given out */
	/* Written by the pass's thread (lost: under the lock too), read by
	 * the next pass's, which may be another. */
	atomic_word built;   /* this mark's walk has begun */
	atomic_word lost;    /* an ephemeron found no room */
	bool building;       /* walking and arming (under the lock) */
	addrset awaited;     /* object -> eph_chain */
	eph_node *nodes;     /* malloc'd */
	size_t nnodes, cap;
	size_t fired;        /* released nodes, a stack */
	atomic_word nfired;  /* fired != 0, read without the lock */
	/* Finalizers set on ephemerons the table could not note, ever, and
	 * the count when the last pass began (the pass's thread). */
	atomic_word fin_missed;
	atomic_word pass_missed;
	atomic_word test_room; /* nodes a mark may make (tests: fewer) */
	atomic_word passes, walks, released;
} ephtab_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
             .awaited = {.vsize = sizeof(eph_chain)},
             .test_room = UINTPTR_MAX};

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
		/* Unmarked, so a heap object: awaited by its base, as the
		 * markers name it. */
		mspan *s = spanof_heap(k);
		return s->base + mspan_object_index(s, k) * s->elemsize;
	}
	uintptr_t v = aload(&eo->value);
	if (v)
		gcmark_value(w, v, true, (uintptr_t)eo, (uintptr_t)&eo->value);
	return 0;
}

/* ---- The table (ephtab_.lock held) --------------------------------------- */

/* A new node for e, not yet in any chain; 0 when there is no room. */
static size_t node_new(uintptr_t e)
{
	if (ephtab_.nnodes >= (size_t)aload(&ephtab_.test_room))
		return 0;
	if (ephtab_.nnodes == ephtab_.cap) {
		size_t cap = ephtab_.cap ? 2 * ephtab_.cap : 256;
		eph_node *n = realloc(ephtab_.nodes, cap * sizeof(*n));
		if (!n)
			return 0;
		ephtab_.nodes = n;
		ephtab_.cap = cap;
	}
	ephtab_.nodes[ephtab_.nnodes] = (eph_node){e, 0};
	return ++ephtab_.nnodes;
}

/* Node n waits for the object at `on`, whose span is stamped; false
 * when there is no room. */
static bool chain_add(uintptr_t on, size_t n)
{
	bool added;
	size_t i = addrset_add(&ephtab_.awaited, on, &added);

	if (i == SIZE_MAX)
		return false;
	eph_chain *c = addrset_val(&ephtab_.awaited, i);
	ephtab_.nodes[n - 1].next = 0;
	if (added)
		c->head = n;
	else
		ephtab_.nodes[c->tail - 1].next = n;
	c->tail = n;
	astore(&spanof_heap(on)->eph_gen, aload(&ephemeron_gen));
	return true;
}

/* The object at obj was marked: fire what waits for it. */
static void fire_locked(uintptr_t obj)
{
	if (!ephtab_.awaited.n)
		return;
	size_t i = addrset_find(&ephtab_.awaited, obj);
	if (i == SIZE_MAX)
		return;
	eph_chain c = *(eph_chain *)addrset_val(&ephtab_.awaited, i);
	addrset_remove_at(&ephtab_.awaited, i);
	ephtab_.nodes[c.tail - 1].next = ephtab_.fired;
	ephtab_.fired = c.head;
	astore(&ephtab_.nfired, 1);
}

void ephemeron_marked(uintptr_t obj)
{
	mutex_lock(&ephtab_.lock);
	if (aload(&ephemeron_gen))
		fire_locked(obj);
	mutex_unlock(&ephtab_.lock);
}

/* Free the table's memory (its lock held, the table empty of meaning:
 * between marks, or at a new mark's start). */
static void table_clear(void)
{
	addrset_free(&ephtab_.awaited);
	free(ephtab_.nodes);
	ephtab_.nodes = NULL;
	ephtab_.nnodes = ephtab_.cap = 0;
	ephtab_.fired = 0;
	astore(&ephtab_.nfired, 0);
}

/* ---- Arming -------------------------------------------------------------- */

/* Arm the waits a[0..n): into the table a batch at a time (markers wait
 * for the lock no longer than one batch takes), then, past a full
 * barrier, a look at each awaited object: one marked meanwhile may have
 * missed its stamp, and is fired here. */
#define ARM_BATCH 256

static void arm(const eph_wait *a, size_t n)
{
	for (size_t at = 0; at < n; at += ARM_BATCH) {
		size_t end = MIN(n, at + ARM_BATCH);
		mutex_lock(&ephtab_.lock);
		for (size_t i = at; i < end; i++) {
			size_t k = aload(&ephtab_.lost) ? 0 : node_new(a[i].e);
			if (!k || !chain_add(a[i].on, k))
				astore(&ephtab_.lost, 1);
		}
		mutex_unlock(&ephtab_.lock);
		afence();
		for (size_t i = at; i < end; i++) {
			if (!gcmark_is_marked(a[i].on))
				continue;
			mutex_lock(&ephtab_.lock);
			fire_locked(a[i].on);
			mutex_unlock(&ephtab_.lock);
		}
	}
}

/* Node n (off every chain) waits for `on` now. */
static void rearm(size_t n, uintptr_t on)
{
	mutex_lock(&ephtab_.lock);
	if (!chain_add(on, n))
		astore(&ephtab_.lost, 1);
	mutex_unlock(&ephtab_.lock);
	afence();
	if (gcmark_is_marked(on)) {
		mutex_lock(&ephtab_.lock);
		fire_locked(on);
		mutex_unlock(&ephtab_.lock);
	}
}

/* ---- Passes -------------------------------------------------------------- */

/* The walk's pending ephemerons. */
typedef struct eph_walk {
	gcw *w;
	eph_wait *a; /* malloc'd */
	size_t n, cap;
	bool lost;
} eph_walk;

/* specials_each_ephemeron's callback (the specials' lock held). */
static void eph_visit(void *ctx, uintptr_t e, bool fin)
{
	eph_walk *k = ctx;
	uintptr_t x = e | (fin ? EPH_FIN : 0);
	uintptr_t on = eph_resolve(k->w, x);

	if (!on)
		return;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		eph_wait *a = realloc(k->a, cap * sizeof(*a));
		if (!a) {
			k->lost = true;
			return;
		}
		k->a = a;
		k->cap = cap;
	}
	k->a[k->n++] = (eph_wait){on, x};
}

/* Walk every ephemeron: mark the ready ones' values, and (arming) put
 * the others in the table. */
static void walk(gcw *w, bool arming)
{
	eph_walk k = {w, NULL, 0, 0, false};

	afetch_add(&ephtab_.walks, 1);
	if (arming) {
		mutex_lock(&ephtab_.lock);
		ephtab_.building = true;
		mutex_unlock(&ephtab_.lock);
	}
	specials_each_ephemeron(eph_visit, &k);
	if (arming) {
		if (k.lost)
			astore(&ephtab_.lost, 1);
		arm(k.a, k.n);
		mutex_lock(&ephtab_.lock);
		ephtab_.building = false;
		mutex_unlock(&ephtab_.lock);
	}
	free(k.a);
}

/* Take at most max fired nodes off the stack (the rest stay); the first
 * taken, or 0, and how many in *k. */
static size_t take_fired(size_t max, uintptr_t *k)
{
	mutex_lock(&ephtab_.lock);
	size_t head = ephtab_.fired, n = head, last = 0;
	for (*k = 0; n && *k < max; ++*k) {
		last = n;
		n = ephtab_.nodes[n - 1].next;
	}
	if (last)
		ephtab_.nodes[last - 1].next = 0;
	ephtab_.fired = n;
	astore(&ephtab_.nfired, n != 0);
	mutex_unlock(&ephtab_.lock);
	return *k ? head : 0;
}

/* Look again at the fired ephemerons and drain what that marks, until
 * nothing more fires; true then, false if the budget (units of work, a
 * node EPH_NODE_WORK of them; negative: none) ran out first. */
#define EPH_NODE_WORK 16

static bool settle(gcw *w, intptr_t budget)
{
	while (aload(&ephtab_.nfired)) {
		uintptr_t k;
		size_t n = take_fired(budget < 0 ? SIZE_MAX :
		                      (size_t)budget / EPH_NODE_WORK + 1, &k);
		while (n) {
			/* Off the stack: only this thread touches it, and
			 * only this thread grows the array. */
			eph_node node = ephtab_.nodes[n - 1];
			uintptr_t on = eph_resolve(w, node.e);
			if (on)
				rearm(n, on);
			n = node.next;
		}
		afetch_add(&ephtab_.released, k);
		if (budget >= 0 &&
		    (budget -= (intptr_t)k * EPH_NODE_WORK) <= 0)
			return false;
		intptr_t done = gcmark_drain(w, budget);
		if (budget >= 0 && (budget -= done) <= 0)
			return false;
	}
	return true;
}

bool ephemeron_pass(gcw *w)
{
	uintptr_t before = w->nmarked;

	if (!ephemeron_count())
		return false;
	afetch_add(&ephtab_.passes, 1);
	uintptr_t lost = aload(&ephtab_.lost);
	astore(&ephtab_.pass_missed, aload(&ephtab_.fin_missed));
	if (!aload(&ephtab_.built)) {
		astore(&ephtab_.built, 1);
		walk(w, true);
	} else if (lost) {
		walk(w, false);
	}
	gcmark_drain(w, -1);
	settle(w, -1);
	/* A finalizer the table could not note, or a table that lost an
	 * ephemeron, during this pass: another pass walks them all. */
	return w->nmarked != before || aload(&ephtab_.lost) != lost ||
	       aload(&ephtab_.fin_missed) != aload(&ephtab_.pass_missed);
}

bool ephemeron_settled(gcw *w, uintptr_t epoch)
{
	if (!aload(&ephtab_.built) || aload(&ephtab_.lost))
		return aload(&gcwork_.nmarked) == epoch &&
		       aload(&ephtab_.fin_missed) ==
		       aload(&ephtab_.pass_missed);
	return settle(w, EPH_SETTLE_BUDGET) && gcw_empty(w);
}

void ephemeron_finalizer_added(uintptr_t obj)
{
	mutex_lock(&ephtab_.lock);
	size_t i = aload(&ephemeron_gen) && ephtab_.awaited.n ?
	           addrset_find(&ephtab_.awaited, obj) : SIZE_MAX;
	if (i == SIZE_MAX && (ephtab_.building || aload(&ephtab_.lost))) {
		/* The walk may have read it without its finalizer and not
		 * armed it yet, or no table holds it: every later pass of
		 * this mark walks every ephemeron, and the pass or stopped
		 * check that overlapped this call sees the count move. */
		astore(&ephtab_.lost, 1);
		afetch_add(&ephtab_.fin_missed, 1);
	} else if (i != SIZE_MAX) {
		/* Those waiting for themselves have a finalizer now. */
		eph_chain c = *(eph_chain *)addrset_val(&ephtab_.awaited, i);
		for (size_t n = c.head; n; n = ephtab_.nodes[n - 1].next)
			if (eph_at(ephtab_.nodes[n - 1].e) ==
			    (ephemeron_obj *)obj)
				ephtab_.nodes[n - 1].e |= EPH_FIN;
		fire_locked(obj);
	}
	mutex_unlock(&ephtab_.lock);
}

/* ---- A mark's table ------------------------------------------------------ */

void ephemeron_mark_begin(void)
{
	mutex_lock(&ephtab_.lock);
	table_clear();
	/* Never 0, never a stale stamp's. */
	astore(&ephemeron_gen, ++ephtab_.last_gen);
	astore(&ephtab_.built, 0);
	astore(&ephtab_.lost, 0);
	mutex_unlock(&ephtab_.lock);
}

void ephemeron_mark_end(void)
{
	mutex_lock(&ephtab_.lock);
	astore(&ephemeron_gen, 0);
	mutex_unlock(&ephtab_.lock);
}

void ephemeron_release(void)
{
	mutex_lock(&ephtab_.lock);
	if (!aload(&ephemeron_gen))
		table_clear();
	mutex_unlock(&ephtab_.lock);
}

void ephemeron_test_room(uintptr_t nodes)
{
	astore(&ephtab_.test_room, nodes);
}

bool ephemeron_lost(void)
{
	return aload(&ephtab_.lost) != 0;
}

ephemeron_counts ephemeron_counters(void)
{
	return (ephemeron_counts){aload(&ephtab_.passes),
	                          aload(&ephtab_.walks),
	                          aload(&ephtab_.released)};
}
