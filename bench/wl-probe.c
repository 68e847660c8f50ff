/* bench/wl-probe.c: the pause probe. About 200 MB live: a table of 1.5 M
 * slots, each pointing to its own 128-byte object (a pointer and 15
 * words); then for 10 s one random slot gets a new object per iteration
 * (the malloc twins free the old one). Every gap between two iterations
 * is recorded in a histogram of 100 ns buckets: the longest, p99.9,
 * p99.99, how many were over 1 ms and over 10 ms, and the throughput in
 * replacements per second; and the minimum mutator utilization at 1, 10
 * and 100 ms windows, taking every gap over 10 us as time the mutator did
 * not run (measure/mmu.h); and the page faults its thread took in the
 * loop. What the mutator sees of the collector:
 * stop-the-world pauses, assists, and time stolen by its threads. At the
 * end every object is checked against its slot (a lost or overwritten
 * object changes the checksum). Options: --slots N, --seconds S, --gaps MS
 * (after the run, print each gap over MS milliseconds, at least 0.01, to
 * stderr with its start since the program started, to lay beside
 * gctrace's timeline, whose clock starts at the collector's first use,
 * under a millisecond later). */
#include "measure/mmu.h"
#include "wl.h"

#include <sys/resource.h>

typedef struct pobj {
	struct pobj *next;
	uint64_t v[15];
} pobj;

#define BUCKET_NS 100
/* Gaps longer than this are taken as time the mutator did not run, for
 * the MMU figures (an iteration takes well under a microsecond). */
#define MMU_GAP_NS 10000.0
#define NBUCKETS (1u << 20) /* 100 ms; longer gaps land in the last */

static wl_type *pobj_t;

static uint64_t tag(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull + 1;
}

static pobj *new_obj(uint64_t i)
{
	pobj *o = wl_alloc(sizeof *o, pobj_t);

	if (!WL_ZEROED)
		o->next = NULL;
	o->v[0] = tag(i);
	o->v[14] = tag(i) ^ 0xffff;
	return o;
}

int main(int argc, char **argv)
{
	static const size_t offs[] = {0};
	uint32_t *hist;
	uint64_t rng = 88172645463325252ull, h = WL_FOLD_INIT, iters = 0;
	uint64_t over1 = 0, over10 = 0;
	double t0, prev, end, maxgap = 0, secs, show;
	double tstart = wl_now_ns();
	size_t nslots, ngaps = 0, capgaps = 0;
	pobj **slots;
	mmu_gap *gaps = NULL;

	wl_args(argc, argv);
	wl_init();
	nslots = (size_t)wl_arg("slots", wl_quick() ? 20000 : 1500000);
	secs = wl_arg("seconds", wl_quick() ? 0.3 : 10);
	show = wl_arg("gaps", 0) * 1e6;
	pobj_t = wl_type_new("pobj", sizeof(pobj), offs, 1);
	hist = calloc(NBUCKETS, sizeof *hist);
	if (!hist || nslots == 0)
		wl_die("no memory for the histogram");

	slots = (pobj **)wl_alloc_slots(nslots);
	for (size_t i = 0; i < nslots; i++)
		wl_write(&slots[i], new_obj(i));

	struct rusage ru0, ru1;
	getrusage(RUSAGE_THREAD, &ru0);
	t0 = prev = wl_now_ns();
	end = t0 + secs * 1e9;
	for (;;) {
		double now = wl_now_ns(), gap = now - prev;
		size_t b = (size_t)(gap / BUCKET_NS);
		uint64_t i;
		pobj *old;

		hist[b < NBUCKETS ? b : NBUCKETS - 1]++;
		if (gap > maxgap)
			maxgap = gap;
		over1 += gap > 1e6;
		if (gap > MMU_GAP_NS) {
			if (ngaps == capgaps) {
				capgaps = capgaps ? 2 * capgaps : 4096;
				gaps = realloc(gaps, capgaps * sizeof *gaps);
				if (!gaps)
					wl_die("no memory for the gap list");
			}
			gaps[ngaps++] = (mmu_gap){prev - t0, gap, 0};
		}
		over10 += gap > 1e7;
		prev = now;
		if (now >= end)
			break;
		i = wl_rand(&rng) % nslots;
		old = slots[i];
		wl_write(&slots[i], new_obj(i));
		if (WL_HAS_FREE)
			wl_free(old);
		iters++;
	}
	getrusage(RUSAGE_THREAD, &ru1);

	for (size_t i = 0; i < nslots; i++) {
		const pobj *o = slots[i];

		if (o->v[0] != tag(i) || o->v[14] != (tag(i) ^ 0xffff) ||
		    o->next)
			wl_die("a slot lost its object");
		h = wl_fold(h, o->v[0] ^ o->v[14]);
	}
	{
		uint64_t total = 0, seen = 0, n999, n9999;
		double p999 = 0, p9999 = 0;

		for (size_t b = 0; b < NBUCKETS; b++)
			total += hist[b];
		n999 = total - total / 1000;
		n9999 = total - total / 10000;
		for (size_t b = 0; b < NBUCKETS; b++) {
			seen += hist[b];
			if (!p999 && seen >= n999)
				p999 = (b + 1) * BUCKET_NS;
			if (!p9999 && seen >= n9999) {
				p9999 = (b + 1) * BUCKET_NS;
				break;
			}
		}
		free(hist);
		wl_figure("gap_max_ms", maxgap / 1e6);
		wl_figure("gap_p999_ms", p999 / 1e6);
		wl_figure("gap_p9999_ms", p9999 / 1e6);
		wl_figure("gaps_over_1ms", (double)over1);
		wl_figure("gaps_over_10ms", (double)over10);
		wl_figure("mrepl_per_s", iters / ((prev - t0) / 1e9) / 1e6);
		/* Page faults the program's thread took in the timed loop
		 * (each ~10 us on a VM that maps guest pages lazily). */
		wl_figure("loop_page_faults",
		          (double)(ru1.ru_minflt - ru0.ru_minflt));
		/* Minimum mutator utilization at 1, 10 and 100 ms windows
		 * (measure/mmu.h), in percent. */
		double *pre = malloc((ngaps + 1) * sizeof *pre);
		if (!pre)
			wl_die("no memory for the MMU");
		wl_figure("mmu_1ms", 100 * mmu(gaps, ngaps, pre, 0, prev - t0,
		                               1e6));
		wl_figure("mmu_10ms", 100 * mmu(gaps, ngaps, pre, 0,
		                                prev - t0, 1e7));
		wl_figure("mmu_100ms", 100 * mmu(gaps, ngaps, pre, 0,
		                                 prev - t0, 1e8));
		free(pre);
		/* The long gaps, now that the clock no longer runs. */
		for (size_t g = 0; show > 0 && g < ngaps; g++)
			if (gaps[g].len > show)
				fprintf(stderr, "gap %.3f ms at %.3f ms\n",
				        gaps[g].len / 1e6,
				        (t0 - tstart + gaps[g].start) / 1e6);
		free(gaps);
		wl_figure("live_mb",
		          (nslots * (sizeof(pobj) + sizeof(void *))) / 1e6);
	}
	wl_sink = slots;
	wl_checksum(h);
	wl_finish();
	return 0;
}
