/* gc/mgc.h: the collector as seen from runtime/: phases, the cycle API,
 * marking primitives, and the tables through which the collector calls up
 * into the runtime (it never includes runtime headers).
 *
 * The cycle, as in Go's mgc.go (details in gc/mgc.c):
 *   1. sweep termination and mark setup, world stopped: finish sweeping,
 *      turn on the write barrier and allocate-black, ask every thread to
 *      scan its own stack at its next safepoint;
 *   2. concurrent mark: a background worker drains grey objects, runs
 *      the root jobs (globals, stacks of blocked threads); allocating
 *      threads assist;
 *   3. mark termination, world stopped, after a ragged handshake has
 *      flushed every thread's barrier buffer and work: write barrier off,
 *      sweepgen += 2;
 *   4. concurrent sweep: a background sweeper, plus lazy sweeping when
 *      threads refill their caches.
 *
 * Invariant while marking (the tri-color invariant, strong form for heap
 * objects): no black object points to a white object that is not also
 * reachable from a grey object or a not-yet-scanned stack; the hybrid
 * write barrier (gc/mwbbuf.c) maintains it, and new objects are allocated
 * black: small ones in bulk by span ranges once the thread's roots are
 * scanned (alloc/mcache.h, runtime_start_black), large ones one by one
 * (mgc_alloc_black).
 *
 * What an allocating thread owes the collector is all behind calls here:
 * mgc_count_alloc and mgc_maybe_start (start a cycle when due),
 * mgc_assist (pay for the bytes while marking), mgc_alloc_black (mark a
 * new large object). The collector's part of each thread is an mgc_thread,
 * which runtime/'s gc_thread embeds: barrier buffer, marking work, assist
 * debt. */
#ifndef GCHEAP_MGC_H
#define GCHEAP_MGC_H

#include "alloc/alloc.h"
#include "gc/mephemeron.h"
#include "gc/mfinal.h"
#include "gc/mgcstats.h"
#include "gc/mgcwork.h"
#include "gcheap.h"

enum gcphase {
	GCPHASE_OFF = 0,
	GCPHASE_MARK = 1,
	GCPHASE_MARKTERM = 2,
};

/* What the collector asks of the runtime. */
typedef struct gc_runtime_ops {
	/* Stop every attached thread at a safepoint (or blocked); returns
	 * when all are. The caller may itself be attached. */
	void (*stop_world)(void);
	void (*start_world)(void);
	/* Queue the registered global roots into w (world running), with
	 * the help of any thread that calls help_globals meanwhile; returns
	 * once every slot is scanned. */
	void (*mark_globals)(gcw *w);
	/* Help an open mark_globals: scan what is left to claim into w,
	 * until max slots are scanned (a batch at least), and publish it;
	 * the slots scanned (0: nothing open or left). */
	size_t (*help_globals)(gcw *w, size_t max);
	/* Mark every thread's roots into w, world stopped (stoptheworld
	 * mode and checkmark). */
	void (*mark_threads_stopped)(gcw *w);
	/* Ask every thread to scan its own roots at its next safepoint. */
	void (*request_stack_scans)(void);
	/* Scan the roots of blocked threads on their behalf into w, and
	 * publish w (gcw_dispose) before the registry lock is released;
	 * true when every thread's roots are done. */
	bool (*stack_scans_done)(gcw *w);
	/* World stopped (by the caller): does a thread still owe the scan
	 * of its roots? */
	bool (*stack_scans_pending)(void);
	/* Ragged handshake: each thread flushes its barrier buffer and its
	 * work at its next safepoint (done for it if blocked). Returns true
	 * if anything was flushed. */
	bool (*flush_all)(void);
	/* World stopped: flush every thread's barrier buffer and work;
	 * true if anything was flushed. */
	bool (*flush_all_stopped)(void);
	/* After mark termination: every thread must release its cache
	 * before it allocates again (world stopped). */
	void (*request_cache_flush)(void);
	/* Flush the caches of blocked threads on their behalf; true when
	 * every thread has flushed. */
	bool (*cache_flushes_done)(void);
	/* Attached threads not in a blocking region: the mutators that
	 * may be running now. */
	size_t (*mutator_count)(void);
	/* Attached threads, blocked or not. */
	size_t (*thread_count)(void);
	/* The calling thread (if attached) waits for the collector: count
	 * it as stopped meanwhile. */
	void (*blocking_begin)(void);
	void (*blocking_end)(void);
	/* World stopped, marking complete (GCHEAP_DEBUG=rootcheck): grey
	 * into w the unmarked objects that unregistered globals point to,
	 * reporting them (or abort); true if it greyed any (the caller
	 * then marks from them). */
	bool (*rootcheck)(gcw *w);
} gc_runtime_ops;

/* What the pacer measures of the cycles (gc/mgcpacer.c), under mgc_.lock. */
typedef struct pacer_clock {
	uint64_t end_ns;          /* the last mark termination */
	uintptr_t alloc_bytes;    /* mgc_.alloc_bytes then */
	double rate;              /* bytes allocated per ns, smoothed */
} pacer_clock;

/* Collector state (Go's gcController and work, in one place). */
typedef struct mgc_state {
	gc_mutex lock;            /* serialises cycles; guards the fields
	                           * below that are not atomic */
	pthread_cond_t cond;      /* cycle and sweep progress */
	/* The mark workers' own: broadcast only when a mark starts or the
	 * number of workers changes, so that the cycle's other wake-ups
	 * (its end, the sweep's, callbacks) do not wake them to sleep
	 * again (a cycle of the allocation ring woke each worker ~7 times,
	 * and the program's thread lost its CPU ~9 times to the herd). */
	pthread_cond_t work_cond;
	atomic_word phase;        /* enum gcphase */
	atomic_word blackalloc;   /* allocate black (marking) */
	atomic_word cycles;       /* completed cycles */
	atomic_word begun;        /* marks begun (set with the world
	                           * stopped): cycles or cycles + 1 */
	/* For cycle callbacks, each set with the world running after the
	 * event: the last cycle whose mark has started, whose mark has
	 * ended, whose sweep is done. */
	atomic_word started;
	atomic_word ended;
	atomic_word swept;
	atomic_word disabled;     /* gc_disable nesting count */
	/* The sweepgen whose sweep is complete (mgc_sweep_done): a
	 * generation, not a flag, so that a sweeper that found nothing
	 * left of one sweep cannot mark the next one done. */
	atomic_word sweep_done_gen;
	atomic_word sweeper_paused; /* tests: the background sweeper idles */
	atomic_word idle_cycles;  /* cycles the sweeper started for an idle
	                           * heap (options_.forcegc_ms) */
	atomic_word worker_entries; /* tests: times a worker began marking */
	atomic_word bg_swept;     /* spans the background sweeper swept */
	atomic_word bg_busy_polls; /* its polls that found the mutators
	                           * allocating */
	atomic_word scavenges;    /* times it released memory after a sweep
	                           * (or found none to release) */
	atomic_word sweep_busy_test; /* tests: every poll finds the
	                           * mutators allocating */
	atomic_word traced;       /* the last cycle whose end is recorded
	                           * (its last pause, its trace line) */
	atomic_word trace_delay_test; /* tests: ns the end of a cycle waits
	                           * before it is recorded */
	atomic_word start_delay_test; /* tests: ns a concurrent mark's start
	                           * waits after the world restarts */
	atomic_word globals_done; /* the globals and specials root job:
	                           * 0 to do, 1 running, 2 done */
	/* Pacer (gc/mgcpacer.c). */
	atomic_word percent;      /* GOGC, an intptr_t; negative: off */
	uintptr_t heap_marked;    /* live bytes the last mark found, which
	                           * the goal is based on (capped after a
	                           * minor mark: gc/mgcgen.c) */
	uintptr_t mark_grown;     /* heap growth during the last mark */
	uintptr_t mark_start_live; /* mheap_.stats.heap_live when it began */
	uintptr_t last_scan_work; /* scan work of the last mark */
	uintptr_t min_goal;       /* the goal's floor this cycle */
	pacer_clock pacer_clock;
	atomic_word assisting;    /* assists draining now (mark_done waits
	                           * for them as for workers in the gate) */
	atomic_word bg_credit;    /* words the workers scanned this mark
	                           * beyond what assists took (Go's
	                           * bgScanCredit) */
	/* Both against mheap_.stats.heap_live (bytes in use or cached). */
	atomic_word trigger;      /* start a cycle at this heap_live */
	atomic_word goal;         /* heap_live at which marking should end */
	atomic_word stress_next;  /* bytes allocated at which stress fires */
	atomic_word alloc_bytes;  /* bytes allocated since the start, as
	                           * the slow paths are charged (runtime/
	                           * malloc.c's slow_path_bytes: at most a
	                           * window of 64 objects ahead) */
	/* Off-heap bytes of the special records (finalizers, cleanups,
	 * weak handles...) made since the last mark ended: counted with
	 * heap_live against the trigger, as if allocated, so that a
	 * program that gives every small object a finalizer is collected
	 * as its records grow, not only its objects (2 M 32-byte objects
	 * with finalizers held 38 MB of records between cycles against
	 * bdwgc's 2 MB heap). Not in `marked`: the records of the objects
	 * a mark found dead are only freed by the sweep after it. */
	atomic_word special_bytes;
	/* Generational collection (gc/mgcgen.c). */
	atomic_word gen_want;     /* gc_set_generational: minor marks wanted */
	atomic_word minor;        /* this mark (or the last) is a minor one */
	atomic_word major_wanted; /* threads in gc_collect: the next mark
	                           * is major */
	atomic_word major_target; /* the latest cycle a thread in
	                           * gc_collect waits for (major) */
	atomic_word last_major;   /* the last major mark's cycle number */
	atomic_word minor_test;   /* tests: gc_collect runs one mark, of
	                           * whichever kind is due */
	atomic_word cards_used;   /* cards were ever on: majors clear them */
	atomic_word minors;       /* minor marks begun, ever */
	atomic_word cards_scanned; /* dirty cards scanned by minor marks */
	uintptr_t major_marked;   /* live bytes the last major mark found */
	uintptr_t major_goal;     /* the goal the pacer set after it */
	uintptr_t major_scan_work, minor_scan_work; /* the last of each */
	/* Pause and phase timing: gcstats_ (gc/mgcstats.h). */
	unsigned markers;         /* GCHEAP_MARKERS, set before mgc_init
	                           * (0: the default, one per CPU online) */
	const gc_runtime_ops *ops;
	bool init;
	pthread_t sweeper;
	atomic_word exiting;
} mgc_state;

extern mgc_state mgc_;

/* Tests: called by the background sweeper after each round, before it
 * decides whether the sweep is done (more: it found spans to sweep). */
extern void (*mgc_sweeper_test_hook)(bool more);

/* Is every span of the current sweep generation swept? */
static inline bool mgc_sweep_done(void)
{
	return aload_acq(&mgc_.sweep_done_gen) == aload_acq(&mheap_.sweepgen);
}

bool mgc_init(const gc_runtime_ops *ops); /* false: no memory */

/* Run a full cycle and return when sweeping is done. */
void mgc_run_cycle(bool wait_sweep);
/* The marker gate (gc/mgc.c), for tests that play a mark worker holding
 * grey objects: enter (false once the phase is not MARK), leave. */
bool mgc_markers_enter(void);
void mgc_markers_leave(void);
/* Workers inside the gate now (tests: they may hold grey objects). */
uintptr_t mgc_markers_inside(void);
/* Start a cycle if the heap passed the trigger (allocation slow path). */
void mgc_maybe_start(void);
/* An assist past the goal found no grey work: wait outside the world
 * until the mark ends or work is published (at most ~10 ms a call). */
void mgc_park_assist(void);
/* Run n mark workers (1..GCHEAP_MAX_MARKERS; 0: the default, one per CPU
 * online); returns the previous number. */
unsigned mgc_set_markers(unsigned n);

/* ---- Barrier buffers and the barrier switch (gc/mwbbuf.c) ---------------- */

#define WBBUF_LEN 512

typedef struct wbbuf {
	uintptr_t n;
	uintptr_t ptr[WBBUF_LEN];
} wbbuf;

/* The collector's part of an attached thread (runtime/'s gc_thread embeds
 * it; only its thread touches it, or the collector while the thread is
 * stopped or blocked). */
typedef struct mgc_thread {
	wbbuf wb;             /* write-barrier buffer */
	gcw gcw;              /* this thread's marking work */
	intptr_t assist_debt; /* scan words owed (negative: credit) */
} mgc_thread;

/* The write-barrier switch, public because gc_write (gcheap.h) reads it
 * inline: any bit set sends stores to gc_write_slow. GCBAR_MARK: the
 * marking barrier (shade old and new values); GCBAR_CARDS: dirty the
 * card of the slot (generational collection, gc/mgcgen.c). Written only
 * with the world stopped (mark start and termination), through these;
 * everything inside the library reads it through them too. */
extern int gc_barrier_enabled;

#define GCBAR_MARK 1
#define GCBAR_CARDS 2

static inline bool wbbuf_barrier_on(void)
{
	return aload_int_acq(&gc_barrier_enabled) & GCBAR_MARK;
}

static inline bool wbbuf_cards_on(void)
{
	return aload_int_acq(&gc_barrier_enabled) & GCBAR_CARDS;
}

static inline void wbbuf_set_bit(int bit, bool on)
{
	int v = aload_int_acq(&gc_barrier_enabled);
	astore_int_rel(&gc_barrier_enabled, on ? v | bit : v & ~bit);
}

static inline void wbbuf_set_barrier(bool on)
{
	wbbuf_set_bit(GCBAR_MARK, on);
}

/* Has this mark read the slot at `slot` already, so that the barrier
 * need not shade the value a store overwrites there? True only for a slot
 * of a large object in an oblet scanned whole in this mark (its bit in
 * oblet_bits, which sweep clears). Sound because the scan shaded what it
 * read, and every value stored there since came through the barrier,
 * whose insertion half shades it (docs/design.md, the write barrier).
 * Any thread, while marking; the slot's object is live, so its span is
 * in use and not being swept. */
static inline bool gcmark_slot_scanned(uintptr_t slot)
{
	mspan *s = spanof(slot);
	if (!s || !s->oblet_bits || s->state != MSPAN_INUSE ||
	    slot - s->base >= s->limit - s->base)
		return false;
	uintptr_t k = (slot - s->base) / OBLET_BYTES;
	return (aload_acq((const atomic_word *)&s->oblet_bits[k / 64]) >>
	        (k % 64)) & 1;
}

/* Shade the buffered pointers into w and empty the buffer. */
void wbbuf_flush(wbbuf *b, gcw *w);

/* Append p to the thread's barrier buffer, flushing it into the thread's
 * work first when full (the barrier's slow path, and loads that must
 * shade what they return). */
static inline void wbbuf_put(mgc_thread *m, uintptr_t p)
{
	wbbuf *b = &m->wb;
	if (b->n == WBBUF_LEN) {
		wbbuf_flush(b, &m->gcw);
		gcw_dispose(&m->gcw);
	}
	b->ptr[b->n++] = p;
}

/* ---- What allocation owes the collector ---------------------------------- */

/* The allocation slow path's bookkeeping: count `bytes` allocated; true
 * when no cycle runs (the caller then calls mgc_maybe_start). */
static inline bool mgc_count_alloc(uintptr_t bytes)
{
	afetch_add(&mgc_.alloc_bytes, bytes);
	return aload_acq(&mgc_.phase) == GCPHASE_OFF;
}

/* The assist (Go's gcAssistAlloc, gc/mgcpacer.c): while marking, make the
 * thread pay for `bytes` of allocation with scan work, from the workers'
 * credit first, in bounded chunks; outside marking, forget any debt. */
void mgc_assist(mgc_thread *m, uintptr_t bytes);

/* Is the collector allocating black (large objects: mgc_alloc_black)? */
static inline bool mgc_allocating_black(void)
{
	return aload(&mgc_.blackalloc);
}

/* ---- Marking (gc/mgcmark.c) ---------------------------------------------- */

/* Grey the object that p points into (interior pointers included) if it
 * is an allocated, unmarked heap object. `precise` slots are checked by
 * invalidptr; from/slot name the referrer for diagnostics. */
void gcmark_value(gcw *w, uintptr_t p, bool precise, uintptr_t from,
                   uintptr_t slot);
/* Mark the n values (heap pointers or zero, none from a slot: the
 * barrier's buffer) a batch at a time, their cache misses overlapped. */
void gcmark_values(gcw *w, const uintptr_t *vals, size_t n);
/* Scan `n` precise pointer slots. */
void gcmark_scan_slots(gcw *w, void *const *slots, size_t n, uintptr_t from);
/* Conservatively scan [lo, hi): every word that points into an allocated
 * object keeps it alive. */
void gcmark_scan_conservative(gcw *w, uintptr_t lo, uintptr_t hi);
/* The scan work (pacer units, words) counted for each object greyed from
 * another span's object, a root or the barrier (not from its own span's
 * objects, in a span visit or not), on top of the slot that pointed to
 * it: its span's line, its mark-bit word and the span's ownership word
 * are cache misses when the pointers scatter, which a pointer within one
 * span does not pay. Unweighted, the pause probe's table (1.5 M slots,
 * each marking an object of another span) took 3.5x the time per unit of
 * the objects' own scans, and as the table is scanned first, the
 * assists, which pay in units, were front-loaded: 69% of the mark's
 * first 5 ms against 10% after 45 ms (weighted: 57% and ~20%; assists
 * 13 -> 8.5 ms a cycle). */
#define GCMARK_FAR_WORK 3
/* Scan grey objects until none are left (budget < 0), or about `budget`
 * words of scanning; returns the words scanned (weighted: above). */
intptr_t gcmark_drain(gcw *w, intptr_t budget);
/* Scan the pointer slots of the object at obj (without marking it). */
void gcmark_scan_object(gcw *w, uintptr_t obj);
/* Is the object that contains heap address p marked (in checkmark's
 * bitmap during checkmark)? True for addresses outside the heap. */
bool gcmark_is_marked(uintptr_t p);
/* Mark a new object (allocate-black; call mgc_alloc_black). */
void gcmark_new(gcw *w, mspan *s, uintptr_t obj);

/* Allocate-black (Go's gcmarknewobject) for a large object: while
 * marking it is born marked. Small objects are black by their span's
 * range instead (alloc/mcache.h). */
static inline void mgc_alloc_black(mgc_thread *m, mspan *s, uintptr_t obj)
{
	if (mgc_allocating_black() && GCHEAP_SABOTAGE != 2)
		gcmark_new(&m->gcw, s, obj);
}
/* Checkmark (world stopped): between begin and end, marking sets bits in
 * a separate bitmap and aborts naming the object and its referrer when a
 * precise slot reaches an object the concurrent mark left unmarked. The
 * re-mark from the roots in between is gc/mgc.c's. */
void gcmark_checkmark_begin(void);
void gcmark_checkmark_end(void);

/* Scan the slots in [lo, hi) of s's old objects (those live at the last
 * sweep, in alloc_bits): a minor mark's dirty card. Small objects that
 * overlap the range are scanned whole. Returns the scan work. */
uintptr_t gcmark_scan_old(gcw *w, mspan *s, uintptr_t lo, uintptr_t hi);

/* ---- Generational collection (gc/mgcgen.c) ------------------------------- */

/* Mark start, world stopped, every span swept: the mark is minor if the
 * sweep left the old objects black (mgc_.minor); bytes_marked starts at
 * their bytes for a minor one. */
void mgcgen_start(void);
/* Verification (GCHEAP_DEBUG=verify=1), world stopped, every span swept,
 * before a minor mark: every pointer from an old object to a young one
 * lies in a dirty card (fatal otherwise). */
void mgcgen_verify(void);
/* The root job's part: a minor mark scans the dirty cards (clearing
 * them), a major one clears them. */
void mgcgen_cards(gcw *w);
/* Mark termination, world stopped, sweepers held off: choose the next
 * mark (mspan_gen_.sticky) and set the card switch. */
void mgcgen_end(uintptr_t marked, size_t limit);
/* Then, mgc_.lock held, after pacer_end_cycle: a major mark's goal is
 * recorded; after a minor mark the goal is capped at that goal plus half
 * its runway, or what the mark found plus a runway if more. */
void mgcgen_paced(void);

/* ---- gc_free's records (gc/mfree.c) -------------------------------------- */

/* Record obj (filled with `fill` over size bytes) as freed by gc_free:
 * 1, or 0 if it is recorded already, or -1 if no memory. */
int mfree_track(uintptr_t obj, uintptr_t size, uint8_t fill);
/* Was the object at obj freed by gc_free (and not yet collected)? */
bool mfree_is_freed(uintptr_t obj);
/* Mark termination, world stopped: check and forget the records of the
 * objects the mark found unreachable (fatal on a write after gc_free). */
void mfree_check(void);

/* ---- Sweeping (gc/mgcsweep.c) -------------------------------------------- */

/* Sweep one unswept span; false when none are left. */
bool sweep_one(void);
/* Sweep up to max unswept spans of one class, a batch at a time
 * (mcentral_sweep_some); how many, 0 when none are left. */
size_t sweep_some(size_t max);
/* Sweep until every span of this cycle is swept. */
void sweep_finish(void);
/* Sweep until every span of generation sg is swept, or a later cycle's
 * termination has moved sweepgen on (whose start had finished sg's
 * sweep): gc_collect's wait, which other threads' collections must not
 * keep going. */
void sweep_finish_gen(uintptr_t sg);
/* Proportional sweep (gc/mgcsweep.c). Mark termination, world stopped,
 * after the sweepgen flip: `pages` in use are to be swept while the heap
 * grows by `distance` bytes (to the next trigger). */
void sweep_pace_start(uintptr_t pages, uintptr_t distance);
/* The allocation slow path: sweep what the pace says is owed by now. */
void sweep_credit(void);
/* Pages owed by now and not yet swept (0 once nothing is left to
 * sweep); pages swept this cycle, by anyone (sweep_one, a thread's
 * cache, the sweeper). */
uintptr_t sweep_pace_owed(void);
/* Are spans of this generation still on unswept lists? Sweeps nothing
 * (the background sweeper asks while the program allocates). */
bool sweep_pending(void);
uintptr_t sweep_pace_swept(void);
/* Mark termination: hold off sweepers (and wait out the ones inside a
 * span) around the sweepgen flip. */
void sweep_block(void);
void sweep_unblock(void);

/* ---- Pacer (gc/mgcpacer.c) ----------------------------------------------- */

#define PACER_GROWN_UNKNOWN UINTPTR_MAX
/* Set goal and trigger after a mark of `marked` bytes during which the
 * heap grew by `grown` (PACER_GROWN_UNKNOWN: no mark yet). What a thread
 * owes while marking is not fixed here: pacer_assist_owed recomputes it
 * at each slow path. */
void pacer_end_cycle(uintptr_t marked, uintptr_t grown);
/* What the heap would have grown by during a mark in which it grew by
 * `grown` while the mutators ran a `share` of the time (assists and
 * parks took the rest): grown / share (a share under 1% counts as 1%),
 * at most UINTPTR_MAX / 4. */
uintptr_t pacer_unassisted(uintptr_t grown, double share);
/* The trigger for that mark and goal. */
uintptr_t pacer_trigger(uintptr_t marked, uintptr_t goal, uintptr_t grown);
/* Scan work owed for allocating `bytes` while marking, with the heap at
 * `live` of `goal`, `expect` work expected for the mark and `done` done:
 * the remaining work spread over the remaining runway (Go's
 * assistWorkPerByte); -1 past the goal (help with everything). */
intptr_t pacer_assist_owed(uintptr_t bytes, uintptr_t live, uintptr_t goal,
                           uintptr_t expect, uintptr_t done);
/* The heap goal for a live heap of `marked` bytes at `percent`, at least
 * `min`. */
uintptr_t pacer_goal(uintptr_t marked, unsigned percent, size_t limit,
                     uintptr_t min);
/* The floor of the goal when the mutators allocate `rate` bytes per ns
 * (see gc/mgcpacer.c). */
uintptr_t pacer_min_goal(unsigned percent, size_t limit, double rate);
/* Mark termination, world stopped, mgc_.lock held: record the time and
 * the bytes allocated so far (before pacer_end_cycle). */
void pacer_measure(uint64_t now_ns, uintptr_t alloc_bytes);

#endif
