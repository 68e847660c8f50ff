/* tests/tools/test_trace.c: the GCHEAP_DEBUG=gctrace=1 line. Every cycle
 * prints exactly one line; each parses with gcstat's reader of the format
 * documented in docs/tools.md, field by field, and agrees with
 * gc_read_stats (cycle numbers, goal, live heap, workers). */
#include "runtime/runtime.h"
#include "tests/testing.h"
#include "tools/gcstat/gcstat.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_trace_lines_parse)
{
	static const size_t ptr0[] = {0};
	char path[] = "/tmp/gcheap-trace-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	setenv("GCHEAP_DEBUG", "gctrace=1", 1);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_type *t = gc_type_new("pair", 2 * sizeof(void *), ptr0, 1,
	                         GCHEAP_TAIL_REPEAT);
	void *slots[1] = {0};
	gc_frame f;
	gc_frame_push(&f, slots, 1);
	/* A growing list, collected a few times, plus garbage. */
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 20000; i++) {
			void **p = gc_alloc(2 * sizeof(void *), t);
			if (i % 4 == 0) {
				gc_write(&p[0], slots[0]);
				slots[0] = p;
			}
		}
		gc_collect();
	}
	gc_stats st;
	gc_read_stats(&st, sizeof(st));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	gc_frame_pop(&f);

	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	unsigned long lines = 0;
	gcs_trace tr, last = {0};
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(gcs_parse_trace_line(l, &tr) == 0,
		              "does not parse: %s", l);
		lines++;
		ck_assert_uint_eq(tr.cycle, lines);
		ck_assert(tr.at >= last.at);
		ck_assert(tr.cpu_pct >= 0 && tr.cpu_pct <= 100);
		for (int i = 0; i < 3; i++)
			ck_assert(tr.clock[i] >= 0);
		for (int i = 0; i < 4; i++)
			ck_assert(tr.cpu[i] >= 0);
		/* The pauses appear in both the clock and CPU columns. */
		ck_assert(tr.clock[0] == tr.cpu[0] &&
		          tr.clock[2] == tr.cpu[3]);
		ck_assert(tr.heap0 >= 0 && tr.heap1 >= 0 && tr.live >= 0);
		ck_assert(tr.goal > 0);
		ck_assert_uint_eq(tr.workers, st.mark_workers);
		last = tr;
	}
	ck_assert_uint_eq(lines, st.gc_cycles);
	ck_assert_uint_ge(lines, 6);
	/* The last line is the last cycle: its goal and live heap are the
	 * stats' (the line prints MB = 10^6 bytes, to 3 decimals). */
	ck_assert_msg(fabs(last.goal - st.heap_goal / 1e6) < 0.0006,
	              "goal %.3f vs %.3f", last.goal, st.heap_goal / 1e6);
	ck_assert_msg(fabs(last.live - st.heap_marked / 1e6) < 0.0006,
	              "live %.3f vs %.3f", last.live, st.heap_marked / 1e6);
	/* The list (5000 pairs a round, 16 bytes each) is live. */
	ck_assert(last.live >= 6 * 5000 * 16 / 1e6);
	ck_assert(last.heap0 >= last.live);
	gc_thread_detach();
}
END_TEST

START_TEST(test_parser_rejects_other_lines)
{
	gcs_trace t;
	ck_assert_int_ne(gcs_parse_trace_line("gcheap: gc 1: 5 KiB", &t), 0);
	ck_assert_int_ne(gcs_parse_trace_line("hello", &t), 0);
	ck_assert_int_eq(gcs_parse_trace_line(
		"gcheap: gc 7 @1.500s 3%: 0.010+1.200+0.020 ms clock, "
		"0.010+0.300/1.000+0.020 ms cpu, 4.000->4.500->2.000 MB, "
		"4.194 MB goal, 1 workers", &t), 0);
	ck_assert_uint_eq(t.cycle, 7);
	ck_assert(t.at == 1.5 && t.clock[1] == 1.2 && t.cpu[2] == 1.0);
	ck_assert(t.heap1 == 4.5 && t.goal == 4.194 && t.workers == 1);
}
END_TEST

static Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("gctrace");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_trace_lines_parse);
	tcase_add_test(tc, test_parser_rejects_other_lines);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(trace_suite());
}
