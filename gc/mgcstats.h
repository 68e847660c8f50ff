/* gc/mgcstats.h: the collector's timing bookkeeping for gc_read_stats and
 * the gctrace line: phase clocks, the pause ring and histogram, assist,
 * mark-worker and sweeper CPU time (gc/mgcstats.c).
 *
 * Every pause and phase time is kept here, and only here.
 *
 * The cycle calls in at fixed points, always in this order:
 *   gcstats_cycle_start   world stopped, sweep termination done (with
 *                         the time the cycle began stopping the world)
 *   gcstats_pause(0, t0)  world running again: the first pause, which
 *                         began (asked the world to stop) at t0
 *   gcstats_mark_end      world stopped, marking complete
 *   gcstats_pause(1, t0)  after each mark-termination stop (an aborted
 *                         stop counts too)
 *   gcstats_cycle_end     world running: the trace line, the cycle hook
 *   gcstats_sweep_done    the background sweeper swept the last span
 * and gcstats_ttsp at every stop of the world (from runtime/).
 * Everything is guarded by gcstats_.lock except the atomics. */
#ifndef GCHEAP_MGCSTATS_H
#define GCHEAP_MGCSTATS_H

#include "alloc/alloc.h"

#define GCSTATS_RING 256 /* pauses kept */
#define GCSTATS_HIST 32  /* histogram buckets: i holds [2^i, 2^(i+1)) us */
#define GCSTATS_STOPS 16 /* a cycle's pauses the trace line places */

enum gcstats_phase {
	GCSTATS_SWEEPTERM = 0, /* pause 1: sweep termination, mark setup */
	GCSTATS_MARK = 1,      /* concurrent mark, between the pauses */
	GCSTATS_MARKTERM = 2,  /* pause 2: mark termination (all stops) */
	GCSTATS_SWEEP = 3,     /* concurrent sweep until the last span */
	GCSTATS_NPHASES = 4,
};

typedef struct gcstats_state {
	gc_mutex lock;
	uint64_t start_ns;          /* monotonic clock at init */
	uint64_t phase_last[GCSTATS_NPHASES];
	uint64_t phase_total[GCSTATS_NPHASES];
	uint64_t ring[GCSTATS_RING]; /* pause i at ring[i % GCSTATS_RING] */
	uint64_t npauses;
	uint64_t hist[GCSTATS_HIST];
	uint64_t max_pause;         /* the longest pause */
	uint64_t other_total;       /* pauses outside cycles (heap dumps) */
	uint64_t last_pause[2];     /* the latest pause of each kind */
	uint64_t last_mark;         /* the last cycle, start to mark end */
	/* The cycle in progress. */
	uint64_t cur[GCSTATS_NPHASES];
	uint64_t cycle_begin_ns, mark_begin_ns, mark_end_ns;
	uint64_t heap_start, heap_end, heap_marked;
	uint64_t assist0, worker0;  /* CPU counters at cycle start */
	uint64_t park0;             /* park_ns then */
	/* The cycle's pauses in order, for the trace line: start (since
	 * start_ns) and length. Past GCSTATS_STOPS, a pause's length is
	 * added to the last one's (total exact, position approximate). */
	uint64_t stop_at[GCSTATS_STOPS], stop_len[GCSTATS_STOPS];
	unsigned nstops_cycle;
	uint64_t last_assist, last_worker; /* the last cycle's */
	/* Time-to-safepoint: from asking every thread to stop until the last
	 * one stopped, per stop of the world. */
	uint64_t ttsp_total, ttsp_max, ttsp_cycle, ttsp_last;
	int ttsp_max_tid, ttsp_cycle_tid, ttsp_last_tid; /* the last to stop */
	uint64_t nstops;
	atomic_word released_ns;    /* the world's last release */
	/* CPU time (ns), atomics. */
	atomic_word assist_ns;      /* in mutator assists */
	atomic_word assists;        /* mutator assists run */
	uint64_t assists0, last_assists; /* at cycle start; the last cycle's */
	atomic_word parks, park_ns; /* assists parked (mgc_park_assist) */
	atomic_word worker_ns;      /* in background mark workers */
	atomic_word sweeper_ns;     /* the background sweeper thread */
	unsigned workers;
	long ncpu;
	/* Called after each cycle (world running, no lock held). */
	void (*cycle_hook)(void);
} gcstats_state;

extern gcstats_state gcstats_;

void gcstats_init(unsigned workers, long ncpu);
/* The library's clocks, in ns: monotonic (every phase, pause and wait
 * is timed with it, runtime/safepoint.c's stop watch too), and the
 * calling thread's CPU time. */
uint64_t gcstats_now_ns(void);
uint64_t gcstats_cpu_ns(void);

void gcstats_cycle_start(uint64_t begin_ns, uintptr_t heap_live);
/* A pause ended; it began at begin_ns (gcstats_now_ns). It ended when
 * the world was last released (gcstats_world_released), if that was
 * after begin_ns, else now. */
void gcstats_pause(int which, uint64_t begin_ns);
/* A stop of the world outside any cycle (a heap dump's), from begin_ns
 * to now: in the pause counters, ring and histogram, not in a phase. */
void gcstats_pause_other(uint64_t begin_ns);
/* The runtime's start of the world: the stopped threads were released
 * at `ns` (gcstats_now_ns). */
void gcstats_world_released(uint64_t ns);
/* The mark ended (world stopped); returns the share of its wall time
 * that `nmutators` threads spent neither assisting nor parked, in (0, 1]
 * (1 for a stop-the-world cycle, which has no concurrent mark). */
double gcstats_mark_end(uintptr_t heap_live, uintptr_t marked,
                        unsigned nmutators);
void gcstats_cycle_end(uintptr_t cycle, uintptr_t goal, bool trace,
                       bool minor);
void gcstats_sweep_done(void);
void gcstats_set_hook(void (*fn)(void));
void gcstats_assist(uint64_t ns);
/* A mutator waited `ns` (wall) in mgc_park_assist. */
void gcstats_park(uint64_t ns);
/* A stop of the world took `ns` from the request until every thread had
 * stopped; `tid` was the last to stop (0: none had to). */
void gcstats_ttsp(uint64_t ns, int tid);
void gcstats_worker(uint64_t ns);

#endif
