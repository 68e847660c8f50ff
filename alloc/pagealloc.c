/* alloc/pagealloc.c: the page allocator: per-arena in-use bitmaps with
 * (start, max, end) free-run summaries per 512-page chunk and per arena
 * (see pagealloc.h). The caller (mheap.c) holds mheap_.lock for
 * everything here.
 *
 * Invariant: every summary equals pagealloc_summarize() of its bitmap
 * range (checked by mheap_verify), and arena->free_pages counts the clear
 * bits of its bitmap. */
#include "alloc/pagealloc.h"

/* The longest run of clear bits in x. */
static unsigned longest_clear_run(uint64_t x)
{
	uint64_t f = ~x;
	unsigned best = 0;

	while (f) {
		f >>= ctz64(f);
		unsigned len = ctz64(~f);
		if (len > best)
			best = len;
		if (len >= 64)
			break;
		f >>= len;
	}
	return best;
}

pagesum pagealloc_summarize(const uint64_t *bm, unsigned nwords)
{
	pagesum s = {0, 0, 0};
	uint32_t run = 0;
	bool at_start = true;

	for (unsigned i = 0; i < nwords; i++) {
		uint64_t x = bm[i];
		if (x == 0) {
			run += 64;
			continue;
		}
		unsigned lead = ctz64(x);
		if (at_start) {
			s.start = run + lead;
			at_start = false;
		}
		s.max = MAX(s.max, run + lead);
		s.max = MAX(s.max, longest_clear_run(x));
		run = clz64(x);
	}
	if (at_start)
		s.start = run;
	s.max = MAX(s.max, run);
	s.end = run;
	return s;
}

/* Merge per-piece summaries of `width` pages each into one. */
static pagesum merge(const pagesum *p, unsigned n, uint32_t width)
{
	pagesum s = {0, 0, 0};
	uint32_t run = 0;
	unsigned i;

	for (i = 0; i < n && p[i].start == width; i++)
		s.start += width;
	if (i < n)
		s.start += p[i].start;
	for (i = 0; i < n; i++) {
		s.max = MAX(s.max, MAX(p[i].max, run + p[i].start));
		run = p[i].start == width ? run + width : p[i].end;
	}
	s.max = MAX(s.max, run);
	s.end = run;
	return s;
}

void pagealloc_update(heap_arena *a, unsigned first, unsigned last)
{
	const unsigned wpc = CHUNK_PAGES / 64;

	for (unsigned c = first; c <= last; c++)
		a->chunk[c] = pagealloc_summarize(&a->alloc[c * wpc], wpc);
	a->sum = merge(a->chunk, CHUNKS_PER_ARENA, CHUNK_PAGES);
}

/* Clear bits of x, n in [1, 63]: the lowest start of n clear bits inside
 * the word, or -1. Bit i of m ends up set iff bits i..i+k-1 are clear. */
static int fit_in_word(uint64_t x, unsigned n)
{
	uint64_t m = ~x;
	unsigned k = 1;

	while (k * 2 <= n) {
		m &= m >> k;
		k *= 2;
	}
	if (k < n)
		m &= m >> (n - k);
	return m ? (int)ctz64(m) : -1;
}

/* First run of n clear bits inside words [w0, w1) of bm; page index or
 * -1. */
static long find_in_words(const uint64_t *bm, unsigned w0, unsigned w1,
                          uintptr_t n)
{
	uintptr_t run = 0, start = 0;

	for (unsigned i = w0; i < w1; i++) {
		uint64_t x = bm[i];
		if (x == 0) {
			if (run == 0)
				start = (uintptr_t)i * 64;
			run += 64;
			if (run >= n)
				return (long)start;
			continue;
		}
		unsigned lead = ctz64(x);
		if (run + lead >= n)
			return (long)(run ? start : (uintptr_t)i * 64);
		if (n < 64) {
			int b = fit_in_word(x, (unsigned)n);
			if (b >= 0)
				return (long)i * 64 + b;
		}
		run = clz64(x);
		start = (uintptr_t)i * 64 + 64 - run;
	}
	return -1;
}

/* First fit of n pages inside one arena whose max summary is >= n. */
static uintptr_t arena_find(heap_arena *a, uintptr_t n)
{
	const unsigned wpc = CHUNK_PAGES / 64;
	uintptr_t run = 0, start = 0;

	for (unsigned c = 0; c < CHUNKS_PER_ARENA; c++) {
		const pagesum *s = &a->chunk[c];
		if (run && run + s->start >= n)
			return a->base + start * PAGE_SIZE;
		if (s->max >= n) {
			long b = find_in_words(a->alloc, c * wpc,
			                       (c + 1) * wpc, n);
			if (b < 0)
				fatal("pagealloc: chunk %u of arena %p sums "
				      "max %u but holds no run of %zu", c,
				      (void *)a->base, s->max, (size_t)n);
			return a->base + (uintptr_t)b * PAGE_SIZE;
		}
		if (s->start == CHUNK_PAGES) {
			if (!run)
				start = (uintptr_t)c * CHUNK_PAGES;
			run += CHUNK_PAGES;
		} else {
			run = s->end;
			start = (uintptr_t)(c + 1) * CHUNK_PAGES - s->end;
		}
	}
	if (run >= n)
		return a->base + start * PAGE_SIZE;
	fatal("pagealloc: arena %p sums max %u but holds no run of %zu",
	      (void *)a->base, a->sum.max, (size_t)n);
}

uintptr_t pagealloc_find(heap_arena *arenas, uintptr_t n)
{
	uintptr_t run = 0, start = 0, prev_end = 0;

	for (heap_arena *a = arenas; a; a = a->next) {
		if (a->base != prev_end)
			run = 0;
		/* A run that began in earlier arenas comes first. */
		if (run && run + a->sum.start >= n)
			return start;
		if (a->sum.max >= n)
			return arena_find(a, n);
		if (a->sum.start == PAGES_PER_ARENA) {
			if (!run)
				start = a->base;
			run += PAGES_PER_ARENA;
		} else {
			run = a->sum.end;
			start = a->base + ARENA_BYTES - run * PAGE_SIZE;
		}
		prev_end = a->base + ARENA_BYTES;
	}
	return 0;
}

uintptr_t pagealloc_find_committed(heap_arena *arenas, uintptr_t n)
{
	for (heap_arena *a = arenas; a; a = a->next) {
		if (a->sum.max < n || a->committed < n)
			continue;
		/* The lowest run in a: if it crosses the commit line, every
		 * other one lies higher and does too. */
		uintptr_t b = arena_find(a, n);
		if (b + n * PAGE_SIZE <= a->base + a->committed * PAGE_SIZE)
			return b;
	}
	return 0;
}

uintptr_t pagealloc_find_resident(heap_arena *arenas, uintptr_t n)
{
	for (heap_arena *a = arenas; a; a = a->next) {
		if (a->sum.max < n || a->committed < n)
			continue;
		uintptr_t run = 0;
		for (uintptr_t pg = 0; pg < a->committed; pg++) {
			bool ok = !(a->alloc[pg / 64] >> (pg % 64) & 1) &&
			          !(a->released[pg / 64] >> (pg % 64) & 1);
			run = ok ? run + 1 : 0;
			if (run == n)
				return a->base + (pg + 1 - n) * PAGE_SIZE;
		}
	}
	return 0;
}

/* Set or clear bits [from, from + n) of bm. */
static void bits_set_range(uint64_t *bm, uintptr_t from, uintptr_t n,
                           bool v)
{
	while (n) {
		unsigned sh = from % 64;
		unsigned k = (unsigned)MIN(n, 64 - sh);
		uint64_t m = low_mask(k) << sh;
		if (v)
			bm[from / 64] |= m;
		else
			bm[from / 64] &= ~m;
		from += k;
		n -= k;
	}
}

void pagealloc_set(heap_arena *a, uintptr_t first, uintptr_t n, bool inuse)
{
	if (n == 0 || first >= PAGES_PER_ARENA ||
	    n > PAGES_PER_ARENA - first)
		fatal("pagealloc_set: pages [%zu, +%zu) are not inside arena "
		      "%p", (size_t)first, (size_t)n, (void *)a->base);
	bits_set_range(a->alloc, first, n, inuse);
	if (inuse) {
		bits_set_range(a->pinned, first, n, false);
		a->free_pages -= n;
	} else {
		a->free_pages += n;
	}
	pagealloc_update(a, (unsigned)(first / CHUNK_PAGES),
	                 (unsigned)((first + n - 1) / CHUNK_PAGES));
}
