/* tests/tools/test_mmu.c: minimum mutator utilization (measure/mmu.h), as
 * the pause probe and gcstat report it. Hand-worked cases (no gaps; one
 * gap in a longer and in a shorter window; two gaps a window can or cannot
 * hold together; a window longer than the run; gaps where the mutator
 * kept a share, as gcstat's assists), then random gap lists, some of them
 * partial and touching, against a brute-force slide of the window in
 * steps of 1 ns over integer endpoints (where the maximum must lie); the
 * worst window mmu_at reports must lose what the brute force's does. */
#include "measure/mmu.h"
#include "tests/testing.h"

#include <math.h>

static double pre[64];

static double ov(const mmu_gap *g, double a, double b)
{
	double s = g->start > a ? g->start : a;
	double e = g->start + g->len < b ? g->start + g->len : b;
	return e > s ? (e - s) * (1 - g->util) : 0;
}

static double lost(const mmu_gap *g, size_t n, double a, double b)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += ov(&g[i], a, b);
	return s;
}

static double brute(const mmu_gap *g, size_t n, double t0, double t1,
                    double w)
{
	double worst = 0;

	if (t1 - t0 < w)
		w = t1 - t0;
	for (double a = t0; a + w <= t1; a += 1) {
		double s = lost(g, n, a, a + w);
		worst = s > worst ? s : worst;
	}
	return 1 - worst / w;
}

START_TEST(test_mmu_cases)
{
	mmu_gap one[] = {{100, 10, 0}};
	mmu_gap two[] = {{100, 10, 0}, {115, 10, 0}};

	ck_assert(mmu(one, 0, pre, 0, 1000, 50) == 1);
	/* A 10 ns gap: a 50 ns window keeps 80%, a 5 ns one nothing. */
	ck_assert(fabs(mmu(one, 1, pre, 0, 1000, 50) - 0.8) < 1e-12);
	ck_assert(mmu(one, 1, pre, 0, 1000, 5) == 0);
	/* Two gaps 5 ns apart: a 25 ns window holds both (20 of 25). */
	ck_assert(fabs(mmu(two, 2, pre, 0, 1000, 25) - 0.2) < 1e-12);
	/* A 12 ns window holds at most 10 ns of them. */
	ck_assert(fabs(mmu(two, 2, pre, 0, 1000, 12) - 2.0 / 12) < 1e-12);
	/* A window longer than the run is the run: 20 of 200. */
	ck_assert(fabs(mmu(two, 2, pre, 0, 200, 1000) - 0.9) < 1e-12);
	/* A gap at the very start and one at the end of the run. */
	mmu_gap edges[] = {{0, 4, 0}, {96, 4, 0}};
	ck_assert(fabs(mmu(edges, 2, pre, 0, 100, 10) - 0.6) < 1e-12);
	/* The mutator kept 75% of a 100 ns gap: any window inside it too. */
	mmu_gap part[] = {{100, 100, 0.75}};
	double at;
	ck_assert(fabs(mmu_at(part, 1, pre, 0, 1000, 50, &at) - 0.75) <
	          1e-12);
	ck_assert(at >= 100 && at <= 150);
	/* Half kept for 100 ns, then a 10 ns pause right after: a 20 ns
	 * window is worst over [90, 110), losing 5 + 10. */
	mmu_gap mark[] = {{0, 100, 0.5}, {100, 10, 0}};
	ck_assert(fabs(mmu_at(mark, 2, pre, 0, 1000, 20, &at) - 0.25) <
	          1e-12);
	ck_assert(at == 90);
	/* Nothing lost: the worst window is the first. */
	ck_assert(mmu_at(mark, 0, pre, 5, 1000, 20, &at) == 1 && at == 5);
}
END_TEST

START_TEST(test_mmu_random)
{
	test_rng r = rng_make(7);

	for (int it = 0; it < 4000; it++) {
		mmu_gap g[20];
		size_t n = rng_below(&r, 21);
		double t = (double)rng_below(&r, 20);
		static const double utils[] = {0, 0, 0.25, 0.5, 1};
		int partial = it % 2;
		for (size_t i = 0; i < n; i++) {
			t += (double)rng_below(&r, 15);
			g[i].start = t;
			g[i].len = 1 + (double)rng_below(&r, 10);
			g[i].util = partial ? utils[rng_below(&r, 5)] : 0;
			t += g[i].len;
		}
		double t1 = t + (double)rng_below(&r, 20);
		double w = 1 + (double)rng_below(&r, 60);
		if (t1 <= 0)
			continue;
		double at, a = mmu_at(g, n, pre, 0, t1, w, &at);
		double b = brute(g, n, 0, t1, w);
		if (fabs(a - b) >= 1e-9)
			ck_abort_msg("case %d: mmu %f, brute force %f (%zu "
			             "gaps, window %.0f, run %.0f)", it, a, b,
			             n, w, t1);
		/* The reported window is one that loses the most. */
		double ww = w < t1 ? w : t1;
		if (at < 0 || at + ww > t1 + 1e-9 ||
		    fabs(1 - lost(g, n, at, at + ww) / ww - a) >= 1e-9)
			ck_abort_msg("case %d: the window at %f is not the "
			             "worst", it, at);
		ck_assert(a == mmu(g, n, pre, 0, t1, w));
	}
}
END_TEST

static Suite *mmu_suite(void)
{
	Suite *s = suite_create("mmu");
	TCase *tc = tcase_create("mmu");
	tcase_add_test(tc, test_mmu_cases);
	tcase_add_test(tc, test_mmu_random);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(mmu_suite());
}
