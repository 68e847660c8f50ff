/* gc/mgcspanq.c: the span queue (see mgcspanq.h), first in, first out
 * as a whole, so that a span waits long enough for marks to gather on
 * it. Each gcw appends to its sput and takes from its sget, oldest first
 * (shead counts those taken); a full sput goes to the tail of the global
 * span queue, and a gcw whose sget runs dry takes the global queue's
 * head, or failing that its own sput. Buffers on the global queue hold
 * their entries from index 0. */
#include "gc/mgcspanq.h"

#include <string.h>

/* A span taken from the queue is likely cold: its successor this many
 * entries on is prefetched (its entry object). */
#define SPANQ_PREFETCH 4

void gcw_put_span(gcw *w, uintptr_t obj)
{
	workbuf *b = w->sput;

	if (!b) {
		b = w->sput = gcwork_getempty();
	} else if (b->n == WORKBUF_LEN) {
		/* Behind everything queued before it. */
		gcwork_putspans(b);
		b = w->sput = gcwork_getempty();
	}
	b->obj[b->n++] = obj;
}

uintptr_t gcw_get_span_local(gcw *w)
{
	workbuf *g = w->sget;

	if (g && w->shead < g->n) {
		if (w->shead + SPANQ_PREFETCH < g->n)
			__builtin_prefetch((const void *)
			                   g->obj[w->shead + SPANQ_PREFETCH]);
		return g->obj[w->shead++];
	}
	return 0;
}

/* Make b the buffer taken from, its first entry taken. */
static uintptr_t take(gcw *w, workbuf *b)
{
	if (w->sget)
		gcwork_putempty(w->sget);
	w->sget = b;
	w->shead = 1;
	return b->obj[0];
}

uintptr_t gcw_get_span(gcw *w)
{
	uintptr_t p = gcw_get_span_local(w);
	if (p)
		return p;
	/* The global queue holds older spans than sput. */
	workbuf *b = gcwork_trygetspans();
	if (b)
		return take(w, b);
	b = w->sput;
	if (!b || !b->n)
		return 0;
	w->sput = NULL;
	return take(w, b);
}

bool gcw_spans_empty(const gcw *w)
{
	return (!w->sget || w->shead >= w->sget->n) &&
	       (!w->sput || !w->sput->n);
}

void gcw_dispose_spans(gcw *w)
{
	workbuf *g = w->sget, *p = w->sput;

	if (g) {
		uintptr_t left = g->n - w->shead;
		memmove(g->obj, g->obj + w->shead, left * sizeof(g->obj[0]));
		g->n = left;
		if (left)
			gcwork_putspans(g);
		else
			gcwork_putempty(g);
	}
	if (p) {
		if (p->n)
			gcwork_putspans(p);
		else
			gcwork_putempty(p);
	}
	w->sget = w->sput = NULL;
	w->shead = 0;
}

/* Publish the newer half of b->obj[lo, n), if there are a few. */
static void give_half(workbuf *b, uintptr_t lo)
{
	uintptr_t half = (b->n - lo) / 2;

	if (half < 2)
		return;
	workbuf *h = gcwork_getempty();
	b->n -= half;
	memcpy(h->obj, b->obj + b->n, half * sizeof(h->obj[0]));
	h->n = half;
	gcwork_putspans(h);
}

void gcw_balance_spans(gcw *w)
{
	workbuf *g = w->sget, *p = w->sput;
	bool older = g && w->shead < g->n;

	if (p && p->n && older) {
		/* Keep the older spans, give the newer. */
		gcwork_putspans(p);
		w->sput = NULL;
	} else if (older) {
		give_half(g, w->shead);
	} else if (p) {
		give_half(p, 0);
	}
}
