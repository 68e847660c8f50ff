/* measure/mmu.h: minimum mutator utilization (MMU) from a list of the
 * times the mutator did not run, or ran at a known share: the pause
 * probe's gaps (bench/wl-probe.c) and gcstat's pauses and assists
 * (tools/gcstat/mmu.c). Header only, the C library only, so that bench/
 * and tools/ both include it (tools/check-layering.sh).
 *
 * MMU(w) is the smallest share of any window of w ns that the mutator had
 * (Cheng and Blelloch; Go's trace tool plots it): 1 - the most lost time
 * that fits in one window, over w. Gaps are [start, start + len), sorted
 * and disjoint; in a gap the mutator runs at `util` (0: not at all, as in
 * a pause), so the gap loses len x (1 - util). The lost time in a window
 * changes slope only where a gap starts or ends, and its maximum is where
 * the slope turns from rising to falling: where the window's start meets
 * a rise of the loss (a gap's start) or its end a fall (a gap's end). So
 * 2n windows, each summed with prefix sums and two binary searches.
 * Windows stay inside the run [t0, t1); one longer than the run is the
 * run. */
#ifndef GCHEAP_MEASURE_MMU_H
#define GCHEAP_MEASURE_MMU_H

#include <stddef.h>

typedef struct mmu_gap {
	double start, len; /* ns */
	double util;       /* the mutator's share of the gap: 0 .. 1 */
} mmu_gap;

/* The first gap that ends after a. */
static inline size_t mmu_first_after(const mmu_gap *g, size_t n, double a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (g[m].start + g[m].len > a)
			hi = m;
		else
			lo = m + 1;
	}
	return lo;
}

/* Lost time inside [a, b); pre[i] is the loss of gaps 0..i-1. */
static inline double mmu_window(const mmu_gap *g, const double *pre,
                                size_t n, double a, double b)
{
	size_t i = mmu_first_after(g, n, a), j = i;
	double sum = 0;
	/* the gaps that start before b: binary search on the start */
	size_t lo = i, hi = n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (g[m].start < b)
			lo = m + 1;
		else
			hi = m;
	}
	j = lo; /* gaps i..j-1 overlap [a, b) */
	if (j <= i)
		return 0;
	sum = pre[j] - pre[i];
	if (g[i].start < a)
		sum -= (a - g[i].start) * (1 - g[i].util);
	if (g[j - 1].start + g[j - 1].len > b)
		sum -= (g[j - 1].start + g[j - 1].len - b) *
		       (1 - g[j - 1].util);
	return sum;
}

/* MMU(w) over [t0, t1); *worst (if not NULL) gets the start of a window
 * that has it (t0 when nothing is lost). pre: room for n + 1 doubles. */
static inline double mmu_at(const mmu_gap *g, size_t n, double *pre,
                            double t0, double t1, double w, double *worst)
{
	double most = 0, where = t0;

	if (t1 - t0 < w)
		w = t1 - t0;
	if (worst)
		*worst = t0;
	if (w <= 0)
		return 1;
	pre[0] = 0;
	for (size_t i = 0; i < n; i++)
		pre[i + 1] = pre[i] + g[i].len * (1 - g[i].util);
	for (size_t i = 0; i < n; i++) {
		double a = g[i].start, b = g[i].start + g[i].len;
		if (a + w > t1)
			a = t1 - w;
		if (a < t0)
			a = t0;
		if (b - w < t0)
			b = t0 + w;
		if (b > t1)
			b = t1;
		double s1 = mmu_window(g, pre, n, a, a + w);
		double s2 = mmu_window(g, pre, n, b - w, b);
		if (s1 > most)
			most = s1, where = a;
		if (s2 > most)
			most = s2, where = b - w;
	}
	if (worst)
		*worst = where;
	double u = 1 - most / w;
	return u < 0 ? 0 : u > 1 ? 1 : u;
}

/* MMU(w) over [t0, t1). pre: room for n + 1 doubles. */
static inline double mmu(const mmu_gap *g, size_t n, double *pre, double t0,
                         double t1, double w)
{
	return mmu_at(g, n, pre, t0, t1, w, NULL);
}

#endif
