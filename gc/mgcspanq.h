/* gc/mgcspanq.h: span-batched marking of small objects (Go's Green Tea,
 * mgcmark_greenteagc.go), with options_.greentea: the span queue and span
 * ownership. The scan of a span is gc/mgcmark.c's (scanspan).
 *
 * A span whose objects keep heap bits (scan objects of at most
 * SMALL_SCAN_MAX bytes) has scan bits beside its mark bits (alloc/
 * mspan.h). Marking one of its objects sets the mark bit only; the object
 * is grey while its scan bit is clear. The marker that sets the bit then
 * tries to take the span for scanning (span_try_acquire); if the span
 * was not owned, it queues the span, represented by the object's
 * address, on its gcw's span queue. Whoever takes the entry owns the span
 * and scans every object marked and not yet scanned in it, setting their
 * scan bits, until none is left; then it gives the span up. So marks
 * accumulate on a span while it waits in the queue (first in, first out,
 * unlike the object workbufs) or while its owner scans it, and the span
 * is scanned in one pass, in address order, its metadata touched once.
 *
 * Ownership (gcowned): 0 unowned; SPAN_OWNED_ONE owned, and no mark has
 * arrived since the owner took it but the one that queued it;
 * SPAN_OWNED_MANY owned, and more marks may have arrived. Markers move
 * 0 -> ONE (and queue the span) or ONE -> MANY; only the owner moves
 * MANY -> ONE (before a pass over the bitmaps) and ONE -> 0 (giving up).
 * The owner gives up only with a compare-and-swap from ONE, so a mark
 * that arrived after its last pass had read that bitmap word, which made
 * the state MANY, fails the swap and sends it round again; a mark that
 * arrives after the swap finds the span unowned and queues it afresh.
 * No mark is lost: the marker's fetch-or on the mark bit and the owner's
 * compare-and-swap are full barriers, each followed by an acquire load
 * of the other's word (state, bitmap), so one of the two sees the other.
 *
 * Termination: a queued span is pending work. gcw_empty, gcw_dispose,
 * gcwork_global_empty and gcwork_starved count the span queues and the
 * global span list with the object work; an owned span is always either
 * queued or in the hands of a marker that is inside the marker gate or
 * holding its gcw, exactly as a grey object. At the end of a mark every
 * span is unowned and every marked object scanned.
 *
 * Counting: bytes_marked and nmarked are still counted by the marker
 * whose fetch-or set the mark bit (gc/mgcmark.c), never by the scanner.
 *
 * Marks that the owner's own scan makes on its span (most of them, for
 * a structure allocated in one place) are not made one by one: they
 * gather in the visit's `mine` bitmap, with no atomic and no barrier,
 * and reach the mark bits a word at a time, one fetch-or per 64
 * objects, at the start of the owner's next pass. Meanwhile they are
 * queued in the visit (span_visit) and scanned in the pass that marked
 * them. The fetch-or tells
 * which bits were new (another marker may have set one meanwhile) and
 * those are counted. Until then the objects look unmarked to others:
 * one may mark one too, atomically, and it is scanned once all the
 * same (scan bits, `done`). The owner's passes go on until `mine` is
 * empty, so it never gives up a span with local marks unpublished.
 *
 * Not on this path: checkmark's re-mark, objects over SMALL_SCAN_MAX
 * bytes and large objects (oblets): object at a time. */
#ifndef GCHEAP_MGCSPANQ_H
#define GCHEAP_MGCSPANQ_H

#include "alloc/mspan.h"
#include "gc/mgcwork.h"

/* The span a marker owns and is scanning (gc/mgcmark.c's scanspan).
 * Marks that its own scan makes on the span go to `mine` and set
 * `again` (no ownership to update: the owner makes another pass, which
 * publishes them first); done holds the objects scanned or queued to be
 * whose scan bits are not yet published, which happens before every try
 * to give the span up, with the queue empty. The queue (q[qhead..qtail),
 * object indices, first in first out) takes the objects so marked while
 * it has room: they are scanned in the same pass, as soon as the pass's
 * own objects are, instead of one pass over the bitmaps per generation
 * (a tree laid out in one span is nine generations deep); those that
 * find it full wait for the next pass. */
#define VISIT_WORDS SCANBITS_MAX_WORDS
#define VISIT_QUEUE 2048

typedef struct span_visit {
	mspan *s;
	bool again;
	uint16_t qhead, qtail;
	uint64_t done[VISIT_WORDS];
	uint64_t mine[VISIT_WORDS];
	uint16_t q[VISIT_QUEUE];
} span_visit;

#define SPAN_UNOWNED 0
#define SPAN_OWNED_ONE 1
#define SPAN_OWNED_MANY 2

/* After setting an object's mark bit in s: true if the caller now owns
 * s and must queue it. */
static inline bool span_try_acquire(mspan *s)
{
	uintptr_t o = aload_acq(&s->gcowned);

	while (o != SPAN_OWNED_MANY) {
		if (GCHEAP_SABOTAGE == 8 && o == SPAN_OWNED_ONE)
			return false;
		uintptr_t to = o == SPAN_UNOWNED ? SPAN_OWNED_ONE
		                                 : SPAN_OWNED_MANY;
		if (acas(&s->gcowned, o, to))
			return o == SPAN_UNOWNED;
		o = aload_acq(&s->gcowned);
	}
	return false;
}

/* Queue span s, which the caller owns, as the object obj in it that
 * made the caller its owner. */
void gcw_put_span(gcw *w, uintptr_t obj);
/* The next span (its entry) of the buffer this gcw takes from, or 0. */
uintptr_t gcw_get_span_local(gcw *w);
/* Like gcw_get_span_local, then the oldest of the global queue, then
 * this gcw's newest; 0 if there is none. */
uintptr_t gcw_get_span(gcw *w);
/* True if this gcw queues no span. */
bool gcw_spans_empty(const gcw *w);
/* Publish this gcw's span queue and release its buffers. */
void gcw_dispose_spans(gcw *w);
/* Share some of this gcw's spans with the global list. */
void gcw_balance_spans(gcw *w);

#endif
