/* gc/mgc.c: the collection cycle (Go's mgc.go): starting a cycle, the
 * background mark worker, mark termination, the background sweeper (which
 * also faults the heap's memory in ahead of use), and mgc_run_cycle behind
 * gc_collect().
 *
 *  gc_start            sweep termination: finish the last cycle's sweep
 *                      (world running), then stop the world: phase MARK,
 *                      write barrier and allocate-black on, every thread
 *                      asked to scan its own stack; start the world.
 *                      Threads that pass the trigger meanwhile help
 *                      sweep, then wait for the start (wait_start).
 *  mark workers        run the globals root job, scan blocked threads'
 *                      stacks for them, drain grey objects; a worker that
 *                      finds nothing tries mark_done (one at a time).
 *                      ncpu/4 are dedicated (one fractional worker below
 *                      4 CPUs); the others are idle workers, which mark
 *                      only while a CPU would otherwise be idle or a
 *                      thread waits for the cycle. They share work
 *                      through the global full list (gcw_balance).
 *  mark_done           ragged handshake: every thread flushes its barrier
 *                      buffer and work; if anything came out, mark more.
 *                      Else stop the world, close the marker gate, check
 *                      that every root job is done and flush again (the
 *                      buffers of stopped threads): still nothing means
 *                      marking is complete, otherwise start the world and
 *                      go on.
 *  mark_termination    world stopped: checkmark (debug), barrier and
 *                      allocate-black off, pacer, sweepgen += 2, every
 *                      thread must release its cache before allocating;
 *                      start the world; wake the sweeper.
 *
 * Every stop-the-world phase does work proportional to the number of
 * threads (flags, buffer flushes of at most WBBUF_LEN entries each), never
 * to the heap, except the debug modes (checkmark, verify, stoptheworld).
 *
 * mgc_.lock guards the condition variable and the cycle's bookkeeping; it
 * is never held while the world is being stopped. A cycle is started by
 * the thread that wins the CAS on `starting`.
 *
 * The marker gate. Stopping the world stops the mutators, not the
 * background workers, and a worker holds grey objects in its own gcw
 * while it marks. So a worker marks only inside the gate
 * (markers_enter/markers_leave), with the phase MARK checked inside, and
 * leaves only after publishing its work; the thread that has stopped the
 * world closes the gate and waits until no worker is inside
 * (markers_stop; a worker's drain leaves within ~1024 units of scan work
 * once the gate closes, gcw.preempt) before it decides that marking is
 * complete, and reopens it (markers_start) when it starts the world.
 * Hence, with the gate closed: every grey object is in the global list
 * or in a stopped thread's buffers, and the phase leaves MARK only then,
 * so no worker marks after the mark (into the bits the sweep is using).
 * A worker never blocks inside the gate on what a stopper holds: scans
 * done under the registry lock (stack_scans_done) are published before
 * it is released. */
#include "gc/mgc.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

mgc_state mgc_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                .cond = PTHREAD_COND_INITIALIZER,
                .work_cond = PTHREAD_COND_INITIALIZER};

static atomic_word starting;

/* The cycle callbacks' counters (runtime/notify.c): *w = max(*w, c).
 * Published with the world running, after the event. */
static void note_max(atomic_word *w, uintptr_t c)
{
	uintptr_t old;
	while ((old = aload(w)) < c && !acas(w, old, c))
		;
}

static void wake_all(void)
{
	mutex_lock(&mgc_.lock);
	pthread_cond_broadcast(&mgc_.cond);
	mutex_unlock(&mgc_.lock);
	gcwork_wake_parked();
}

/* A mark has started: the workers too. */
static void wake_workers(void)
{
	mutex_lock(&mgc_.lock);
	pthread_cond_broadcast(&mgc_.work_cond);
	pthread_cond_broadcast(&mgc_.cond);
	mutex_unlock(&mgc_.lock);
}

/* World stopped: every root into w (the stop-the-world mark and
 * checkmark's re-mark). */
static void mark_roots_stopped(gcw *w)
{
	mgc_.ops->mark_globals(w);
	mgc_.ops->mark_threads_stopped(w);
	specials_mark(w);
}

/* World stopped, marking complete: re-mark from the roots in checkmark
 * mode and abort if the concurrent mark missed anything reachable. */
static void checkmark(void)
{
	gcw w = {0};

	gcmark_checkmark_begin();
	ephemeron_mark_begin(); /* a mark of its own, its own table */
	mark_roots_stopped(&w);
	do
		gcmark_drain(&w, -1);
	while (ephemeron_pass(&w));
	gcw_dispose(&w);
	gcmark_checkmark_end();
}

/* World stopped, marking complete: objects that only unregistered
 * globals point to are reported and (rootcheck=1) kept, with everything
 * they reach, before the mark is final. */
static void rootcheck(void)
{
	gcw w = {0};

	if (mgc_.ops->rootcheck(&w)) {
		do
			gcmark_drain(&w, -1);
		while (ephemeron_pass(&w));
	}
	gcw_dispose(&w);
}

/* ---- Mark termination ---------------------------------------------------- */



/* ---- The marker gate (see the top of the file) -------------------------- */

static struct {
	atomic_word inside; /* workers marking: they may hold grey objects */
	atomic_word closed; /* set only by the thread that stopped the world */
} markers;

/* Enter to mark; false (not entered) once the phase is not MARK. */
static bool markers_enter(void)
{
	for (;;) {
		/* Full barriers on both sides (markers_stop): the stopper
		 * sees us inside, or we see the gate closed. */
		afetch_add(&markers.inside, 1);
		if (!aload_acq(&markers.closed)) {
			if (aload_acq(&mgc_.phase) == GCPHASE_MARK)
				return true;
			afetch_add(&markers.inside, (uintptr_t)-1);
			return false;
		}
		afetch_add(&markers.inside, (uintptr_t)-1);
		/* The world is stopped (a checkmark may take long): wait
		 * without taking the stopper's CPU. */
		while (aload_acq(&markers.closed))
			sleep_ns(20000);
	}
}

/* Leave, every grey object this worker held published first. */
static void markers_leave(void)
{
	afetch_add(&markers.inside, (uintptr_t)-1);
}

bool mgc_markers_enter(void)
{
	return markers_enter();
}

void mgc_markers_leave(void)
{
	markers_leave();
}

uintptr_t mgc_markers_inside(void)
{
	return aload_acq(&markers.inside);
}

/* World stopped: close the gate and wait for the workers inside (each is
 * within one slice of leaving, and blocks on nothing the stopper holds). */
static void markers_stop(void)
{
	afetch_add(&markers.closed, 1);
	if (GCHEAP_SABOTAGE == 6)
		return;
	while (aload_acq(&markers.inside))
		sched_yield();
}

static void markers_start(void)
{
	astore_rel(&markers.closed, 0);
}

/* Threads waiting in mgc_run_cycle: their CPUs are free for marking. */
static atomic_word cycle_waiters;

/* World stopped; marking is complete. */
static void mark_termination(void)
{
	astore_rel(&mgc_.phase, GCPHASE_MARKTERM);
	/* Before checkmark, whose re-mark is not the cycle's work. */
	mgc_.last_scan_work = aload(&gcwork_.scan_done);
	if (options_.rootcheck)
		rootcheck();
	if (options_.checkmark)
		checkmark();
	ephemeron_mark_end();
	mfree_check();
	uintptr_t marked = aload(&gcwork_.bytes_marked);
	uintptr_t live = aload(&mheap_.stats.heap_live);
	astore(&mgc_.blackalloc, 0);
	wbbuf_set_barrier(false);
	double share = gcstats_mark_end(live, marked,
	                                (unsigned)mgc_.ops->thread_count());
	astore(&mheap_.stats.heap_live, marked);
	/* The next mark's kind first (the sweepers held off, as it is
	 * theirs to prepare), then the goal (after a minor mark, capped by
	 * the last major one's: mgcgen_paced). */
	sweep_block();
	mutex_lock(&mgc_.lock);
	pacer_measure(gcstats_now_ns(), aload(&mgc_.alloc_bytes));
	mgcgen_end(marked, aload(&mheap_.limit));
	pacer_end_cycle(marked, live > mgc_.mark_start_live ?
	                pacer_unassisted(live - mgc_.mark_start_live, share) :
	                0);
	mgcgen_paced();
	mutex_unlock(&mgc_.lock);
	astore(&mgc_.globals_done, 0);
	astore(&gcwork_.bytes_marked, 0);
	astore(&mgc_.special_bytes, 0);
	/* A forced collection hands every empty span back to the heap. */
	mcentral_set_reserve(!aload(&cycle_waiters));
	/* Flip first: every cached span is now stale, and a thread's cache
	 * flush (which compares with sweepgen) sweeps it. The sweepers are
	 * held off since before mgcgen_end set the sweep's kind. */
	astore_rel(&mheap_.sweepgen, aload(&mheap_.sweepgen) + 2);
	mutex_lock(&mheap_.lock);
	uintptr_t pages = mheap_.stats.inuse_pages;
	mutex_unlock(&mheap_.lock);
	uintptr_t trigger = aload(&mgc_.trigger);
	sweep_pace_start(pages, trigger > marked ? trigger - marked : 0);
	sweep_unblock();
	mgc_.ops->request_cache_flush();
	/* Counted with the world stopped: mgc_run_cycle relies on it. */
	afetch_add(&mgc_.cycles, 1);
	/* Last: a thread that is not stopped with the world (an unattached
	 * gc_collect) may start the next cycle as soon as it sees OFF, and
	 * must then find the new generation to sweep. */
	astore_rel(&mgc_.phase, GCPHASE_OFF);
}

/* The end of a cycle (world running again): timing bookkeeping and the
 * GCHEAP_DEBUG=gctrace=1 line (gc/mgcstats.c). */
static void trace_cycle(void)
{
	gcstats_cycle_end(aload(&mgc_.cycles), aload(&mgc_.goal),
	                  options_.gctrace, aload(&mgc_.minor));
}

/* True (after a 50 us sleep) if mark_done should give way: another
 * worker inside the gate, or an assist draining, may hold grey objects
 * of its own: a stop now would find them once it left (on the
 * probe, 21 stops in 18 cycles did, each a pause for nothing; in heap
 * growth, where assists take the work as fast as it is published, 4-10
 * in a cycle), and a handshake would interrupt the mutators for nothing.
 * A worker tries itself once it runs dry; the caller looks again a
 * little later. (Outside the gate, so with the caller's own work
 * published.) Assists are many and short, and with many threads one may
 * nearly always be draining even with nothing left to mark: the caller
 * gives way to them for at most ASSIST_WAY_NS in a row, then stops the
 * world anyway. (Workers inside the gate it always waits for, as the
 * stop itself would.) Only the mark_done_busy holder calls this. */
#define ASSIST_WAY_NS 100000000
/* Giving way to assists since (gcstats_now_ns); 0: not. */
static atomic_word assist_way_since;

static bool give_way_to_markers(void)
{
	if (GCHEAP_SABOTAGE == 6)
		return false;
	if (!aload_acq(&markers.inside)) {
		if (!aload_acq(&mgc_.assisting)) {
			astore(&assist_way_since, 0);
			return false;
		}
		uint64_t now = gcstats_now_ns();
		uint64_t since = aload(&assist_way_since);
		if (!since)
			astore(&assist_way_since, (uintptr_t)now);
		else if (now - since >= ASSIST_WAY_NS)
			return false; /* until the stop below */
	}
	sleep_ns(50000);
	return true;
}

/* Marking looks finished: confirm it, stopping the world at the end.
 *
 * Ephemerons (gc/mephemeron.c): a pass marks the values of live
 * ephemerons with marked keys, and the others wait in the mark's table
 * for their key (or themselves) to be marked; marking is complete only
 * once a pass marks nothing and, at the stopped check, what the markers
 * fired since then is settled within a small budget (else the mark goes
 * on). Without a whole table (no memory), nothing at all may have been
 * marked since that pass began (gcwork_.nmarked, which counts greyed
 * objects but not black allocations). Either way the stopped check does
 * not grow with the number of ephemerons; the passes run with the world
 * running. An ephemeron made while marking shades its value. */
static void mark_done(void)
{
	for (;;) {
		gcw w = {0};
		if (give_way_to_markers())
			return;
		bool more = mgc_.ops->flush_all();
		if (!markers_enter())
			return; /* someone else finished this mark */
		if (more || !gcwork_global_empty()) {
			gcmark_drain(&w, -1);
			gcw_dispose(&w);
			markers_leave();
			continue;
		}
		uintptr_t epoch = aload(&gcwork_.nmarked);
		bool eph = ephemeron_count() != 0;
		if (eph && ephemeron_pass(&w)) {
			gcmark_drain(&w, -1);
			gcw_dispose(&w);
			markers_leave();
			continue;
		}
		markers_leave();
		if (give_way_to_markers())
			return;
		uint64_t t0 = gcstats_now_ns();
		mgc_.ops->stop_world();
		astore(&assist_way_since, 0);
		if (aload_acq(&mgc_.phase) != GCPHASE_MARK) {
			/* Someone else (a stop-the-world cycle) finished
			 * this mark: terminate exactly once. */
			mgc_.ops->start_world();
			return;
		}
		/* Other workers' grey objects are published once they are
		 * out (preempted by the closing gate within ~1024 units of
		 * scan work); what they published moves nmarked. */
		markers_stop();
		if (GCHEAP_SABOTAGE != 7 &&
		    (mgc_.ops->stack_scans_pending() ||
		     aload_acq(&mgc_.globals_done) != 2)) {
			/* A root job is not done (the caller's look at the
			 * roots was stale): leave it to the workers. */
			markers_start();
			mgc_.ops->start_world();
			gcstats_pause(1, t0);
			return;
		}
		more = mgc_.ops->flush_all_stopped() ||
		       !gcwork_global_empty() ||
		       (eph && !ephemeron_settled(&w, epoch));
		gcw_dispose(&w);
		if (more || !gcwork_global_empty()) {
			/* Work turned up: that was a pause too. */
			markers_start();
			mgc_.ops->start_world();
			gcstats_pause(1, t0);
			continue;
		}
		mark_termination();
		uintptr_t cycle = aload(&mgc_.cycles);
		markers_start();
		mgc_.ops->start_world();
		ephemeron_release();
		if (aload(&mgc_.trace_delay_test))
			sleep_ns(aload(&mgc_.trace_delay_test));
		gcstats_pause(1, t0);
		trace_cycle();
		note_max(&mgc_.ended, cycle);
		note_max(&mgc_.traced, cycle);
		wake_all();
		return;
	}
}

/* Units of scan work (pointer slots) between a worker's checks: ~0.1 ms
 * when the pointers hit the cache, up to ~13 ms when each misses. An
 * idle worker checks more often: while it marks, a mutator that became
 * runnable (one more thread than CPUs) waits for a CPU. */
#define MARK_SLICE 65536
#define IDLE_SLICE 4096

/* Only one worker confirms termination at a time. */
static atomic_word mark_done_busy;
static long ncpus;
/* Workers (Go's gcBgMarkWorker split): ndedicated of them (ncpu/4, at
 * least one) keep to worker_fraction of a CPU (1 from 4 CPUs up, else
 * ncpu/4: the fractional worker); the others, up to nmarkers, are idle
 * workers. nstarted threads exist (mgc_.lock); worker i marks only while
 * i < nmarkers. */
static unsigned ndedicated, nstarted;
static atomic_word nmarkers;
static double worker_fraction;

/* Is a CPU idle, one that a worker outside the gate may mark on? Yes
 * while the running mutators (attached, outside blocking regions) and
 * the workers inside the gate leave one, or while a thread waits for the
 * cycle (gc_collect: a forced collection marks with every CPU). */
static bool cpu_idle(void)
{
	return aload(&cycle_waiters) ||
	       mgc_.ops->mutator_count() + aload(&markers.inside) <
	       (size_t)ncpus;
}

/* One worker's share of the concurrent mark, until marking is done or
 * the worker is no longer wanted. A fractional worker (0 < fraction < 1)
 * sleeps to keep its CPU time near fraction of the wall time since it
 * started, unless a CPU is idle; an idle worker (fraction 0) marks only
 * while a CPU is idle. */
static void mark_concurrently(unsigned id, double fraction)
{
	/* Preempted when the gate closes: a stop waits for no slice. */
	gcw w = {.preempt = &markers.closed, .credit = &mgc_.bg_credit};
	uint64_t t0 = gcstats_now_ns(), c0 = gcstats_cpu_ns(), cprev = c0;

	while (aload_acq(&mgc_.phase) == GCPHASE_MARK &&
	       id < aload(&nmarkers)) {
		if (fraction == 0 && !cpu_idle()) {
			sleep_ns(1000000); /* look again in 1 ms */
			continue;
		}
		/* Outside the gate: it may wait for a stopped world, and
		 * another worker may finish this mark meanwhile and a new
		 * one begin: what it saw is only this mark's if no cycle
		 * ended before the worker got in (issue 15: with two
		 * workers, one went on to terminate the next mark with a
		 * thread's roots still unscanned). */
		uintptr_t cycle = aload_acq(&mgc_.cycles);
		bool roots_done = mgc_.ops->stack_scans_done(&w);
		if (!markers_enter())
			break;
		if (fraction == 0 && !aload(&cycle_waiters) &&
		    mgc_.ops->mutator_count() + aload(&markers.inside) >
		    (size_t)ncpus) {
			/* Another worker entered beside us since cpu_idle:
			 * no CPU is idle after all. */
			gcw_dispose(&w);
			markers_leave();
			sleep_ns(1000000);
			continue;
		}
		if (GCHEAP_SABOTAGE != 7)
			roots_done = roots_done &&
			             aload(&mgc_.cycles) == cycle;
		if (acas(&mgc_.globals_done, 0, 1)) {
			mgc_.ops->mark_globals(&w);
			specials_mark(&w);
			mgcgen_cards(&w);
			gcw_dispose(&w);
			astore_rel(&mgc_.globals_done, 2);
		} else if (aload(&mgc_.globals_done) == 1) {
			mgc_.ops->help_globals(&w, SIZE_MAX);
		}
		roots_done = roots_done && aload_acq(&mgc_.globals_done) == 2;
		intptr_t slice = fraction == 0 && !aload(&cycle_waiters) ?
		                 IDLE_SLICE : MARK_SLICE;
		intptr_t n = gcmark_drain(&w, slice);
		gcw_dispose(&w);
		markers_leave();
		uint64_t c1 = gcstats_cpu_ns();
		gcstats_worker(c1 - cprev);
		cprev = c1;
		if (fraction > 0 && fraction < 1 && !cpu_idle()) {
			uint64_t wall = gcstats_now_ns() - t0;
			uint64_t cpu = gcstats_cpu_ns() - c0;
			double ahead = cpu / fraction - (double)wall;
			if (ahead > 0)
				sleep_ns((uint64_t)MIN(ahead, 10e6));
		}
		if (n >= slice || !gcwork_global_empty())
			continue;
		if (!roots_done) {
			/* Threads have yet to scan their stacks. */
			sleep_ns(50000);
			continue;
		}
		if (acas(&mark_done_busy, 0, 1)) {
			mark_done();
			astore(&mark_done_busy, 0);
		} else {
			sleep_ns(50000);
		}
	}
	gcstats_worker(gcstats_cpu_ns() - cprev);
}

/* ---- Starting a cycle ---------------------------------------------------- */

/* World stopped: the whole mark (GCHEAP_DEBUG=stoptheworld). A worker
 * woken meanwhile may mark beside it (the root job too): complete means
 * nothing left with the gate closed. */
static void mark_stopped(void)
{
	gcw w = {0};

	mark_roots_stopped(&w);
	mgcgen_cards(&w);
	for (;;) {
		do {
			gcmark_drain(&w, -1);
			gcw_dispose(&w);
		} while (mgc_.ops->flush_all_stopped() ||
		         !gcwork_global_empty());
		markers_stop();
		if (!mgc_.ops->flush_all_stopped() && gcwork_global_empty() &&
		    !ephemeron_pass(&w))
			break;
		markers_start();
	}
	mark_termination();
	markers_start();
}

/* Start a cycle; false if one is already running. */
static bool gc_start(void)
{
	if (!acas(&starting, 0, 1))
		return false;
	if (aload_acq(&mgc_.phase) != GCPHASE_OFF) {
		astore(&starting, 0);
		return false;
	}
	/* The last cycle's end is recorded after the world restarts (its
	 * last pause ends there): a worker that lost its CPU right then
	 * must not have this cycle's start overwrite what it records. */
	if (aload_acq(&mgc_.traced) != aload(&mgc_.cycles)) {
		mgc_.ops->blocking_begin();
		mutex_lock(&mgc_.lock);
		while (aload_acq(&mgc_.traced) != aload(&mgc_.cycles))
			mutex_cond_wait(&mgc_.cond, &mgc_.lock);
		mutex_unlock(&mgc_.lock);
		mgc_.ops->blocking_end();
	}
	/* Sweep termination: the last cycle's spans must all be swept, and
	 * still be the last cycle's once the world is stopped. */
	uint64_t t0;
	for (;;) {
		uintptr_t sg = aload(&mheap_.sweepgen);
		sweep_finish();
		t0 = gcstats_now_ns();
		mgc_.ops->stop_world();
		if (aload(&mheap_.sweepgen) == sg)
			break;
		mgc_.ops->start_world();
	}
	gcstats_cycle_start(t0, aload(&mheap_.stats.heap_live));
	uintptr_t cycle = aload(&mgc_.cycles) + 1;
	if (options_.verify) {
		sweep_block(); /* unattached sweepers are not stopped */
		mheap_verify_swept();
		mcentral_verify_all();
		mgcgen_verify();
		sweep_unblock();
	}
	mgcgen_start();
	astore(&mgc_.globals_done, 0);
	astore(&mgc_.bg_credit, 0);
	astore(&gcwork_.scan_done, 0);
	mgc_.mark_start_live = aload(&mheap_.stats.heap_live);
	afetch_add(&mgc_.begun, 1);
	astore_rel(&mgc_.phase, GCPHASE_MARK);
	astore(&mgc_.blackalloc, 1);
	wbbuf_set_barrier(true);
	ephemeron_mark_begin();
	if (options_.stoptheworld) {
		mark_stopped();
		mgc_.ops->start_world();
		ephemeron_release();
		if (aload(&mgc_.trace_delay_test))
			sleep_ns(aload(&mgc_.trace_delay_test));
		note_max(&mgc_.swept, cycle - 1);
		note_max(&mgc_.started, cycle);
		gcstats_pause(0, t0);
		trace_cycle();
		note_max(&mgc_.ended, cycle);
		note_max(&mgc_.traced, cycle);
		astore(&starting, 0);
		wake_all();
		return true;
	}
	mgc_.ops->request_stack_scans();
	mgc_.ops->start_world();
	if (aload(&mgc_.start_delay_test))
		sleep_ns(aload(&mgc_.start_delay_test));
	note_max(&mgc_.swept, cycle - 1);
	note_max(&mgc_.started, cycle);
	gcstats_pause(0, t0);
	astore(&starting, 0);
	wake_workers();
	return true;
}

/* Another thread is starting a cycle: help finish the last sweep, then
 * wait until the cycle has started (or the start gave up), as Go's
 * gcStart makes its other callers sweep and then wait on startSema. The
 * starter may itself wait (for the last cycle's trace, for the sweep,
 * for threads to stop), and threads that allocate on meanwhile took the
 * heap far past its trigger: 8 threads on 2 CPUs began marks at 77-91
 * MB against a goal of 16.8 MB. The wait is a blocking region, so that
 * the starter's stop does not wait for this thread, on mgc_.cond, which
 * the starter broadcasts once `starting` is 0 again (wake_workers,
 * wake_all); START_WAIT_NS bounds one sleep, for a start that gave up
 * without a broadcast (it found a cycle running, which wakes it when it
 * ends). */
#define START_WAIT_NS 1000000

static void wait_start(void)
{
	while (aload_acq(&starting) && sweep_some(MCENTRAL_SWEEP_BATCH))
		;
	if (!aload_acq(&starting))
		return;
	mgc_.ops->blocking_begin();
	mutex_lock(&mgc_.lock);
	while (aload_acq(&starting) &&
	       aload_acq(&mgc_.phase) == GCPHASE_OFF)
		mutex_cond_wait_ns(&mgc_.cond, &mgc_.lock, START_WAIT_NS);
	mutex_unlock(&mgc_.lock);
	mgc_.ops->blocking_end();
}

void mgc_maybe_start(void)
{
	if (aload(&mgc_.disabled) || aload_acq(&mgc_.phase) != GCPHASE_OFF)
		return;
	uintptr_t live = aload(&mheap_.stats.heap_live) +
	                 aload(&mgc_.special_bytes);
	bool stress = options_.stress &&
	              aload(&mgc_.alloc_bytes) >= aload(&mgc_.stress_next);
	if (stress)
		astore(&mgc_.stress_next,
		       aload(&mgc_.alloc_bytes) + options_.stress);
	/* GOGC off: only a memory limit starts cycles, near it. */
	if ((stress || (((intptr_t)aload(&mgc_.percent) >= 0 ||
	                 aload(&mheap_.limit)) &&
	                live >= aload(&mgc_.trigger))) &&
	    !gc_start())
		wait_start();
}

/* Past the goal, an assist that finds no grey work (the workers hold it
 * in their own buffers, or lost their CPUs to other processes) must not
 * let its thread allocate on: under a loaded machine the heap went 50%
 * past its goal that way. So it waits, as Go's gcParkAssist does: in a
 * blocking region, so that stops and handshakes go on without it and its
 * CPU counts as idle for the workers (cpu_idle), until the mark ends (the
 * wake_all that follows it) or grey work is published for it to help
 * with (gcwork's push wakes one). It sleeps on a condition, not a timer:
 * 24 threads polling every 20 us woke a million times a second on two
 * CPUs and took them from the workers they waited for. PARK_MAX_NS bounds
 * one wait, so that a mark whose workers cannot run lets the thread on by
 * one slow path's window (at most 64 objects) at a time, not never. */
#define PARK_MAX_NS 10000000

static bool mark_over(void)
{
	return aload_acq(&mgc_.phase) != GCPHASE_MARK;
}

void mgc_park_assist(void)
{
	uint64_t t0 = gcstats_now_ns();

	mgc_.ops->blocking_begin();
	gcwork_park(mark_over, PARK_MAX_NS);
	mgc_.ops->blocking_end();
	gcstats_park(gcstats_now_ns() - t0);
}

void mgc_run_cycle(bool wait_sweep)
{
	/* A full collection: a major mark (gc/mgcgen.c). When the sweep
	 * has prepared a minor one, that one runs first and the next is
	 * major. */
	bool major = !aload(&mgc_.minor_test);

	/* While this thread waits, every worker may mark (cpu_idle). */
	afetch_add(&cycle_waiters, 1);
	/* The cycle to wait for (Go's runtime.GC): the first whose mark
	 * begins after now. Whoever starts it, this thread or another,
	 * every caller that wants it waits for it alone: callers that each
	 * waited for the running cycle to end and then raced to start their
	 * own waited through up to 11 cycles (four threads collecting at
	 * once). Counted by the marks begun, set with the world stopped, not
	 * by whether a start is under way: a stop-the-world cycle keeps
	 * `starting` set after it has counted itself, and a caller that
	 * took it for the next cycle waited for one nobody started. */
	mgc_.ops->blocking_begin();
	mutex_lock(&mgc_.lock);
	uintptr_t target = aload(&mgc_.begun) + 1;
	/* Counted once the target is chosen: a test that sees every caller
	 * counted knows each chose it while the running cycle ran. */
	if (major) {
		note_max(&mgc_.major_target, target);
		afetch_add(&mgc_.major_wanted, 1);
	}
	mutex_unlock(&mgc_.lock);
	mgc_.ops->blocking_end();
again:
	while (aload_acq(&mgc_.begun) < target) {
		if (gc_start())
			continue;
		mgc_.ops->blocking_begin();
		mutex_lock(&mgc_.lock);
		/* Timed: a start that gave up (it found a cycle ending)
		 * clears `starting` without a broadcast (wait_start). */
		if (aload_acq(&mgc_.begun) < target &&
		    (aload_acq(&mgc_.phase) != GCPHASE_OFF || aload(&starting)))
			mutex_cond_wait_ns(&mgc_.cond, &mgc_.lock,
			                   START_WAIT_NS);
		mutex_unlock(&mgc_.lock);
		mgc_.ops->blocking_end();
	}
	mgc_.ops->blocking_begin();
	mutex_lock(&mgc_.lock);
	while (aload(&mgc_.traced) < target)
		mutex_cond_wait(&mgc_.cond, &mgc_.lock);
	mutex_unlock(&mgc_.lock);
	mgc_.ops->blocking_end();
	if (major && aload(&mgc_.last_major) < target) {
		/* That mark was minor; the next is major (this thread is
		 * counted in major_wanted at its end) and began after the
		 * call as well: not the next to begin from now, which may
		 * be one more. */
		target++;
		note_max(&mgc_.major_target, target);
		goto again;
	}
	if (major)
		afetch_add(&mgc_.major_wanted, (uintptr_t)-1);
	afetch_add(&cycle_waiters, (uintptr_t)-1);
	if (wait_sweep) {
		/* The sweep of the latest cycle (ours, or one that ended
		 * since, whose start finished ours): done by this thread, or
		 * by the start of a cycle that begins meanwhile. Waiting
		 * for a sweep no termination interrupts let threads
		 * collecting one after another keep a call waiting through
		 * 30 cycles. */
		uintptr_t cycle = aload_acq(&mgc_.cycles);
		sweep_finish_gen(aload_acq(&mheap_.sweepgen));
		note_max(&mgc_.swept, cycle);
		wake_all();
		if (options_.verify) {
			mgc_.ops->stop_world();
			sweep_block();
			mcentral_verify_all();
			sweep_unblock();
			mgc_.ops->start_world();
		}
	}
}

/* ---- Background threads -------------------------------------------------- */

static void *mark_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	double fraction = id < ndedicated ? worker_fraction : 0;
	char role[8];

	snprintf(role, sizeof role, "mark%u", id);
	sys_thread_name(role);

	mutex_lock(&mgc_.lock);
	while (!aload(&mgc_.exiting)) {
		if (aload_acq(&mgc_.phase) != GCPHASE_MARK ||
		    id >= aload(&nmarkers)) {
			mutex_cond_wait(&mgc_.work_cond, &mgc_.lock);
			continue;
		}
		mutex_unlock(&mgc_.lock);
		afetch_add(&mgc_.worker_entries, 1);
		mark_concurrently(id, fraction);
		mutex_lock(&mgc_.lock);
	}
	mutex_unlock(&mgc_.lock);
	return NULL;
}

/* Worker threads up to n (mgc_.lock held). Threads are never ended: one
 * past nmarkers waits on mgc_.cond. */
static void start_workers(unsigned n)
{
	pthread_t t;

	for (; nstarted < n; nstarted++)
		if (sys_thread_create(&t, NULL, mark_worker,
		                      (void *)(uintptr_t)nstarted))
			fatal("cannot start the collector's mark worker");
}

unsigned mgc_set_markers(unsigned n)
{
	if (n == 0)
		n = (unsigned)ncpus;
	mutex_lock(&mgc_.lock);
	unsigned old = (unsigned)aload(&nmarkers);
	start_workers(n);
	astore(&nmarkers, n);
	mutex_lock(&gcstats_.lock);
	gcstats_.workers = n;
	mutex_unlock(&gcstats_.lock);
	pthread_cond_broadcast(&mgc_.cond);
	pthread_cond_broadcast(&mgc_.work_cond);
	mutex_unlock(&mgc_.lock);
	return old;
}

/* After a sweep: give free pages back to the OS when the heap holds more
 * than it recently needed plus 4 MiB, the excess only, from the top of
 * the heap (Go's scavenger keeps 10% over the goal, but paced). What it
 * needed: the larger of the goal plus 10% and the most pages in use
 * since the last scavenge (mheap_.stats.inuse_peak: pages in use pass
 * the goal where a cycle's allocation runs ahead of its mark, or large
 * objects come and go between marks; released at every cycle, they were
 * faulted in again at the next, ~5-10 us a page), the highest of the
 * last cycles decayed by an eighth a cycle: a goal or a peak that dips
 * for a cycle or two (the scaled minimum follows a noisy allocation
 * rate) must not release pages that the next cycle faults in again, and
 * a program whose peak really falls gets its memory back within a few
 * cycles (the amount halves in 5). The peak gets no 10% on top: pages
 * kept over it are pages touched in some cycle and not another, resident
 * for nothing. Under a memory limit the need counts for at most the
 * goal's cap (95% of the limit) plus 10%, as the goal did, so that a
 * limit lowered below what the heap holds brings it down at the next
 * scavenge, not cycles later (otherwise the limit caps what the heap
 * holds anyway).
 * Of the pages over the need, only those free for the last SCAV_AGE
 * scavenges go (mheap_release_aged): where the heap's free pages are
 * fragmented (large objects of many sizes), it holds more than it ever
 * has in use, and the excess was released at every cycle and faulted in
 * again at the next by the large objects placed on it (a rope builder's
 * 10 GB of 4 KiB-32 MiB buffers: 1,400 MB released, 360-420 K page
 * faults, 2.6-2.9 s of CPU; with the age, 730 MB, 210-240 K faults,
 * 2.2-2.5 s; bdwgc 1.4-1.7 s).
 * Under a limit that caps the need, and after a cycle the sweeper ran
 * for an idle heap (`idle`: below), every free page over the need goes;
 * for an idle heap the past no longer counts either: the need is the
 * goal plus 10% or the pages in use now, whichever is more.
 * gc_release_memory and gc_free_os_memory release all free pages
 * whatever this retains. */
static void scavenge(bool idle)
{
	static uintptr_t recent; /* the sweeper's own */

	mutex_lock(&mheap_.lock);
	uintptr_t held = mheap_.stats.committed - mheap_.stats.released;
	uintptr_t peak = mheap_.stats.inuse_peak * PAGE_SIZE;
	uintptr_t inuse = mheap_.stats.inuse_pages * PAGE_SIZE;
	mheap_.stats.inuse_peak = mheap_.stats.inuse_pages;
	mutex_unlock(&mheap_.lock);
	mutex_lock(&mgc_.lock);
	uintptr_t goal = aload(&mgc_.goal);
	mutex_unlock(&mgc_.lock);
	if (idle)
		recent = MAX(add_sat(goal, goal / 10), inuse);
	else
		recent = MAX(MAX(add_sat(goal, goal / 10), peak),
		             recent - recent / 8);
	uintptr_t need = recent, cap = aload(&mheap_.limit) / 20 * 19;
	bool capped = cap && need > add_sat(cap, cap / 10);
	if (capped)
		need = add_sat(cap, cap / 10);
	/* Saturated: a limit near SIZE_MAX wrapped these to small sizes. */
	uintptr_t retain = add_sat(need, (uintptr_t)4 << 20);
	uintptr_t excess = held > retain ? held - retain : 0;
	if (idle || capped)
		mheap_release_free(excess);
	else
		mheap_release_aged(excess); /* ages the free pages if 0 too */
	afetch_add(&mgc_.scavenges, 1);
}

/* At the start of each cycle's sweep and at each poll after it, fault in
 * the memory the heap is about to grow into, so that the mutators do not
 * take those page faults themselves (on a virtual machine that maps guest
 * pages lazily they cost ~10 us each, 0.4 GB/s). How far: to the trigger
 * (the heap reaches it before the next mark; the growth during a mark is
 * less certain, and faulting to the goal raised heap growth's RSS ~10%),
 * but no more than the mutators allocate in PREFAULT_AHEAD_NS at their
 * measured rate, so that a level the program may never reach (a high
 * GOGC, a memory limit with GOGC off) is not made resident. Only while a
 * CPU is idle (cpu_idle: with as many running mutators as CPUs, a third
 * thread would only take turns with them, and a stop of the world would
 * wait for the one it preempted: binary-trees with two mutators, longest
 * stop 0.29 -> 1.42 ms), and not once a mark starts: the workers need the
 * CPU. Called with mgc_.lock held; drops it while it works. */
#define PREFAULT_STEP ((size_t)2 << 20)
#define PREFAULT_AHEAD_NS 100e6

static void prefault(void)
{
	double ahead = mgc_.pacer_clock.rate * PREFAULT_AHEAD_NS;
	size_t trigger = aload(&mgc_.trigger);

	mutex_unlock(&mgc_.lock);
	for (;;) {
		if (aload_acq(&mgc_.phase) != GCPHASE_OFF ||
		    aload(&mgc_.exiting) || aload(&mgc_.sweeper_paused) ||
		    !cpu_idle())
			break;
		double want = (double)aload(&mheap_.stats.heap_live) + ahead;
		size_t target = want < (double)trigger ? (size_t)want : trigger;
		if (!mheap_prefault(target, PREFAULT_STEP))
			break;
	}
	mutex_lock(&mgc_.lock);
}

/* How often the sweeper looks, and what allocation in that time means
 * the mutators are busy (and sweep for themselves): 16 MB/s, under which
 * a second CPU sweeping costs them nothing that matters. */
#define SWEEP_POLL_NS 1000000
#define SWEEP_BUSY_BYTES ((uintptr_t)16 << 10)

/* Are the mutators allocating (more than SWEEP_BUSY_BYTES since `since`,
 * an mgc_.alloc_bytes reading)? */
static bool mutators_busy(uintptr_t since)
{
	return aload(&mgc_.alloc_bytes) - since > SWEEP_BUSY_BYTES ||
	       aload(&mgc_.sweep_busy_test);
}

/* The background sweeper: a backstop, not a racer. Threads that allocate
 * sweep what they need themselves (a thread's cache sweeps its own class
 * lazily, and the sweep pace makes the slow path sweep the rest in time),
 * on their own CPU, where the span's memory and bitmaps are used next; a
 * second CPU sweeping the same spans only moved them between caches and
 * fought over the central locks (the allocation benchmark spent more CPU
 * in the sweeper than in the program). So the sweeper sweeps while the
 * mutators do not allocate: it looks every SWEEP_POLL_NS; if they
 * allocated more than SWEEP_BUSY_BYTES meanwhile it only looks whether
 * anything is left to sweep, and otherwise sweeps until they do, or the
 * sweep is done; then it releases memory to the OS (scavenge). */
void (*mgc_sweeper_test_hook)(bool more);

/* A heap that goes options_.forcegc_ms without a cycle gets one from the
 * sweeper (Go's forcegcperiod, two minutes by default): a program that
 * dropped its data and went idle (or waits in a blocking region) has no
 * allocation left to start the cycle that would free it, and kept its
 * peak resident for good. It is a full collection, as gc_collect's
 * (mgc_run_cycle: a major mark in generational mode, where minor marks
 * of an idle heap never freed its old garbage; every worker marks; the
 * classes' spare empty spans go back to the heap), and the scavenge
 * after its sweep forgets the past peaks (scavenge(true)). Not while
 * collection is disabled or GOGC is off, as in Go. The sweeper's own
 * state, under mgc_.lock. */
static struct {
	uintptr_t cycles;    /* mgc_.cycles when `since` was taken */
	uint64_t since;      /* when the sweeper last saw a cycle end */
	uintptr_t scavenge;  /* the cycle count whose scavenge is idle's */
} idle;

/* Nothing to sweep: wait for a wake-up, or until the heap has been idle
 * for the period; then start its cycle (mgc_.lock held; dropped while the
 * cycle starts). */
static void sweeper_idle(void)
{
	uint64_t period = (uint64_t)aload(&options_.forcegc_ms) * 1000000u;
	uint64_t now = gcstats_now_ns();
	uintptr_t c = aload(&mgc_.cycles);

	if (c != idle.cycles || !idle.since) {
		idle.cycles = c;
		idle.since = now;
	}
	bool quiet = mgc_sweep_done() && !aload(&mgc_.sweeper_paused) &&
	             aload_acq(&mgc_.phase) == GCPHASE_OFF;
	if (!period || !quiet) {
		mutex_cond_wait(&mgc_.cond, &mgc_.lock);
		return;
	}
	if (now - idle.since < period) {
		mutex_cond_wait_ns(&mgc_.cond, &mgc_.lock,
		                   period - (now - idle.since));
		return;
	}
	idle.since = now; /* a period from now, whatever happens next */
	if (aload(&mgc_.disabled) || (intptr_t)aload(&mgc_.percent) < 0)
		return;
	mutex_unlock(&mgc_.lock);
	mgc_run_cycle(false); /* returns once its mark has ended */
	afetch_add(&mgc_.idle_cycles, 1);
	mutex_lock(&mgc_.lock);
	/* The last cycle to end, whose sweep this thread does next: the
	 * one it ran, or one a thread started after it (as good). */
	idle.scavenge = aload(&mgc_.cycles);
}

static void *sweeper(void *arg)
{
	(void)arg;
	sys_thread_name("sweep");
	mutex_lock(&mgc_.lock);
	while (!aload(&mgc_.exiting)) {
		if (mgc_sweep_done() || aload(&mgc_.sweeper_paused) ||
		    aload_acq(&mgc_.phase) != GCPHASE_OFF) {
			sweeper_idle();
			continue;
		}
		if (options_.prefault)
			prefault();
		/* A whole poll, whatever else wakes the condition. */
		uintptr_t seen = aload(&mgc_.alloc_bytes);
		uint64_t t0 = gcstats_now_ns(), t;
		while ((t = gcstats_now_ns()) - t0 < SWEEP_POLL_NS &&
		       !aload(&mgc_.exiting))
			mutex_cond_wait_ns(&mgc_.cond, &mgc_.lock,
			                   SWEEP_POLL_NS - (t - t0));
		if (mgc_sweep_done() || aload(&mgc_.sweeper_paused) ||
		    aload_acq(&mgc_.phase) != GCPHASE_OFF)
			continue;
		bool busy = mutators_busy(seen), more;
		mutex_unlock(&mgc_.lock);
		/* The cycle and the generation read before the sweep_one
		 * that finds nothing left: their sweep is done then (a later
		 * one's may not be). */
		uintptr_t cycle = aload_acq(&mgc_.cycles);
		uintptr_t sg = aload_acq(&mheap_.sweepgen);
		if (busy) {
			afetch_add(&mgc_.bg_busy_polls, 1);
			more = sweep_pending();
			if (!more && (more = sweep_one())) /* a last one */
				afetch_add(&mgc_.bg_swept, 1);
		} else {
			seen = aload(&mgc_.alloc_bytes);
			do {
				cycle = aload_acq(&mgc_.cycles);
				sg = aload_acq(&mheap_.sweepgen);
				size_t n = sweep_some(MCENTRAL_SWEEP_BATCH);
				if ((more = n != 0))
					afetch_add(&mgc_.bg_swept, n);
			} while (more && !mutators_busy(seen) &&
			         aload_acq(&mgc_.phase) == GCPHASE_OFF &&
			         !aload(&mgc_.sweeper_paused));
		}
		if (unlikely(mgc_sweeper_test_hook != NULL))
			mgc_sweeper_test_hook(more);
		/* Threads still holding stale cached spans (swept when they
		 * release them at their next safepoint) are looked at again
		 * at the next poll. */
		bool done = !more && aload_acq(&mgc_.phase) == GCPHASE_OFF &&
		            !aload(&mgc_.sweeper_paused) &&
		            mgc_.ops->cache_flushes_done() &&
		            aload_acq(&mheap_.sweepgen) == sg;
		if (done) {
			/* Stale, and so "not done", if a termination flipped
			 * sweepgen since the check. */
			astore_rel(&mgc_.sweep_done_gen, sg);
			note_max(&mgc_.swept, cycle);
			gcstats_sweep_done();
			mutex_lock(&mgc_.lock);
			bool was_idle = idle.scavenge == cycle;
			mutex_unlock(&mgc_.lock);
			scavenge(was_idle);
		}
		mutex_lock(&mgc_.lock);
		if (done)
			pthread_cond_broadcast(&mgc_.cond);
	}
	mutex_unlock(&mgc_.lock);
	return NULL;
}

bool mgc_init(const gc_runtime_ops *ops)
{
	if (mgc_.init)
		return true;
	mgc_.ops = ops;
	if (!gcwork_init())
		return false;
	specials_init();
	astore(&mgc_.sweep_done_gen, aload(&mheap_.sweepgen));
	pacer_end_cycle(0, PACER_GROWN_UNKNOWN);
	astore(&mgc_.stress_next, options_.stress);
	mgc_.init = true;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	ncpus = ncpu;
	ndedicated = ncpu / 4 ? (unsigned)(ncpu / 4) : 1;
	worker_fraction = ncpu < 4 ? ncpu * 0.25 : 1.0;
	/* Default: one worker per CPU, the dedicated ones and idle ones. */
	unsigned n = mgc_.markers ? mgc_.markers : (unsigned)ncpu;
	gcstats_init(n, ncpu);
	astore(&nmarkers, n);
	mutex_lock(&mgc_.lock);
	start_workers(n);
	mutex_unlock(&mgc_.lock);
	if (sys_thread_create(&mgc_.sweeper, NULL, sweeper, NULL))
		fatal("cannot start the collector's sweeper");
	return true;
}
