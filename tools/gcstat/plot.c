/* tools/gcstat/plot.c: `gcstat plot`, hand-written SVG pictures:
 *   plot trace FILE     heap, live and goal over time with the pauses
 *                       marked, from GCHEAP_DEBUG=gctrace=1 lines
 *   plot live PID       the same, sampled from a live process
 *   plot heapmap DUMP   every span of a dump as a strip of pages coloured
 *                       by occupancy, in address order
 *   plot mmu FILE       minimum mutator utilization against the window
 *                       (tools/gcstat/mmu.c draws it)
 * The trace line parser here is the reference reader of the format in
 * docs/tools.md (gcs_parse_trace_line). */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct series {
	double *t, *heap, *live, *goal;
	double *inuse;    /* heap in use (spans): a live process only */
	bool has_inuse;
	uint64_t pauses_before; /* live: pauses before the first sample */
	size_t n, cap;
	double *pt, *pns; /* pauses: time (s) and length (ns) */
	size_t np, pcap;
} series;

static bool push(series *s, double t, double heap, double live,
                 double goal, double inuse)
{
	if (s->n == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 256;
		double *a = realloc(s->t, c * sizeof(double));
		if (a)
			s->t = a;
		double *b = realloc(s->heap, c * sizeof(double));
		if (b)
			s->heap = b;
		double *d = realloc(s->live, c * sizeof(double));
		if (d)
			s->live = d;
		double *e = realloc(s->goal, c * sizeof(double));
		if (e)
			s->goal = e;
		double *u = realloc(s->inuse, c * sizeof(double));
		if (u)
			s->inuse = u;
		if (!a || !b || !d || !e || !u)
			return false;
		s->cap = c;
	}
	s->t[s->n] = t;
	s->heap[s->n] = heap;
	s->live[s->n] = live;
	s->goal[s->n] = goal;
	s->inuse[s->n] = inuse;
	s->n++;
	return true;
}

static bool push_pause(series *s, double t, double ns)
{
	if (s->np == s->pcap) {
		size_t c = s->pcap ? s->pcap * 2 : 256;
		double *a = realloc(s->pt, c * sizeof(double));
		if (a)
			s->pt = a;
		double *b = realloc(s->pns, c * sizeof(double));
		if (b)
			s->pns = b;
		if (!a || !b)
			return false;
		s->pcap = c;
	}
	s->pt[s->np] = t;
	s->pns[s->np] = ns;
	s->np++;
	return true;
}

static void series_free(series *s)
{
	free(s->t), free(s->heap), free(s->live), free(s->goal);
	free(s->inuse);
	free(s->pt), free(s->pns);
}

/* The optional last field, ", pauses S+L S+L ... ms" (ms since the heap
 * began, and length): absent in lines of older versions (npauses 0); a
 * malformed one makes the line not a trace line. */
static int parse_pauses(const char *p, gcs_trace *t)
{
	t->npauses = 0;
	p = strstr(p, ", pauses ");
	if (!p)
		return 0;
	p += strlen(", pauses");
	while (strncmp(p, " ms", 3)) {
		double at, len;
		int n = 0;
		if (t->npauses == GCS_TRACE_PAUSES ||
		    sscanf(p, " %lf+%lf%n", &at, &len, &n) != 2 || !n ||
		    !(at >= 0 && at <= GCS_TRACE_MAX) ||
		    !(len >= 0 && len <= GCS_TRACE_MAX))
			return -1;
		t->pause_at[t->npauses] = at;
		t->pause_len[t->npauses++] = len;
		p += n;
	}
	return t->npauses ? 0 : -1;
}

int gcs_parse_trace_line(const char *line, gcs_trace *t)
{
	const char *p = strstr(line, "gcheap: gc ");
	int n = 0;

	if (!p)
		return -1;
	if (sscanf(p, "gcheap: gc %lu @%lfs %lf%%: %lf+%lf+%lf ms clock, "
	           "%lf+%lf/%lf+%lf ms cpu, %lf->%lf->%lf MB, %lf MB goal, "
	           "%u workers%n", &t->cycle, &t->at, &t->cpu_pct,
	           &t->clock[0], &t->clock[1], &t->clock[2], &t->cpu[0],
	           &t->cpu[1], &t->cpu[2], &t->cpu[3], &t->heap0,
	           &t->heap1, &t->live, &t->goal, &t->workers, &n) != 15 ||
	    !n)
		return -1;
	/* Plausible numbers only: an infinite or huge time or size spun
	 * the axes' loops for ever (a corrupt or hand-made file). */
	const double v[] = {t->at, t->cpu_pct, t->clock[0], t->clock[1],
	                    t->clock[2], t->cpu[0], t->cpu[1], t->cpu[2],
	                    t->cpu[3], t->heap0, t->heap1, t->live, t->goal};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!(v[i] >= 0 && v[i] <= GCS_TRACE_MAX))
			return -1;
	return parse_pauses(p + n, t);
}

/* ---- The time chart ------------------------------------------------------ */

static double nice_step(double range, int ticks)
{
	double raw = range / ticks, mag = pow(10, floor(log10(raw)));
	double f = raw / mag;
	return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

#define W 900
#define H 420
#define ML 80
#define MR 150
#define MT 40
#define MB 50

/* A line of the chart; its tooltip names it and gives its last value. */
static void polyline(FILE *f, const series *s, const double *y, double x0,
                     double xs, double ys, const char *color, bool step,
                     const char *name)
{
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\""
	        " points=\"", color);
	for (size_t i = 0; i < s->n; i++) {
		double px = ML + (s->t[i] - x0) * xs;
		double py = H - MB - y[i] * ys;
		if (step && i)
			fprintf(f, "%.1f,%.1f ", px, H - MB - y[i - 1] * ys);
		fprintf(f, "%.1f,%.1f ", px, py);
	}
	char b[32];
	fprintf(f, "\"><title>%s, last %s</title></polyline>\n", name,
	        gcs_bytes(b, sizeof(b), s->n ? y[s->n - 1] : 0));
}

static void time_chart(FILE *f, const series *s, const char *title)
{
	double x0 = s->n ? s->t[0] : 0, x1 = x0, ymax = 1;
	for (size_t i = 0; i < s->n; i++) {
		x1 = s->t[i] > x1 ? s->t[i] : x1;
		ymax = fmax(ymax, fmax(s->heap[i], fmax(s->live[i],
		                                        s->goal[i])));
		if (s->has_inuse)
			ymax = fmax(ymax, s->inuse[i]);
	}
	/* From 0 unless the samples start late (a live process). */
	if (x0 < (x1 - x0) / 2)
		x0 = 0;
	if (x1 <= x0)
		x1 = x0 + 1e-3;
	ymax *= 1.1;
	double xs = (W - ML - MR) / (x1 - x0), ys = (H - MT - MB) / ymax;
	double pmax = 1;
	for (size_t i = 0; i < s->np; i++)
		pmax = fmax(pmax, s->pns[i]);

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	        "<text x=\"%d\" y=\"24\" font-size=\"15\">", W, H, ML);
	gcs_svg_text(f, title);
	fprintf(f, "</text>\n");
	/* Axes and grid. */
	double unit = ymax < 8192 ? 1 : ymax < 8 << 20 ? 1024 : 1 << 20;
	double ystep = nice_step(ymax / unit, 5) * unit;
	double xstep = nice_step(x1 - x0, 8);
	/* Counted ticks: a float step added to a limit never ends when
	 * the step is lost in the sum. */
	for (int i = 0; i <= 64 && i * ystep <= ymax; i++) {
		double y = i * ystep;
		double py = H - MB - y * ys;
		char b[32];
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
		        "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
		        "text-anchor=\"end\">%s</text>\n", ML, W - MR, py, py,
		        ML - 6, py + 4, gcs_bytes(b, sizeof(b), y));
	}
	for (int i = 0; i <= 64 && i * xstep <= x1 - x0 + 1e-9; i++) {
		double x = i * xstep;
		double px = ML + x * xs;
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
		        "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%d\" "
		        "text-anchor=\"middle\">%.3g s</text>\n", px, px, MT,
		        H - MB, px, H - MB + 18, x + x0);
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
	        "fill=\"none\" stroke=\"#888\"/>\n", ML, MT, W - ML - MR,
	        H - MT - MB);
	/* Pauses: red ticks from the bottom, height by length. */
	for (size_t i = 0; i < s->np; i++) {
		double px = ML + (s->pt[i] - x0) * xs;
		double h = 6 + 40 * s->pns[i] / pmax;
		char b[32];
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" "
		        "y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"2\">"
		        "<title>pause %s at %.3f s</title></line>\n", px, px,
		        H - MB, H - MB - h, gcs_dur(b, sizeof(b), s->pns[i]),
		        s->pt[i]);
	}
	/* heap_live is what the pacer compares with the goal: objects
	 * allocated, spans cached for allocation counted whole. "in use"
	 * (a live process only) is the bytes of spans in use, as `gcstat
	 * PID` prints it. */
	const char *names[] = {"in use (spans)", "heap_live", "live (marked)",
	                       "goal", "pauses"};
	polyline(f, s, s->goal, x0, xs, ys, "#2ca02c", true, names[3]);
	if (s->has_inuse)
		polyline(f, s, s->inuse, x0, xs, ys, "#9467bd", false,
		         names[0]);
	polyline(f, s, s->heap, x0, xs, ys, "#1f77b4", false, names[1]);
	polyline(f, s, s->live, x0, xs, ys, "#ff7f0e", true, names[2]);
	const char *colors[] = {"#9467bd", "#1f77b4", "#ff7f0e", "#2ca02c",
	                        "#d62728"};
	int row = 0;
	for (int i = s->has_inuse ? 0 : 1; i < 5; i++, row++)
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" "
		        "fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
		        W - MR + 14, MT + 10 + 22 * row, colors[i],
		        W - MR + 34, MT + 15 + 22 * row, names[i]);
	char b[32];
	fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#555\">%zu pauses,"
	        "</text><text x=\"%d\" y=\"%d\" fill=\"#555\">longest %s"
	        "</text>\n", W - MR + 14, MT + 22 * row + 22, s->np,
	        W - MR + 14, MT + 22 * row + 38,
	        gcs_dur(b, sizeof(b), s->np ? pmax : 0));
	if (s->pauses_before)
		fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#555\">(%llu "
		        "before the</text><text x=\"%d\" y=\"%d\" "
		        "fill=\"#555\">first sample not drawn)</text>\n",
		        W - MR + 14, MT + 22 * row + 54,
		        (unsigned long long)s->pauses_before, W - MR + 14,
		        MT + 22 * row + 70);
	fprintf(f, "</svg>\n");
}

void gcs_svg_text(FILE *f, const char *s)
{
	for (const char *c = s; *c; c++)
		if (*c == '<' || *c == '&')
			fputs(*c == '<' ? "&lt;" : "&amp;", f);
		else
			fputc(*c, f);
}

FILE *gcs_open_out(const char *path)
{
	if (!path || !strcmp(path, "-"))
		return stdout;
	FILE *f = fopen(path, "w");
	if (!f)
		gcs_error("%s: %s", path, strerror(errno));
	return f;
}

int gcs_close_out(FILE *f, const char *path)
{
	if (f == stdout)
		return fflush(f) ? gcs_error("write error") : 0;
	if (fclose(f))
		return gcs_error("%s: write error", path);
	return 0;
}

static int plot_trace(const char *in, const char *out)
{
	FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
	char line[1024];
	series s = {0};
	size_t lines = 0;

	if (!f)
		return gcs_error("%s: %s", in, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		gcs_trace t;
		if (gcs_parse_trace_line(line, &t))
			continue;
		lines++;
		double end = t.at;
		double start = end - (t.clock[0] + t.clock[1] + t.clock[2]) /
		               1e3;
		if (!push(&s, start, t.heap0 * 1e6,
		          s.n ? s.live[s.n - 1] : t.live * 1e6,
		          s.n ? s.goal[s.n - 1] : t.goal * 1e6, 0) ||
		    !push(&s, end, t.heap1 * 1e6, t.live * 1e6,
		          t.goal * 1e6, 0) ||
		    !push_pause(&s, start, t.clock[0] * 1e6) ||
		    !push_pause(&s, end, t.clock[2] * 1e6)) {
			series_free(&s);
			if (f != stdin)
				fclose(f);
			return gcs_error("out of memory");
		}
	}
	if (f != stdin)
		fclose(f);
	if (!lines) {
		series_free(&s);
		return gcs_error("%s: no gctrace lines (run the program with "
		                 "GCHEAP_DEBUG=gctrace=1 and keep its stderr)",
		                 in);
	}
	FILE *o = gcs_open_out(out);
	if (!o) {
		series_free(&s);
		return 1;
	}
	char title[256];
	snprintf(title, sizeof(title), "gcheap heap over time: %zu cycles "
	         "from %s", lines, in);
	time_chart(o, &s, title);
	series_free(&s);
	fprintf(stderr, "%s: plotted %zu cycles\n", gcstat_prog, lines);
	return gcs_close_out(o, out);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
	                      (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int plot_live(long pid, uint64_t dur, uint64_t every,
                     const char *out)
{
	series s = {.has_inuse = true};
	uint64_t seen = 0;
	gcs_snapshot snap;

	for (uint64_t t = 0; t <= dur; t += every) {
		if (t)
			sleep_ns(every);
		if (gcs_read_live(pid, &snap)) {
			if (!s.n) {
				series_free(&s);
				return 1;
			}
			break;
		}
		const gc_stats *st = &snap.st;
		double now = st->uptime_ns / 1e9;
		/* A sample draws the pauses since the one before; those
		 * before the first sample have no time to be drawn at. */
		if (!s.n)
			seen = s.pauses_before = st->pause_count;
		for (; seen < st->pause_count; seen++)
			if (st->pause_count - seen <= GCHEAP_PAUSE_RING &&
			    !push_pause(&s, now, st->pause_ring[
			                seen % GCHEAP_PAUSE_RING]))
				break;
		if (seen < st->pause_count ||
		    !push(&s, now, st->heap_live, st->heap_marked,
		          st->heap_goal, st->heap_inuse)) {
			series_free(&s);
			return gcs_error("out of memory");
		}
	}
	FILE *o = gcs_open_out(out);
	if (!o) {
		series_free(&s);
		return 1;
	}
	char title[256];
	snprintf(title, sizeof(title), "gcheap heap of pid %ld (%s): %zu "
	         "samples", pid, snap.comm, s.n);
	time_chart(o, &s, title);
	series_free(&s);
	return gcs_close_out(o, out);
}

/* ---- The heap map -------------------------------------------------------- */

static int cmp_span(const void *a, const void *b)
{
	const hd_span *x = a, *y = b;
	return x->base < y->base ? -1 : x->base > y->base;
}

static void occ_color(double occ, char *buf, size_t n)
{
	/* Empty: pale yellow; half: orange; full: dark red. */
	double r = 255 - 120 * occ, g = 240 - 220 * occ, b = 180 - 160 * occ;
	snprintf(buf, n, "rgb(%d,%d,%d)", (int)r, (int)g, (int)b);
}

#define COLS 64 /* pages per row: 512 KiB */
#define CELL 10

static int plot_heapmap(const char *in, const char *out)
{
	hd_dump d;

	if (hd_load(in, &d))
		return 1;
	if (!d.nspans) {
		hd_free(&d);
		return gcs_error("%s: the dump has no spans", in);
	}
	qsort(d.spans, d.nspans, sizeof(hd_span), cmp_span);
	/* Lay the pages out in rows; a gap of over a row starts a new
	 * block with a break line. */
	uint64_t pos = 0, prev_end = d.spans[0].base;
	for (size_t i = 0; i < d.nspans; i++) {
		uint64_t gap = (d.spans[i].base - prev_end) / 8192;
		pos += gap > COLS ? COLS - pos % COLS + COLS : gap;
		pos += d.spans[i].npages;
		prev_end = d.spans[i].base + d.spans[i].npages * 8192;
		if (pos > (1u << 22)) {
			pos = 1u << 22; /* 32 GiB of pages: enough for a
			                 * picture, and what is drawn */
			break;
		}
	}
	uint64_t rows = pos / COLS + 1;
	int width = COLS * CELL + 2 * ML, height = (int)rows * CELL + 134;
	FILE *f = gcs_open_out(out);
	if (!f) {
		hd_free(&d);
		return 1;
	}
	uint64_t pages = 0, used = 0, slots = 0;
	for (size_t i = 0; i < d.nspans; i++) {
		pages += d.spans[i].npages;
		used += d.spans[i].nalloc;
		slots += d.spans[i].nelems;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	        "<text x=\"%d\" y=\"24\" font-size=\"15\">heap map of pid "
	        "%llu</text><text x=\"%d\" y=\"44\">%zu spans, %llu pages "
	        "(8 KiB; a row is 512 KiB), %.1f%% of slots allocated</text>"
	        "\n", width, height, ML,
	        (unsigned long long)d.pid, ML, d.nspans,
	        (unsigned long long)pages, slots ? 100.0 * used / slots : 0);
	pos = 0;
	prev_end = d.spans[0].base;
	for (size_t i = 0; i < d.nspans; i++) {
		const hd_span *s = &d.spans[i];
		uint64_t gap = (s->base - prev_end) / 8192;
		if (gap > COLS) {
			pos += COLS - pos % COLS + COLS;
			fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
			        "y2=\"%.1f\" stroke=\"#999\" "
			        "stroke-dasharray=\"4 3\"/>\n", ML,
			        ML + COLS * CELL, 64 + (pos / COLS) * CELL -
			        CELL / 2.0, 64 + (pos / COLS) * CELL -
			        CELL / 2.0);
		} else {
			pos += gap;
		}
		if (pos > (1u << 22))
			break;
		prev_end = s->base + s->npages * 8192;
		double occ = s->nelems ? (double)s->nalloc / s->nelems : 0;
		char col[32];
		if (s->sizeclass == 0)
			snprintf(col, sizeof(col), "#6a51a3");
		else
			occ_color(occ, col, sizeof(col));
		/* One rect per row the span covers, up to the map's cap: a
		 * span of 2^40 pages (a corrupt or hostile dump) drew 2^34
		 * rects and never ended. */
		for (uint64_t left = s->npages; left && pos <= (1u << 22);) {
			uint64_t x = pos % COLS, n = COLS - x;
			n = n < left ? n : left;
			fprintf(f, "<rect x=\"%llu\" y=\"%llu\" width=\"%llu\""
			        " height=\"%d\" fill=\"%s\" stroke=\"white\" "
			        "stroke-width=\"0.5\"><title>%#llx class %u "
			        "(%llu B), %u/%u allocated</title></rect>\n",
			        (unsigned long long)(ML + x * CELL),
			        (unsigned long long)(64 + pos / COLS * CELL),
			        (unsigned long long)(n * CELL), CELL, col,
			        (unsigned long long)s->base, s->sizeclass,
			        (unsigned long long)s->elemsize, s->nalloc,
			        s->nelems);
			pos += n;
			left -= n;
		}
	}
	int ly = 64 + (int)rows * CELL + 20;
	for (int i = 0; i <= 4; i++) {
		char col[32];
		occ_color(i / 4.0, col, sizeof(col));
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"12\" "
		        "fill=\"%s\"/><text x=\"%d\" y=\"%d\">%d%%</text>\n",
		        ML + i * 70, ly, col, ML + i * 70 + 28, ly + 10,
		        i * 25);
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"12\" "
	        "fill=\"#6a51a3\"/><text x=\"%d\" y=\"%d\">large object"
	        "</text>\n<text x=\"%d\" y=\"%d\" fill=\"#555\">colour: the "
	        "share of a span's slots that hold objects; dashed lines: "
	        "gaps in the address space</text>\n</svg>\n", ML + 360, ly,
	        ML + 388, ly + 10, ML, ly + 34);
	hd_free(&d);
	return gcs_close_out(f, out);
}

static const char plot_usage[] =
	"usage: gcstat plot trace FILE | live PID [-d 10s] [-i 100ms] | "
	"heapmap DUMP | mmu FILE [-o OUT.svg]\n";

/* A usage error: exit status 2, as for gcstat's other commands. */
static int bad_usage(const char *why, const char *arg)
{
	if (why)
		fprintf(stderr, "%s: plot: %s%s\n", gcstat_prog, why,
		        arg ? arg : "");
	fputs(plot_usage, stderr);
	return 2;
}

int gcs_cmd_plot(int argc, char **argv)
{
	const char *out = NULL, *what = NULL, *arg = NULL;
	uint64_t dur = 10000000000ull, every = 100000000ull;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(plot_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
			if (!gcs_parse_duration(argv[++i], &dur))
				return gcs_error("bad duration %s", argv[i]);
		} else if (!strcmp(argv[i], "-i") && i + 1 < argc) {
			if (!gcs_parse_duration(argv[++i], &every))
				return gcs_error("bad interval %s", argv[i]);
		} else if (argv[i][0] == '-' && argv[i][1])
			return bad_usage("unknown option ", argv[i]);
		else if (!what)
			what = argv[i];
		else if (!arg)
			arg = argv[i];
		else
			return bad_usage("unexpected argument ", argv[i]);
	}
	if (!what || !arg)
		return bad_usage(NULL, NULL);
	if (!strcmp(what, "trace"))
		return plot_trace(arg, out);
	if (!strcmp(what, "heapmap"))
		return plot_heapmap(arg, out);
	if (!strcmp(what, "mmu"))
		return gcs_plot_mmu(arg, out);
	if (!strcmp(what, "live")) {
		char *end;
		long pid = strtol(arg, &end, 10);
		if (*end || pid <= 0)
			return bad_usage("live: not a pid: ", arg);
		return plot_live(pid, dur, every, out);
	}
	return bad_usage("unknown picture (trace, live, heapmap, mmu): ",
	                 what);
}
