/* runtime/roots.c: the roots: registered global ranges of pointer slots,
 * each thread's precise shadow-stack frames and held slots (the library's
 * own new objects, runtime_hold in runtime.h), and (unless switched off)
 * each thread's native stack and saved registers, scanned conservatively.
 *
 * A thread's roots are scanned by the thread itself at a safepoint, or by
 * the collector while the thread is parked or claimed (blocked): then
 * from the stack pointer and registers it saved. Global slots are read
 * with atomic loads while mutators store into them through gc_write.
 * A range added or removed while the collector marks has its values
 * shaded at once: the mark's one scan of the globals may already be
 * done (an added range would go unseen) or not yet (a removed range's
 * values would be dropped without the barrier's deletion shade). */
#include "runtime/runtime.h"

#include "alloc/sys/addrset.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* A registered range; dup is the index of the range registered before it
 * at the same start (NO_DUP: none). */
typedef struct root_range {
	void **slots;
	size_t n;
	size_t dup;
} root_range;

#define NO_DUP SIZE_MAX

/* The ranges, in no order, and `at`: each start's latest registration (an
 * index into r), so that gc_remove_roots finds it without a search (a
 * program with 100,000 ranges spent 24 us a remove).
 *
 * The mark's scan of the ranges is shared: runtime_mark_globals opens it
 * (the root job's holder, or the stopper), and any marker or assisting
 * thread may help (runtime_help_globals), as Go's assists take root jobs.
 * Each claims a batch of up to GLOBALS_BATCH slots at the cursor under the
 * lock, the range `idx` from slot `off` (idx SIZE_MAX: no scan open), and
 * scans it without the lock, counted in `inflight` until it is done; the
 * opener closes the scan once nothing is left to claim and nothing is in
 * flight. One thread scanning every range while the program's threads
 * parked for want of work to help with made a program with 5 MB of
 * registered slots (8 threads on 2 CPUs) 1.8x slower. A range added
 * meanwhile goes to the end, at or after the cursor, and was shaded
 * anyway; a range removed was shaded, and the last range takes its
 * index: if that moves it from at or after the cursor to before it,
 * gc_remove_roots scans it at once (cursor_moved), and if it takes the
 * cursor's own index it is scanned from its first slot; so is a range
 * added at the cursor's index (removals may have brought the count down
 * to it). gc_remove_roots returns only once no batch is in flight, so a
 * range's memory is never read after it has been removed. So every range
 * registered throughout the mark is scanned whole, and the scan never
 * reads past a range's end. */
#define GLOBALS_BATCH 1024

static struct {
	gc_mutex lock;
	root_range *r;
	size_t n, cap;
	addrset at;
	size_t idx, off;      /* the open scan's cursor */
	size_t opens;         /* runtime_mark_globals calls in it */
	atomic_word open;     /* idx != SIZE_MAX, for a look without the
	                       * lock */
	atomic_word inflight; /* batches claimed, not yet scanned */
	void (*hook)(void);   /* tests: called after each batch */
	uintptr_t drops;      /* tests: batches claimed */
} globals = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
             .at = {.vsize = sizeof(size_t)},
             .idx = SIZE_MAX};

static void globals_lock(void)
{
	mutex_lock(&globals.lock);
}

/* True if nslots pointer slots from start do not run past the end of
 * the address space. */
static bool range_fits(const void *start, size_t nslots)
{
	return nslots <= (UINTPTR_MAX - (uintptr_t)start) / sizeof(void *);
}

/* While marking: shade every value of the range (globals.lock held). */
static void shade_if_marking(void **slots, size_t n)
{
	if (!wbbuf_barrier_on())
		return;
	gc_thread *t = thread_current;
	gcw local = {0};
	gcw *w = t ? &t->gc.gcw : &local;
	gcmark_scan_slots(w, (void *const *)slots, n, 0);
	gcw_dispose(w);
}

gc_status gc_add_roots(void *start, size_t nslots)
{
	if (!start || ((uintptr_t)start % sizeof(void *))) {
		runtime_error(GCHEAP_ERR_ARG, "gc_add_roots(%p, %zu): the "
		              "range must be a non-NULL, aligned array of "
		              "pointers", start, nslots);
		return GCHEAP_ERR_ARG;
	}
	if (!range_fits(start, nslots)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_add_roots(%p, %zu): %zu "
		              "slots from %p run past the end of the address "
		              "space", start, nslots, nslots, start);
		return GCHEAP_ERR_ARG;
	}
	globals_lock();
	if (globals.n == globals.cap) {
		size_t cap = globals.cap ? globals.cap * 2 : 16;
		root_range *r = realloc(globals.r, cap * sizeof(*r));
		if (!r) {
			mutex_unlock(&globals.lock);
			runtime_error(GCHEAP_ERR_NOMEM, "gc_add_roots: no "
			              "memory for the root table");
			return GCHEAP_ERR_NOMEM;
		}
		globals.r = r;
		globals.cap = cap;
	}
	bool added;
	size_t k = addrset_add(&globals.at, (uintptr_t)start, &added);
	if (k == SIZE_MAX) {
		mutex_unlock(&globals.lock);
		runtime_error(GCHEAP_ERR_NOMEM, "gc_add_roots: no memory for "
		              "the root table");
		return GCHEAP_ERR_NOMEM;
	}
	size_t *latest = addrset_val(&globals.at, k);
	size_t i = globals.n++;
	globals.r[i] = (root_range){start, nslots, added ? NO_DUP : *latest};
	*latest = i;
	if (i == globals.idx)
		globals.off = 0; /* a new range at the dropped scan's cursor */
	shade_if_marking(start, nslots);
	mutex_unlock(&globals.lock);
	return GCHEAP_OK;
}

/* The range at index `from` moves to index `to`: point whatever named it
 * (the table, or the range registered after it at the same start) there. */
static void root_moved(size_t from, size_t to)
{
	size_t k = addrset_find(&globals.at, (uintptr_t)globals.r[to].slots);
	size_t *j = addrset_val(&globals.at, k);

	while (*j != from)
		j = &globals.r[*j].dup;
	*j = to;
}

/* The range now at index i came from index `from` (the last) while the
 * scan has dropped the lock (globals.lock held): keep the cursor's
 * promise (see globals). */
static void cursor_moved(size_t i, size_t from)
{
	if (globals.idx == SIZE_MAX)
		return;
	if (i == globals.idx) {
		globals.off = 0;
	} else if (i < globals.idx && from >= globals.idx) {
		shade_if_marking(globals.r[i].slots, globals.r[i].n);
		/* The cursor's own range moved away: whatever comes to its
		 * index next (an add) is scanned from its first slot. */
		if (from == globals.idx)
			globals.off = 0;
	}
}

gc_status gc_remove_roots(void *start)
{
	globals_lock();
	size_t k = start ? addrset_find(&globals.at, (uintptr_t)start)
	                 : SIZE_MAX;
	if (k == SIZE_MAX) {
		mutex_unlock(&globals.lock);
		runtime_error(GCHEAP_ERR_ARG, "gc_remove_roots(%p): not "
		              "registered", start);
		return GCHEAP_ERR_ARG;
	}
	/* The latest registration at start goes. */
	size_t *latest = addrset_val(&globals.at, k);
	size_t i = *latest;
	shade_if_marking(start, globals.r[i].n);
	if (globals.r[i].dup != NO_DUP)
		*latest = globals.r[i].dup;
	else
		addrset_remove_at(&globals.at, k);
	size_t last = --globals.n;
	if (i != last) {
		globals.r[i] = globals.r[last];
		root_moved(last, i);
		cursor_moved(i, last);
	} else if (i == globals.idx) {
		globals.off = 0;
	}
	/* A batch of the range may be in flight: the caller may free the
	 * memory once this returns. (No new batch is claimed meanwhile:
	 * the lock is held, and a batch never waits.) */
	while (aload_acq(&globals.inflight))
		sched_yield();
	mutex_unlock(&globals.lock);
	return GCHEAP_OK;
}

/* Claim the open scan's next batch (globals.lock held): false if no scan
 * is open or nothing is left to claim. */
static bool claim(void ***slots, size_t *n)
{
	if (globals.idx == SIZE_MAX)
		return false;
	while (globals.idx < globals.n &&
	       globals.off >= globals.r[globals.idx].n) {
		globals.idx++;
		globals.off = 0;
	}
	if (globals.idx >= globals.n)
		return false;
	const root_range *r = &globals.r[globals.idx];
	*n = MIN(r->n - globals.off, (size_t)GLOBALS_BATCH);
	*slots = r->slots + globals.off;
	globals.off += *n;
	globals.drops++;
	afetch_add(&globals.inflight, 1);
	return true;
}

/* Scan batches of the open scan into w until none is left to claim or
 * max slots are scanned; the slots scanned. */
static size_t scan_batches(gcw *w, size_t max)
{
	size_t total = 0;

	while (total < max) {
		void **slots = NULL;
		size_t n = 0;
		globals_lock();
		bool got = claim(&slots, &n);
		void (*hook)(void) = globals.hook;
		mutex_unlock(&globals.lock);
		if (!got)
			return total;
		gcmark_scan_slots(w, (void *const *)slots, n, 0);
		/* A full barrier: the batch's reads come before a
		 * remover's return (it waits for inflight to drain). */
		afetch_add(&globals.inflight, (uintptr_t)-1);
		total += n;
		if (hook)
			hook();
	}
	return total;
}

void runtime_mark_globals(gcw *w)
{
	/* Open the scan, or join one open already (the same mark's: the
	 * stopper's and the root job's in stop-the-world mode; no other
	 * mark's scan can be open, it ended before this one began). */
	globals_lock();
	if (globals.opens++ == 0) {
		globals.idx = 0;
		globals.off = 0;
		astore(&globals.open, 1);
	}
	mutex_unlock(&globals.lock);
	scan_batches(w, SIZE_MAX);
	/* Batches others claimed: scanned (into their own work, which the
	 * mark's end collects) before the job is done. */
	while (aload_acq(&globals.inflight))
		sched_yield();
	globals_lock();
	if (--globals.opens == 0) {
		globals.idx = SIZE_MAX;
		astore(&globals.open, 0);
	}
	mutex_unlock(&globals.lock);
	runtime_mark_uncollectable(w);
}

size_t runtime_help_globals(gcw *w, size_t max)
{
	if (!aload(&globals.open))
		return 0; /* (a hint: claim looks again under the lock) */
	size_t n = scan_batches(w, max);
	if (n)
		gcw_dispose(w); /* for the others to help with */
	return n;
}

void runtime_globals_set_hook(void (*hook)(void))
{
	mutex_lock(&globals.lock);
	globals.hook = hook;
	mutex_unlock(&globals.lock);
}

void runtime_globals_probe(globals_probe *p)
{
	mutex_lock(&globals.lock);
	p->idx = globals.idx;
	p->off = globals.off;
	p->drops = globals.drops;
	p->cur = p->prev = NULL;
	if (p->idx != SIZE_MAX && p->idx < globals.n)
		p->cur = globals.r[p->idx].slots;
	if (p->idx != SIZE_MAX && p->idx > 0 && p->idx <= globals.n)
		p->prev = globals.r[p->idx - 1].slots;
	mutex_unlock(&globals.lock);
}

void runtime_each_global(void (*fn)(void **slot, void *arg), void *arg)
{
	mutex_lock(&globals.lock);
	for (size_t i = 0; i < globals.n; i++)
		for (size_t k = 0; k < globals.r[i].n; k++)
			fn(&globals.r[i].slots[k], arg);
	mutex_unlock(&globals.lock);
	runtime_each_uncollectable(fn, arg);
}

/* Is f among the innermost FRAME_CHECK_DEPTH frames? A bounded look: the
 * whole list made each push cost the recursion's depth (a 20,000-deep
 * interpreter recursion took 10 s in a checked build). A frame left
 * pushed by a function that returned and runs again at the same depth
 * is near the top. */
#define FRAME_CHECK_DEPTH 64

static bool frame_pushed(const gc_thread *t, const gc_frame *f)
{
	unsigned n = 0;

	for (const gc_frame *g = t->frames; g && n < FRAME_CHECK_DEPTH;
	     g = g->prev, n++)
		if (g == f)
			return true;
	return false;
}

void gc_frame_push(gc_frame *f, void **slots, size_t nslots)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_frame_push");
		return;
	}
	/* At every check level (two or three branches): a NULL frame was
	 * written through, bad slots crashed the next collection. */
	if (!f || (!slots && nslots) || !range_fits(slots, nslots)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_frame_push(%p, %p, %zu): %s",
		              (void *)f, (void *)slots, nslots,
		              !f ? "the frame is NULL" : !slots ?
		              "NULL slots" : "the slots run past the end of "
		              "the address space");
		return;
	}
	/* Pushed again (a function that returned without popping it, run
	 * again at the same depth): it would link the list into a cycle,
	 * which a stack scan walks forever. The innermost frame is checked
	 * always, the whole list at check level >= 2. */
	if (f == t->frames || (GCHEAP_CHECK_LEVEL >= 2 && frame_pushed(t, f))) {
		runtime_error(GCHEAP_ERR_ARG, "gc_frame_push(%p): the frame "
		              "is pushed already (a frame must be popped "
		              "before its function returns)", (void *)f);
		return;
	}
	f->slots = slots;
	f->nslots = nslots;
	f->prev = t->frames;
	t->frames = f;
}

void gc_frame_pop(gc_frame *f)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_frame_pop");
		return;
	}
	if (!f || t->frames != f) {
		runtime_error(GCHEAP_ERR_ARG, "gc_frame_pop(%p): %s", (void *)f,
		              !t->frames ? "the thread has no frame pushed" :
		              "not the thread's innermost frame");
		return;
	}
	t->frames = f->prev;
}

gc_frame *gc_frame_top(void)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_frame_top");
		return NULL;
	}
	return t->frames;
}

/* Only this thread reads its frames while it runs (a collector reads them
 * while it is blocked, claimed or stopped), so the dead frames above
 * `top` are dropped without a look. Never inlined: its own frame address
 * stands for the caller's stack pointer (inlined by LTO into a test, it
 * was the caller's frame, and refused the caller's own frame). */
NOINLINE void gc_frame_unwind(gc_frame *top)
{
	gc_thread *t = thread_current;

	if (!t) {
		runtime_not_attached("gc_frame_unwind");
		return;
	}
	/* What can be told without reading it: aligned, and not in this
	 * stack below the caller (a frame whose function has returned). */
	uintptr_t a = (uintptr_t)top;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (a % sizeof(void *) ||
	    (a && t->stack_base && a >= t->stack_lo && a < here)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_frame_unwind(%p): %s",
		              (void *)top, a % sizeof(void *) ? "misaligned" :
		              "a frame below the caller's, whose function "
		              "has returned (save gc_frame_top() beside the "
		              "setjmp)");
		return;
	}
	t->frames = top;
}

void gc_set_conservative_stacks(int on)
{
	/* Initialised first: the options read there would undo a setting
	 * made before it (conservative scanning came back on). */
	if (gc_init() != GCHEAP_OK)
		return;
	astore(&options_.conservative, on != 0);
}

/* A conservative scan runs from the thread's stack pointer up to the top
 * of the stack it attached on. A stack pointer outside that stack (a
 * coroutine's stack from makecontext, a green thread's, an alternate
 * signal stack) would make the scan cover unmapped memory or nothing:
 * refused with the way out. */
void runtime_check_on_stack(const gc_thread *t, uintptr_t sp)
{
	if (!t->stack_lo || (sp >= t->stack_lo && sp <= t->stack_base))
		return;
	/* The main thread's stack may grow below what was known at attach:
	 * glibc sizes it by RLIMIT_STACK as it was then (the program may
	 * have raised it since), musl by what was mapped then. The limit
	 * now bounds it. */
	struct rlimit rl;
	if (t->tid == getpid() && sp < t->stack_lo &&
	    !getrlimit(RLIMIT_STACK, &rl) &&
	    (rl.rlim_cur == RLIM_INFINITY || t->stack_base - sp <= rl.rlim_cur))
		return;
	fatal("thread %d reached a safepoint on a stack that is not "
	      "its own (stack pointer %p, its stack [%p, %p)): a "
	      "coroutine's, a green thread's or an alternate signal "
	      "stack, which a conservative scan cannot cover. Turn "
	      "conservative stack scanning off "
	      "(gc_set_conservative_stacks(0)) and keep such code's "
	      "references in gc_frame slots (docs/api.md)", t->tid,
	      (void *)sp, (void *)t->stack_lo, (void *)t->stack_base);
}

/* Scan the calling thread's own stack from here up, with its callee-saved
 * registers spilled into this frame first. */
static NOINLINE void scan_own_stack(gc_thread *t, gcw *w)
{
	jmp_buf regs;

	/* Every callee-saved register pushed by the prologue, above regs
	 * (glibc's setjmp stores rbp mangled: no pointer to the scan). */
	__builtin_unwind_init();
	setjmp(regs);
	runtime_check_on_stack(t, (uintptr_t)&regs);
	/* Inside an entry (runtime.h): from its frame, which lies above
	 * this one; the library's frames between hold nothing the scan
	 * must see. */
	uintptr_t from = t->scan_from;
	gc_assert(!from || (from > (uintptr_t)&regs && from <= t->stack_base));
	if (!from || from <= (uintptr_t)&regs || from > t->stack_base)
		from = (uintptr_t)&regs;
	gcmark_scan_conservative(w, from, t->stack_base);
}

void runtime_start_black(gc_thread *t, gcw *w)
{
	mcache_start_black(&t->mcache);
	/* Tiny objects packed into the current block from now on are
	 * black only if the block is (Go's gcMarkTinyAllocs). */
	if (t->mcache.tiny)
		gcmark_value(w, t->mcache.tiny, false, 0, 0);
}

uintptr_t runtime_entry_frame(const gc_thread *t)
{
	return t->scan_from && t->scan_from >= t->saved_sp ? t->scan_from
	                                                    : 0;
}

void runtime_scan_thread(gc_thread *t, gcw *w, bool self)
{
	for (gc_frame *f = t->frames; f; f = f->prev)
		gcmark_scan_slots(w, (void *const *)f->slots, f->nslots, 0);
	gcmark_scan_slots(w, (void *const *)t->held, t->nheld, 0);
	if (!aload(&options_.conservative) || !t->stack_base)
		return;
	if (self) {
		scan_own_stack(t, w);
		return;
	}
	uintptr_t entry = runtime_entry_frame(t);
	if (entry) {
		runtime_check_on_stack(t, entry);
		gcmark_scan_conservative(w, entry, t->stack_base);
		return;
	}
	runtime_check_on_stack(t, t->saved_sp);
	gcmark_scan_conservative(w, t->saved_sp, t->stack_base);
	if (GCHEAP_SABOTAGE != 5)
		gcmark_scan_conservative(w, (uintptr_t)t->saved_frame,
		                     (uintptr_t)(t->saved_frame +
		                                 t->saved_words));
}

bool runtime_flush_thread(gc_thread *t)
{
	t->gc.gcw.bytes_marked += mcache_flush_black(&t->mcache);
	if (t->gc.wb.n)
		wbbuf_flush(&t->gc.wb, &t->gc.gcw);
	bool any = !gcw_empty(&t->gc.gcw);
	gcw_dispose(&t->gc.gcw);
	return any;
}
