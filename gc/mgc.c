/* gc/mgc.c: the collection cycle (Go's mgc.go): starting a cycle, the
 * background mark worker, mark termination, the background sweeper, and
 * gc_run_cycle behind gc_collect().
 *
 *  gc_start            sweep termination: finish the last cycle's sweep
 *                      (world running), then stop the world: phase MARK,
 *                      write barrier and allocate-black on, every thread
 *                      asked to scan its own stack; start the world.
 *  mark worker         runs the globals root job, scans blocked threads'
 *                      stacks for them, drains grey objects; when it finds
 *                      nothing, tries mark_done.
 *  mark_done           ragged handshake: every thread flushes its barrier
 *                      buffer and work; if anything came out, mark more.
 *                      Else stop the world, flush again (the buffers of
 *                      stopped threads): still nothing means marking is
 *                      complete, otherwise start the world and go on.
 *  mark_termination    world stopped: checkmark (debug), barrier and
 *                      allocate-black off, pacer, sweepgen += 2, every
 *                      thread must release its cache before allocating;
 *                      start the world; wake the sweeper.
 *
 * Every stop-the-world phase does work proportional to the number of
 * threads (flags, buffer flushes of at most WBBUF_LEN entries each), never
 * to the heap, except the debug modes (checkmark, verify, stoptheworld).
 *
 * gc_.lock guards the condition variable and the cycle's bookkeeping; it
 * is never held while the world is being stopped. A cycle is started by
 * the thread that wins the CAS on `starting`. */
#include "gc/mgc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

gc_state gc_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                .cond = PTHREAD_COND_INITIALIZER};

static atomic_word starting;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void wake_all(void)
{
	mutex_lock(&gc_.lock);
	pthread_cond_broadcast(&gc_.cond);
	mutex_unlock(&gc_.lock);
}

/* Called with the world running again. */
static void record_pause(int which, uint64_t ns)
{
	mutex_lock(&gc_.lock);
	gc_.last_pause_ns[which] = ns;
	gc_.total_pause_ns += ns;
	if (ns > gc_.max_pause_ns)
		gc_.max_pause_ns = ns;
	mutex_unlock(&gc_.lock);
	gcstats_pause(which, ns);
}

/* ---- Mark termination ---------------------------------------------------- */

static uint64_t mark_start_ns;

/* World stopped; marking is complete. */
static void mark_termination(void)
{
	astore_rel(&gc_.phase, GCPHASE_MARKTERM);
	/* Before checkmark, whose re-mark is not the cycle's work. */
	gc_.last_scan_work = aload(&gcwork_.scan_done);
	if (gc_.debug.checkmark)
		gc_checkmark();
	uintptr_t marked = aload(&gcwork_.bytes_marked);
	uintptr_t live = aload(&mheap_.stats.heap_live);
	astore(&gc_.blackalloc, 0);
	__atomic_store_n(&gc_barrier_enabled, 0, __ATOMIC_RELEASE);
	gcstats_mark_end(live, marked);
	astore(&mheap_.stats.heap_live, marked);
	mutex_lock(&gc_.lock);
	pacer_end_cycle(marked, live > gc_.mark_start_live ?
	                        live - gc_.mark_start_live : 0);
	gc_.last_mark_ns = now_ns() - mark_start_ns;
	mutex_unlock(&gc_.lock);
	astore(&gc_.sweep_done, 0);
	astore(&gc_.globals_done, 0);
	astore(&gcwork_.bytes_marked, 0);
	/* Flip first: every cached span is now stale, and a thread's cache
	 * flush (which compares with sweepgen) sweeps it. */
	sweep_block();
	astore_rel(&mheap_.sweepgen, aload(&mheap_.sweepgen) + 2);
	sweep_unblock();
	gc_.ops->request_cache_flush();
	/* Counted with the world stopped: gc_run_cycle relies on it. */
	afetch_add(&gc_.cycles, 1);
	/* Last: a thread that is not stopped with the world (an unattached
	 * gc_collect) may start the next cycle as soon as it sees OFF, and
	 * must then find the new generation to sweep. */
	astore_rel(&gc_.phase, GCPHASE_OFF);
}

/* The end of a cycle (world running again): timing bookkeeping and the
 * GCHEAP_DEBUG=gctrace=1 line (gc/mgcstats.c). */
static void trace_cycle(void)
{
	gcstats_cycle_end(aload(&gc_.cycles), aload(&gc_.goal),
	                  gc_.debug.gctrace);
}

/* Marking looks finished: confirm it, stopping the world at the end.
 *
 * Ephemerons: a pass marks the values of marked ephemerons with marked
 * keys; marking is complete only once a pass finds nothing and nothing
 * at all was marked since it began (gcwork_.nmarked, which counts greyed
 * objects but not black allocations, is unchanged at the final check).
 * The check with the world stopped stays O(1); the passes run with the
 * world running. An ephemeron made while marking shades its value. */
static void mark_done(void)
{
	for (;;) {
		gcw w = {0};
		bool more = gc_.ops->flush_all();
		if (more || !gcwork_global_empty()) {
			gc_drain(&w, -1);
			gcw_dispose(&w);
			continue;
		}
		uintptr_t epoch = aload(&gcwork_.nmarked);
		bool eph = ephemeron_count() != 0;
		if (eph && ephemeron_pass(&w)) {
			gc_drain(&w, -1);
			gcw_dispose(&w);
			continue;
		}
		uint64_t t0 = now_ns();
		gc_.ops->stop_world();
		if (aload_acq(&gc_.phase) != GCPHASE_MARK) {
			/* Someone else (a stop-the-world cycle) finished
			 * this mark: terminate exactly once. */
			gc_.ops->start_world();
			return;
		}
		if (gc_.ops->flush_all_stopped() || !gcwork_global_empty() ||
		    (eph && aload(&gcwork_.nmarked) != epoch)) {
			/* Work turned up: that was a pause too. */
			gc_.ops->start_world();
			record_pause(1, now_ns() - t0);
			continue;
		}
		mark_termination();
		gc_.ops->start_world();
		record_pause(1, now_ns() - t0);
		trace_cycle();
		wake_all();
		return;
	}
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
	                      (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

#define MARK_SLICE 65536 /* words scanned between checks (~0.1-1 ms) */

/* Only one worker confirms termination at a time. */
static atomic_word mark_done_busy;
static unsigned nworkers;
static long ncpus;

/* One worker's share of the concurrent mark, until marking is done. A
 * fractional worker (fraction < 1) sleeps to keep its CPU time near
 * fraction of the wall time since it started. */
static void mark_concurrently(double fraction)
{
	gcw w = {0};
	uint64_t t0 = now_ns(), c0 = thread_cpu_ns(), cprev = c0;

	while (aload_acq(&gc_.phase) == GCPHASE_MARK) {
		if (acas(&gc_.globals_done, 0, 1)) {
			gc_.ops->mark_globals(&w);
			gc_mark_specials(&w);
			astore_rel(&gc_.globals_done, 2);
		}
		bool roots_done = gc_.ops->stack_scans_done(&w) &&
		                  aload_acq(&gc_.globals_done) == 2;
		intptr_t n = gc_drain(&w, MARK_SLICE);
		gcw_dispose(&w);
		afetch_add(&gc_.bg_credit, (uintptr_t)n);
		uint64_t c1 = thread_cpu_ns();
		gcstats_worker(c1 - cprev);
		cprev = c1;
		/* With a CPU to spare, mark at full speed (Go's idle mark
		 * workers); otherwise keep to the fraction. */
		bool idle_cpu = gc_.ops->mutator_count() + nworkers <=
		                (size_t)ncpus;
		if (fraction < 1 && !idle_cpu) {
			uint64_t wall = now_ns() - t0;
			uint64_t cpu = thread_cpu_ns() - c0;
			double ahead = cpu / fraction - (double)wall;
			if (ahead > 0)
				sleep_ns((uint64_t)MIN(ahead, 10e6));
		}
		if (n >= MARK_SLICE || !gcwork_global_empty())
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
	gcstats_worker(thread_cpu_ns() - cprev);
}

/* ---- Starting a cycle ---------------------------------------------------- */

/* World stopped: the whole mark (GCHEAP_DEBUG=stoptheworld). */
static void mark_stopped(void)
{
	gcw w = {0};

	gc_.ops->mark_globals(&w);
	gc_.ops->mark_threads_stopped(&w);
	gc_mark_specials(&w);
	do {
		gc_drain(&w, -1);
		gcw_dispose(&w);
	} while (gc_.ops->flush_all_stopped() || !gcwork_global_empty() ||
	         ephemeron_pass(&w));
	mark_termination();
}

/* Start a cycle; false if one is already running. */
static bool gc_start(void)
{
	if (!acas(&starting, 0, 1))
		return false;
	if (aload_acq(&gc_.phase) != GCPHASE_OFF) {
		astore(&starting, 0);
		return false;
	}
	/* Sweep termination: the last cycle's spans must all be swept, and
	 * still be the last cycle's once the world is stopped. */
	uint64_t t0;
	for (;;) {
		uintptr_t sg = aload(&mheap_.sweepgen);
		sweep_finish();
		t0 = now_ns();
		gc_.ops->stop_world();
		if (aload(&mheap_.sweepgen) == sg)
			break;
		gc_.ops->start_world();
	}
	mark_start_ns = t0;
	gcstats_cycle_start(aload(&mheap_.stats.heap_live));
	if (gc_.debug.verify) {
		sweep_block(); /* unattached sweepers are not stopped */
		mheap_verify_swept();
		mheap_verify();
		sweep_unblock();
	}
	astore(&gcwork_.bytes_marked, 0);
	astore(&gc_.globals_done, 0);
	astore(&gc_.bg_credit, 0);
	astore(&gcwork_.scan_done, 0);
	gc_.mark_start_live = aload(&mheap_.stats.heap_live);
	astore_rel(&gc_.phase, GCPHASE_MARK);
	astore(&gc_.blackalloc, 1);
	__atomic_store_n(&gc_barrier_enabled, 1, __ATOMIC_RELEASE);
	if (gc_.debug.stoptheworld) {
		mark_stopped();
		gc_.ops->start_world();
		record_pause(0, now_ns() - t0);
		trace_cycle();
		astore(&starting, 0);
		wake_all();
		return true;
	}
	gc_.ops->request_stack_scans();
	gc_.ops->start_world();
	record_pause(0, now_ns() - t0);
	astore(&starting, 0);
	wake_all();
	return true;
}

void gc_maybe_start(void)
{
	if (aload(&gc_.disabled) || aload_acq(&gc_.phase) != GCPHASE_OFF)
		return;
	uintptr_t live = aload(&mheap_.stats.heap_live);
	bool stress = gc_.debug.stress &&
	              aload(&gc_.alloc_bytes) >= aload(&gc_.stress_next);
	if (stress)
		astore(&gc_.stress_next,
		       aload(&gc_.alloc_bytes) + gc_.debug.stress);
	if (stress || ((intptr_t)aload(&gc_.percent) >= 0 &&
	               live >= aload(&gc_.trigger)))
		gc_start();
}

void gc_run_cycle(bool wait_sweep)
{
	uintptr_t n = aload(&gc_.cycles);

	/* If a cycle is running, it may have started before our caller's
	 * last changes: wait for it, then run a full one of our own. */
	gc_.ops->blocking_begin();
	mutex_lock(&gc_.lock);
	while (aload_acq(&gc_.phase) != GCPHASE_OFF || aload(&starting))
		mutex_cond_wait(&gc_.cond, &gc_.lock);
	n = aload(&gc_.cycles);
	mutex_unlock(&gc_.lock);
	gc_.ops->blocking_end();
	while (!gc_start()) {
		gc_.ops->blocking_begin();
		mutex_lock(&gc_.lock);
		if (aload_acq(&gc_.phase) != GCPHASE_OFF || aload(&starting))
			mutex_cond_wait(&gc_.cond, &gc_.lock);
		bool started = aload(&gc_.cycles) > n;
		mutex_unlock(&gc_.lock);
		gc_.ops->blocking_end();
		if (started)
			break;
	}
	gc_.ops->blocking_begin();
	mutex_lock(&gc_.lock);
	while (aload(&gc_.cycles) <= n)
		mutex_cond_wait(&gc_.cond, &gc_.lock);
	mutex_unlock(&gc_.lock);
	gc_.ops->blocking_end();
	if (wait_sweep) {
		sweep_finish();
		if (gc_.debug.verify) {
			gc_.ops->stop_world();
			sweep_block();
			mheap_verify();
			sweep_unblock();
			gc_.ops->start_world();
		}
	}
}

/* ---- Background threads -------------------------------------------------- */

/* Workers: about 25% of the CPUs, at least one (Go's gcBgMarkWorker):
 * ncpu/4 dedicated workers, or one fractional worker at ncpu/4 of a CPU
 * when that is below one. */
static double worker_fraction;

static void *mark_worker(void *arg)
{
	(void)arg;
	mutex_lock(&gc_.lock);
	while (!aload(&gc_.exiting)) {
		if (aload_acq(&gc_.phase) != GCPHASE_MARK) {
			mutex_cond_wait(&gc_.cond, &gc_.lock);
			continue;
		}
		mutex_unlock(&gc_.lock);
		mark_concurrently(worker_fraction);
		mutex_lock(&gc_.lock);
	}
	mutex_unlock(&gc_.lock);
	return NULL;
}

/* After a sweep: give free pages back to the OS when the heap holds more
 * than 10% (plus 4 MiB) over its goal, the excess only, from the top of
 * the heap (Go's scavenger keeps the same retained goal, but paced). */
static void scavenge(void)
{
	mutex_lock(&mheap_.lock);
	uintptr_t held = mheap_.stats.committed - mheap_.stats.released;
	mutex_unlock(&mheap_.lock);
	mutex_lock(&gc_.lock);
	uintptr_t goal = aload(&gc_.goal);
	mutex_unlock(&gc_.lock);
	uintptr_t retain = goal + goal / 10 + ((uintptr_t)4 << 20);
	if (held > retain)
		mheap_release_free(held - retain);
}

static void *sweeper(void *arg)
{
	(void)arg;
	mutex_lock(&gc_.lock);
	while (!aload(&gc_.exiting)) {
		if (aload(&gc_.sweep_done) ||
		    aload_acq(&gc_.phase) != GCPHASE_OFF) {
			mutex_cond_wait(&gc_.cond, &gc_.lock);
			continue;
		}
		mutex_unlock(&gc_.lock);
		while (aload_acq(&gc_.phase) == GCPHASE_OFF && sweep_one())
			;
		if (aload_acq(&gc_.phase) == GCPHASE_OFF &&
		    gc_.ops->cache_flushes_done()) {
			astore_rel(&gc_.sweep_done, 1);
			gcstats_sweep_done();
			scavenge();
		} else {
			sched_yield();
		}
		mutex_lock(&gc_.lock);
		pthread_cond_broadcast(&gc_.cond);
	}
	mutex_unlock(&gc_.lock);
	return NULL;
}

void gc_init_collector(const gc_runtime_ops *ops)
{
	if (gc_.init)
		return;
	gc_.ops = ops;
	gcwork_init();
	specials_init();
	astore(&gc_.sweep_done, 1);
	pacer_end_cycle(0, PACER_GROWN_UNKNOWN);
	astore(&gc_.stress_next, gc_.debug.stress);
	mheap_.hooks.poison = gc_.debug.poison;
	gc_.init = true;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	ncpus = ncpu;
	nworkers = ncpu / 4 ? (unsigned)(ncpu / 4) : 1;
	worker_fraction = ncpu < 4 ? ncpu * 0.25 : 1.0;
	gcstats_init(nworkers, ncpu);
	pthread_t t;
	for (unsigned i = 0; i < nworkers; i++)
		if (pthread_create(&t, NULL, mark_worker, NULL))
			fatal("cannot start the collector's mark worker");
	if (pthread_create(&gc_.sweeper, NULL, sweeper, NULL))
		fatal("cannot start the collector's sweeper");
}
