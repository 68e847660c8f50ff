/* tools/gcstat/mmu.c: `gcstat mmu FILE` and `gcstat plot mmu FILE`, the
 * minimum mutator utilization of a run (measure/mmu.h computes it) from
 * its GCHEAP_DEBUG=gctrace=1 lines (docs/tools.md).
 *
 * What counts as lost, in one mutator's time:
 *   - every pause, whole: each line's "pauses S+L ..." field places them
 *     (a stopped world stops every mutator);
 *   - each cycle's assist CPU time (the D of "A+D/E+C ms cpu"), which has
 *     no timestamps: spread evenly over the cycle's concurrent mark, from
 *     the end of its first pause to the start of its last, less the
 *     pauses in between, as if one mutator did all of it. Over that time
 *     the mutator runs at 1 - assist / mark (never below 0).
 * The run is [0, the last cycle's end): 0 is the heap's start; the end is
 * the last line's @T, or its last pause's end if that is later (@T is to
 * the millisecond). Time after the last cycle is not in the file. */
#include "measure/mmu.h"
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WINDOWS 16

typedef struct mmu_run {
	mmu_gap *gaps; /* ns, sorted, disjoint */
	size_t n, cap;
	double *pre;   /* mmu_at's scratch: n + 1 */
	double end;    /* ns */
	unsigned long cycles;
	size_t npauses;
	double pause_total, pause_max, pause_max_at; /* ns */
	unsigned long pause_max_cycle;
	double assist, mark; /* ns: assist CPU, the mark it was spread over */
} mmu_run;

static void run_free(mmu_run *r)
{
	free(r->gaps);
	free(r->pre);
}

/* Append [start, start + len) at util; false on no memory. Rounding to
 * the microsecond may overlap the gap before by a hair: trimmed. */
static bool add_gap(mmu_run *r, double start, double len, double util)
{
	if (r->n) {
		double prev = r->gaps[r->n - 1].start + r->gaps[r->n - 1].len;
		if (start < prev) {
			len -= prev - start;
			start = prev;
		}
	}
	if (len <= 0)
		return true;
	if (r->n == r->cap) {
		size_t c = r->cap ? 2 * r->cap : 256;
		mmu_gap *g = realloc(r->gaps, c * sizeof(*g));
		if (!g)
			return false;
		r->gaps = g;
		r->cap = c;
	}
	r->gaps[r->n++] = (mmu_gap){start, len, util};
	return true;
}

/* One cycle's pauses, and its assists over its concurrent mark. */
static bool add_cycle(mmu_run *r, const gcs_trace *t)
{
	unsigned np = t->npauses;
	double mark = 0, assist = t->cpu[1] * 1e6, util = 1;

	for (unsigned i = 1; i < np; i++)
		mark += (t->pause_at[i] - t->pause_at[i - 1] -
		         t->pause_len[i - 1]) * 1e6;
	if (mark > 0 && assist > 0) {
		util = 1 - assist / mark;
		util = util < 0 ? 0 : util;
		r->assist += assist;
		r->mark += mark;
	}
	for (unsigned i = 0; i < np; i++) {
		double at = t->pause_at[i] * 1e6, len = t->pause_len[i] * 1e6;
		if (i && util < 1) {
			double from = (t->pause_at[i - 1] +
			               t->pause_len[i - 1]) * 1e6;
			if (!add_gap(r, from, at - from, util))
				return false;
		}
		if (!add_gap(r, at, len, 0))
			return false;
		r->npauses++;
		r->pause_total += len;
		if (len > r->pause_max) {
			r->pause_max = len;
			r->pause_max_at = at;
			r->pause_max_cycle = t->cycle;
		}
		r->end = fmax(r->end, at + len);
	}
	r->end = fmax(r->end, t->at * 1e9);
	r->cycles++;
	return true;
}

/* The line's pauses follow each other and the last line's (which ended
 * at `last`), to the microsecond the line is rounded to. */
static bool in_order(const gcs_trace *t, double last)
{
	for (unsigned i = 0; i < t->npauses; i++) {
		if (t->pause_at[i] + 0.002 < last)
			return false;
		last = t->pause_at[i] + t->pause_len[i];
	}
	return true;
}

/* Read a run's trace lines (other lines are skipped); 0, or 1 after
 * printing the error. */
static int read_run(const char *in, mmu_run *r)
{
	FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
	char line[1024];
	size_t lineno = 0;
	double last = 0;
	int rc = 0;

	*r = (mmu_run){0};
	if (!f)
		return gcs_error("%s: %s", in, strerror(errno));
	while (!rc && fgets(line, sizeof(line), f)) {
		gcs_trace t;
		lineno++;
		if (!strstr(line, "gcheap: gc "))
			continue;
		if (gcs_parse_trace_line(line, &t))
			rc = gcs_error("%s:%zu: not a gctrace line gcstat can "
			               "read", in, lineno);
		else if (!t.npauses)
			rc = gcs_error("%s:%zu: gc %lu has no pauses field (a "
			               "trace from an older gcheap: run the "
			               "program again)", in, lineno, t.cycle);
		else if (!in_order(&t, last))
			rc = gcs_error("%s:%zu: gc %lu: a pause starts before "
			               "the one before it ended (two runs in "
			               "one file?)", in, lineno, t.cycle);
		else if (!add_cycle(r, &t))
			rc = gcs_error("out of memory");
		else
			last = t.pause_at[t.npauses - 1] +
			       t.pause_len[t.npauses - 1];
	}
	if (f != stdin)
		fclose(f);
	if (!rc && !r->cycles)
		rc = gcs_error("%s: no gctrace lines (run the program with "
		               "GCHEAP_DEBUG=gctrace=1 and keep its stderr)",
		               in);
	if (!rc && !(r->pre = malloc((r->n + 1) * sizeof(double))))
		rc = gcs_error("out of memory");
	if (rc)
		run_free(r);
	return rc;
}

/* ---- gcstat mmu ---------------------------------------------------------- */

static const char mmu_usage[] =
	"usage: gcstat [--json] mmu [-w 1ms,10ms,100ms] FILE\n";

static int bad_usage(const char *why, const char *arg)
{
	fprintf(stderr, "%s: mmu: %s%s\n", gcstat_prog, why, arg);
	fputs(mmu_usage, stderr);
	return 2;
}

/* "1ms,10ms": up to MAX_WINDOWS durations over 0; the count, or 0. */
static size_t parse_windows(const char *s, double *w)
{
	char one[64];
	size_t n = 0;

	for (;;) {
		size_t len = strcspn(s, ",");
		uint64_t ns;
		if (n == MAX_WINDOWS || len >= sizeof(one))
			return 0;
		memcpy(one, s, len);
		one[len] = 0;
		if (!gcs_parse_duration(one, &ns))
			return 0;
		w[n++] = (double)ns;
		if (!s[len])
			return n;
		s += len + 1;
	}
}

/* "1 ms", "250 us": a window as given. */
static const char *window_name(char *buf, size_t n, double ns)
{
	if (ns >= 1e9)
		snprintf(buf, n, "%g s", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, n, "%g ms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, n, "%g us", ns / 1e3);
	else
		snprintf(buf, n, "%g ns", ns);
	return buf;
}

static void print_text(const char *in, mmu_run *r, const double *w,
                       size_t nw)
{
	char a[32], b[32];

	printf("%s: %lu cycles, a run of %.3f ms (from the heap's start to "
	       "the end of the last cycle)\n", in, r->cycles, r->end / 1e6);
	printf("pauses: %zu, %.3f ms in all, longest %.3f ms (gc %lu, at "
	       "%.3f ms)\n", r->npauses, r->pause_total / 1e6,
	       r->pause_max / 1e6, r->pause_max_cycle, r->pause_max_at / 1e6);
	printf("assists: %.3f ms of CPU, spread over %.3f ms of concurrent "
	       "mark\n", r->assist / 1e6, r->mark / 1e6);
	printf("%10s %8s  %s\n", "window", "MMU", "worst window");
	for (size_t i = 0; i < nw; i++) {
		double at, u = mmu_at(r->gaps, r->n, r->pre, 0, r->end, w[i],
		                      &at);
		double len = fmin(w[i], r->end);
		snprintf(b, sizeof(b), "%.2f%%", 100 * u);
		printf("%10s %8s  %.3f .. %.3f ms%s\n",
		       window_name(a, sizeof(a), w[i]), b, at / 1e6,
		       (at + len) / 1e6, w[i] > r->end ? " (the run)" : "");
	}
}

static void print_json(const char *in, mmu_run *r, const double *w,
                       size_t nw)
{
	printf("{\"file\": ");
	gcs_json_str(stdout, in, strlen(in));
	printf(", \"cycles\": %lu, \"run_ns\": %.0f, \"pauses\": %zu, "
	       "\"pause_total_ns\": %.0f, \"pause_max_ns\": %.0f, "
	       "\"pause_max_at_ns\": %.0f, \"pause_max_cycle\": %lu, "
	       "\"assist_ns\": %.0f, \"mark_ns\": %.0f, \"mmu\": [",
	       r->cycles, r->end, r->npauses, r->pause_total, r->pause_max,
	       r->pause_max_at, r->pause_max_cycle, r->assist, r->mark);
	for (size_t i = 0; i < nw; i++) {
		double at, u = mmu_at(r->gaps, r->n, r->pre, 0, r->end, w[i],
		                      &at);
		printf("%s{\"window_ns\": %.0f, \"mmu\": %.6f, "
		       "\"worst_at_ns\": %.0f}", i ? ", " : "", w[i], u, at);
	}
	printf("]}\n");
}

int gcs_cmd_mmu(int argc, char **argv, bool json)
{
	double w[MAX_WINDOWS] = {1e6, 1e7, 1e8};
	size_t nw = 3;
	const char *in = NULL;
	mmu_run r;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(mmu_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "-w") && i + 1 < argc) {
			if (!(nw = parse_windows(argv[++i], w)))
				return bad_usage("bad window list (durations "
				                 "over 0, e.g. 1ms,10ms): ",
				                 argv[i]);
		} else if (argv[i][0] == '-' && argv[i][1])
			return bad_usage("unknown option ", argv[i]);
		else if (!in)
			in = argv[i];
		else
			return bad_usage("unexpected argument ", argv[i]);
	}
	if (!in)
		return bad_usage("no trace file", "");
	if (read_run(in, &r))
		return 1;
	if (json)
		print_json(in, &r, w, nw);
	else
		print_text(in, &r, w, nw);
	run_free(&r);
	return fflush(stdout) ? gcs_error("write error") : 0;
}

/* ---- gcstat plot mmu ----------------------------------------------------- */

#define W 760
#define H 420
#define ML 70
#define MR 30
#define MT 60
#define MB 50
#define POINTS 120

int gcs_plot_mmu(const char *in, const char *out)
{
	mmu_run r;

	if (read_run(in, &r))
		return 1;
	/* Windows from 100 us (less for a short run) to the run. */
	double hi = r.end, lo = fmin(1e5, hi / 100);
	if (hi <= lo) {
		run_free(&r);
		return gcs_error("%s: the run is too short to plot", in);
	}
	FILE *f = gcs_open_out(out);
	if (!f) {
		run_free(&r);
		return 1;
	}
	double l0 = log10(lo), l1 = log10(hi);
	double xs = (W - ML - MR) / (l1 - l0), ys = (H - MT - MB) / 1.0;
	char title[256];
	snprintf(title, sizeof(title), "gcheap minimum mutator utilization: "
	         "%lu cycles from %s", r.cycles, in);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	        "<text x=\"%d\" y=\"24\" font-size=\"15\">", W, H, ML);
	gcs_svg_text(f, title);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"44\" fill=\"#555\">pauses "
	        "stop the mutator; assists are spread over the concurrent "
	        "mark (docs/tools.md)</text>\n", ML);
	for (int p = 0; p <= 100; p += 20) {
		double py = H - MB - p / 100.0 * ys;
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
		        "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
		        "text-anchor=\"end\">%d%%</text>\n", ML, W - MR, py, py,
		        ML - 6, py + 4, p);
	}
	for (double d = ceil(l0); d <= l1 + 1e-9; d++) {
		double px = ML + (d - l0) * xs;
		char b[32];
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
		        "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%d\" "
		        "text-anchor=\"middle\">%s</text>\n", px, px, MT,
		        H - MB, px, H - MB + 18,
		        window_name(b, sizeof(b), pow(10, d)));
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
	        "fill=\"none\" stroke=\"#888\"/>\n<text x=\"%d\" y=\"%d\" "
	        "text-anchor=\"middle\">window (log scale)</text>\n", ML, MT,
	        W - ML - MR, H - MT - MB, (W + ML - MR) / 2, H - 8);
	fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" "
	        "stroke-width=\"2\" points=\"");
	for (int i = 0; i <= POINTS; i++) {
		double lw = l0 + (l1 - l0) * i / POINTS;
		double u = mmu(r.gaps, r.n, r.pre, 0, r.end, pow(10, lw));
		fprintf(f, "%.1f,%.1f ", ML + (lw - l0) * xs,
		        H - MB - u * ys);
	}
	fprintf(f, "\"><title>MMU</title></polyline>\n");
	/* The windows `gcstat mmu` prints, as dots with their values. */
	for (double w = 1e6; w <= 1e8; w *= 10) {
		if (w < lo || w > hi)
			continue;
		double at, u = mmu_at(r.gaps, r.n, r.pre, 0, r.end, w, &at);
		double px = ML + (log10(w) - l0) * xs, py = H - MB - u * ys;
		char b[32];
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
		        "fill=\"#d62728\"><title>%s: %.2f%% (worst window "
		        "at %.3f ms)</title></circle><text x=\"%.1f\" "
		        "y=\"%.1f\" fill=\"#d62728\">%.1f%%</text>\n", px, py,
		        window_name(b, sizeof(b), w), 100 * u, at / 1e6, px + 6,
		        py > MT + 20 ? py - 6 : py + 16, 100 * u);
	}
	fprintf(f, "</svg>\n");
	fprintf(stderr, "%s: plotted the MMU of %lu cycles\n", gcstat_prog,
	        r.cycles);
	run_free(&r);
	return gcs_close_out(f, out);
}
