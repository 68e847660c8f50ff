/* gc/mgcpacer.c: the pacer (Go's mgcpacer.go, simplified): when to start
 * a cycle and how much marking an allocating thread owes; and the assist
 * that makes it pay (mgc_assist, Go's gcAssistAlloc).
 *
 *   goal    = marked * (1 + percent/100), at least the minimum goal, and
 *             under a memory limit at most 95% of it (but never below
 *             marked + 1/16 of it, so the heap cannot collect forever);
 *   minimum = HEAP_MIN_GOAL (4 MiB, as Go's), raised while the mutators
 *             allocate fast: to what they allocate in MIN_CYCLE_NS at
 *             their measured rate, so that a small heap is not collected
 *             more often than that (Go's fixed minimum runs a cycle every
 *             4 ms at 1 GB/s, and a cycle's fixed costs, the pauses, the
 *             handshakes, the wake-ups of the workers, then dominate);
 *             at most HEAP_MIN_GOAL_MAX * percent/100 and half the
 *             memory limit (pacer_min_goal). It only matters while the
 *             live heap is small: a larger one has a larger goal anyway;
 *   marked  = what the mark found reachable plus what the mutators
 *             allocated (black) while it ran, as Go counts it: the bytes
 *             allocated during a mark do not eat the next runway. (A
 *             "headroom" term that added the mark's growth to the goal
 *             on top of this made up, until the allocation count was
 *             mended, for assists charged 8-32x what was allocated,
 *             which kept marks short and black allocation small.)
 *   trigger = as late as the last mark allows: the goal less what the
 *             mutators would have allocated while it ran had they not
 *             assisted, plus a quarter for safety (pacer_unassisted:
 *             the growth seen over the share of the mark's wall time
 *             their threads spent neither assisting nor parked; the
 *             growth seen alone made a mark the assists throttled the
 *             reason for a late next trigger, and for heavy assists
 *             again), within [7/10, 19/20] of the runway (goal -
 *             marked; Go 1.19's bounds too: the 5% left is the margin
 *             a mark slowed by a busy machine needs); 7/10 before the
 *             first mark;
 *   assist  = what an allocating thread owes while marking, recomputed
 *             at each slow path: the work left (the last mark's scan
 *             work less what this one has done) over the runway left,
 *             as Go's assistWorkPerByte (pacer_assist_owed); -1 at or
 *             past the goal. mgc_assist, called from the allocation
 *             slow path, pays it in bounded chunks, after the workers'
 *             credit. Past the goal with no grey work to be had it parks
 *             the thread (mgc_park_assist).
 * Apart from mgc_assist, everything here is arithmetic on its arguments
 * and mgc_ fields. */
#include "gc/mgc.h"

#define HEAP_MIN_GOAL ((uintptr_t)4 << 20)
#define HEAP_MIN_GOAL_MAX ((uintptr_t)16 << 20)
#define MIN_CYCLE_NS 10e6

uintptr_t pacer_min_goal(unsigned percent, size_t limit, double rate)
{
	if ((int)percent < 0)
		percent = 100;
	double cap = (double)HEAP_MIN_GOAL_MAX / 100 * percent;
	if (limit && cap > limit / 2)
		cap = (double)(limit / 2);
	double want = rate > 0 ? rate * MIN_CYCLE_NS : 0;
	if (want > cap)
		want = cap;
	return want > HEAP_MIN_GOAL ? (uintptr_t)want : HEAP_MIN_GOAL;
}

uintptr_t pacer_goal(uintptr_t marked, unsigned percent, size_t limit,
                     uintptr_t min)
{
	/* GOGC off: with a limit, the limit alone sets the goal (cycles
	 * run only near it, Go's GOGC=off with GOMEMLIMIT); without one,
	 * automatic collection is off and any goal will do. */
	if ((int)percent < 0 && limit)
		return MAX(limit / 20 * 19, marked + marked / 16);
	if ((int)percent < 0)
		percent = 100;
	uintptr_t goal = marked + marked / 100 * percent +
	                 marked % 100 * percent / 100;
	if (goal < min)
		goal = min;
	if (limit) {
		uintptr_t cap = limit / 20 * 19;
		uintptr_t floor = marked + marked / 16;
		if (goal > cap)
			goal = MAX(cap, floor);
	}
	return goal;
}

uintptr_t pacer_unassisted(uintptr_t grown, double share)
{
	if (!(share > 0.01))
		share = 0.01;
	double g = (double)grown / (share < 1 ? share : 1);
	/* pacer_trigger adds a quarter: no overflow there. */
	return g >= (double)(UINTPTR_MAX / 4) ? UINTPTR_MAX / 4 :
	       (uintptr_t)g;
}

uintptr_t pacer_trigger(uintptr_t marked, uintptr_t goal, uintptr_t grown)
{
	uintptr_t runway = goal > marked ? goal - marked : 0;
	uintptr_t lo = marked + runway / 10 * 7;
	uintptr_t hi = MAX(lo, marked + runway / 20 * 19);

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

void pacer_measure(uint64_t now_ns, uintptr_t alloc_bytes)
{
	pacer_clock *c = &mgc_.pacer_clock;

	if (c->end_ns && now_ns > c->end_ns) {
		double rate = (double)(alloc_bytes - c->alloc_bytes) /
		              (double)(now_ns - c->end_ns);
		/* Smoothed over about four cycles, so that one burst or one
		 * pause of the program does not swing the minimum. */
		c->rate = c->rate ? (3 * c->rate + rate) / 4 : rate;
	}
	c->end_ns = now_ns;
	c->alloc_bytes = alloc_bytes;
}

void pacer_end_cycle(uintptr_t marked, uintptr_t grown)
{
	unsigned percent = (unsigned)aload(&mgc_.percent);
	size_t limit = aload(&mheap_.limit);
	uintptr_t min = pacer_min_goal(percent, limit, mgc_.pacer_clock.rate);
	uintptr_t goal = pacer_goal(marked, percent, limit, min);
	uintptr_t trigger = pacer_trigger(marked, goal, grown);

	mgc_.heap_marked = marked;
	mgc_.mark_grown = grown;
	mgc_.min_goal = min;
	astore(&mgc_.goal, goal);
	astore(&mgc_.trigger, trigger);
}

/* An assist does at most this much scan work at a time, and stops
 * sooner when it has taken ASSIST_MAX_NS (work whose objects miss the
 * cache, or span visits for one object each, can take a millisecond per
 * chunk), so that no allocation stalls its thread for long; what is owed
 * beyond it is carried to the thread's next slow path. */
#define ASSIST_CHUNK ((intptr_t)32768)
#define ASSIST_MAX_NS ((uint64_t)400000)
/* Both bounds are for a slow path's worth of small objects (up to a
 * span's, ASSIST_SCALE_BYTES); a larger allocation's scale with its size,
 * the time by ASSIST_NS_PER_KIB (about what zeroing it costs), so that
 * the thread is slowed in proportion to what it allocates. With one
 * chunk per allocation whatever its size, a thread making 4 MB objects of
 * pointers paid 500 times less per byte than one making small objects:
 * it ran far past the goal while the mark went on, allocating black, and
 * the next goal grew by as much (peak heaps 2.8 times the goal). */
#define ASSIST_SCALE_BYTES ((uintptr_t)8192)
#define ASSIST_HELP_SLOTS ((intptr_t)4096)
#define ASSIST_NS_PER_KIB ((uint64_t)256)
/* An assist that runs does at least this much (Go's gcOverAssistWork);
 * the surplus is the thread's credit (a negative debt) for its next
 * allocations, so that a thread allocating small objects does not stop
 * for a sliver of work at every slow path. */
#define ASSIST_MIN ((intptr_t)8192)

void mgc_assist(mgc_thread *m, uintptr_t bytes)
{
	if (aload_acq(&mgc_.phase) != GCPHASE_MARK) {
		m->assist_debt = 0;
		return;
	}
	uintptr_t goal = aload(&mgc_.goal);
	uintptr_t expect = mgc_.last_scan_work ? mgc_.last_scan_work :
	                   goal / 2 / WORD_SIZE + 1; /* first mark */
	intptr_t owed = pacer_assist_owed(bytes,
	                                  aload(&mheap_.stats.heap_live),
	                                  goal, expect,
	                                  aload(&gcwork_.scan_done));
	/* Past the goal (owed -1) marking is behind, the workers got too
	 * little CPU: help a chunk at every slow path, or, with nothing to
	 * help with, wait for the mark (mgc_park_assist). */
	bool behind = owed < 0;
	if (owed > 0)
		m->assist_debt = m->assist_debt > 0 &&
		                 owed > INTPTR_MAX - m->assist_debt ?
		                 INTPTR_MAX : m->assist_debt + owed;
	/* Background credit first: what the workers scanned ahead of the
	 * mutators pays for this (Go's bgScanCredit). */
	uintptr_t c;
	while (m->assist_debt > 0 && (c = aload(&mgc_.bg_credit))) {
		uintptr_t take = MIN(c, (uintptr_t)m->assist_debt);
		if (acas(&mgc_.bg_credit, c, c - take))
			m->assist_debt -= (intptr_t)take;
	}
	if (m->assist_debt <= 0 && !behind)
		return;
	uintptr_t scale = MIN(MAX(bytes / ASSIST_SCALE_BYTES, 1),
	                      (uintptr_t)1 << 20);
	intptr_t chunk = ASSIST_CHUNK * (intptr_t)scale;
	intptr_t pay = behind ? chunk :
	               MIN(MAX(m->assist_debt, ASSIST_MIN), chunk);
	uint64_t t0 = gcstats_cpu_ns();
	afetch_add(&mgc_.assisting, 1);
	m->gcw.deadline_ns = gcstats_now_ns() + ASSIST_MAX_NS +
	                     (scale > 1 ? bytes / 1024 * ASSIST_NS_PER_KIB : 0);
	m->gcw.expired = false;
	intptr_t done = gcmark_drain(&m->gcw, pay);
	/* No grey work left: help with the globals' scan if it is under
	 * way (as Go's assists take root jobs), a slot a unit, at most a
	 * few batches (the scan does not look at the clock: 4096 slots
	 * that miss the cache take ~0.4 ms). */
	if (done < pay && !m->gcw.expired && aload(&mgc_.globals_done) == 1)
		done += (intptr_t)mgc_.ops->help_globals(
			&m->gcw, (size_t)MIN(pay - done, ASSIST_HELP_SLOTS));
	m->gcw.deadline_ns = 0;
	gcw_dispose(&m->gcw);
	afetch_add(&mgc_.assisting, (uintptr_t)-1);
	gcstats_assist(gcstats_cpu_ns() - t0);
	/* Nothing left to scan for now: nothing more can be owed. */
	m->assist_debt = done < pay && !m->gcw.expired ?
	                 0 : m->assist_debt - done;
	if (behind && done == 0)
		mgc_park_assist();
}
