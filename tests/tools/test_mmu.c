/* tests/tools/test_mmu.c: minimum mutator utilization (bench/mmu.h), as
 * the pause probe reports it. Hand-worked cases (no gaps; one gap in a
 * longer and in a shorter window; two gaps a window can or cannot hold
 * together; a window longer than the run), then random gap lists against
 * a brute-force slide of the window in steps of 1 ns over integer
 * endpoints (where the maximum must lie). */
#include "bench/mmu.h"
#include "tests/testing.h"

#include <math.h>

static double pre[64];

static double ov(const mmu_gap *g, double a, double b)
{
	double s = g->start > a ? g->start : a;
	double e = g->start + g->len < b ? g->start + g->len : b;
	return e > s ? e - s : 0;
}

static double brute(const mmu_gap *g, size_t n, double t0, double t1,
                    double w)
{
	double worst = 0;

	if (t1 - t0 < w)
		w = t1 - t0;
	for (double a = t0; a + w <= t1; a += 1) {
		double s = 0;
		for (size_t i = 0; i < n; i++)
			s += ov(&g[i], a, a + w);
		worst = s > worst ? s : worst;
	}
	return 1 - worst / w;
}

START_TEST(test_mmu_cases)
{
	mmu_gap one[] = {{100, 10}};
	mmu_gap two[] = {{100, 10}, {115, 10}};

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
	mmu_gap edges[] = {{0, 4}, {96, 4}};
	ck_assert(fabs(mmu(edges, 2, pre, 0, 100, 10) - 0.6) < 1e-12);
}
END_TEST

START_TEST(test_mmu_random)
{
	test_rng r = rng_make(7);

	for (int it = 0; it < 4000; it++) {
		mmu_gap g[20];
		size_t n = rng_below(&r, 21);
		double t = (double)rng_below(&r, 20);
		for (size_t i = 0; i < n; i++) {
			t += (double)rng_below(&r, 15);
			g[i].start = t;
			g[i].len = 1 + (double)rng_below(&r, 10);
			t += g[i].len;
		}
		double t1 = t + (double)rng_below(&r, 20);
		double w = 1 + (double)rng_below(&r, 60);
		if (t1 <= 0)
			continue;
		double a = mmu(g, n, pre, 0, t1, w), b = brute(g, n, 0, t1, w);
		if (fabs(a - b) >= 1e-9)
			ck_abort_msg("case %d: mmu %f, brute force %f (%zu "
			             "gaps, window %.0f, run %.0f)", it, a, b,
			             n, w, t1);
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
