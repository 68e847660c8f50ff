/* gc/mgcspanq.c: the per-marker span queue (see mgcspanq.h). Two
 * workbufs per gcw: entries are appended to sput and taken from sget,
 * oldest first (shead counts those taken). When sget runs dry the whole
 * of sput becomes sget, so the order stays first in, first out; when
 * sput fills while sget still holds spans, sput goes to the global span
 * list. Buffers on the global list hold their entries from index 0. */
#include "gc/mgcspanq.h"

#include <string.h>

void gcw_put_span(gcw *w, uintptr_t obj)
{
	workbuf *b = w->sput;

	if (!b) {
		b = w->sput = gcwork_getempty();
	} else if (b->n == WORKBUF_LEN) {
		workbuf *g = w->sget;
		if (g && w->shead < g->n) {
			/* sget still holds older spans: publish sput. */
			gcwork_putspans(b);
			w->sput = gcwork_getempty();
		} else {
			/* sget is drained: sput becomes it. */
			if (g)
				g->n = 0;
			w->sget = b;
			w->shead = 0;
			w->sput = g ? g : gcwork_getempty();
		}
		b = w->sput;
	}
	b->obj[b->n++] = obj;
}

uintptr_t gcw_get_span_local(gcw *w)
{
	workbuf *g = w->sget;

	if (g && w->shead < g->n)
		return g->obj[w->shead++];
	workbuf *p = w->sput;
	if (!p || !p->n)
		return 0;
	if (g)
		g->n = 0;
	w->sput = g;
	w->sget = p;
	w->shead = 1;
	return p->obj[0];
}

uintptr_t gcw_get_span(gcw *w)
{
	uintptr_t p = gcw_get_span_local(w);
	if (p)
		return p;
	workbuf *b = gcwork_trygetspans();
	if (!b)
		return 0;
	if (w->sget)
		gcwork_putempty(w->sget);
	w->sget = b;
	w->shead = 1;
	return b->obj[0];
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
