/* tests/testing.h: what every check-based test shares: the generator of
 * tests/rng.h, seeded from a seed that is printed (replay with
 * GCHEAP_SEED=<n>), and a main() helper that runs a suite with TAP output
 * for meson. Tests reach internals by including the layer headers
 * directly (this is gcheap's export_test.go). */
#ifndef GCHEAP_TESTING_H
#define GCHEAP_TESTING_H

#include "tests/rng.h"

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t test_seed_value;

/* check's assertions record where each one passed (_mark_point), so that a
 * test that crashes later is reported "after this point": in a forked
 * test that is a write to the parent for every passing assertion, a
 * million in some of these tests and most of their time under the
 * sanitizers. An assertion that passes at the place it last passed on the
 * same thread records nothing new: for a test that asserts on one thread
 * the place reported stays exact (with several, check's "last" place
 * was already whichever thread wrote last). */
static inline void test_mark_point(const char *file, int line)
{
	static _Thread_local const char *last_file;
	static _Thread_local int last_line;

	if (line == last_line && file == last_file)
		return;
	last_file = file;
	last_line = line;
	_mark_point(file, line);
}
#define _mark_point(file, line) test_mark_point(file, line)

/* For the body of a hot loop whose assertions alternate between places:
 * it calls into check only when cond fails (evaluating it once). */
#define REQUIRE(cond, ...)                                                 \
	do {                                                               \
		if (!(cond))                                               \
			ck_abort_msg(__VA_ARGS__);                         \
	} while (0)

/* Sanitizer builds run 5-20x slower, and CI runs several test programs
 * at once on two CPUs: what depends on how fast or how evenly threads
 * run is reported there, not judged. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

/* ThreadSanitizer makes every access 5-15x slower. The few tests whose
 * loops take tens of seconds there run TSAN_CUT(n, k), n / k, of their
 * rounds under it: a race is reported the first time its two accesses
 * meet, which the shorter runs still reach many times over; the checked
 * and ASan builds run them all. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif
#define TSAN_CUT(n, k) (UNDER_TSAN ? (n) / (k) : (n))

/* How long a test waits for something that must happen before calling it
 * a failure: long enough that a starved thread is never taken for a
 * broken one (the test's timeout is the backstop for a hang). */
#define TEST_WAIT_S 60.0

/* The monotonic clock, in seconds. */
static inline double test_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The seed for this run: GCHEAP_SEED if set, else from the clock. */
static inline uint64_t test_seed(void)
{
	return test_seed_value;
}

static inline test_rng rng_make(uint64_t salt)
{
	test_rng r = {test_seed_value ^ (salt * 0x9E3779B97F4A7C15ULL)};
	if (r.s == 0)
		r.s = 1;
	return r;
}

static inline int test_main(Suite *s)
{
	const char *env = getenv("GCHEAP_SEED");
	test_seed_value = env ? strtoull(env, NULL, 0)
	                      : (uint64_t)time(NULL) ^ (uint64_t)clock();
	printf("# seed=%" PRIu64 " (replay with GCHEAP_SEED=%" PRIu64 ")\n",
	       test_seed_value, test_seed_value);
	fflush(stdout);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* stderr sent to a fresh unlinked file from stderr_capture_begin to
 * stderr_capture_end, which restores it and reads what was written into
 * buf (n bytes, NUL-terminated; what does not fit is dropped). */
typedef struct stderr_capture {
	int fd, saved;
} stderr_capture;

static inline void stderr_capture_begin(stderr_capture *c)
{
	char path[] = "/tmp/gcheap-test-XXXXXX";

	c->fd = mkstemp(path);
	ck_assert_int_ge(c->fd, 0);
	unlink(path);
	fflush(stderr);
	c->saved = dup(2);
	dup2(c->fd, 2);
}

static inline void stderr_capture_end(stderr_capture *c, char *buf,
                                      size_t n)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	ssize_t got = pread(c->fd, buf, n - 1, 0);
	close(c->fd);
	buf[got > 0 ? got : 0] = 0;
}

#endif
