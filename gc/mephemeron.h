/* gc/mephemeron.h: the ephemeron fixpoint (gc/mephemeron.c). */
#ifndef GCHEAP_MEPHEMERON_H
#define GCHEAP_MEPHEMERON_H

#include "gc/mgcwork.h"

/* The generation of the running mark's table (0: none). A span holding
 * an object that an ephemeron waits for is stamped with it (eph_gen). */
extern atomic_word ephemeron_gen;

/* World stopped: a mark (or checkmark's re-mark) begins, with a new
 * table; it ends (the markers stop calling in); after the world
 * restarts, the ended mark's table is freed. */
void ephemeron_mark_begin(void);
void ephemeron_mark_end(void);
void ephemeron_release(void);

/* One ephemeron pass: the mark's first walks every ephemeron, marking
 * the values of the live ones whose keys are marked and putting the
 * others in the table; every pass then looks again at those whose
 * awaited object was marked since, and drains, until none is left.
 * True if it marked anything: marking is complete only after a pass
 * that marks nothing (gc/mgc.c's mark_done). */
bool ephemeron_pass(gcw *w);

/* The stopped check, after a pass that marked nothing: settle (marking
 * into w, at most EPH_SETTLE_BUDGET units of work, each ephemeron looked
 * at counting 16) what was fired since; true if nothing is left. Without
 * a whole table (no memory), true if no object was marked since the count
 * was `epoch` (gcwork_.nmarked) and no finalizer set since the pass began
 * on an ephemeron the table does not hold. */
#define EPH_SETTLE_BUDGET 4096
bool ephemeron_settled(gcw *w, uintptr_t epoch);

/* A marker set the mark bit of the object at obj (its base), on a span
 * stamped with the running mark's generation. */
void ephemeron_marked(uintptr_t obj);

/* The markers' filter: call ephemeron_marked only for a stamped span. */
static inline void ephemeron_check(const mspan *s, uintptr_t obj)
{
	uintptr_t g = aload(&s->eph_gen);

	if (unlikely(g != 0) && g == aload(&ephemeron_gen))
		ephemeron_marked(obj);
}

/* A finalizer was just set on the object at obj (gc/mfinal.c), with no
 * lock held: an ephemeron that waits for itself is live now. */
void ephemeron_finalizer_added(uintptr_t obj);

/* Tests: counters since the start: the passes; the walks of every
 * ephemeron among them (one a mark, unless the table found no memory);
 * and the ephemerons fired (their awaited object marked) and looked at
 * again. */
typedef struct ephemeron_counts {
	uintptr_t passes, walks, released;
} ephemeron_counts;
ephemeron_counts ephemeron_counters(void);

/* Tests: at most `nodes` pending ephemerons a mark's table holds (as if
 * memory ran out past them; UINTPTR_MAX: no limit), and whether the
 * running or last mark's table lost one. */
void ephemeron_test_room(uintptr_t nodes);
bool ephemeron_lost(void);

#endif
