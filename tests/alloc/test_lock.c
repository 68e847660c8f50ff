/* tests/alloc/test_lock.c: the counted lock (alloc/sys/lock.h). A holder
 * that drops the lock for a counted waiter and calls
 * mutex_let_waiters_in does not take it back before the waiter has had
 * it (a plain unlock and lock takes it straight back: the lock is not
 * fair); with nobody waiting the call returns at once. */
#include "alloc/sys/lock.h"
#include "tests/testing.h"

#include <sched.h>

static gc_mutex lk;
static atomic_word waiting, got;

static void *waiter(void *arg)
{
	(void)arg;
	mutex_lock_counted(&lk, &waiting);
	astore(&got, 1);
	mutex_unlock(&lk);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_let_waiters_in)
{
	mutex_init(&lk);
	for (int round = 0; round < 50; round++) {
		pthread_t t;
		astore(&got, 0);
		mutex_lock(&lk);
		ck_assert_int_eq(pthread_create(&t, NULL, waiter, NULL), 0);
		while (!aload(&waiting)) /* it is waiting, counted */
			sched_yield();
		mutex_unlock(&lk);
		mutex_let_waiters_in(&waiting, 10000000000u);
		mutex_lock(&lk);
		ck_assert_msg(aload(&got), "round %d: the holder took the "
		              "lock back before its waiter had it", round);
		mutex_unlock(&lk);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
	}
	ck_assert_uint_eq(aload(&waiting), 0);
	double t0 = now_s();
	mutex_let_waiters_in(&waiting, 10000000000u);
	ck_assert(now_s() - t0 < 1.0);
	/* An uncontended counted lock never counts itself. */
	mutex_lock_counted(&lk, &waiting);
	ck_assert_uint_eq(aload(&waiting), 0);
	mutex_unlock(&lk);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *su = suite_create("lock");
	TCase *tc = tcase_create("lock");
	tcase_add_test(tc, test_let_waiters_in);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	return test_main(lock_suite());
}
