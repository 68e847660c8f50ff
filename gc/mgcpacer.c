/* gc/mgcpacer.c: the pacer (Go's mgcpacer.go, simplified): when to start
 * a cycle and how much marking an allocating thread owes.
 *
 *   goal    = marked * (1 + percent/100), at least HEAP_MIN_GOAL, and
 *             under a memory limit at most 95% of it (but never below
 *             marked + 1/16 of it, so the heap cannot collect forever);
 *   trigger = as late as the last mark allows: the goal less what the
 *             mutators allocated while it ran (plus a quarter for
 *             safety), within [7/10, 17/20] of the runway (goal -
 *             marked; Go 1.19 allows up to 19/20, but a mark slowed by a
 *             busy machine then overshoots the goal); 7/10 before the
 *             first mark;
 *   assist  = what an allocating thread owes while marking, recomputed
 *             at each slow path: the work left (the last mark's scan
 *             work less what this one has done) over the runway left,
 *             as Go's assistWorkPerByte (pacer_assist_owed); -1 at or
 *             past the goal. runtime/malloc.c pays it in bounded chunks,
 *             after the workers' credit.
 * Everything here is arithmetic on its arguments and mgc_ fields. */
#include "gc/mgc.h"

#define HEAP_MIN_GOAL ((uintptr_t)4 << 20)

uintptr_t pacer_goal(uintptr_t marked, unsigned percent, size_t limit)
{
	if ((int)percent < 0)
		percent = 100; /* automatic collection is off; any goal */
	uintptr_t goal = marked + marked / 100 * percent +
	                 marked % 100 * percent / 100;
	if (goal < HEAP_MIN_GOAL)
		goal = HEAP_MIN_GOAL;
	if (limit) {
		uintptr_t cap = limit / 20 * 19;
		uintptr_t floor = marked + marked / 16;
		if (goal > cap)
			goal = MAX(cap, floor);
	}
	return goal;
}

uintptr_t pacer_trigger(uintptr_t marked, uintptr_t goal, uintptr_t grown)
{
	uintptr_t runway = goal > marked ? goal - marked : 0;
	uintptr_t lo = marked + runway / 10 * 7;
	uintptr_t hi = MAX(lo, marked + runway / 20 * 17);

	if (grown == PACER_GROWN_UNKNOWN)
		return lo;
	uintptr_t need = grown + grown / 4;
	uintptr_t t = goal > need ? goal - need : 0;
	return t < lo ? lo : t > hi ? hi : t;
}

intptr_t pacer_assist_owed(uintptr_t bytes, uintptr_t live, uintptr_t goal,
                           uintptr_t expect, uintptr_t done)
{
	if (live >= goal)
		return -1;
	if (done >= expect || !bytes)
		return 0;
	double owed = (double)bytes * (double)(expect - done) /
	              (double)(goal - live);
	return owed >= (double)INTPTR_MAX ? INTPTR_MAX : (intptr_t)owed + 1;
}

void pacer_end_cycle(uintptr_t marked, uintptr_t grown)
{
	uintptr_t goal = pacer_goal(marked, (unsigned)aload(&mgc_.percent),
	                            aload(&mheap_.limit));
	uintptr_t trigger = pacer_trigger(marked, goal, grown);

	mgc_.heap_marked = marked;
	mgc_.mark_grown = grown;
	astore(&mgc_.goal, goal);
	astore(&mgc_.trigger, trigger);
}
