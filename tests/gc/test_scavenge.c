/* tests/gc/test_scavenge.c: the scavenger (gc/mgc.c scavenge), what it
 * keeps and what it gives back. A program whose pages in use rise well
 * above its goal between marks (large objects allocated and dropped
 * before the next mark: here BIG_OBJS of BIG_OBJ bytes, with automatic
 * collection off and a cycle run by hand each round) keeps those pages
 * resident: after warm-up no round releases anything, and what the heap
 * holds (committed minus released) stays above the peak in use
 * (test_keeps_peak). Once the peak really falls, the memory goes back
 * within DROP_CYCLES cycles (test_returns_after_peak), and at once to
 * about a memory limit lowered below it (test_lowered_limit). Each round
 * runs a cycle without sweeping (as an automatic one) and waits for the
 * background sweeper's sweep and scavenge after it (mgc_.scavenges). */
#include "test_harness.c"

#include "format/export.h"

#include <dirent.h>
#include <unistd.h>

#define BIG_OBJS 12
#define BIG_OBJ (4 * MiB)
#define WARMUP 2
#define ROUNDS TSAN_CUT(8, 2)
#define DROP_CYCLES 16

static void *slots[BIG_OBJS];

static void start(void)
{
	sys_fatal_exit_code = 70;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_disable();
	gc_set_conservative_stacks(0);
	ck_assert_int_eq(gc_add_roots(slots, BIG_OBJS), GCHEAP_OK);
}

typedef struct heap_now {
	size_t held;     /* committed - released */
	size_t rel_ever; /* bytes ever released */
	size_t inuse;
} heap_now;

static heap_now heap_read(void)
{
	heap_now h;

	mutex_lock(&mheap_.lock);
	h.held = mheap_.stats.committed - mheap_.stats.released;
	h.rel_ever = mheap_.stats.released_ever;
	h.inuse = mheap_.stats.inuse_pages * PAGE_SIZE;
	mutex_unlock(&mheap_.lock);
	return h;
}

/* A full cycle, then the background sweeper's sweep and scavenge after
 * it (as after an automatic cycle: gc_collect sweeps for itself, and the
 * sweeper then finds nothing to do). */
static void cycle(void)
{
	uintptr_t n = aload(&mgc_.scavenges);

	mgc_run_cycle(false);
	runtime_safepoint(thread_current);
	gc_blocking_begin();
	while (aload(&mgc_.scavenges) == n)
		sleep_us(200);
	gc_blocking_end();
}

/* BIG_OBJS large objects, touched, then dropped; the in-use pages just
 * before they are dropped. */
static size_t big_phase(uint64_t key)
{
	for (size_t i = 0; i < BIG_OBJS; i++)
		slots[i] = new_payload(BIG_OBJ, key + i);
	size_t peak = heap_read().inuse;
	for (size_t i = 0; i < BIG_OBJS; i++) {
		REQUIRE(check_payload(slots[i], BIG_OBJ, key + i), "%zu", i);
		slots[i] = NULL;
	}
	return peak;
}

START_TEST(test_keeps_peak)
{
	start();
	size_t rel0 = 0, peak = 0;
	for (int r = 0; r < WARMUP + ROUNDS; r++) {
		if (r == WARMUP)
			rel0 = heap_read().rel_ever;
		size_t p = big_phase((uint64_t)r * 100);
		peak = MAX(peak, p);
		cycle();
		heap_now h = heap_read();
		printf("# round %d: held %.1f MiB, in use %.1f MiB, released "
		       "ever %.1f MiB, goal %.1f MiB\n", r,
		       h.held / (double)MiB, h.inuse / (double)MiB,
		       h.rel_ever / (double)MiB,
		       aload(&mgc_.goal) / (double)MiB);
		fflush(stdout);
		ck_assert_uint_ge(h.held, peak);
	}
	/* Without the peak (the goal alone, ~4 MiB here) every round gave
	 * back ~40 MiB that the next one faulted in again. */
	size_t rel = heap_read().rel_ever - rel0;
	ck_assert_msg(rel == 0, "%.1f MiB released over %d rounds whose "
	              "peak was %.1f MiB", rel / (double)MiB, ROUNDS,
	              peak / (double)MiB);
}
END_TEST

START_TEST(test_returns_after_peak)
{
	start();
	size_t peak = 0;
	for (int r = 0; r < 4; r++) {
		size_t p = big_phase((uint64_t)r * 100);
		peak = MAX(peak, p);
		cycle();
	}
	heap_now h0 = heap_read();
	ck_assert_uint_ge(h0.held, peak);
	/* The big phase is over: only cycles now. */
	int k;
	heap_now h = h0;
	for (k = 1; k <= DROP_CYCLES; k++) {
		cycle();
		h = heap_read();
		if (h.held <= 16 * MiB)
			break;
	}
	printf("# peak %.1f MiB; held %.1f -> %.1f MiB after %d cycles "
	       "(in use %.1f MiB)\n", peak / (double)MiB, h0.held / (double)MiB,
	       h.held / (double)MiB, k, h.inuse / (double)MiB);
	fflush(stdout);
	ck_assert_msg(h.held <= 16 * MiB, "still %.1f MiB held %d cycles "
	              "after a %.1f MiB peak", h.held / (double)MiB,
	              DROP_CYCLES, peak / (double)MiB);
	/* Not all at once either: the decay keeps some for a few cycles. */
	ck_assert_int_gt(k, 2);
}
END_TEST

/* A memory limit lowered below what the heap holds: the peak counts for
 * no more than 95% of the limit, so the next scavenge brings the heap
 * down to about the limit (to 10% plus 4 MiB over 95% of it) instead of
 * keeping the old peak for cycles. */
START_TEST(test_lowered_limit)
{
	start();
	size_t p = big_phase(7);
	cycle();
	ck_assert_uint_ge(heap_read().held, p);
	const size_t limit = 24 * MiB;
	gc_set_memory_limit(limit);
	cycle();
	heap_now h = heap_read();
	size_t cap = limit / 20 * 19;
	printf("# peak %.1f MiB, limit %.1f MiB: held %.1f MiB\n",
	       p / (double)MiB, limit / (double)MiB, h.held / (double)MiB);
	fflush(stdout);
	ck_assert_uint_le(h.held, cap + cap / 10 + 4 * MiB);
	/* Allocation within the limit still works. */
	slots[0] = new_payload(16 * MiB, 1);
	ck_assert(check_payload(slots[0], 16 * MiB, 1));
}
END_TEST

/* A program that drops its data and goes idle has no allocation left to
 * start the cycle that would free it: the sweeper runs one once the heap
 * has gone options_.forcegc_ms without a cycle (Go's forcegcperiod, two
 * minutes by default; IDLE_MS here), and the scavenge after it gives the
 * memory back at once, past peaks forgotten: after the first such cycle
 * (or a second, if the machine held the test's thread up), where the
 * peak's eighth-a-cycle decay would take six. So in the stoptheworld
 * mode, and in generational mode, where the cycle must be a major one
 * (a minor mark keeps the old data). Before, the heap kept its peak
 * resident for as long as the program idled. With the period 0, with
 * collection disabled or with GOGC off nothing happens, and the sweeper
 * does not spin meanwhile. */
#define IDLE_MS 400

enum idle_mode { IDLE_ON, IDLE_STW, IDLE_GEN, IDLE_OFF, IDLE_DISABLED,
                 IDLE_GOGC_OFF };

/* CPU seconds of the library's thread named `name` (0 if none). */
static double thread_cpu_s(const char *name)
{
	char path[300], buf[512];
	double s = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat",
		         e->d_name);
		char *state = proc_stat_state(path, buf, sizeof buf);
		char *l = strchr(buf, '(');
		/* the name: between "(" and the ") " before the state */
		if (!state || !l || (size_t)(state - 2 - l - 1) !=
		    strlen(name) || strncmp(l + 1, name, strlen(name)))
			continue;
		unsigned long ut = 0, st = 0;
		/* the state, then fields 4..13, utime 14, stime 15 */
		if (sscanf(state, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		           "%*u %lu %lu", &ut, &st) == 2)
			s += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	closedir(d);
	return s;
}

static void idle_phase(enum idle_mode m)
{
	bool on = m == IDLE_ON || m == IDLE_STW || m == IDLE_GEN;

	start();
	astore(&options_.forcegc_ms, m == IDLE_OFF ? 0 : IDLE_MS);
	if (m == IDLE_STW)
		options_.stoptheworld = true;
	if (m == IDLE_GEN)
		gc_set_generational(1);
	for (size_t i = 0; i < BIG_OBJS; i++)
		slots[i] = new_payload(BIG_OBJ, i);
	cycle();
	cycle(); /* generational: the data is old now */
	size_t peak = heap_read().held;
	if (m != IDLE_DISABLED)
		gc_enable();
	if (m == IDLE_GOGC_OFF)
		gc_set_percent(-1);
	for (size_t i = 0; i < BIG_OBJS; i++) {
		REQUIRE(check_payload(slots[i], BIG_OBJ, i), "%zu", i);
		slots[i] = NULL;
	}
	uintptr_t n0 = aload(&mgc_.idle_cycles);
	double cpu0 = thread_cpu_s("gcheap-sweep");
	heap_now h = heap_read();
	gc_blocking_begin();
	for (double end = test_now_s() + (on ? TEST_WAIT_S :
	                                  4.0 * IDLE_MS / 1000);
	     test_now_s() < end && (h = heap_read()).held > peak / 2;)
		sleep_us(10000);
	gc_blocking_end();
	uintptr_t n = aload(&mgc_.idle_cycles) - n0;
	double cpu = thread_cpu_s("gcheap-sweep") - cpu0;
	printf("# mode %d: held %.1f MiB at the peak, %.1f MiB idle; %zu "
	       "idle cycles; the sweeper's CPU %.3f s\n", (int)m,
	       peak / (double)MiB, h.held / (double)MiB, (size_t)n, cpu);
	fflush(stdout);
	if (on) {
		ck_assert_msg(h.held <= peak / 2, "%.1f MiB still held of "
		              "%.1f after %zu idle cycles",
		              h.held / (double)MiB, peak / (double)MiB,
		              (size_t)n);
		ck_assert_uint_ge(n, 1);
		ck_assert_msg(n <= 2, "%zu idle cycles to give it back",
		              (size_t)n);
	} else {
		ck_assert_uint_eq(n, 0);
		ck_assert_uint_ge(h.held, (size_t)BIG_OBJS * BIG_OBJ);
		/* Past the period, the sweeper waits again (a period
		 * more), it does not spin on a heap it may not collect. */
		ck_assert_msg(cpu < 0.5, "the sweeper took %.2f s of CPU "
		              "idling", cpu);
	}
}

START_TEST(test_idle_cycle_returns_memory)
{
	idle_phase(IDLE_ON);
}
END_TEST

START_TEST(test_idle_cycle_stoptheworld)
{
	idle_phase(IDLE_STW);
}
END_TEST

START_TEST(test_idle_cycle_generational)
{
	idle_phase(IDLE_GEN);
}
END_TEST

START_TEST(test_idle_cycle_off)
{
	idle_phase(IDLE_OFF);
}
END_TEST

START_TEST(test_idle_cycle_not_while_disabled)
{
	idle_phase(IDLE_DISABLED);
}
END_TEST

START_TEST(test_idle_cycle_not_with_gogc_off)
{
	idle_phase(IDLE_GOGC_OFF);
}
END_TEST

static Suite *scavenge_suite(void)
{
	Suite *s = suite_create("scavenge");
	TCase *tc = tcase_create("scavenge");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_keeps_peak);
	tcase_add_test(tc, test_returns_after_peak);
	tcase_add_test(tc, test_lowered_limit);
	tcase_add_test(tc, test_idle_cycle_returns_memory);
	tcase_add_test(tc, test_idle_cycle_stoptheworld);
	tcase_add_test(tc, test_idle_cycle_generational);
	tcase_add_test(tc, test_idle_cycle_off);
	tcase_add_test(tc, test_idle_cycle_not_while_disabled);
	tcase_add_test(tc, test_idle_cycle_not_with_gogc_off);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(scavenge_suite());
}
