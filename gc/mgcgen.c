/* gc/mgcgen.c: generational collection with sticky mark bits: minor
 * marks, which trace only from the roots and the dirty cards, and the
 * policy that chooses between minor and major marks.
 *
 * Old objects are those the last mark found live (and those it allocated
 * black). A minor mark starts with them all marked and scanned: the sweep
 * before it left their bits set (mspan_gen_.sticky), so it traces only
 * the young objects reachable from the roots or from an old object, and
 * the sweep after it frees only young ones. An old object that dies is
 * freed by the next major mark, which starts from clear bits as every
 * mark did before.
 *
 * The remembered set is the card table (alloc/mcard.h): with generational
 * collection on, every pointer store dirties its slot's card. A minor
 * mark's card job clears each dirty card and scans the card's slots in
 * old objects (gcmark_scan_old): at its start, every old-to-young pointer
 * lies in a dirty card, because
 *   - a pointer stored since the last mark's termination dirtied its card
 *     (cards are on from the termination of the major mark that precedes
 *     the first minor one, and the switch changes only at terminations);
 *   - a pointer in place at that termination pointed from a marked object
 *     to a marked one: the last mark was complete (a minor one too, given
 *     this invariant when it began), so every object that a marked object
 *     points to is marked, and old now;
 *   - a card cleared by a mark that a store dirtied during that mark
 *     lost nothing: the value stored was reachable when the mark began or
 *     was allocated since, so that mark marked it (the hybrid barrier).
 * Stores during a minor mark go through the marking barrier as in any
 * mark. A major mark clears every card (the cards job), so that the next
 * minor one scans only what was stored since.
 *
 * Policy (mgcgen_end, at mark termination, for the next mark): minor
 * while generational collection is on, the old generation has used less
 * than half of the runway the last major mark's goal gave (the live bytes
 * a minor mark finds include the old objects that died since), and no
 * memory limit is near; major otherwise, and for every forced collection
 * (gc_collect), which runs the minor mark the sweep has prepared first
 * (clearing the bits the sweep left set instead would race with sweeps
 * still finishing: only a stopped world excludes them). The pacer bases
 * a minor mark's goal on what it found, capped (mgcgen_paced) a half
 * runway above the last major mark's goal. */
#include "gc/mgc.h"

#include "alloc/mcard.h"

/* Dirty cards scanned between publications of the job's grey objects, so
 * that the other markers get a share while a large card set is scanned. */
#define CARDS_PER_PUBLISH 256

/* The first arena at or above `from`, or NULL (arenas are never freed;
 * the list is read under its lock). */
static heap_arena *arena_from(uintptr_t from)
{
	heap_arena *r = NULL;

	mutex_lock(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next)
		if (a->base >= from) {
			r = a;
			break;
		}
	mutex_unlock(&mheap_.lock);
	return r;
}

/* Scan the old objects' slots in the card at `card`, a minor mark's root;
 * *sp caches the span of the last card (dirty cards come in runs). */
static uintptr_t scan_card(gcw *w, uintptr_t card, mspan **sp)
{
	mspan *s = *sp;
	if (!s || card - s->base >= s->npages * PAGE_SIZE)
		*sp = s = spanof(card);
	if (!s || s->state != MSPAN_INUSE || spanclass_noscan(s->spc))
		return 0;
	return gcmark_scan_old(w, s, card, card + CARD_BYTES);
}

void mgcgen_cards(gcw *w)
{
	bool minor = aload(&mgc_.minor);

	if (!minor && !aload(&mgc_.cards_used))
		return;
	uintptr_t n = 0;
	mspan *last = NULL;
	heap_arena *a;
	for (uintptr_t from = 0; (a = arena_from(from));
	     from = a->base + ARENA_BYTES) {
		atomic_word *cw = (atomic_word *)a->cards;
		for (size_t k = 0; k < CARDS_PER_ARENA / sizeof(*cw); k++) {
			uintptr_t v = aload(&cw[k]);
			if (!v)
				continue;
			astore(&cw[k], 0);
			if (!minor)
				continue;
			/* The clear before the reads: a store that follows
			 * them dirties the card again. */
			afence();
			for (unsigned b = 0; b < sizeof(v); b++) {
				if (!((v >> (8 * b)) & 0xff))
					continue;
				uintptr_t card = a->base +
				                 (k * sizeof(v) + b) *
				                 CARD_BYTES;
				w->scan_work += scan_card(w, card, &last);
				if (++n % CARDS_PER_PUBLISH == 0)
					gcw_dispose(w);
			}
		}
	}
	afetch_add(&mgc_.cards_scanned, n);
}

/* An allocated young object at v (not live at the last sweep)? */
static bool is_young(uintptr_t v)
{
	mspan *s = spanof_heap(v);
	if (!s)
		return false;
	uintptr_t i = mspan_object_index(s, v);
	return !bitmap_get(s->alloc_bits, i) && i < aload(&s->freeindex);
}

/* mgcgen_verify's walk: every pointer slot of every old object. */
static void verify_span(mspan *s, void *arg)
{
	(void)arg;
	if (spanclass_noscan(s->spc))
		return;
	for (uintptr_t i = 0; i < s->nelems; i++) {
		if (!bitmap_get(s->alloc_bits, i))
			continue;
		uintptr_t obj = s->base + i * s->elemsize, *slot, v;
		ptriter it;
		mspan_ptriter(s, obj, &it);
		while ((slot = ptriter_next(&it)))
			if ((v = *slot) && is_young(v) &&
			    !mcard_is_dirty((uintptr_t)slot))
				fatal("generational: old object %p points to "
				      "young %p from slot %p, and the slot's "
				      "card is clean: a minor mark would miss "
				      "it (a store without gc_write?)",
				      (void *)obj, (void *)v, (void *)slot);
	}
}

void mgcgen_verify(void)
{
	if (aload(&mspan_gen_.sticky))
		mheap_each_span(verify_span, NULL);
}

void mgcgen_start(void)
{
	bool minor = aload(&mspan_gen_.sticky);

	astore(&mgc_.minor, minor);
	astore(&gcwork_.bytes_marked,
	       minor ? aload(&mspan_gen_.premarked) : 0);
	astore(&mspan_gen_.premarked, 0);
	if (minor)
		afetch_add(&mgc_.minors, 1);
}

void mgcgen_end(uintptr_t marked, size_t limit)
{
	bool minor = aload(&mgc_.minor);
	bool want = aload(&mgc_.gen_want);

	if (!minor) {
		astore(&mgc_.last_major, aload(&mgc_.cycles) + 1);
		mgc_.major_marked = marked;
		mgc_.major_scan_work = mgc_.last_scan_work;
	} else {
		mgc_.minor_scan_work = mgc_.last_scan_work;
	}
	/* Cards on from here, or off: while on, every store after this
	 * termination is recorded. */
	wbbuf_set_bit(GCBAR_CARDS, want);
	if (want)
		astore(&mgc_.cards_used, 1);
	/* A thread in gc_collect waits for a major mark: after a minor one
	 * the next is major for it (it goes round again), and so is the
	 * next after a major one if a thread waits for that one (it
	 * called during this mark; when the next was minor regardless, a
	 * call during a major mark waited through three). */
	bool waited = aload(&mgc_.major_target) >= aload(&mgc_.cycles) + 2 ||
	              (minor && aload(&mgc_.major_wanted));
	bool next = want && !(limit && marked > limit / 2) &&
	            (!waited || aload(&mgc_.minor_test));
	if (next && minor) {
		/* The old generation's share of the runway. */
		uintptr_t base = mgc_.major_marked, goal = mgc_.major_goal;
		uintptr_t runway = goal > base ? goal - base : 0;
		next = marked <= base + runway / 2;
	}
	astore(&mspan_gen_.sticky, next);
	/* The assists' estimate of the next mark's work. */
	mgc_.last_scan_work = next && mgc_.minor_scan_work ?
	                      mgc_.minor_scan_work : mgc_.major_scan_work;
}

void mgcgen_paced(void)
{
	if (!aload(&mgc_.minor)) {
		mgc_.major_goal = aload(&mgc_.goal);
		return;
	}
	/* After a minor mark the young get a whole runway again, but the
	 * heap may outgrow the last major mark's goal by half a runway at
	 * most (the old objects that died since are in what the minor
	 * marks find), or, once what the minor mark found is past that,
	 * by one runway over it: a major mark follows then, and needs
	 * room to run in (a cap under the live heap had it start at once
	 * and every allocation assist). */
	uintptr_t base = mgc_.major_marked, goal = mgc_.major_goal;
	uintptr_t runway = goal > base ? goal - base : 0;
	uintptr_t cap = MAX(goal + runway / 2, mgc_.heap_marked + runway);
	if (aload(&mgc_.goal) > cap) {
		astore(&mgc_.goal, cap);
		astore(&mgc_.trigger, pacer_trigger(mgc_.heap_marked, cap,
		                                    mgc_.mark_grown));
	}
}
