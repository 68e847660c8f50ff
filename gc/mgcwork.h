/* gc/mgcwork.h: grey objects waiting to be scanned (Go's gcWork and
 * workbufs, mgcwork.go), and the lists behind the span queue
 * (gc/mgcspanq.h).
 *
 * A workbuf holds up to WORKBUF_LEN object addresses. Each marker (a
 * background worker, a mutator paying an assist, a thread scanning its
 * stack, a barrier-buffer flush) owns a gcw with two local workbufs, so
 * most pushes and pops touch no shared state; full buffers go to the
 * global full list and empty ones to the empty list, both under
 * gcwork_.lock. Workbufs live in metadata memory, never in the heap.
 *
 * Termination: marking is done when the full list and the span list are
 * empty, no gcw holds work (objects or spans) and every root job has
 * run; gc/mgc.c's mark_done confirms it with a handshake that makes every
 * thread flush its gcw, and the marker gate (gc/mgc.c) for the background
 * workers' gcws, which no stop reaches. */
#ifndef GCHEAP_MGCWORK_H
#define GCHEAP_MGCWORK_H

#include "alloc/alloc.h"

#define WORKBUF_LEN 253

typedef struct workbuf {
	struct workbuf *next;
	uintptr_t n;
	uintptr_t obj[WORKBUF_LEN];
} workbuf;

typedef struct gcw {
	workbuf *buf1, *buf2; /* buf1 is the one pushed to and popped from */
	/* Spans waiting to be scanned, first in first out (gc/mgcspanq.h):
	 * taken from sget->obj[shead..n), appended to sput. */
	workbuf *sget, *sput;
	uintptr_t shead;
	struct span_visit *visit; /* the span this gcw is scanning, if any */
	uintptr_t bytes_marked; /* bytes of objects this gcw greyed */
	uintptr_t scan_work;    /* words scanned, for assist credit */
	uintptr_t nmarked;      /* objects this gcw greyed (not black
	                         * allocations): the ephemeron fixpoint */
	uintptr_t far_marks;    /* of them, greyed from another span's
	                         * object, a root or the barrier (see
	                         * GCMARK_FAR_WORK) */
	/* A background worker's: gcmark_drain returns early (within ~1024
	 * units) once *preempt is non-zero, the marker gate closing. */
	const atomic_word *preempt;
	/* A background worker's: gcmark_drain adds its scan work here as
	 * it goes (every ~1024 units, when it adds it to scan_done), the
	 * credit that pays the assists mutators owe (Go's bgScanCredit,
	 * flushed as often, with the work done). */
	atomic_word *credit;
	/* An assist's: gcmark_drain also returns early once
	 * gcstats_now_ns() passes deadline_ns (0: none), and then sets
	 * expired. */
	uint64_t deadline_ns;
	bool expired;
} gcw;

/* Global work lists. */
typedef struct gcwork_state {
	gc_mutex lock;
	workbuf *full;     /* buffers with work */
	workbuf *empty;    /* spare buffers */
	atomic_word nfull; /* written under lock, read without */
	workbuf *spans, *spans_tail; /* buffers of queued spans, oldest
	                              * first (gc/mgcspanq.h) */
	atomic_word nspans; /* as nfull */
	atomic_word bytes_marked; /* flushed from gcws this cycle */
	atomic_word nmarked;      /* flushed from gcws; only grows */
	atomic_word scan_done;    /* scan work done this mark (the pacer) */
	/* Assists parked for work (mgc_park_assist) wait on park_cond with
	 * the lock; a buffer pushed (full or spans) wakes one, the mark's end
	 * all. */
	pthread_cond_t park_cond;
	uintptr_t parked; /* under the lock */
} gcwork_state;

extern gcwork_state gcwork_;

/* Takes the first chunk of buffers (256 KiB), so that a first mark run
 * when memory is short (the collection before an out-of-memory error)
 * has them; false if the OS refuses. The buffers are never given back:
 * a mark needs new ones only when it holds more grey objects at once
 * than any before it. */
bool gcwork_init(void);

/* Wait, for at most ns, until the global lists hold work or `done()`
 * (read with the lock held, so that a waker that makes it true and then
 * calls gcwork_wake_parked is not missed). */
void gcwork_park(bool (*done)(void), uint64_t ns);
/* Wake every parked thread (after what their done() reads changed). */
void gcwork_wake_parked(void);

/* The out-of-line halves of gcw_put and gcw_get_local: buffer swaps. */
void gcw_put_slow(gcw *w, uintptr_t obj);
uintptr_t gcw_get_local_slow(gcw *w);

/* Queue an object for scanning. Never fails: if no buffer can be had
 * (the OS refuses a new chunk), fatal(), as Go's runtime throws (marking
 * cannot go on without memory for its queue: docs/api.md). Inline
 * while buf1 has room: once per object greyed. */
static inline void gcw_put(gcw *w, uintptr_t obj)
{
	workbuf *b = w->buf1;
	if (likely(b && b->n < WORKBUF_LEN))
		b->obj[b->n++] = obj;
	else
		gcw_put_slow(w, obj);
}
/* The next object to scan, or 0 if this gcw and the global list are
 * empty. */
uintptr_t gcw_get(gcw *w);
/* Like gcw_get but never takes from the global list. */
static inline uintptr_t gcw_get_local(gcw *w)
{
	workbuf *b = w->buf1;
	if (likely(b && b->n))
		return b->obj[--b->n];
	return gcw_get_local_slow(w);
}
/* Move all of this gcw's work (objects and spans) to the global lists
 * and release its buffers. */
void gcw_dispose(gcw *w);
/* Share work: publish the spare buffer, or half of the current one, so
 * that idle markers and assists find something (Go's gcWork.balance);
 * the same for spans. */
void gcw_balance(gcw *w);
/* True if the global lists (objects and spans) are empty (a racy,
 * cheap look). */
static inline bool gcwork_starved(void)
{
	return aload(&gcwork_.nfull) == 0 && aload(&gcwork_.nspans) == 0;
}
/* True if this gcw holds no work (objects or spans). */
bool gcw_empty(const gcw *w);
/* True if the global lists (objects and spans) are empty. */
bool gcwork_global_empty(void);

/* For gc/mgcspanq.c: a spare buffer (never fails: fatal() without
 * memory), giving one back, and the global queue of span buffers (first
 * in, first out). */
workbuf *gcwork_getempty(void);
void gcwork_putempty(workbuf *b);
void gcwork_putspans(workbuf *b);
workbuf *gcwork_trygetspans(void);

#endif
