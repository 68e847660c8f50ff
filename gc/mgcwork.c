/* gc/mgcwork.c: workbuf lists and the per-marker gcw (see mgcwork.h). */
#include "gc/mgcwork.h"

#include "gc/mgcspanq.h"
#include "gc/mgcstats.h"

gcwork_state gcwork_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
                         .park_cond = PTHREAD_COND_INITIALIZER};

#define WORKBUF_CHUNK ((size_t)256 << 10)

/* Add a chunk of fresh buffers to the empty list (gcwork_.lock held, or
 * at initialisation); false if the OS refuses. */
static bool add_chunk(void)
{
	workbuf *c = os_alloc_meta(WORKBUF_CHUNK);
	if (!c)
		return false;
	for (size_t i = 0; i < WORKBUF_CHUNK / sizeof(workbuf); i++) {
		c[i].next = gcwork_.empty;
		gcwork_.empty = &c[i];
	}
	return true;
}

bool gcwork_init(void)
{
	mutex_init(&gcwork_.lock);
	return add_chunk();
}

/* A workbuf from the empty list, or fresh metadata memory. */
workbuf *gcwork_getempty(void)
{
	mutex_lock(&gcwork_.lock);
	if (!gcwork_.empty && !add_chunk())
		fatal("out of memory for the mark queue");
	workbuf *b = gcwork_.empty;
	gcwork_.empty = b->next;
	mutex_unlock(&gcwork_.lock);
	b->next = NULL;
	b->n = 0;
	return b;
}

void gcwork_putempty(workbuf *b)
{
	mutex_lock(&gcwork_.lock);
	b->next = gcwork_.empty;
	gcwork_.empty = b;
	mutex_unlock(&gcwork_.lock);
}

/* Work was published (gcwork_.lock held): one parked assist may take it
 * (gcwork_park). */
static void wake_one_parked(void)
{
	if (gcwork_.parked)
		pthread_cond_signal(&gcwork_.park_cond);
}

/* Push b on a global list (full or spans) and count it in n. */
static void push(workbuf **list, atomic_word *n, workbuf *b)
{
	mutex_lock(&gcwork_.lock);
	b->next = *list;
	*list = b;
	astore(n, aload(n) + 1);
	wake_one_parked();
	mutex_unlock(&gcwork_.lock);
}

static workbuf *trypop(workbuf **list, atomic_word *n)
{
	if (!aload(n))
		return NULL;
	mutex_lock(&gcwork_.lock);
	workbuf *b = *list;
	if (b) {
		*list = b->next;
		astore(n, aload(n) - 1);
	}
	mutex_unlock(&gcwork_.lock);
	return b;
}

static void putfull(workbuf *b)
{
	push(&gcwork_.full, &gcwork_.nfull, b);
}

static workbuf *trygetfull(void)
{
	return trypop(&gcwork_.full, &gcwork_.nfull);
}

void gcwork_putspans(workbuf *b)
{
	b->next = NULL;
	mutex_lock(&gcwork_.lock);
	if (gcwork_.spans)
		gcwork_.spans_tail->next = b;
	else
		gcwork_.spans = b;
	gcwork_.spans_tail = b;
	astore(&gcwork_.nspans, aload(&gcwork_.nspans) + 1);
	wake_one_parked();
	mutex_unlock(&gcwork_.lock);
}

workbuf *gcwork_trygetspans(void)
{
	/* Taken from the head: spans_tail is stale once the queue is
	 * empty, and only read when it is not. */
	return trypop(&gcwork_.spans, &gcwork_.nspans);
}

void gcwork_park(bool (*done)(void), uint64_t ns)
{
	uint64_t t0 = gcstats_now_ns(), t = t0;

	mutex_lock(&gcwork_.lock);
	gcwork_.parked++;
	while (!gcwork_.full && !gcwork_.spans && !done() && t - t0 < ns) {
		mutex_cond_wait_ns(&gcwork_.park_cond, &gcwork_.lock,
		                   ns - (t - t0));
		t = gcstats_now_ns();
	}
	gcwork_.parked--;
	mutex_unlock(&gcwork_.lock);
}

void gcwork_wake_parked(void)
{
	mutex_lock(&gcwork_.lock);
	if (gcwork_.parked)
		pthread_cond_broadcast(&gcwork_.park_cond);
	mutex_unlock(&gcwork_.lock);
}

bool gcwork_global_empty(void)
{
	mutex_lock(&gcwork_.lock);
	bool e = gcwork_.full == NULL && gcwork_.spans == NULL;
	mutex_unlock(&gcwork_.lock);
	return e;
}

void gcw_put_slow(gcw *w, uintptr_t obj)
{
	if (!w->buf1)
		w->buf1 = gcwork_getempty();
	if (w->buf1->n == WORKBUF_LEN) {
		/* Swap with the spare; if that is full too, publish it. */
		workbuf *t = w->buf1;
		w->buf1 = w->buf2;
		w->buf2 = t;
		if (!w->buf1) {
			w->buf1 = gcwork_getempty();
		} else if (w->buf1->n == WORKBUF_LEN) {
			putfull(w->buf1);
			w->buf1 = gcwork_getempty();
		}
	}
	w->buf1->obj[w->buf1->n++] = obj;
}

uintptr_t gcw_get_local_slow(gcw *w)
{
	if (w->buf2 && w->buf2->n) {
		workbuf *t = w->buf1;
		w->buf1 = w->buf2;
		w->buf2 = t;
		return w->buf1->obj[--w->buf1->n];
	}
	return 0;
}

uintptr_t gcw_get(gcw *w)
{
	uintptr_t p = gcw_get_local(w);
	if (p)
		return p;
	workbuf *b = trygetfull();
	if (!b)
		return 0;
	if (w->buf1)
		gcwork_putempty(w->buf1);
	w->buf1 = b;
	return w->buf1->obj[--w->buf1->n];
}

void gcw_balance(gcw *w)
{
	if (w->buf2 && w->buf2->n) {
		putfull(w->buf2);
		w->buf2 = NULL;
	} else if (w->buf1 && w->buf1->n > 4) {
		/* Give away the older half. */
		workbuf *b = gcwork_getempty();
		uintptr_t half = w->buf1->n / 2;
		for (uintptr_t i = 0; i < half; i++)
			b->obj[i] = w->buf1->obj[i];
		b->n = half;
		w->buf1->n -= half;
		for (uintptr_t i = 0; i < w->buf1->n; i++)
			w->buf1->obj[i] = w->buf1->obj[half + i];
		putfull(b);
	}
	gcw_balance_spans(w);
}

bool gcw_empty(const gcw *w)
{
	return (!w->buf1 || !w->buf1->n) && (!w->buf2 || !w->buf2->n) &&
	       gcw_spans_empty(w);
}

void gcw_dispose(gcw *w)
{
	workbuf *bs[2] = {w->buf1, w->buf2};

	for (int i = 0; i < 2; i++) {
		if (!bs[i])
			continue;
		if (bs[i]->n)
			putfull(bs[i]);
		else
			gcwork_putempty(bs[i]);
	}
	w->buf1 = w->buf2 = NULL;
	gcw_dispose_spans(w);
	if (w->nmarked) {
		afetch_add(&gcwork_.nmarked, w->nmarked);
		w->nmarked = 0;
	}
	if (w->bytes_marked) {
		afetch_add(&gcwork_.bytes_marked, w->bytes_marked);
		w->bytes_marked = 0;
	}
}
