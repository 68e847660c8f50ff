/* gc/mgcsweep.c: sweeping policy (Go's mgcsweep.go). The mechanics of
 * sweeping one span live in alloc/mspan.c; here a background sweeper and
 * the threads that need it pop unswept spans from the mcentrals and sweep
 * them (mcentral_sweep: sweep, then place or free), and sweep_finish
 * makes sure a cycle's sweep is complete before the next mark begins.
 *
 * Every span that was in use at mark termination is swept exactly once
 * per cycle: spans on unswept lists by whoever wins mspan_try_acquire,
 * spans in thread caches when the thread releases them (stale spans are
 * swept on uncache), spans a thread needs by mcentral_cache_span.
 *
 * Proportional sweep (Go's sweep credit, deductSweepCredit): mark
 * termination sets the pace, one page to sweep per bytes_per_page bytes
 * allocated, so that the pages in use are all swept by the time the heap
 * has grown three quarters of the way to the next trigger; each
 * allocation slow path (sweep_credit) sweeps what the background sweeper
 * has not yet swept of that. So sweeping never piles up for the thread
 * that starts the next cycle (sweep_finish, before its first pause), and
 * one allocation sweeps a few spans, not the heap, even when the
 * background sweeper gets no CPU. */
#include "gc/mgc.h"

#include <sched.h>

/* Classes below this index have no unswept spans left this cycle. */
static atomic_word sweep_cursor;
static atomic_word sweep_cursor_gen;
/* Sweepers between reading sweepgen and finishing their span (Go's
 * sweep.active): sweeping is only done when this is 0 too. */
static atomic_word sweepers;
/* Set by mark termination around the sweepgen flip. A sweeper that is not
 * an attached thread is not stopped with the world, so without this it
 * could read sweepgen, sleep through a whole termination, and then take
 * the new cycle's swept spans for unswept ones. Both sides use
 * full-barrier read-modify-writes (a Dekker pair). */
static atomic_word sweep_blocked;

static size_t sweep_some_counted(size_t max);

static struct {
	atomic_word gen;            /* the sweepgen the pace is for */
	atomic_word base;           /* mgc_.alloc_bytes when it was set */
	atomic_word bytes_per_page; /* allocation allowed per page swept */
	atomic_word swept_base;     /* mheap_.pages_swept when it was set */
	atomic_word exhausted;      /* sweep_one found nothing left */
} pace;

void sweep_pace_start(uintptr_t pages, uintptr_t distance)
{
	uintptr_t d = distance / 4 * 3;
	astore(&pace.swept_base, aload(&mheap_.pages_swept));
	astore(&pace.exhausted, 0);
	astore(&pace.base, aload(&mgc_.alloc_bytes));
	astore(&pace.bytes_per_page, pages ? MAX(d / pages, 1) : 0);
	astore_rel(&pace.gen, aload(&mheap_.sweepgen));
}

uintptr_t sweep_pace_owed(void)
{
	uintptr_t bpp = aload(&pace.bytes_per_page);
	if (!bpp || aload_acq(&pace.gen) != aload_acq(&mheap_.sweepgen) ||
	    aload(&pace.exhausted))
		return 0;
	uintptr_t owed = (aload(&mgc_.alloc_bytes) - aload(&pace.base)) / bpp;
	uintptr_t done = aload(&mheap_.pages_swept) - aload(&pace.swept_base);
	return owed > done ? owed - done : 0;
}

uintptr_t sweep_pace_swept(void)
{
	return aload(&mheap_.pages_swept) - aload(&pace.swept_base);
}

void sweep_credit(void)
{
	uintptr_t owed;

	if (mgc_sweep_done())
		return;
	/* Spans have a page or more: sweeping `owed` spans pays it. */
	while ((owed = sweep_pace_owed()) && sweep_some(owed))
		;
}

/* The spans swept (up to max); 0: nothing left this generation; -1:
 * sweepers are blocked (a flip or a verification is in progress), nothing
 * was done. */
static intptr_t sweep_some_status(size_t max)
{
	intptr_t r = -1;

	afetch_add(&sweepers, 1);
	if (!aload_acq(&sweep_blocked))
		r = (intptr_t)sweep_some_counted(max);
	afetch_add(&sweepers, (uintptr_t)-1);
	return r;
}

size_t sweep_some(size_t max)
{
	intptr_t r = sweep_some_status(max);
	return r > 0 ? (size_t)r : 0;
}

bool sweep_one(void)
{
	return sweep_some(1) != 0;
}

void sweep_block(void)
{
	afetch_add(&sweep_blocked, 1);
	while (aload_acq(&sweepers))
		sched_yield();
}

void sweep_unblock(void)
{
	afetch_add(&sweep_blocked, (uintptr_t)-1);
}

static size_t sweep_some_counted(size_t max)
{
	uintptr_t sg = aload_acq(&mheap_.sweepgen);

	if (aload(&sweep_cursor_gen) != sg) {
		astore(&sweep_cursor, 0);
		astore(&sweep_cursor_gen, sg);
	}
	for (uintptr_t c = aload(&sweep_cursor); c < NUM_SPANCLASSES; c++) {
		size_t n = mcentral_sweep_some(&mcentral_[c], sg, max);
		if (n)
			return n;
		/* Only the sweepgen flip makes spans unswept, so this class
		 * stays done for the cycle. */
		uintptr_t cur = aload(&sweep_cursor);
		if (cur == c)
			acas(&sweep_cursor, cur, c + 1);
	}
	if (aload(&pace.gen) == sg)
		astore(&pace.exhausted, 1);
	return 0;
}

bool sweep_pending(void)
{
	uintptr_t sg = aload_acq(&mheap_.sweepgen);
	/* The cursor is sweep_one's: the threads' lazy sweeps do not move
	 * it, and may have left it at an older generation. */
	uintptr_t c0 = aload(&sweep_cursor_gen) == sg ? aload(&sweep_cursor)
	                                               : 0;

	for (uintptr_t c = c0; c < NUM_SPANCLASSES; c++) {
		mcentral *m = &mcentral_[c];
		mutex_lock(&m->lock);
		bool any = mcentral_partial_unswept(m, sg)->n ||
		           mcentral_full_unswept(m, sg)->n;
		mutex_unlock(&m->lock);
		if (any)
			return true;
	}
	return false;
}

/* One attempt at finishing the sweep of generation sg: true once it is
 * done; false if a termination flipped sweepgen meanwhile (the next
 * cycle's start finished sg's sweep before its mark: gc_start). */
static bool finish_gen(uintptr_t sg)
{
	intptr_t r = 1;
	/* A blocked attempt proves nothing: try again. */
	while (aload_acq(&mheap_.sweepgen) == sg &&
	       (r = sweep_some_status(MCENTRAL_SWEEP_BATCH)) != 0)
		if (r < 0)
			sched_yield();
	if (r != 0)
		return false;
	/* Spans still cached by threads are swept when they release them;
	 * blocked threads are flushed for them. */
	while (!mgc_.ops->cache_flushes_done()) {
		if (aload_acq(&mheap_.sweepgen) != sg)
			return false;
		sched_yield();
	}
	/* A background sweeper may still be finishing a span. */
	while (aload_acq(&sweepers))
		sched_yield();
	/* Done only if no termination flipped sweepgen meanwhile. */
	if (aload(&mheap_.sweepgen) != sg)
		return false;
	astore_rel(&mgc_.sweep_done_gen, sg);
	return true;
}

void sweep_finish(void)
{
	while (!finish_gen(aload_acq(&mheap_.sweepgen)))
		sched_yield();
}

void sweep_finish_gen(uintptr_t sg)
{
	(void)finish_gen(sg);
}
