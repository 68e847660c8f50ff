/* runtime/safepoint.c: stopping the world, safepoints, blocking regions,
 * and the per-thread handshakes of the collector (the gc_runtime_ops the
 * collector calls up through).
 *
 * Threads cooperate: the collector sets bits in a thread's `pending`
 * word, and the thread answers at its next safepoint (gc_safepoint, the
 * allocation slow path, gc_blocking_begin/end). A thread in a blocking
 * region (TS_BLOCKED) has promised not to touch the heap, so the collector
 * may *claim* it (TS_CLAIMED) and do the work for it: scan its stack from
 * the registers and stack pointer it saved, flush its buffers and cache.
 * gc_blocking_end waits while the thread is claimed or the world is
 * stopped.
 *
 * Locks: runtime_.lock (the registry) is held by whoever stops the world
 * or walks the threads for a handshake, for the whole operation;
 * world_lock guards status changes and the condition variable, but for
 * a blocking region's entry and exit, which are lock-free (blocking_begin
 * says how they meet stops and claims). A thread
 * never takes runtime_.lock while TS_RUNNING (attach is not yet
 * registered; detach and stop_world block first), so a stopper never
 * waits for a thread that waits for it.
 *
 * A thread that blocks without gc_blocking_begin (a join, a read, a lock)
 * holds every stop up for as long as it blocks. The wait goes on, but
 * after options_.stopwarn_ms (GCHEAP_DEBUG=stopwarn) it names, once per
 * stop or handshake, each thread it is still waiting for. */
#include "runtime/runtime.h"

#include "format/export.h"

#include <stdio.h>
#include <time.h>

static gc_mutex world_lock = {.m = PTHREAD_MUTEX_INITIALIZER};
static pthread_cond_t world_cond = PTHREAD_COND_INITIALIZER;
static atomic_word handshake_flushed;

static void world_signal(void)
{
	mutex_lock(&world_lock);
	pthread_cond_broadcast(&world_cond);
	mutex_unlock(&world_lock);
}

/* Wait briefly for a status change (world_lock held). */
static void world_wait(void)
{
	mutex_assert_held(&world_lock);
	mutex_cond_wait_ns(&world_cond, &world_lock, 1000000);
}

/* ---- Threads that hold a stop up ----------------------------------------- */

typedef struct stall_watch {
	uint64_t start_ns; /* when the wait began; 0 before the first check */
	bool warned;
} stall_watch;

static const char *request_name(uintptr_t bit)
{
	switch (bit) {
	case P_STOP: return "stop the world";
	case P_SCAN: return "scan its stack";
	case P_FLUSH: return "flush its barrier buffer";
	default: return "release its allocation cache";
	}
}

/* What the kernel says thread tid is doing (/proc/self/task/<tid>/stat):
 * 'R' running, 'S' or 'D' asleep, 0 unknown. */
static char kernel_state(int tid)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	const char *state = proc_stat_state(path, buf, sizeof(buf));
	return state ? *state : 0;
}

/* The advice for a thread that holds a stop up, by what it is doing. */
static const char *stall_advice(char state)
{
	switch (state) {
	case 'R':
		return "it is running: call gc_safepoint in long loops "
		       "that do not allocate";
	case 'S':
	case 'D':
		return "it is asleep in the kernel (a lock, a join, a read, "
		       "a sleep): wrap calls that block in "
		       "gc_blocking_begin/end";
	default:
		return "wrap calls that block (pthread_join, read, locks, "
		       "sleeps) in gc_blocking_begin/end, and call "
		       "gc_safepoint in long loops that do not allocate";
	}
}

/* Called while waiting for every thread to answer `bit` (registry lock
 * held): once the wait has lasted stopwarn_ms, print one line for each
 * running thread that still owes it, once per watch, with what the
 * kernel says it is doing (a thread asleep in a lock that another
 * attached thread holds while it waits for this stop is a deadlock: the
 * line is all the program will hear of it). */
static void stall_check(stall_watch *w, uintptr_t bit)
{
	unsigned ms = options_.stopwarn_ms;

	if (w->warned || !ms)
		return;
	uint64_t now = gcstats_now_ns();
	if (!w->start_ns) {
		w->start_ns = now;
		return;
	}
	if (now - w->start_ns < (uint64_t)ms * 1000000u)
		return;
	w->warned = true;
	for (gc_thread *t = runtime_.threads; t; t = t->next) {
		if (t == thread_current || !(aload_acq(&t->pending) & bit) ||
		    aload_acq(&t->status) != TS_RUNNING)
			continue;
		char name[32] = "";
		if (pthread_getname_np(t->self, name, sizeof(name)))
			name[0] = 0;
		/* With the registry and world_lock held: a cancel taken in
		 * the write left both held (alloc/sys/lock.h). */
		int cs = cancel_off();
		fprintf(stderr, "gcheap: waited %u ms for thread %d (%s) to "
		        "reach a safepoint (to %s): %s; still waiting\n", ms,
		        t->tid, name[0] ? name : "unnamed", request_name(bit),
		        stall_advice(kernel_state(t->tid)));
		cancel_restore(cs);
	}
}

/* ---- Saving a thread's context ------------------------------------------- */

/* A thread that parks or blocks is scanned by others from t->saved_sp
 * up, plus a copy of the frame that parked or blocked. Every function
 * that parks or blocks the thread and then returns (gc_blocking_begin,
 * the library's own blocking waits) or waits itself (park) starts with
 * ENTER_SAVED: __builtin_unwind_init makes its prologue save every
 * callee-saved register, which still holds its caller's value then,
 * in its own frame, before anything can change them (bdwgc does the
 * same). save_context copies that frame, from its caller's stack
 * pointer (its own CFA) to the caller's CFA, into the thread, and the
 * scan starts at that CFA: the frames below it are gone, or changing,
 * as soon as the thread runs on (a region's helper, blocking_end's own
 * prologue). A setjmp in the blocking call recorded registers it had
 * already reused, and the caller's value, pushed by its prologue into a
 * frame that then died, was lost (a live object freed). */
#define ENTER_SAVED() __builtin_unwind_init()

static NOINLINE NO_SANITIZE_ADDRESS void save_context(gc_thread *t,
                                                     uintptr_t cfa)
{
	uintptr_t lo = (uintptr_t)__builtin_dwarf_cfa();
	size_t n = (cfa - lo) / sizeof(uintptr_t);

	gc_assert(cfa > lo && n <= SAVED_FRAME_WORDS);
	if (n > SAVED_FRAME_WORDS) { /* the top (x86-64 saves there) */
		lo = cfa - SAVED_FRAME_WORDS * sizeof(uintptr_t);
		n = SAVED_FRAME_WORDS;
	}
	for (size_t i = 0; i < n; i++)
		t->saved_frame[i] = ((const volatile uintptr_t *)lo)[i];
	t->saved_words = n;
	t->saved_sp = cfa;
	t->saves++;
}

/* Checked builds: every block or park follows its own save (a stale one
 * left the frames below it unscanned). */
static void use_saved(gc_thread *t)
{
	gc_assert(t->saves != t->saves_used);
	t->saves_used = t->saves;
}

/* ---- Parking and blocking ------------------------------------------------ */

/* A stop of the world lasts tens of microseconds, and waking a thread
 * blocked on a condition variable costs as much again on a VM (the
 * probe's longest pause went from 0.09-0.13 to 0.05-0.06 ms with the
 * spins, docs/benchmarks.md). So the stopper waiting for the
 * threads to park, and a parked thread waiting for the world to start,
 * spin up to STOP_SPIN_NS before they block: only while there is a CPU
 * for every running mutator besides the spinner, else the spin would take
 * the CPU of a thread that the stop waits for. */
#define STOP_SPIN_NS 50000

static bool may_spin(void)
{
	return aload(&runtime_.nrunning) < (uintptr_t)gcstats_.ncpu;
}

static NOINLINE void park(gc_thread *t)
{
	ENTER_SAVED();
	save_context(t, (uintptr_t)__builtin_dwarf_cfa());
	use_saved(t);
	mutex_lock(&world_lock);
	astore_rel(&t->status, TS_PARKED);
	pthread_cond_broadcast(&world_cond);
	if (may_spin()) {
		mutex_unlock(&world_lock);
		uint64_t end = gcstats_now_ns() + STOP_SPIN_NS;
		while ((aload_acq(&t->pending) & P_STOP) &&
		       gcstats_now_ns() < end)
			cpu_relax();
		mutex_lock(&world_lock);
	}
	while (aload_acq(&t->pending) & P_STOP)
		mutex_cond_wait(&world_cond, &world_lock);
	astore_rel(&t->status, TS_RUNNING);
	mutex_unlock(&world_lock);
}

static void answer(gc_thread *t, void *arg);

void runtime_safepoint_slow(gc_thread *t)
{
	/* Outside an entry (gc_weak_get's, a region's end, attaching): the
	 * safepoint makes one, so that no scan here reads the frames below
	 * it (runtime.h, "Entries"). */
	if (!t->scan_from) {
		runtime_call_entered(t, answer, NULL);
		return;
	}
	answer(t, NULL);
}

static void answer(gc_thread *t, void *arg)
{
	uintptr_t p;

	(void)arg;
	runtime_check_fork("a gcheap call (at its safepoint)");
	while ((p = aload_acq(&t->pending))) {
		if (p & P_STOP) {
			park(t);
			continue;
		}
		if (p & P_CACHE) {
			mcache_prepare_for_sweep(&t->mcache);
			aand(&t->pending, ~(uintptr_t)P_CACHE);
		}
		if (p & P_SCAN) {
			if (GCHEAP_SABOTAGE != 3)
				runtime_scan_thread(t, &t->gc.gcw, true);
			gcw_dispose(&t->gc.gcw);
			aand(&t->pending, ~(uintptr_t)P_SCAN);
		}
		if (p & P_FLUSH) {
			if (runtime_flush_thread(t))
				afetch_add(&handshake_flushed, 1);
			aand(&t->pending, ~(uintptr_t)P_FLUSH);
		}
		world_signal();
	}
}

/* Blocking regions without the world lock (Go's entersyscall and
 * exitsyscall fast paths): each took it twice and broadcast, and every
 * thread of a program that wraps its I/O in regions met every other
 * there. Entering stores the status, then (past a full fence) looks at
 * the thread's requests; a stopper or a handshake sets its request bit
 * (a full-barrier OR) before it looks at the statuses. So either the
 * requester sees the thread blocked, or the thread sees the request and
 * wakes it (world_signal). Leaving is a compare-and-swap from blocked
 * to running, which a claim (also a compare-and-swap) cannot cross, then
 * the same look for a stop: a stopper may have counted the thread as
 * stopped before the swap, so a stop seen now sends it back to blocked
 * (it has touched nothing meanwhile) and to wait under the lock. */

/* The caller has saved its context (save_context). */
static void blocking_begin(gc_thread *t)
{
	use_saved(t);
	astore_rel(&t->status, TS_BLOCKED);
	afetch_add(&runtime_.nrunning, (uintptr_t)-1);
	afence();
	if (aload(&t->pending))
		world_signal();
}

static void blocking_end(gc_thread *t)
{
	runtime_check_fork("gc_blocking_end");
	if (acas(&t->status, TS_BLOCKED, TS_RUNNING)) {
		afence();
		if (!(aload_acq(&t->pending) & P_STOP)) {
			afetch_add(&runtime_.nrunning, 1);
			runtime_safepoint(t);
			return;
		}
		astore_rel(&t->status, TS_BLOCKED);
		world_signal();
	}
	mutex_lock(&world_lock);
	while (aload_acq(&t->status) == TS_CLAIMED ||
	       (aload_acq(&t->pending) & P_STOP))
		mutex_cond_wait(&world_cond, &world_lock);
	astore_rel(&t->status, TS_RUNNING);
	afetch_add(&runtime_.nrunning, 1);
	mutex_unlock(&world_lock);
	runtime_safepoint(t);
}

NOINLINE void runtime_blocking_begin(gc_thread *t)
{
	ENTER_SAVED();
	save_context(t, (uintptr_t)__builtin_dwarf_cfa());
	blocking_begin(t);
}

void runtime_blocking_end(gc_thread *t)
{
	blocking_end(t);
}

void runtime_blocking_end_at_exit(gc_thread *t)
{
	/* A claim is taken under world_lock: none runs past this. */
	mutex_lock(&world_lock);
	while (aload_acq(&t->status) == TS_CLAIMED)
		mutex_cond_wait(&world_cond, &world_lock);
	t->frames = NULL;
	mutex_unlock(&world_lock);
	blocking_end(t);
}

/* ---- Entries (runtime.h) ------------------------------------------------ */

static NOINLINE void call_entered(gc_thread *t,
                                  void (*fn)(gc_thread *, void *), void *arg)
{
	uintptr_t prev = runtime_enter(t, (uintptr_t)__builtin_dwarf_cfa());
	fn(t, arg);
	runtime_leave(t, prev);
}

NOINLINE void runtime_call_entered(gc_thread *t,
                                   void (*fn)(gc_thread *, void *), void *arg)
{
	ENTER_SAVED(); /* and nothing else: as gc_alloc_slow (malloc.c) */
	call_entered(t, fn, arg);
	/* Not a tail call: this frame holds the registers. */
	__asm__ volatile("" : : "r"(t) : "memory");
}

void gc_safepoint(void)
{
	gc_thread *t = thread_current;
	if (unlikely(!t)) {
		runtime_not_attached("gc_safepoint");
		return;
	}
	runtime_safepoint(t);
}

/* Inside the region thread_current is NULL and thread_blocked the thread
 * (runtime.h): heap calls fail instead of racing with the collector that
 * may claim the thread meanwhile. */
NOINLINE void gc_blocking_begin(void)
{
	ENTER_SAVED();
	gc_thread *t = thread_current;
	if (!t) {
		if (thread_blocked)
			runtime_error(GCHEAP_ERR_ARG, "gc_blocking_begin "
			              "inside gc_blocking_begin/end: they do "
			              "not nest");
		else
			runtime_not_attached("gc_blocking_begin");
		return;
	}
	save_context(t, (uintptr_t)__builtin_dwarf_cfa());
	blocking_begin(t);
	thread_current = NULL;
	thread_blocked = t;
}

void gc_blocking_end(void)
{
	gc_thread *t = thread_blocked;
	if (!t) {
		if (thread_current)
			runtime_error(GCHEAP_ERR_ARG, "gc_blocking_end without "
			              "gc_blocking_begin");
		else
			runtime_not_attached("gc_blocking_end");
		return;
	}
	thread_blocked = NULL;
	thread_current = t;
	blocking_end(t);
}

static size_t mutator_count(void)
{
	return aload(&runtime_.nrunning);
}

static size_t thread_count(void)
{
	return aload(&runtime_.nthreads);
}

static NOINLINE void ops_blocking_begin(void)
{
	ENTER_SAVED();
	gc_thread *t = thread_current;
	if (t) {
		save_context(t, (uintptr_t)__builtin_dwarf_cfa());
		blocking_begin(t);
	}
}

static void ops_blocking_end(void)
{
	if (thread_current)
		blocking_end(thread_current);
}

/* Claim a blocked thread so the collector can work for it. */
static bool claim(gc_thread *t)
{
	/* A swap: the thread leaves its region without the lock. */
	mutex_lock(&world_lock);
	bool ok = acas(&t->status, TS_BLOCKED, TS_CLAIMED);
	mutex_unlock(&world_lock);
	return ok;
}

static void unclaim(gc_thread *t)
{
	mutex_lock(&world_lock);
	astore_rel(&t->status, TS_BLOCKED);
	pthread_cond_broadcast(&world_cond);
	mutex_unlock(&world_lock);
}

/* ---- Stopping the world -------------------------------------------------- */

/* Take the registry lock; an attached caller counts as blocked while it
 * waits for it. */
static NOINLINE void registry_lock(void)
{
	ENTER_SAVED();
	gc_thread *me = thread_current;
	if (!me) {
		mutex_lock(&runtime_.lock);
		return;
	}
	/* Blocked while it waits: whoever holds the registry may scan it
	 * (a stop's mark, a claim), from here. */
	save_context(me, (uintptr_t)__builtin_dwarf_cfa());
	blocking_begin(me);
	mutex_lock(&runtime_.lock);
	/* We hold the registry: nobody can claim or stop us now. */
	mutex_lock(&world_lock);
	astore_rel(&me->status, TS_RUNNING);
	afetch_add(&runtime_.nrunning, 1);
	mutex_unlock(&world_lock);
}

static void stop_world(void)
{
	gc_thread *me = thread_current;

	registry_lock();
	uint64_t t0 = gcstats_now_ns();
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		if (t != me)
			aor(&t->pending, P_STOP);
	stall_watch w = {0};
	int last = 0; /* the last thread waited for: the one that stopped
	               * last */
	if (may_spin()) {
		uint64_t end = t0 + STOP_SPIN_NS;
		for (gc_thread *t = runtime_.threads; t; t = t->next)
			while (t != me &&
			       aload_acq(&t->status) == TS_RUNNING &&
			       gcstats_now_ns() < end) {
				last = t->tid;
				cpu_relax();
			}
	}
	mutex_lock(&world_lock);
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		while (t != me && aload_acq(&t->status) == TS_RUNNING) {
			last = t->tid;
			world_wait();
			stall_check(&w, P_STOP);
		}
	mutex_unlock(&world_lock);
	gcstats_ttsp(gcstats_now_ns() - t0, last);
}

/* A mutator that stopped the world itself (verify-mode gc_read_stats,
 * gc_heap_dump) must answer its own pending requests with
 * runtime_safepoint before it allocates again: a cache flush asked of it
 * meanwhile would otherwise leave it allocating from a stale span. */
static void start_world(void)
{
	mutex_lock(&world_lock);
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		aand(&t->pending, ~(uintptr_t)P_STOP);
	mutex_unlock(&world_lock);
	/* The pause ends here: the threads may run. Measured later, it
	 * took in the time the stopper waited for a CPU once the threads
	 * it woke had taken both (1-4 ms with two mutators on two CPUs). */
	gcstats_world_released(gcstats_now_ns());
	/* Woken after the unlock: a woken thread that ran at once would
	 * only block on world_lock again. */
	pthread_cond_broadcast(&world_cond);
	mutex_unlock(&runtime_.lock);
}

/* ---- Handshakes ---------------------------------------------------------- */

/* Set `bit` in every thread (world stopped). */
static void request_all(uintptr_t bit)
{
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		aor(&t->pending, bit);
}

void (*runtime_claim_test_hook)(gc_thread *t, uintptr_t bit);

/* Do `bit`'s work for every thread that still owes it and can be claimed
 * (or is the caller); true when no thread owes it any more. Registry
 * lock held. */
static bool serve(uintptr_t bit, gcw *w)
{
	gc_thread *me = thread_current;
	bool all = true;

	mutex_assert_held(&runtime_.lock);
	for (gc_thread *t = runtime_.threads; t; t = t->next) {
		if (!(aload_acq(&t->pending) & bit))
			continue;
		bool self = t == me;
		if (!self && !claim(t)) {
			all = false;
			continue;
		}
		if (unlikely(runtime_claim_test_hook != NULL) && !self)
			runtime_claim_test_hook(t, bit);
		if (bit == P_SCAN) {
			if (GCHEAP_SABOTAGE != 3)
				runtime_scan_thread(t, w, self);
		} else if (bit == P_FLUSH) {
			if (runtime_flush_thread(t))
				afetch_add(&handshake_flushed, 1);
		} else if (bit == P_CACHE) {
			mcache_prepare_for_sweep(&t->mcache);
		}
		aand(&t->pending, ~bit);
		if (!self)
			unclaim(t);
	}
	return all;
}

/* The handshakes the collector polls (under the registry lock). */
static stall_watch scan_watch, cache_watch;

static void request_stack_scans(void)
{
	gcw w = {0};

	scan_watch = (stall_watch){0};
	request_all(P_SCAN);
	/* World stopped: from now on every thread allocates black (its
	 * cached spans' ranges, alloc/mcache.h), and its active tiny block
	 * is greyed, since later tiny objects are packed into it without
	 * being marked (Go's gcMarkTinyAllocs). A few stores per cached
	 * span class. */
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		if (GCHEAP_SABOTAGE != 2)
			runtime_start_black(t, &w);
		else if (t->mcache.tiny)
			gcmark_value(&w, t->mcache.tiny, false, 0, 0);
	gcw_dispose(&w);
}

/* What was scanned is published before the registry is released: a
 * stopper that takes it next must find it (gc/mgc.c, the marker gate). */
static bool stack_scans_done(gcw *w)
{
	registry_lock();
	bool done = serve(P_SCAN, w);
	gcw_dispose(w);
	if (!done)
		stall_check(&scan_watch, P_SCAN);
	mutex_unlock(&runtime_.lock);
	return done;
}

static bool stack_scans_pending(void)
{
	mutex_assert_held(&runtime_.lock);
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		if (aload_acq(&t->pending) & P_SCAN)
			return true;
	return false;
}

/* Go's forEachP for the barrier buffers: every thread flushes its buffer
 * into marking work, by itself at its next safepoint or, blocked, by us.
 * The registry lock is released while we wait: a thread may be waiting
 * (without a safepoint) for another one to attach, and attaching takes
 * the lock. A thread that attaches meanwhile has buffered nothing from
 * before the request; one that detaches flushes itself. Nothing to do
 * once the mark is over: a mark ends only with the world stopped, which
 * takes this lock, so the phase seen under it holds until we release it
 * (a worker that reached mark_done just after another one ended the mark
 * once asked every thread for a flush with no mark running, and held the
 * lock until they all answered). */
static bool flush_all(void)
{
	uintptr_t before = aload(&handshake_flushed);
	stall_watch sw = {0};

	for (bool first = true;; first = false) {
		registry_lock();
		if (aload_acq(&mgc_.phase) != GCPHASE_MARK) {
			mutex_unlock(&runtime_.lock);
			break;
		}
		if (first)
			request_all(P_FLUSH);
		bool done = serve(P_FLUSH, NULL);
		if (!done)
			stall_check(&sw, P_FLUSH);
		mutex_unlock(&runtime_.lock);
		if (done)
			break;
		mutex_lock(&world_lock);
		world_wait();
		mutex_unlock(&world_lock);
	}
	return aload(&handshake_flushed) != before;
}

static bool flush_all_stopped(void)
{
	bool any = false;

	for (gc_thread *t = runtime_.threads; t; t = t->next)
		any |= runtime_flush_thread(t);
	return any;
}

static void mark_threads_stopped(gcw *w)
{
	gc_thread *me = thread_current;

	for (gc_thread *t = runtime_.threads; t; t = t->next)
		runtime_scan_thread(t, w, t == me);
}

static void request_cache_flush(void)
{
	gc_thread *me = thread_current;

	cache_watch = (stall_watch){0};
	request_all(P_CACHE);
	/* The collector's own thread flushes at once: it is about to
	 * return into the allocator. */
	if (me) {
		mcache_prepare_for_sweep(&me->mcache);
		aand(&me->pending, ~(uintptr_t)P_CACHE);
	}
}

static bool cache_flushes_done(void)
{
	registry_lock();
	bool done = serve(P_CACHE, NULL);
	if (!done)
		stall_check(&cache_watch, P_CACHE);
	mutex_unlock(&runtime_.lock);
	return done;
}

const gc_runtime_ops runtime_gc_ops = {
	.stop_world = stop_world,
	.start_world = start_world,
	.mark_globals = runtime_mark_globals,
	.help_globals = runtime_help_globals,
	.mark_threads_stopped = mark_threads_stopped,
	.request_stack_scans = request_stack_scans,
	.stack_scans_done = stack_scans_done,
	.stack_scans_pending = stack_scans_pending,
	.flush_all = flush_all,
	.flush_all_stopped = flush_all_stopped,
	.request_cache_flush = request_cache_flush,
	.cache_flushes_done = cache_flushes_done,
	.mutator_count = mutator_count,
	.thread_count = thread_count,
	.blocking_begin = ops_blocking_begin,
	.blocking_end = ops_blocking_end,
	.rootcheck = runtime_rootcheck,
};
