/* alloc/mcentral.c: the per-span-class central lists (see mcentral.h).
 * Invariant: a span is on at most one list, and span->list names it; a
 * span held by an mcache or being swept is on none. */
#include "alloc/mcentral.h"

mcentral mcentral_[NUM_SPANCLASSES];
static bool centrals_init;
static atomic_word reserve_on;

void mcentral_init(mcentral *c, spanclass spc)
{
	mutex_init(&c->lock);
	c->spc = spc;
	for (int i = 0; i < 2; i++) {
		c->partial[i] = (spanlist){0};
		c->full[i] = (spanlist){0};
	}
	c->keep_gen = c->keep = c->kept = c->demand_base = 0;
	astore(&c->demand, 0);
}

void mcentral_set_reserve(bool on)
{
	astore(&reserve_on, on);
}

void mcentral_init_all(void)
{
	if (centrals_init)
		return;
	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		mcentral_init(&mcentral_[i], (spanclass)i);
	centrals_init = true;
}

void spanlist_push(spanlist *l, mspan *s)
{
	gc_assert(s->list == NULL);
	s->prev = NULL;
	s->next = l->first;
	if (l->first)
		l->first->prev = s;
	else
		l->last = s;
	l->first = s;
	s->list = l;
	l->n++;
}

void spanlist_push_back(spanlist *l, mspan *s)
{
	gc_assert(s->list == NULL);
	s->next = NULL;
	s->prev = l->last;
	if (l->last)
		l->last->next = s;
	else
		l->first = s;
	l->last = s;
	s->list = l;
	l->n++;
}

void spanlist_remove(spanlist *l, mspan *s)
{
	gc_assert(s->list == l && l->n > 0);
	if (s->prev)
		s->prev->next = s->next;
	else
		l->first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->last = s->prev;
	s->next = s->prev = NULL;
	s->list = NULL;
	l->n--;
}

mspan *spanlist_pop(spanlist *l)
{
	mspan *s = l->first;
	if (s)
		spanlist_remove(l, s);
	return s;
}

static mspan *pop_locked(mcentral *c, spanlist *l)
{
	mutex_lock(&c->lock);
	mspan *s = spanlist_pop(l);
	mutex_unlock(&c->lock);
	return s;
}

/* Pop spans of the unswept list l, under the lock, until one is taken for
 * sweeping (mspan_try_acquire), at most *budget of them (counted down);
 * NULL if none. The take must happen under the lock: a span popped and
 * then taken through its sweepgen by a weak pointer's lookup
 * (runtime/weak.c) is its taker's to place, and may be freed, its struct
 * reused, as soon as the lock is released; a look at its sweepgen after
 * that (a struct just reused reads 0, which is sg - 2 in the first
 * cycle) would take a span being set up. One popped and not taken is
 * left to its taker. */
static mspan *pop_acquire(mcentral *c, spanlist *l, uintptr_t sg,
                          int *budget)
{
	mspan *s = NULL;

	mutex_lock(&c->lock);
	while (*budget >= 0 && (s = spanlist_pop(l))) {
		--*budget;
		if (mspan_try_acquire(s, sg))
			break;
		s = NULL;
	}
	mutex_unlock(&c->lock);
	return s;
}

void mcentral_push_swept(mcentral *c, mspan *s)
{
	uintptr_t sg = aload_acq(&mheap_.sweepgen);

	mutex_lock(&c->lock);
	spanlist_push(s->alloc_count < s->nelems ?
	              mcentral_partial_swept(c, sg) :
	              mcentral_full_swept(c, sg), s);
	mutex_unlock(&c->lock);
}

/* Sweep s (mspan_sweep, at the heap's sweepgen) and count what it freed. */
static mspan_swept sweep(mspan *s)
{
	uintptr_t nfreed;
	mspan_swept r = mspan_sweep(s, aload_acq(&mheap_.sweepgen), &nfreed);

	afetch_add(&mheap_.pages_swept, s->npages);
	afetch_add(&mheap_.spans_swept, 1);
	if (spanclass_sizeclass(s->spc))
		afetch_add(&mheap_.stats.nfree[spanclass_sizeclass(s->spc)],
		           nfreed);
	return r;
}

/* Roll the reserve of class c over to sweep generation sg (see
 * mcentral.h): it may keep what the class handed to thread caches since
 * the last roll-over, its first mcentral_sweep of an earlier generation
 * (normally the one before). Caller holds c->lock. */
static void reserve_roll(mcentral *c, uintptr_t sg)
{
	if (c->keep_gen == sg)
		return;
	uintptr_t d = aload(&c->demand);
	c->keep = aload(&reserve_on) ? d - c->demand_base : 0;
	c->demand_base = d;
	c->kept = 0;
	c->keep_gen = sg;
}

/* Place swept span s (result r) on its class's lists; caller holds c->lock.
 * True if it must go back to the heap (after the lock is dropped). */
static bool place_locked(mcentral *c, mspan *s, mspan_swept r)
{
	/* The sweepgen the sweep published, which picks the swept lists. */
	uintptr_t sg = aload(&s->sweepgen);

	if (s->list)
		spanlist_remove(s->list, s);
	reserve_roll(c, sg);
	/* A span the reserve kept at the last sweep and no cache took
	 * since goes back: partial spans are used first, so a reserve as
	 * large as a cycle's demand could otherwise hold the empties of a
	 * burst for good (30 MB of a 56 MB heap after a phase change). */
	bool keep = r == MSPAN_SWEPT_FREE && spanclass_sizeclass(s->spc) &&
	            c->kept < c->keep && !s->kept;
	s->kept = keep;
	if (keep) { /* behind the partial spans, which are used first */
		c->kept++;
		spanlist_push_back(mcentral_partial_swept(c, sg), s);
	} else if (r != MSPAN_SWEPT_FREE) {
		spanlist_push(r == MSPAN_SWEPT_FULL ?
		              mcentral_full_swept(c, sg) :
		              mcentral_partial_swept(c, sg), s);
	}
	return r == MSPAN_SWEPT_FREE && !keep;
}

bool mcentral_sweep(mspan *s)
{
	mcentral *c = &mcentral_[s->spc];
	mspan_swept r = sweep(s);

	mutex_lock(&c->lock);
	bool free = place_locked(c, s, r);
	mutex_unlock(&c->lock);
	if (free) {
		mheap_free_span(s);
		return false;
	}
	return true;
}

void (*mcentral_sweep_test_hook)(size_t n);

size_t mcentral_sweep_some(mcentral *c, uintptr_t sg, size_t max)
{
	mspan *batch[MCENTRAL_SWEEP_BATCH];
	mspan_swept r[MCENTRAL_SWEEP_BATCH];
	size_t k;
	uintptr_t pages = 0, nfreed = 0;

	max = MIN(max, (size_t)MCENTRAL_SWEEP_BATCH);
	k = 0;
	mutex_lock(&c->lock);
	spanlist *partial = mcentral_partial_unswept(c, sg);
	spanlist *full = mcentral_full_unswept(c, sg);
	while (k < max) {
		mspan *s = spanlist_pop(partial);
		if (!s && !(s = spanlist_pop(full)))
			break;
		/* Taken under the lock (see pop_acquire): one taken
		 * through its sweepgen meanwhile (a weak pointer's lookup
		 * sweeps it) is its taker's to place. */
		if (mspan_try_acquire(s, sg))
			batch[k++] = s;
	}
	mutex_unlock(&c->lock);
	if (unlikely(mcentral_sweep_test_hook != NULL) && k)
		mcentral_sweep_test_hook(k);
	for (size_t j = 0; j < k; j++) {
		if (j + 1 < k) {
			__builtin_prefetch(batch[j + 1]->gcmark_bits);
			__builtin_prefetch(batch[j + 1]->alloc_bits);
		}
		uintptr_t f;
		r[j] = mspan_sweep(batch[j], sg, &f);
		pages += batch[j]->npages;
		nfreed += f;
	}
	if (!k)
		return 0;
	afetch_add(&mheap_.pages_swept, pages);
	afetch_add(&mheap_.spans_swept, k);
	if (spanclass_sizeclass(c->spc))
		afetch_add(&mheap_.stats.nfree[spanclass_sizeclass(c->spc)],
		           nfreed);
	size_t nfree = 0;
	mutex_lock(&c->lock);
	for (size_t j = 0; j < k; j++)
		if (place_locked(c, batch[j], r[j]))
			batch[nfree++] = batch[j];
	mutex_unlock(&c->lock);
	for (size_t j = 0; j < nfree; j++)
		mheap_free_span(batch[j]);
	return k;
}

mspan *mcentral_pop_unswept(mcentral *c, uintptr_t sg)
{
	mutex_lock(&c->lock);
	mspan *s = spanlist_pop(mcentral_partial_unswept(c, sg));
	if (!s)
		s = spanlist_pop(mcentral_full_unswept(c, sg));
	mutex_unlock(&c->lock);
	return s;
}

/* A fresh span from the heap (Go's mcentral.grow). */
static mspan *mcentral_grow(mcentral *c, int *err)
{
	unsigned sc = spanclass_sizeclass(c->spc);
	heap_err e;
	mspan *s = mheap_alloc_span(class_to_npages[sc], c->spc, &e);
	if (!s)
		*err = e;
	return s;
}

mspan *mcentral_cache_span(mcentral *c, int *err)
{
	/* Sweeping more than this many spans without finding room means
	 * a fresh span is cheaper (Go: at most 1% space overhead). */
	int budget = 100;
	uintptr_t sg = aload_acq(&mheap_.sweepgen);
	mspan *s = pop_locked(c, mcentral_partial_swept(c, sg));

	if (s)
		goto havespan;
	/* Spans another thread took meanwhile are its to place. */
	if ((s = pop_acquire(c, mcentral_partial_unswept(c, sg), sg,
	                     &budget))) {
		sweep(s);
		goto havespan;
	}
	while ((s = pop_acquire(c, mcentral_full_unswept(c, sg), sg,
	                        &budget))) {
		sweep(s);
		uintptr_t fi = mspan_next_free_index(s);
		if (fi != s->nelems) {
			astore(&s->freeindex, fi);
			goto havespan;
		}
		mutex_lock(&c->lock);
		spanlist_push(mcentral_full_swept(c, sg), s);
		mutex_unlock(&c->lock);
	}
	s = mcentral_grow(c, err);
	if (!s)
		return NULL;

havespan:;
	s->kept = false; /* (c's lock is not held: no sweep can see s) */
	afetch_add(&c->demand, 1);
	uintptr_t fi = aload(&s->freeindex);
	if (s->alloc_count == s->nelems || fi == s->nelems)
		fatal("mcentral_cache_span: span %p has no free objects",
		      (void *)s);
	/* Load the cache so that bit 0 stands for freeindex. */
	mspan_refill_alloc_cache(s, fi / 64);
	s->alloc_cache >>= fi % 64;
	astore(&s->sweepgen, aload(&mheap_.sweepgen) + 3);
	return s;
}

void mcentral_uncache_span(mcentral *c, mspan *s)
{
	uintptr_t sg = aload_acq(&mheap_.sweepgen);
	bool stale = aload(&s->sweepgen) == sg + 1;

	if (s->alloc_count == 0)
		fatal("mcentral_uncache_span: span %p has no objects",
		      (void *)s);
	if (stale) {
		/* Cached before this sweep began: ours to sweep. */
		astore(&s->sweepgen, sg - 1);
		mcentral_sweep(s);
		return;
	}
	astore(&s->sweepgen, sg);
	mcentral_push_swept(c, s);
}

/* "swept partial", ... for the messages. */
static const char *list_name(mcentral *c, spanlist *l)
{
	uintptr_t sg = aload(&mheap_.sweepgen);

	return l == mcentral_partial_swept(c, sg) ? "swept partial" :
	       l == mcentral_full_swept(c, sg) ? "swept full" :
	       l == mcentral_partial_unswept(c, sg) ? "unswept partial" :
	       "unswept full";
}

static uintptr_t verify_list(mcentral *c, spanlist *l, bool full,
                             uintptr_t want_sg)
{
	uintptr_t n = 0;

	for (mspan *s = l->first; s; s = s->next, n++) {
		if (s->list != l || s->spc != c->spc)
			fatal("mcentral_verify: span %p on list %p of class "
			      "%u claims list %p class %u", (void *)s,
			      (void *)l, c->spc, (void *)s->list, s->spc);
		if (s->next && s->next->prev != s)
			fatal("mcentral_verify: broken links at span %p",
			      (void *)s);
		uintptr_t ssg = aload(&s->sweepgen);
		if (ssg != want_sg && ssg != want_sg + 1)
			fatal("mcentral_verify: span %p (class %u%s, %zu/%zu "
			      "allocated) sweepgen %zu on the %s list (%s[%d]) "
			      "for %zu", (void *)s, spanclass_sizeclass(s->spc),
			      spanclass_noscan(s->spc) ? " noscan" : "",
			      (size_t)s->alloc_count, (size_t)s->nelems,
			      (size_t)ssg, list_name(c, l),
			      full ? "full" : "partial",
			      (int)(l - (full ? c->full : c->partial)),
			      (size_t)want_sg);
		mheap_verify_span(s);
		/* Uncached, so not allocating black: a stray blackfrom
		 * would make the marker skip objects as black-pending. */
		if (aload(&s->blackfrom) != NO_BLACK)
			fatal("mcentral_verify: span %p on a list has "
			      "blackfrom %zu", (void *)s,
			      (size_t)aload(&s->blackfrom));
		/* Only swept spans know whether they are full. */
		if (ssg == aload(&mheap_.sweepgen) &&
		    full != (s->alloc_count == s->nelems))
			fatal("mcentral_verify: span %p with %zu/%zu objects "
			      "on a %s list", (void *)s,
			      (size_t)s->alloc_count, (size_t)s->nelems,
			      full ? "full" : "partial");
	}
	if (n != l->n)
		fatal("mcentral_verify: list %p counts %zu spans, has %zu",
		      (void *)l, (size_t)l->n, (size_t)n);
	if (l->first ? !l->last || l->last->next : l->last != NULL)
		fatal("mcentral_verify: list %p has a wrong last span %p",
		      (void *)l, (void *)l->last);
	return n;
}

uintptr_t mcentral_verify(mcentral *c)
{
	uintptr_t sg = aload(&mheap_.sweepgen), n = 0;

	mutex_lock(&c->lock);
	/* Swept lists hold spans at sg (or sg-1 while being swept in
	 * place); unswept lists hold spans at sg-2 (or sg-1). */
	n += verify_list(c, mcentral_partial_swept(c, sg), false, sg - 1);
	n += verify_list(c, mcentral_full_swept(c, sg), true, sg - 1);
	n += verify_list(c, mcentral_partial_unswept(c, sg), false, sg - 2);
	n += verify_list(c, mcentral_full_unswept(c, sg), true, sg - 2);
	mutex_unlock(&c->lock);
	return n;
}

void mcentral_verify_all(void)
{
	/* The lists first: a span with a wrong sweepgen on a list is then
	 * named with its list. */
	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		mcentral_verify(&mcentral_[i]);
	mheap_verify();
}
