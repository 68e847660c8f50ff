/* gc/mgcstats.c: the collector's timing bookkeeping (see gc/mgcstats.h)
 * and the GCHEAP_DEBUG=gctrace=1 line, whose fields docs/tools.md
 * documents one by one:
 *
 *   gcheap: gc N @T.TTTs P%: A+B+C ms clock, A+D/E+C ms cpu,
 *           H0->H1->H2 MB, G MB goal, W workers, T ms ttsp (thread N),
 *           pauses S1+L1 S2+L2 ... ms
 *
 * The last field places each of the cycle's pauses (start since the heap
 * began, length; both in ms to the microsecond) so that gcstat can
 * compute the mutator's utilization (`gcstat mmu`): A and C are sums, and
 * @T is the cycle's end to the millisecond.
 *
 * The CPU fraction P is (all pause time x CPUs + assist + mark-worker +
 * sweeper CPU time) / (wall time since start x CPUs), as Go computes its
 * GCCPUFraction. */
#include "gc/mgcstats.h"

#include <stdio.h>
#include <time.h>

gcstats_state gcstats_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

uint64_t gcstats_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t gcstats_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gcstats_init(unsigned workers, long ncpu)
{
	gcstats_.start_ns = gcstats_now_ns();
	gcstats_.workers = workers;
	gcstats_.ncpu = ncpu;
}

void gcstats_ttsp(uint64_t ns, int tid)
{
	mutex_lock(&gcstats_.lock);
	gcstats_.nstops++;
	gcstats_.ttsp_total += ns;
	if (ns >= gcstats_.ttsp_max) {
		gcstats_.ttsp_max = ns;
		gcstats_.ttsp_max_tid = tid;
	}
	if (ns >= gcstats_.ttsp_cycle) {
		gcstats_.ttsp_cycle = ns;
		gcstats_.ttsp_cycle_tid = tid;
	}
	mutex_unlock(&gcstats_.lock);
}

void gcstats_cycle_start(uint64_t begin_ns, uintptr_t heap_live)
{
	mutex_lock(&gcstats_.lock);
	gcstats_.cycle_begin_ns = begin_ns;
	for (int i = 0; i < GCSTATS_NPHASES; i++)
		gcstats_.cur[i] = 0;
	gcstats_.heap_start = heap_live;
	gcstats_.nstops_cycle = 0;
	gcstats_.assist0 = aload(&gcstats_.assist_ns);
	gcstats_.worker0 = aload(&gcstats_.worker_ns);
	gcstats_.park0 = aload(&gcstats_.park_ns);
	gcstats_.assists0 = aload(&gcstats_.assists);
	mutex_unlock(&gcstats_.lock);
}

static unsigned hist_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned b = 0;
	while (us > 1 && b < GCSTATS_HIST - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

void gcstats_world_released(uint64_t ns)
{
	astore(&gcstats_.released_ns, (uintptr_t)ns);
}

void gcstats_pause(int which, uint64_t begin_ns)
{
	int ph = which ? GCSTATS_MARKTERM : GCSTATS_SWEEPTERM;
	uint64_t end = gcstats_now_ns(), rel = aload(&gcstats_.released_ns);
	uint64_t ns = (rel >= begin_ns && rel < end ? rel : end) - begin_ns;

	mutex_lock(&gcstats_.lock);
	unsigned k = gcstats_.nstops_cycle;
	if (k < GCSTATS_STOPS) {
		gcstats_.stop_at[k] = begin_ns - gcstats_.start_ns;
		gcstats_.stop_len[k] = ns;
		gcstats_.nstops_cycle++;
	} else {
		gcstats_.stop_len[GCSTATS_STOPS - 1] += ns;
	}
	gcstats_.ring[gcstats_.npauses % GCSTATS_RING] = ns;
	gcstats_.npauses++;
	gcstats_.hist[hist_bucket(ns)]++;
	gcstats_.max_pause = MAX(gcstats_.max_pause, ns);
	gcstats_.last_pause[which != 0] = ns;
	gcstats_.cur[ph] += ns;
	gcstats_.phase_total[ph] += ns;
	if (!which)
		gcstats_.mark_begin_ns = begin_ns + ns;
	mutex_unlock(&gcstats_.lock);
}

void gcstats_pause_other(uint64_t begin_ns)
{
	uint64_t ns = gcstats_now_ns() - begin_ns;

	mutex_lock(&gcstats_.lock);
	gcstats_.ring[gcstats_.npauses % GCSTATS_RING] = ns;
	gcstats_.npauses++;
	gcstats_.hist[hist_bucket(ns)]++;
	gcstats_.max_pause = MAX(gcstats_.max_pause, ns);
	gcstats_.other_total += ns;
	mutex_unlock(&gcstats_.lock);
}

double gcstats_mark_end(uintptr_t heap_live, uintptr_t marked,
                        unsigned nmutators)
{
	mutex_lock(&gcstats_.lock);
	uint64_t now = gcstats_now_ns();
	gcstats_.mark_end_ns = now;
	gcstats_.last_mark = now - gcstats_.cycle_begin_ns;
	gcstats_.heap_end = heap_live;
	gcstats_.heap_marked = marked;
	/* A stop-the-world cycle has no concurrent mark (its pause 0 is
	 * recorded later): the mark counts as 0. */
	uint64_t mark = gcstats_.mark_begin_ns && gcstats_.cur[
		GCSTATS_SWEEPTERM] ? now - gcstats_.mark_begin_ns : 0;
	gcstats_.cur[GCSTATS_MARK] = mark;
	gcstats_.phase_total[GCSTATS_MARK] += mark;
	double held = (double)(aload(&gcstats_.assist_ns) - gcstats_.assist0) +
	              (double)(aload(&gcstats_.park_ns) - gcstats_.park0);
	mutex_unlock(&gcstats_.lock);
	if (!mark || !nmutators)
		return 1;
	double share = 1 - held / ((double)mark * nmutators);
	return share < 0.01 ? 0.01 : share > 1 ? 1 : share;
}

void gcstats_cycle_end(uintptr_t cycle, uintptr_t goal, bool trace,
                       bool minor)
{
	mutex_lock(&gcstats_.lock);
	for (int i = 0; i < GCSTATS_SWEEP; i++)
		gcstats_.phase_last[i] = gcstats_.cur[i];
	uint64_t assist = aload(&gcstats_.assist_ns) - gcstats_.assist0;
	uint64_t worker = aload(&gcstats_.worker_ns) - gcstats_.worker0;
	gcstats_.last_assist = assist;
	gcstats_.last_worker = worker;
	gcstats_.last_assists = aload(&gcstats_.assists) - gcstats_.assists0;
	gcstats_.ttsp_last = gcstats_.ttsp_cycle;
	gcstats_.ttsp_last_tid = gcstats_.ttsp_cycle_tid;
	gcstats_.ttsp_cycle = 0;
	gcstats_.ttsp_cycle_tid = 0;
	uint64_t now = gcstats_now_ns();
	uint64_t pauses = gcstats_.phase_total[GCSTATS_SWEEPTERM] +
	                  gcstats_.phase_total[GCSTATS_MARKTERM];
	double ncpu = (double)gcstats_.ncpu;
	double gccpu = pauses * ncpu + aload(&gcstats_.assist_ns) +
	               aload(&gcstats_.worker_ns) +
	               aload(&gcstats_.sweeper_ns);
	double wall = (double)(now - gcstats_.start_ns) * ncpu;
	char stops[GCSTATS_STOPS * 48] = "";
	for (unsigned i = 0, len = 0; trace && i < gcstats_.nstops_cycle;
	     i++)
		len += (unsigned)snprintf(stops + len, sizeof(stops) - len,
		                          " %.3f+%.3f",
		                          gcstats_.stop_at[i] / 1e6,
		                          gcstats_.stop_len[i] / 1e6);
	if (trace) {
		/* Before the cycle counts as traced: a cancel taken in the
		 * write left gc_collect's waiters waiting (sys/lock.h). */
		int cs = cancel_off();
		fprintf(stderr,
		        "gcheap: gc %zu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms "
		        "clock, %.3f+%.3f/%.3f+%.3f ms cpu, "
		        "%.3f->%.3f->%.3f MB, %.3f MB goal, %u workers, "
		        "%.3f ms ttsp (thread %d), pauses%s ms%s\n",
		        (size_t)cycle, (now - gcstats_.start_ns) / 1e9,
		        wall > 0 ? 100 * gccpu / wall : 0.0,
		        gcstats_.cur[GCSTATS_SWEEPTERM] / 1e6,
		        gcstats_.cur[GCSTATS_MARK] / 1e6,
		        gcstats_.cur[GCSTATS_MARKTERM] / 1e6,
		        gcstats_.cur[GCSTATS_SWEEPTERM] / 1e6, assist / 1e6,
		        worker / 1e6, gcstats_.cur[GCSTATS_MARKTERM] / 1e6,
		        gcstats_.heap_start / 1e6, gcstats_.heap_end / 1e6,
		        gcstats_.heap_marked / 1e6, goal / 1e6,
		        gcstats_.workers, gcstats_.ttsp_last / 1e6,
		        gcstats_.ttsp_last_tid, stops,
		        minor ? ", minor" : "");
		cancel_restore(cs);
	}
	void (*hook)(void) = gcstats_.cycle_hook;
	mutex_unlock(&gcstats_.lock);
	if (hook)
		hook();
}

void gcstats_sweep_done(void)
{
	uint64_t cpu = gcstats_cpu_ns();

	mutex_lock(&gcstats_.lock);
	astore(&gcstats_.sweeper_ns, cpu);
	if (gcstats_.mark_end_ns) {
		uint64_t d = gcstats_now_ns() - gcstats_.mark_end_ns;
		gcstats_.phase_last[GCSTATS_SWEEP] = d;
		gcstats_.phase_total[GCSTATS_SWEEP] += d;
		gcstats_.mark_end_ns = 0;
	}
	mutex_unlock(&gcstats_.lock);
}

void gcstats_set_hook(void (*fn)(void))
{
	mutex_lock(&gcstats_.lock);
	gcstats_.cycle_hook = fn;
	mutex_unlock(&gcstats_.lock);
}

void gcstats_assist(uint64_t ns)
{
	afetch_add(&gcstats_.assist_ns, ns);
	afetch_add(&gcstats_.assists, 1);
}

void gcstats_park(uint64_t ns)
{
	afetch_add(&gcstats_.park_ns, ns);
	afetch_add(&gcstats_.parks, 1);
}

void gcstats_worker(uint64_t ns)
{
	afetch_add(&gcstats_.worker_ns, ns);
}
