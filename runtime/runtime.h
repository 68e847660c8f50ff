/* runtime/runtime.h: the runtime's own state: attached threads, the error
 * and OOM handlers, and the glue the public API is made of.
 *
 * Each attached thread has a gc_thread, reached through the thread-local
 * thread_current (initial-exec TLS: one instruction on x86-64). The registry
 * of threads is guarded by runtime_.lock, the outermost lock (see
 * alloc/sys/lock.h).
 * A thread that exits while attached is detached by a pthread key
 * destructor, so its cached spans are not lost. */
#ifndef GCHEAP_RUNTIME_H
#define GCHEAP_RUNTIME_H

#include "alloc/alloc.h"
#include "gc/mgc.h"
#include "gcheap.h"

#include <pthread.h>
#include <setjmp.h>

/* Thread status, for stopping the world (runtime/safepoint.c). */
enum thread_status {
	TS_RUNNING = 0, /* may touch the heap */
	TS_PARKED = 1,  /* waiting at a safepoint for the world to start */
	TS_BLOCKED = 2, /* in gc_blocking_begin/end: will not touch the heap */
	TS_CLAIMED = 3, /* blocked, and the collector is working for it */
};

/* Requests a thread answers at its next safepoint (gc_thread.pending). */
enum thread_pending {
	P_STOP = 1,  /* park until the world starts again */
	P_SCAN = 2,  /* scan your own roots (mark start) */
	P_FLUSH = 4, /* flush your barrier buffer and work (mark end) */
	P_CACHE = 8, /* release your cache before allocating (sweep) */
};

struct gc_frame;

/* Held slots: see runtime_hold below. */
#define RUNTIME_HELD 8
/* The frame copy a parked or blocked thread keeps: 1 KiB (its own frame
 * and its callee's are ~100-200 bytes; a sanitizer's frames more). */
#define SAVED_FRAME_WORDS 128

typedef struct gc_thread {
	mcache mcache;            /* first: the fast path's offsets are small;
	                           * mcache.prof_left is the heap profiler's
	                           * countdown (runtime/mprof.h) */
	atomic_word pending;      /* enum thread_pending bits */
	atomic_word status;       /* enum thread_status */
	mgc_thread gc;            /* the collector's: barrier buffer,
	                           * marking work, assist debt */
	struct gc_frame *frames;  /* precise shadow-stack frames */
	void *held[RUNTIME_HELD]; /* the library's own new objects, precise
	                           * roots scanned with the frames */
	size_t nheld;             /* held[0, nheld) are in use */
	size_t nozero;            /* gc_realloc: the bytes at the start of
	                           * its new large noscan object that it
	                           * copies over before its next safepoint,
	                           * not to be zeroed first (alloc_large in
	                           * runtime/malloc.c takes it); the whole
	                           * object for gc_alloc_uninit; else 0 */
	size_t slack;             /* gc_realloc: bytes of room to add to the
	                           * slot of its new large object (taken by
	                           * alloc_large as nozero is); else 0 */
	unsigned in_finalizer;    /* finalizers running on it (nested) */
	unsigned in_handler;      /* error or OOM handlers running on it */
	uintptr_t stack_base;     /* highest address of the native stack */
	uintptr_t stack_lo;       /* its lowest (the most it may grow to) */
	/* Where a scan of this thread's stack starts while it is inside an
	 * entry of the library (runtime_enter): the entry's frame, with
	 * every callee-saved register the program had; 0 outside one. */
	uintptr_t scan_from;
	uintptr_t saved_sp;       /* where the scan of a parked or blocked
	                           * thread's stack starts (runtime/
	                           * safepoint.c: save_context) */
	/* A copy of the frame that parked or blocked, with every callee-
	 * saved register its caller had (saved_frame[0, saved_words)). */
	uintptr_t saved_frame[SAVED_FRAME_WORDS];
	size_t saved_words;
	uintptr_t saves, saves_used; /* checks: a block follows its save */
	struct gc_thread *next;   /* registry, under runtime_.lock */
	struct gc_thread *prev;
	pthread_t self;
	int tid;                  /* the kernel's thread id, for messages */
} gc_thread;

typedef struct runtime_state {
	gc_mutex lock;            /* guards threads and nthreads; held by the
	                           * collector while the world is stopped */
	gc_thread *threads;
	atomic_word nthreads;
	atomic_word nrunning;     /* attached and not in a blocking region */
	gc_mutex hlock;           /* guards the handlers */
	gc_error_fn error_fn;     /* NULL: the default handler */
	void *error_data;
	gc_oom_fn oom_fn;         /* NULL: the default handler */
	void *oom_data;
	pthread_key_t exit_key;   /* detaches threads that exit attached */
	atomic_word forked;       /* this process is a child of fork() made
	                           * after gc_init (runtime_check_fork) */
	/* The switches (conservative, stopwarn_ms, ...): options_
	 * (alloc/sys/options.h). */
} runtime_state;

extern runtime_state runtime_;

extern __thread gc_thread *thread_current
	__attribute__((tls_model("initial-exec")));
/* The thread while it is inside gc_blocking_begin/end. thread_current is
 * NULL meanwhile, so that every heap call (the allocation fast path
 * included, at no cost to it) refuses a thread that promised not to
 * touch the heap. */
extern __thread gc_thread *thread_blocked
	__attribute__((tls_model("initial-exec")));
/* True on the library's notification threads (runtime/notify.c), whose
 * callbacks others may wait for: they must not wait for others. */
extern __thread bool thread_notifier;

/* Report that the calling thread may not make the heap call `fn` (it is
 * not attached, or inside a blocking region): GCHEAP_ERR_NOT_ATTACHED. */
void runtime_not_attached(const char *fn);

/* In a child of fork(), only exec or _exit may follow (docs/api.md): the
 * collector's threads are not there, and a call that waits for them hung.
 * So the slow paths that may wait (allocation, safepoint, collection,
 * attach) end the child with a fatal error naming fn instead. */
void runtime_fork_fatal(const char *fn);
static inline void runtime_check_fork(const char *fn)
{
	if (__builtin_expect(aload(&runtime_.forked) != 0, 0))
		runtime_fork_fatal(fn);
}

/* Report an error: set the thread's last error, call the handler. */
PRINTF_LIKE(2, 3) void runtime_error(gc_status code, const char *fmt, ...);
/* Record success as the thread's last error. */
void runtime_ok(void);
/* Report out-of-memory for a request: the OOM handler, then the error. */
void runtime_oom(size_t request, heap_err why);

/* ---- Safepoints (runtime/safepoint.c) ------------------------------------ */

extern const gc_runtime_ops runtime_gc_ops;

/* Enter and leave a blocking region for t, the calling thread (detach
 * and a thread exiting inside gc_blocking_begin/end). */
void runtime_blocking_begin(gc_thread *t);
void runtime_blocking_end(gc_thread *t);
/* The same for a thread that exited inside the region: its frames are
 * dropped first, once no collector holds a claim on it. */
void runtime_blocking_end_at_exit(gc_thread *t);

/* Answer the collector's requests; `t` is the calling thread. */
void runtime_safepoint_slow(gc_thread *t);
/* Tests: called with a blocked thread t claimed to do `bit`'s work for
 * it, before the work (runtime/safepoint.c, serve). */
extern void (*runtime_claim_test_hook)(gc_thread *t, uintptr_t bit);

/* ---- Entries ------------------------------------------------------------
 *
 * A conservative scan of a thread's stack covers the program's frames,
 * not the library's: the dead slots of the library's deeper frames (the
 * mark work of an assist, a sweep, a barrier flush, left below the
 * stack pointer and then overlaid by the frames of the next slow path)
 * hold stale heap addresses, and one such word kept a chain of dead
 * entries of an LRU cache alive, cycle after cycle (a helper's program:
 * 3x bdwgc's RSS). An entry is a NOINLINE function that saves every
 * callee-saved register in its prologue (__builtin_unwind_init) and
 * calls, not as a tail call, a NOINLINE function that records its own
 * canonical frame address (the entry's stack pointer) with
 * runtime_enter: scans of the thread while it is inside (its own at a
 * safepoint, or the collector's while it is parked or blocked there)
 * start from there. What the library holds below it, it holds
 * precisely (runtime_hold, below): the rule precise mode already tests.
 * The outermost entry counts (one made inside another changes nothing);
 * a safepoint reached outside any makes one (runtime_safepoint_slow).
 * User code the library calls (error and OOM handlers, finalizers) runs
 * with no entry recorded (runtime_callout), so that a scan inside it
 * takes the whole stack, or the entry it makes itself. */
static inline uintptr_t runtime_enter(gc_thread *t, uintptr_t cfa)
{
	uintptr_t prev = t->scan_from;
	if (!prev)
		t->scan_from = cfa;
	return prev;
}

static inline void runtime_leave(gc_thread *t, uintptr_t prev)
{
	t->scan_from = prev;
}

/* Before calling out to the program (t may be NULL): returns what
 * runtime_leave restores after. */
static inline uintptr_t runtime_callout(gc_thread *t)
{
	uintptr_t prev = t ? t->scan_from : 0;
	if (t)
		t->scan_from = 0;
	return prev;
}

/* Where a scan of t, parked or blocked (saved_sp set), starts: the
 * entry's frame if it is inside one (that frame holds every register the
 * program had; what the saved frame holds is the library's), else 0 (from
 * saved_sp, with the saved frame). */
uintptr_t runtime_entry_frame(const gc_thread *t);

/* fn(t, arg) inside an entry (as described above). */
void runtime_call_entered(gc_thread *t, void (*fn)(gc_thread *, void *),
                          void *arg);

static inline void runtime_safepoint(gc_thread *t)
{
	if (unlikely(aload_acq(&t->pending)))
		runtime_safepoint_slow(t);
}

/* ---- The library's own allocations -------------------------------------
 *
 * The rule (docs/design.md, "The library's own allocations"): a new
 * object that the library allocates for itself is held in the thread's
 * held slots from its allocation until it is stored in a rooted place
 * (an object the caller roots, or returned to the caller). A C local is
 * no root in precise mode (gc_set_conservative_stacks(0)), and every
 * allocation, weak read and gc_safepoint is a safepoint at which a cycle
 * may scan this thread or, under stoptheworld=1, run its whole mark.
 *
 *   size_t mark = runtime_held_mark(t);
 *   x = runtime_new(t, size, type);     held until the unhold
 *   y = runtime_new(t, size, type);     a safepoint: x survives it
 *   ... store x and y where they are rooted ...
 *   runtime_unhold(t, mark);
 *
 * Library code allocates only through runtime_new (tools/
 * check-internal-alloc.sh fails on a gc_alloc call elsewhere). The slots
 * are the thread's own, like its frames: they are written without the
 * barrier and scanned with the frames. */
static inline size_t runtime_held_mark(const gc_thread *t)
{
	return t->nheld;
}

/* Hold p (non-NULL) in the next held slot. */
static inline void runtime_hold(gc_thread *t, void *p)
{
	if (t->nheld == RUNTIME_HELD)
		fatal("internal: more than %d objects held by one thread",
		      RUNTIME_HELD);
	t->held[t->nheld++] = p;
}

/* Drop everything held since `mark`. */
static inline void runtime_unhold(gc_thread *t, size_t mark)
{
	while (t->nheld > mark)
		t->held[--t->nheld] = NULL;
}

/* gc_alloc for the library's own objects: the new object is held. */
void *runtime_new(gc_thread *t, size_t size, const gc_type *type);
/* The same for an array of count elements. */
void *runtime_new_array(gc_thread *t, size_t count, const gc_type *elem);

/* Shade the pointers in [p, p + n) (while marking; if `scan`), then
 * fill it with `byte`, word by word (a marker may be reading the slots);
 * p word-aligned. runtime/free.c. */
void runtime_wipe(gc_thread *t, void *p, size_t n, uint8_t byte, bool scan);

/* For tests: called with a new large object's address after its span is
 * taken from the heap and before the object is zeroed, typed and counted
 * as allocated (runtime/malloc.c alloc_large). */
extern void (*runtime_large_test_hook)(uintptr_t base);

/* Is p, the start of an allocated object of span s, one of the library's
 * weak handles (gc_weak, gc_ephemeron, gc_weakmap)? runtime/weak.c. */
bool runtime_is_handle(const void *p, const mspan *s);

/* Registers the sweep hook that keeps weak cells (runtime/weak.c); at
 * start-up, before any thread is attached. */
void runtime_weak_init(void);

/* Is obj, an unmarked object of span s, a weak cell that sweep keeps (its
 * target set: runtime/weak.c keep_weak_cells)? */
bool runtime_weak_cell_kept(uintptr_t obj, const mspan *s);

/* For tests: how much of m's table rebuilding is left (slots to move;
 * while counting, the slots to count plus one: 1 once counted, until a
 * set makes the new table; 0 when none is under way), and the sizes of
 * the new and old tables (*ocap 0 when not moving). runtime/weak.c. */
size_t weakmap_rebuild_state(const gc_weakmap *m, size_t *cap, size_t *ocap);

/* Scan a thread's roots (frames, and its stack if conservative) into w.
 * `t` is the caller, or parked, blocked or claimed. */
void runtime_scan_thread(gc_thread *t, gcw *w, bool self);
/* Fatal, with the way out, when t's stack pointer sp lies outside the
 * stack it attached on (a coroutine's): its conservative scan would read
 * unmapped memory or nothing. */
void runtime_check_on_stack(const gc_thread *t, uintptr_t sp);
/* A mark has started: from now on the thread allocates black
 * (alloc/mcache.h), and its tiny block is greyed. World stopped, or `t`
 * is the caller. */
void runtime_start_black(gc_thread *t, gcw *w);
/* Flush the thread's barrier buffer and work, and report what it
 * allocated black; true if there was grey work. */
bool runtime_flush_thread(gc_thread *t);
/* Call fn on every registered global slot (heap dumps). */
void runtime_each_global(void (*fn)(void **slot, void *arg), void *arg);
/* Mark the registered globals into w: open the mark's shared scan of
 * them, claim batches until none is left, and return once every batch
 * (the helpers' too) is scanned. */
void runtime_mark_globals(gcw *w);
/* Help the open scan of the globals, if one is: claim and scan batches
 * into w until none is left or max slots are scanned (a batch at least),
 * then publish w; the slots scanned. */
size_t runtime_help_globals(gcw *w, size_t max);
/* Tests: the function the scan of the globals calls each time it drops
 * the lock (it drops it at every batch while one is set); and its
 * cursor (idx SIZE_MAX: none), how often it dropped the lock, and the
 * starts of the ranges at the cursor and just before it (or NULL). */
typedef struct globals_probe {
	size_t idx, off;
	uintptr_t drops;
	void **cur, **prev;
} globals_probe;
void runtime_globals_set_hook(void (*hook)(void));
void runtime_globals_probe(globals_probe *p);
/* Reserve the page gc_alloc(0) returns (runtime/malloc.c). */
bool runtime_zerobase_init(void);
/* Is p the address gc_alloc(0) returns (the free calls take it as NULL)? */
bool runtime_is_zerobase(const void *p);
/* Parse a decimal number, or (bytes) one with an optional k/m suffix;
 * false if it is not one or does not fit (runtime/options.c). */
bool runtime_parse_uint(const char *v, uintptr_t *out);
bool runtime_parse_bytes(const char *v, uintptr_t *out);
/* GOMEMLIMIT's syntax (runtime/options.c): false if v is not it. */
bool runtime_parse_memlimit(const char *v, size_t *out);
/* Is p an object made by gc_alloc_uncollectable and not yet freed? */
bool runtime_is_uncollectable(const void *p);
/* Mark the uncollectable objects into w (a root job). */
void runtime_mark_uncollectable(gcw *w);
/* Call fn on the slot of every uncollectable object (heap dumps). */
void runtime_each_uncollectable(void (*fn)(void **slot, void *arg),
                                void *arg);
/* GCHEAP_DEBUG=rootcheck (runtime/rootcheck.c): the collector's hook. */
bool runtime_rootcheck(gcw *w);
/* Options from the environment, into options_ (alloc/sys/options.h) and
 * mgc_.percent; the library's only reader of the environment. */
void runtime_parse_options(void);
/* GCHEAP_EXPORT (options_.export_ms): start the live export at init
 * (runtime/export.c). */
void export_from_env(void);
/* The export directory, shared with gcstat's requests (runtime/attach.c):
 * $GCHEAP_EXPORT_DIR as read at initialisation, or /tmp/gcheap-<uid>.
 * False when its path does not fit in n bytes or EXPORT_DIR_MAX. */
bool runtime_export_dir(char *buf, size_t n);
/* Answer gcstat's requests (runtime/attach.c) unless GCHEAP_ATTACH=0. */
void attach_from_env(void);

#endif
