/* alloc/mheap.c: arenas, span allocation and freeing, committing and
 * releasing memory, object lookup, and the heap verifier (see mheap.h).
 *
 * Invariants (checked by mheap_verify):
 *  - a page is in use in its arena's bitmap iff spans[page] is non-NULL,
 *    and then the span covers the page;
 *  - pages at or past arena->committed are free and not dirty, and
 *    arena->prefaulted is at most arena->committed;
 *  - stats.inuse_pages is the sum of the in-use spans' pages, and at
 *    most stats.inuse_peak;
 *  - released pages are free and not dirty;
 *  - pinned pages (the OS refused to release them) are free, dirty and
 *    not released. */
#include "alloc/mheap.h"

#include "alloc/sys/options.h"
#include "alloc/sys/osmem.h"

#include <sched.h>
#include <string.h>

mheap mheap_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};
atomic_word *mcard_index;

heap_err mheap_init(void)
{
	if (mheap_ready())
		return HEAP_OK;
	mutex_init(&mheap_.lock);
	mheap_.arena_index = os_alloc_meta(ARENA_INDEX_LEN *
	                                   sizeof(atomic_word));
	mcard_index = os_alloc_meta(ARENA_INDEX_LEN * sizeof(atomic_word));
	if (!mheap_.arena_index || !mcard_index)
		return HEAP_NOMEM;
	fixalloc_init(&mheap_.spanalloc, sizeof(mspan),
	              &mheap_.stats.meta_sys);
	fixalloc_init(&mheap_.arenaalloc, sizeof(heap_arena),
	              &mheap_.stats.meta_sys);
	metaalloc_init(&mheap_.meta, &mheap_.stats.meta_sys);
	astore(&mheap_.sweepgen, 0);
	astore_rel(&mheap_.init, 1);
	return HEAP_OK;
}

/* ---- Growing ------------------------------------------------------------- */

/* Link a into the list by address after *at (NULL: search from the
 * head); returns where the arena just above it goes. A grow's arenas are
 * contiguous and new, so each goes right after the one before: searching
 * from the head for each made a 1 TiB allocation (16,384 arenas) take
 * seconds of list walks. */
static heap_arena **arena_insert(heap_arena *a, heap_arena **at)
{
	heap_arena **pp = at ? at : &mheap_.arenas;

	while (*pp && (*pp)->base < a->base)
		pp = &(*pp)->next;
	a->next = *pp;
	*pp = a;
	return &a->next;
}

/* Reserve arenas for at least npages, contiguous with the heap's top or
 * bottom if the OS agrees. */
static heap_err mheap_grow(uintptr_t npages)
{
	uintptr_t bytes = align_up(npages * PAGE_SIZE, ARENA_BYTES);
	uintptr_t narenas = bytes / ARENA_BYTES;
	uintptr_t lo = 0, hi = 0;

	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		if (!lo)
			lo = a->base;
		hi = a->base + ARENA_BYTES;
	}
	void *p = NULL;
	if (hi && hi + bytes <= ((uintptr_t)1 << ADDR_BITS))
		p = os_reserve(bytes, ARENA_BYTES, (void *)hi);
	if (p && (uintptr_t)p != hi && lo > bytes) {
		os_unreserve(p, bytes);
		p = os_reserve(bytes, ARENA_BYTES, (void *)(lo - bytes));
	}
	if (!p)
		p = os_reserve(bytes, ARENA_BYTES, NULL);
	if (!p)
		return HEAP_NOMEM;
	uintptr_t base = (uintptr_t)p;
	if ((base + bytes - 1) >> ADDR_BITS) {
		os_unreserve(p, bytes);
		return HEAP_NOMEM;
	}
	heap_arena **at = NULL;
	for (uintptr_t i = 0; i < narenas; i++) {
		void *cards = os_alloc_meta(CARDS_PER_ARENA);
		heap_arena *a = cards ? fixalloc_alloc(&mheap_.arenaalloc) :
		                NULL;
		if (!a) {
			if (cards)
				os_free_meta(cards, CARDS_PER_ARENA);
			/* Undo: the arenas made so far stay (they are
			 * valid, free memory); give back the rest. */
			uintptr_t done = i * ARENA_BYTES;
			os_unreserve((void *)(base + done), bytes - done);
			return HEAP_NOMEM;
		}
		a->base = base + i * ARENA_BYTES;
		a->cards = cards;
		mheap_.stats.meta_sys += CARDS_PER_ARENA;
		a->free_pages = PAGES_PER_ARENA;
		pagealloc_update(a, 0, CHUNKS_PER_ARENA - 1);
		at = arena_insert(a, at);
		if (GCHEAP_SABOTAGE != 9)
			astore_rel(&mcard_index[a->base >> ARENA_SHIFT],
			           (uintptr_t)cards - (a->base >> CARD_SHIFT));
		astore_rel(&mheap_.arena_index[a->base >> ARENA_SHIFT],
		           (uintptr_t)a);
		mheap_.stats.reserved += ARENA_BYTES;
		mheap_.stats.arenas++;
	}
	return HEAP_OK;
}

/* ---- Committing ---------------------------------------------------------- */

static uintptr_t count_bits(const uint64_t *bm, uintptr_t from, uintptr_t n)
{
	uintptr_t c = 0;

	while (n) {
		unsigned sh = from % 64;
		unsigned k = (unsigned)MIN(n, 64 - sh);
		c += popcount64((bm[from / 64] >> sh) & low_mask(k));
		from += k;
		n -= k;
	}
	return c;
}

static void set_bits(uint64_t *bm, uintptr_t from, uintptr_t n, bool v)
{
	while (n) {
		unsigned sh = from % 64;
		unsigned k = (unsigned)MIN(n, 64 - sh);
		uint64_t m = low_mask(k) << sh;
		bm[from / 64] = v ? bm[from / 64] | m : bm[from / 64] & ~m;
		from += k;
		n -= k;
	}
}

/* Calls fn(arena, first page, npages) for each arena piece of a range. */
#define for_each_piece(base, npages, a, first, n)                          \
	for (uintptr_t b_ = (base), left_ = (npages), first, n;            \
	     left_ && ((a) = arena_of(b_)) &&                             \
	     ((first) = (b_ - (a)->base) / PAGE_SIZE,                     \
	      (n) = MIN(left_, PAGES_PER_ARENA - (first)), 1);            \
	     b_ += (n) * PAGE_SIZE, left_ -= (n))

/* Bytes of OS memory that using [base, npages) would add: pages past the
 * commit line and released pages. */
static uintptr_t commit_cost(uintptr_t base, uintptr_t npages)
{
	heap_arena *a;
	uintptr_t cost = 0;

	for_each_piece(base, npages, a, first, n) {
		uintptr_t end = first + n;
		if (end > a->committed)
			cost += (end - MAX(first, a->committed)) * PAGE_SIZE;
		uintptr_t c0 = MIN(first, a->committed);
		uintptr_t c1 = MIN(end, a->committed);
		if (c1 > c0)
			cost += count_bits(a->released, c0, c1 - c0) *
			        PAGE_SIZE;
	}
	return cost;
}

/* Move arena a's commit line up to page `top`. Lock held. */
static bool commit_to(heap_arena *a, uintptr_t top)
{
	uintptr_t from = a->base + a->committed * PAGE_SIZE;
	size_t len = (top - a->committed) * PAGE_SIZE;

	if (!os_commit((void *)from, len))
		return false;
	if (options_.hugepages)
		os_hugepages((void *)from, len);
	a->committed = top;
	mheap_.stats.committed += len;
	return true;
}

/* Does [base, base + npages pages) reach past a commit line? */
static bool beyond_commit(uintptr_t base, uintptr_t npages)
{
	heap_arena *a;

	for_each_piece(base, npages, a, first, n)
		if (first + n > a->committed)
			return true;
	return false;
}

/* Commit pages up to the end of the range, in COMMIT_PAGES steps when the
 * limit allows. */
static heap_err commit_range(uintptr_t base, uintptr_t npages)
{
	heap_arena *a;
	heap_stats *st = &mheap_.stats;

	uintptr_t limit = aload(&mheap_.limit);
	uintptr_t cost = commit_cost(base, npages);

	/* Only what the span adds is judged: pages held already are not
	 * refused when the limit was lowered below what the heap holds. */
	if (limit && cost && st->committed - st->released + cost > limit)
		return HEAP_LIMIT;
	for_each_piece(base, npages, a, first, n) {
		uintptr_t end = first + n;
		if (end <= a->committed)
			continue;
		uintptr_t top = MIN(align_up(end, COMMIT_PAGES),
		                    PAGES_PER_ARENA);
		uintptr_t extra = (top - end) * PAGE_SIZE;
		if (limit && st->committed - st->released +
		                     commit_cost(base, npages) + extra > limit)
			top = end;
		if (!commit_to(a, top))
			return HEAP_NOMEM;
	}
	return HEAP_OK;
}

/* Mark [base, base + npages pages) in use or free in the page allocator,
 * an arena piece at a time. */
static void set_pages(uintptr_t base, uintptr_t npages, bool inuse)
{
	mutex_assert_held(&mheap_.lock);
	while (npages) {
		heap_arena *a = arena_of(base);
		if (!a)
			fatal("mheap: pages at %p are in no arena",
			      (void *)base);
		uintptr_t first = (base - a->base) / PAGE_SIZE;
		uintptr_t n = MIN(npages, PAGES_PER_ARENA - first);
		pagealloc_set(a, first, n, inuse);
		for (uintptr_t i = 0; !inuse && i < n; i++)
			a->freed_at[first + i] =
				(uint16_t)aload(&mheap_.scav_epoch);
		base += n * PAGE_SIZE;
		npages -= n;
	}
}

/* ---- Spans --------------------------------------------------------------- */

/* Poison mode: a dirty page was poisoned when its span was freed, so any
 * other byte means a write after free. */
static void check_poisoned_pages(heap_arena *a, uintptr_t first, uintptr_t n)
{
	for (uintptr_t pg = first; pg < first + n; pg++) {
		if (!bitmap_get(a->dirty, pg))
			continue;
		const uint8_t *b = (const uint8_t *)(a->base + pg * PAGE_SIZE);
		size_t i = poison_mismatch(b, PAGE_SIZE);
		if (i < PAGE_SIZE)
			fatal("write after free: byte %zu of freed "
			      "page %p is %#x, not the poison %#x", i,
			      (const void *)b, b[i], POISON_BYTE);
	}
}

static void publish_span(mspan *s, mspan *v)
{
	for (uintptr_t i = 0; i < s->npages; i++) {
		uintptr_t p = s->base + i * PAGE_SIZE;
		heap_arena *a = arena_of(p);
		astore_rel(&a->spans[(p >> PAGE_SHIFT) &
		                     (PAGES_PER_ARENA - 1)], (uintptr_t)v);
	}
}

mspan *mheap_alloc_span(uintptr_t npages, spanclass spc, heap_err *err)
{
	heap_arena *a;

	mutex_lock(&mheap_.lock);
	uintptr_t base = pagealloc_find(mheap_.arenas, npages);
	if (base && beyond_commit(base, npages)) {
		/* Committed free pages elsewhere come first. */
		uintptr_t c = pagealloc_find_committed(mheap_.arenas, npages);
		if (c)
			base = c;
	}
	if (!base) {
		*err = mheap_grow(npages);
		if (*err)
			goto fail;
		base = pagealloc_find(mheap_.arenas, npages);
		if (!base)
			fatal("mheap: no room for %zu pages after growing",
			      (size_t)npages);
	}
	*err = commit_range(base, npages);
	if (*err == HEAP_LIMIT) {
		/* First fit chose pages that count against the limit
		 * (released, or past a commit line); free pages still
		 * resident cost nothing. */
		uintptr_t r = pagealloc_find_resident(mheap_.arenas, npages);
		if (r) {
			base = r;
			*err = commit_range(base, npages);
		}
	}
	if (*err)
		goto fail;
	if (options_.poison)
		for_each_piece(base, npages, a, first, n)
			check_poisoned_pages(a, first, n);
	mspan *s = fixalloc_alloc(&mheap_.spanalloc);
	if (!s) {
		*err = HEAP_NOMEM;
		goto fail;
	}
	if (!mspan_init(s, base, npages, spc, &mheap_.meta)) {
		fixalloc_free(&mheap_.spanalloc, s);
		*err = HEAP_NOMEM;
		goto fail;
	}
	set_pages(base, npages, true);
	bool needzero = false;
	for_each_piece(base, npages, a, first, n) {
		needzero |= count_bits(a->dirty, first, n) != 0;
		uintptr_t rel = count_bits(a->released, first, n);
		mheap_.stats.released -= rel * PAGE_SIZE;
		set_bits(a->released, first, n, false);
		set_bits(a->dirty, first, n, true);
	}
	s->needzero = needzero || (options_.poison &&
	                           spanclass_sizeclass(spc));
	s->state = MSPAN_INUSE;
	astore(&s->sweepgen, aload(&mheap_.sweepgen));
	mheap_.stats.inuse_pages += npages;
	if (mheap_.stats.inuse_pages > mheap_.stats.inuse_peak)
		mheap_.stats.inuse_peak = mheap_.stats.inuse_pages;
	mheap_.stats.spans_inuse++;
	mheap_.stats.spans_allocated++;
	mheap_.stats.class_spans[spanclass_sizeclass(spc)]++;
	if (spanclass_sizeclass(spc) == 0) {
		/* All four under the lock, so that a reader's frees
		 * (allocs - objects) never go below 0. */
		mheap_.stats.large_objects++;
		mheap_.stats.large_bytes += s->elemsize;
		afetch_add(&mheap_.stats.large_allocs, 1);
		afetch_add(&mheap_.stats.large_alloc_bytes, s->elemsize);
	}
	publish_span(s, s);
	mutex_unlock(&mheap_.lock);
	return s;
fail:
	mutex_unlock(&mheap_.lock);
	return NULL;
}

void mheap_free_span(mspan *s)
{
	mutex_lock(&mheap_.lock);
	if (s->state != MSPAN_INUSE || s->list || s->specials)
		fatal("mheap_free_span: span %p state %u list %p specials %p",
		      (void *)s, s->state, (void *)s->list,
		      (void *)s->specials);
	/* No object of s is allocated: lookups find none before or while
	 * it is poisoned. They retry around the rest (free_seq). */
	if (options_.poison)
		memset((void *)s->base, POISON_BYTE, s->npages * PAGE_SIZE);
	uintptr_t seq = aload(&mheap_.free_seq);
	astore(&mheap_.free_seq, seq + 1);
	afence_write();
	publish_span(s, NULL);
	set_pages(s->base, s->npages, false);
	mheap_.stats.inuse_pages -= s->npages;
	mheap_.stats.spans_inuse--;
	mheap_.stats.class_spans[spanclass_sizeclass(s->spc)]--;
	if (spanclass_sizeclass(s->spc) == 0) {
		mheap_.stats.large_objects--;
		mheap_.stats.large_bytes -= s->elemsize;
	}
	mspan_release_meta(s, &mheap_.meta);
	s->state = MSPAN_DEAD;
	fixalloc_free(&mheap_.spanalloc, s);
	astore_rel(&mheap_.free_seq, seq + 2);
	mutex_unlock(&mheap_.lock);
}

/* Is the OS page larger than a heap page (16 or 64 KiB kernels)? Then
 * nothing is released (dropping one heap page would take its neighbours
 * with it) and nothing faulted in ahead (a claim may start inside an OS
 * page, which the OS refuses to populate). */
static bool os_pages_too_big(void)
{
	return os_page_size() > PAGE_SIZE;
}

static bool releasable(const heap_arena *a, uintptr_t pg, bool aged)
{
	uintptr_t p = a->base + pg * PAGE_SIZE;

	if (aged && (uint16_t)(aload(&mheap_.scav_epoch) - a->freed_at[pg]) <
	            SCAV_AGE)
		return false;

	/* Dirty, or clean but faulted in ahead (resident all the same);
	 * not being faulted in right now (dropped first, it would be
	 * faulted back in, resident yet counted as released). */
	return !bitmap_get(a->alloc, pg) && !bitmap_get(a->released, pg) &&
	       !bitmap_get(a->pinned, pg) &&
	       (bitmap_get(a->dirty, pg) || pg < a->prefaulted) &&
	       !(p >= mheap_.prefault_lo && p < mheap_.prefault_hi);
}

/* Release pages [p, q) of arena a. When the OS refuses the run (part of
 * it locked: it drops a range one mapping at a time, so pages below the
 * locked ones may already be gone), each page is tried alone: those it
 * drops count as released, those it refuses are pinned (not tried again
 * until reused) and stay dirty, poisoned again in poison mode where a
 * partial drop zeroed part of one. Lock held. Returns the bytes
 * released. */
static size_t release_run(heap_arena *a, uintptr_t p, uintptr_t q)
{
	size_t n = 0;

	if (os_release((void *)(a->base + p * PAGE_SIZE),
	               (q - p) * PAGE_SIZE)) {
		set_bits(a->dirty, p, q - p, false);
		set_bits(a->released, p, q - p, true);
		return (q - p) * PAGE_SIZE;
	}
	for (uintptr_t pg = p; pg < q; pg++) {
		void *page = (void *)(a->base + pg * PAGE_SIZE);
		if (os_release(page, PAGE_SIZE)) {
			set_bits(a->dirty, pg, 1, false);
			set_bits(a->released, pg, 1, true);
			n += PAGE_SIZE;
			continue;
		}
		set_bits(a->pinned, pg, 1, true);
		set_bits(a->dirty, pg, 1, true);
		if (options_.poison)
			memset(page, POISON_BYTE, PAGE_SIZE);
	}
	return n;
}

static size_t release_free(size_t max, bool aged)
{
	size_t total = 0;
	heap_arena *byaddr[64];
	size_t n = 0;

	if (os_pages_too_big())
		return 0;
	mutex_lock(&mheap_.lock);
	/* Walk arenas from the top (the list is by address; past 64
	 * arenas, from the bottom, in one pass: finding the k-th from the
	 * head for each k took seconds with 16,384 arenas). */
	for (heap_arena *a = mheap_.arenas; a; a = a->next)
		n++;
	heap_arena **all = n <= ARRAY_LEN(byaddr) ? byaddr : NULL;
	if (all) {
		size_t i = 0;
		for (heap_arena *a = mheap_.arenas; a; a = a->next)
			all[i++] = a;
	}
	heap_arena *up = mheap_.arenas;
	for (size_t k = 0; k < n && total < max; k++) {
		heap_arena *a = all ? all[n - 1 - k] : up;
		up = a->next;
		/* Runs of committed pages that are free and resident, from
		 * the top of the arena down. */
		uintptr_t q = a->committed;
		while (q > 0 && total < max) {
			if (!releasable(a, q - 1, aged)) {
				q--;
				continue;
			}
			uintptr_t p = q - 1;
			while (p > 0 && releasable(a, p - 1, aged) &&
			       (q - p) * PAGE_SIZE < max - total)
				p--;
			total += release_run(a, p, q);
			q = p;
		}
	}
	if (aged)
		astore(&mheap_.scav_epoch, aload(&mheap_.scav_epoch) + 1);
	mheap_.stats.released += total;
	mheap_.stats.released_ever += total;
	mutex_unlock(&mheap_.lock);
	return total;
}

size_t mheap_release_free(size_t max)
{
	return release_free(max, false);
}

size_t mheap_release_aged(size_t max)
{
	return release_free(max, true);
}

/* ---- Faulting in ahead --------------------------------------------------- */


/* Claim the next piece to fault in (at most COMMIT_PAGES): committed pages
 * past an arena's prefaulted line and not released, lowest arena first
 * (whatever the target: they are the heap's already); else, below the
 * target, released pages, lowest first, then newly committed pages at the
 * first arena's commit line that has room (reserving an arena if none
 * has). False if there is none. */
static bool prefault_claim(size_t target, uintptr_t *base, size_t *len)
{
	heap_stats *st = &mheap_.stats;

	mutex_assert_held(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		/* Released pages are left to the pass below: made resident
		 * here, they would still count as released. */
		while (a->prefaulted < a->committed &&
		       bitmap_get(a->released, a->prefaulted))
			a->prefaulted++;
		if (a->prefaulted >= a->committed)
			continue;
		uintptr_t end = a->prefaulted + 1;
		while (end < a->committed &&
		       end - a->prefaulted < COMMIT_PAGES &&
		       !bitmap_get(a->released, end))
			end++;
		*base = a->base + a->prefaulted * PAGE_SIZE;
		*len = (end - a->prefaulted) * PAGE_SIZE;
		a->prefaulted = end;
		return true;
	}
	size_t step = COMMIT_PAGES * PAGE_SIZE;
	uintptr_t limit = aload(&mheap_.limit);
	if (st->committed - st->released >= target ||
	    (limit && st->committed - st->released + step > limit))
		return false;
	/* Released pages first, lowest first: first-fit allocation takes
	 * them before any above a commit line. Not released any more, they
	 * are as freshly committed ones: free, zero, not dirty. */
	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		for (uintptr_t w = 0; w < ARENA_BITMAP_WORDS; w++) {
			if (!a->released[w])
				continue;
			uintptr_t pg = w * 64 + ctz64(a->released[w]), n = 0;
			while (pg + n < a->committed && n < COMMIT_PAGES &&
			       bitmap_get(a->released, pg + n))
				n++;
			set_bits(a->released, pg, n, false);
			st->released -= n * PAGE_SIZE;
			*base = a->base + pg * PAGE_SIZE;
			*len = n * PAGE_SIZE;
			return true;
		}
	}
	for (int tries = 0; tries < 2; tries++) {
		for (heap_arena *a = mheap_.arenas; a; a = a->next) {
			if (a->committed >= PAGES_PER_ARENA)
				continue;
			uintptr_t from = a->committed;
			uintptr_t top = MIN(from + COMMIT_PAGES,
			                    PAGES_PER_ARENA);
			if (!commit_to(a, top))
				return false;
			a->prefaulted = top;
			*base = a->base + from * PAGE_SIZE;
			*len = (top - from) * PAGE_SIZE;
			return true;
		}
		if (mheap_grow(PAGES_PER_ARENA) != HEAP_OK)
			return false;
	}
	return false;
}

size_t mheap_prefault(size_t target, size_t max)
{
	size_t done = 0;
	uintptr_t base;
	size_t len;

	mutex_lock(&mheap_.lock);
	if (os_pages_too_big())
		mheap_.prefault_off = true;
	while (done < max && !mheap_.prefault_off && !mheap_.prefault_hi &&
	       prefault_claim(target, &base, &len)) {
		mheap_.prefault_lo = base;
		mheap_.prefault_hi = base + len;
		mutex_unlock(&mheap_.lock);
		if (mheap_.prefault_test_hook)
			mheap_.prefault_test_hook();
		/* In pieces: the OS holds the address space's lock (read
		 * side) for a whole populate, and a mutator's mmap (a span's
		 * metadata, a commit) or malloc's brk waits for it; 2 MiB at
		 * once was 512 faults, up to 4 ms on a VM, and the pause
		 * probe's thread waited in mmap that long. And a pause after
		 * each piece: a reader may take the lock from a writer that
		 * is waiting (Linux hands it to the writer only after ~4 ms),
		 * so pieces back to back kept the mutator's commits waiting
		 * 1-1.5 ms each and a brk 8 ms (strace -T on the probe); the
		 * writer woken by the release takes it in the pause. */
		bool ok = true;
		size_t pauses = 0;
		for (size_t off = 0; ok && off < len; off += PREFAULT_PIECE) {
			if (off) {
				sleep_ns(PREFAULT_PAUSE_NS);
				pauses++;
			}
			ok = os_prefault((void *)(base + off),
			                 MIN(PREFAULT_PIECE, len - off));
		}
		mutex_lock(&mheap_.lock);
		mheap_.stats.prefault_pauses += pauses;
		mheap_.prefault_lo = mheap_.prefault_hi = 0;
		if (!ok) {
			mheap_.prefault_off = true;
			break;
		}
		done += len;
	}
	mheap_.stats.prefaulted += done;
	mutex_unlock(&mheap_.lock);
	return done;
}

#define SWEEPING UINTPTR_MAX /* object_in: start again */

/* The object p lies in: s came from spans[] after free_seq read q
 * (even). A sweeper may free s meanwhile, releasing its bitmaps (NULL,
 * then reused) and its struct (reused for another span), so every read
 * of it is a guess until free_seq is seen unchanged: the span's shape is
 * checked before its bitmap is read (so the word read lies inside the
 * bitmap that shape was given; metadata memory is never unmapped), the
 * answer after. SWEEPING asks the caller to start again. Its reads race
 * the free's writes by design: volatile loads ordered by read fences,
 * which ThreadSanitizer does not see. */
NO_SANITIZE_THREAD static uintptr_t object_in(mspan *s, uintptr_t p,
                                              uintptr_t q)
{
	uintptr_t sg = RACY_LOAD(s->sweepgen);
	afence_read();
	unsigned state = RACY_LOAD(s->state);
	uintptr_t base = RACY_LOAD(s->base), limit = RACY_LOAD(s->limit);
	uintptr_t nelems = RACY_LOAD(s->nelems);
	uintptr_t elemsize = RACY_LOAD(s->elemsize);
	uintptr_t divmagic = RACY_LOAD(s->divmagic);
	uintptr_t freeindex = RACY_LOAD(s->freeindex);
	const uint64_t *bits = RACY_LOAD(s->alloc_bits);

	afence_read();
	if (RACY_LOAD(mheap_.free_seq) != q)
		return SWEEPING;
	if (state != MSPAN_INUSE || p < base || p >= limit)
		return 0;
	if (sg == RACY_LOAD(mheap_.sweepgen) - 1)
		return SWEEPING;
	uintptr_t i = (uintptr_t)(((uint64_t)(p - base) * divmagic) >> 32);
	if (i >= nelems)
		return 0;
	bool allocated = i < freeindex ||
	                 (RACY_LOAD(bits[i / 64]) >> (i % 64) & 1);
	afence_read();
	if (RACY_LOAD(mheap_.free_seq) != q || RACY_LOAD(s->sweepgen) != sg)
		return SWEEPING;
	return allocated ? base + i * elemsize : 0;
}

/* Two sequence locks guard the lookup. The span's sweepgen: a sweep
 * holds it at h-1 while it rewrites freeindex and the bitmaps, so a
 * reader waits that out and retries if it changed. mheap_.free_seq: a
 * free of any span makes it odd before it unpublishes the span and
 * releases its bitmaps and struct, and even again after, so a reader
 * that saw it unchanged around its reads read a span that was not
 * freed. (Before free_seq the lookup took mheap_.lock: 5x slower alone,
 * 12x with two threads. Without either, a lookup of a dead object's
 * address while a sweeper freed its span crashed in mspan_is_free.) */
uintptr_t mheap_find_object(uintptr_t p, mspan **sp)
{
	for (;;) {
		uintptr_t q = aload_acq(&mheap_.free_seq);
		if (q & 1) {
			sched_yield();
			continue;
		}
		mspan *s = spanof(p);
		if (!s)
			return 0;
		uintptr_t obj = object_in(s, p, q);
		if (obj == SWEEPING) {
			sched_yield();
			continue;
		}
		if (obj && sp)
			*sp = s;
		return obj;
	}
}

void mheap_each_span(void (*fn)(mspan *s, void *arg), void *arg)
{
	mutex_lock(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		for (uintptr_t pg = 0; pg < PAGES_PER_ARENA; pg++) {
			mspan *s = (mspan *)aload(&a->spans[pg]);
			if (s && s->state == MSPAN_INUSE &&
			    s->base == a->base + pg * PAGE_SIZE)
				fn(s, arg);
		}
	}
	mutex_unlock(&mheap_.lock);
}

typedef struct recount {
	uintptr_t bytes, objs;
	uintptr_t *spans, *classobjs, sg;
} recount;

static void count_allocated(mspan *s, void *arg)
{
	recount *r = arg;
	r->bytes += s->alloc_count * s->elemsize;
	r->objs += s->alloc_count;
}

uintptr_t mheap_recount_allocated(uintptr_t *nobjs)
{
	recount r = {0};

	mheap_each_span(count_allocated, &r);
	if (nobjs)
		*nobjs = r.objs;
	return r.bytes;
}

/* A cached span counts as full: its free slots are the cache's. */
static void count_class(mspan *s, void *arg)
{
	recount *r = arg;
	unsigned sc = spanclass_sizeclass(s->spc);
	uintptr_t g = aload(&s->sweepgen);
	r->spans[sc]++;
	r->classobjs[sc] += g == r->sg + 1 || g == r->sg + 3 ? s->nelems
	                                                     : s->alloc_count;
}

void mheap_recount_classes(uintptr_t *spans, uintptr_t *objs)
{
	recount r = {.spans = spans, .classobjs = objs,
	             .sg = aload(&mheap_.sweepgen)};

	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++)
		spans[c] = objs[c] = 0;
	mheap_each_span(count_class, &r);
}

/* ---- Verification -------------------------------------------------------- */

void mheap_verify_swept(void)
{
	uintptr_t sg = aload(&mheap_.sweepgen);

	mutex_lock(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		for (uintptr_t pg = 0; pg < PAGES_PER_ARENA; pg++) {
			mspan *s = (mspan *)aload(&a->spans[pg]);
			if (!s || s->base != a->base + pg * PAGE_SIZE)
				continue;
			uintptr_t ssg = aload(&s->sweepgen);
			if (ssg == sg || ssg == sg + 3)
				continue;
			fatal("mheap_verify_swept: span %p (class %u%s) has "
			      "sweepgen %zu at mark start, heap %zu", (void *)s,
			      spanclass_sizeclass(s->spc),
			      spanclass_noscan(s->spc) ? " noscan" : "",
			      (size_t)ssg, (size_t)sg);
		}
	}
	mutex_unlock(&mheap_.lock);
}

void mheap_verify(void)
{
	uintptr_t inuse = 0, spans = 0, reserved = 0, committed = 0;
	uintptr_t released = 0;

	mutex_lock(&mheap_.lock);
	for (heap_arena *a = mheap_.arenas; a; a = a->next) {
		if (a->next && a->next->base <= a->base)
			fatal("mheap_verify: arenas out of order");
		if (arena_of(a->base) != a)
			fatal("mheap_verify: arena %p not indexed",
			      (void *)a->base);
		if (a->prefaulted > a->committed)
			fatal("mheap_verify: arena %p faulted in past its "
			      "commit line", (void *)a->base);
		uintptr_t nfree = 0;
		for (uintptr_t pg = 0; pg < PAGES_PER_ARENA; pg++) {
			uintptr_t addr = a->base + pg * PAGE_SIZE;
			mspan *s = (mspan *)aload(&a->spans[pg]);
			bool used = bitmap_get(a->alloc, pg);
			nfree += !used;
			if (used != (s != NULL))
				fatal("mheap_verify: page %p in use %d but "
				      "span %p", (void *)addr, used,
				      (void *)s);
			if (pg >= a->committed &&
			    (used || bitmap_get(a->dirty, pg)))
				fatal("mheap_verify: page %p past the commit "
				      "line is used or dirty", (void *)addr);
			if (bitmap_get(a->released, pg) &&
			    (used || bitmap_get(a->dirty, pg)))
				fatal("mheap_verify: released page %p is "
				      "used or dirty", (void *)addr);
			if (bitmap_get(a->pinned, pg) &&
			    (used || bitmap_get(a->released, pg) ||
			     !bitmap_get(a->dirty, pg)))
				fatal("mheap_verify: pinned page %p is used, "
				      "released or clean", (void *)addr);
			released += bitmap_get(a->released, pg);
			if (!s)
				continue;
			if (addr < s->base ||
			    addr >= s->base + s->npages * PAGE_SIZE)
				fatal("mheap_verify: page %p maps to span %p "
				      "[%p, +%zu pages)", (void *)addr,
				      (void *)s, (void *)s->base,
				      (size_t)s->npages);
			if (addr == s->base) {
				mheap_verify_span(s);
				inuse += s->npages;
				spans++;
			}
		}
		if (nfree != a->free_pages)
			fatal("mheap_verify: arena %p counts %zu free pages, "
			      "has %zu", (void *)a->base,
			      (size_t)a->free_pages, (size_t)nfree);
		for (unsigned c = 0; c < CHUNKS_PER_ARENA; c++) {
			pagesum want = pagealloc_summarize(
				&a->alloc[c * (CHUNK_PAGES / 64)],
				CHUNK_PAGES / 64);
			pagesum got = a->chunk[c];
			if (memcmp(&want, &got, sizeof(want)))
				fatal("mheap_verify: arena %p chunk %u "
				      "summary (%u,%u,%u), bitmap says "
				      "(%u,%u,%u)", (void *)a->base, c,
				      got.start, got.max, got.end,
				      want.start, want.max, want.end);
		}
		pagesum want = pagealloc_summarize(a->alloc,
		                                   ARENA_BITMAP_WORDS);
		if (memcmp(&want, &a->sum, sizeof(want)))
			fatal("mheap_verify: arena %p summary is stale",
			      (void *)a->base);
		reserved += ARENA_BYTES;
		committed += a->committed * PAGE_SIZE;
	}
	const heap_stats *st = &mheap_.stats;
	if (inuse != st->inuse_pages || inuse > st->inuse_peak ||
	    spans != st->spans_inuse ||
	    reserved != st->reserved || committed != st->committed ||
	    released * PAGE_SIZE != st->released)
		fatal("mheap_verify: counters (pages %zu peak %zu spans %zu "
		      "reserved %zu committed %zu released %zu) != recount "
		      "(%zu %zu %zu %zu %zu)", st->inuse_pages,
		      st->inuse_peak, st->spans_inuse,
		      st->reserved, st->committed, st->released,
		      (size_t)inuse, (size_t)spans, (size_t)reserved,
		      (size_t)committed, (size_t)(released * PAGE_SIZE));
	mutex_unlock(&mheap_.lock);
}

void mheap_verify_span(const mspan *s)
{
	mspan_verify(s, aload(&mheap_.sweepgen));
	for (uintptr_t p = 0; p < s->npages; p++)
		if (spanof(s->base + p * PAGE_SIZE) != s)
			fatal("mheap_verify_span: span %p: page %zu not mapped "
			      "to the span", (void *)s, (size_t)p);
}
