/* tests/tools/test_trace.c: the GCHEAP_DEBUG=gctrace=1 line. Every cycle
 * prints exactly one line; each parses with gcstat's reader of the format
 * documented in docs/tools.md, field by field, and agrees with
 * gc_read_stats (cycle numbers, goal, live heap, workers); its pauses
 * field places each pause in order, inside the cycle, and they add up to
 * the clock's pauses. A line from before the pauses field still parses,
 * and a malformed pauses field does not. */
#include "runtime/runtime.h"
#include "tests/testing.h"
#include "tools/gcstat/gcstat.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

/* Lines (newlines) in the file open as fd. */
static unsigned long lines_in(int fd)
{
	static char buf[1 << 16];
	unsigned long n = 0;
	ssize_t r;

	for (off_t at = 0; (r = pread(fd, buf, sizeof(buf), at)) > 0;
	     at += r)
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	return n;
}

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
	/* The worker that ends a cycle writes its line after it releases
	 * the world (gc/mgc.c, mark_done: start_world, then trace_cycle);
	 * gc_collect returns only once its cycle's end is recorded
	 * (mgc_.traced), so the last line is in the file now. */
	fflush(stderr);
	unsigned long written = lines_in(fd);
	dup2(saved, 2);
	close(saved);
	gc_frame_pop(&f);
	ck_assert_msg(written == st.gc_cycles, "%lu trace lines for %llu "
	              "cycles when gc_collect returned", written,
	              (unsigned long long)st.gc_cycles);

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
		/* Concurrent cycles: pause 1, then the mark-termination
		 * stops; after the last cycle's pauses, before its end. */
		ck_assert_uint_ge(tr.npauses, 2);
		double sum = 0, prev = lines > 1 ?
			last.pause_at[last.npauses - 1] : 0;
		for (unsigned i = 0; i < tr.npauses; i++) {
			ck_assert_msg(tr.pause_at[i] + 0.002 >= prev,
			              "pause %u out of order: %s", i, l);
			prev = tr.pause_at[i] + tr.pause_len[i];
			sum += tr.pause_len[i];
		}
		ck_assert_msg(prev <= tr.at * 1e3 + 0.5, "%s", l);
		ck_assert_msg(fabs(tr.pause_len[0] - tr.clock[0]) < 0.0015 &&
		              fabs(sum - tr.clock[0] - tr.clock[2]) <
		              0.001 * tr.npauses, "%s", l);
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
	ck_assert_uint_eq(t.npauses, 0); /* a line from before the field */
	static const char *pauses =
		"gcheap: gc 7 @1.500s 3%: 0.010+1.200+0.020 ms clock, "
		"0.010+0.300/1.000+0.020 ms cpu, 4.000->4.500->2.000 MB, "
		"4.194 MB goal, 1 workers, 0.003 ms ttsp (thread 12), "
		"pauses %s ms";
	char line[512];
	snprintf(line, sizeof(line), pauses, "1498.270+0.010 1499.480+0.020");
	ck_assert_int_eq(gcs_parse_trace_line(line, &t), 0);
	ck_assert_uint_eq(t.npauses, 2);
	ck_assert(t.pause_at[0] == 1498.27 && t.pause_len[0] == 0.01 &&
	          t.pause_at[1] == 1499.48 && t.pause_len[1] == 0.02);
	static const char *bad[] = {"", "1.0", "1.0+", "x+1", "1.0+-2",
	                            "1.0+nan", "1.0+0.1,2.0+0.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), pauses, bad[i]);
		ck_assert_msg(gcs_parse_trace_line(line, &t) != 0,
		              "accepted: %s", line);
	}
	/* At most GCS_TRACE_PAUSES. */
	char many[GCS_TRACE_PAUSES * 12 + 16] = "";
	for (int i = 0; i <= GCS_TRACE_PAUSES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		         "%s%d.0+0.1", i ? " " : "", i);
	snprintf(line, sizeof(line), pauses, many);
	ck_assert_int_ne(gcs_parse_trace_line(line, &t), 0);
}
END_TEST

/* Numbers no run gives: an infinite time or heap (or one whose 1.1x
 * margin overflows) spun plot trace's axis loops for ever, writing an
 * endless SVG, and an infinite time plot mmu's; NaN passed as a
 * duration reached a cast to an integer (undefined). */
START_TEST(test_parser_rejects_impossible_numbers)
{
	static const char *fmt =
		"gcheap: gc 7 @%ss 3%%: 0.010+1.200+0.020 ms clock, "
		"0.010+0.300/1.000+0.020 ms cpu, %s->4.500->2.000 MB, "
		"4.194 MB goal, 1 workers";
	static const char *bad[][2] = {
		{"inf", "4.000"}, {"nan", "4.000"}, {"-1", "4.000"},
		{"1.5", "inf"}, {"1.5", "1e308"}, {"1.5", "nan"},
		{"1e300", "4.000"},
	};
	char line[512];
	gcs_trace t;
	uint64_t ns;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), fmt, bad[i][0], bad[i][1]);
		ck_assert_msg(gcs_parse_trace_line(line, &t) != 0,
		              "accepted: %s", line);
	}
	snprintf(line, sizeof(line), fmt, "1.5", "4.000");
	ck_assert_int_eq(gcs_parse_trace_line(line, &t), 0);
	ck_assert(!gcs_parse_duration("nan", &ns));
	ck_assert(!gcs_parse_duration("nanms", &ns));
	ck_assert(!gcs_parse_duration("inf", &ns));
	ck_assert(gcs_parse_duration("10ms", &ns) && ns == 10000000);
}
END_TEST

static Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("gctrace");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_trace_lines_parse);
	tcase_add_test(tc, test_parser_rejects_impossible_numbers);
	tcase_add_test(tc, test_parser_rejects_other_lines);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(trace_suite());
}
