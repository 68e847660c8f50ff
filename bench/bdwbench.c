/* bench/bdwbench.c: measures the time of one bdwgc allocation in ns, with
 * the same loop and sizes as allocbench.c: GC_malloc_atomic for noscan,
 * GC_malloc for scan. The collector is disabled (GC_disable), like
 * gcheap's, which has none yet, so nothing is freed and the heap only
 * grows. --no-interior runs it with GC_set_all_interior_pointers(0)
 * (named "bdwgc-noint"), which changes the size rounding and the free
 * lists, not the collector being off.
 *
 * Note: GC_malloc clears its objects; GC_malloc_atomic does not (gc_alloc
 * always does). */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>

#include <gc.h>

static void die_nomem(size_t size)
{
	fprintf(stderr, "bdwbench: allocation of %zu failed\n", size);
	exit(1);
}

/* The timed loops, one per entry point so both are direct calls. */
static double run_atomic(size_t size, size_t n)
{
	void *prev = NULL;
	uintptr_t x = 0;
	double t0, t1;

	t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		void **p = GC_malloc_atomic(size);

		if (__builtin_expect(p == NULL, 0))
			die_nomem(size);
		*p = prev;
		x ^= (uintptr_t)p;
		prev = p;
	}
	t1 = bench_now_ns();
	bench_sink = prev;
	bench_xor ^= x;
	return t1 - t0;
}

static double run_scan(size_t size, size_t n)
{
	void *prev = NULL;
	uintptr_t x = 0;
	double t0, t1;

	t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		void **p = GC_malloc(size);

		if (__builtin_expect(p == NULL, 0))
			die_nomem(size);
		*p = prev;
		x ^= (uintptr_t)p;
		prev = p;
	}
	t1 = bench_now_ns();
	bench_sink = prev;
	bench_xor ^= x;
	return t1 - t0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;

	bench_parse(&o, argc, argv, "bdwgc", "i",
	            "      --no-interior   GC_set_all_interior_pointers(0)\n");
	if (o.no_interior) {
		if (strcmp(o.name, "bdwgc") == 0)
			o.name = "bdwgc-noint";
		GC_set_all_interior_pointers(0);
	}
	GC_INIT();
	GC_disable();

	printf("# bdwbench %s: bdwgc %u.%u.%u, objs %zu, budget %zu MiB, "
	       "reps %u\n", o.name, (GC_get_version() >> 16) & 0xff,
	       (GC_get_version() >> 8) & 0xff, GC_get_version() & 0xff,
	       o.objs, o.budget >> 20, o.reps);
	for (unsigned r = 0; r < o.reps; r++) {
		for (size_t i = 0; i < o.nsizes; i++) {
			size_t size = o.sizes[i];
			size_t n = bench_count(&o, size);

			if (size < sizeof(void *)) {
				fprintf(stderr, "bdwbench: size %zu < %zu, "
				        "skipped\n", size, sizeof(void *));
				continue;
			}
			if (o.noscan) {
				bench_prewarm(&o, n, size);
				bench_report(&o, "noscan", size, n,
				             run_atomic(size, n));
			}
			if (o.scan) {
				bench_prewarm(&o, n, size);
				bench_report(&o, "scan", size, n,
				             run_scan(size, n));
			}
		}
	}
	printf("# heap_size=%zu gc_no=%zu\n", (size_t)GC_get_heap_size(),
	       (size_t)GC_get_gc_no());
	printf("# xor %#llx\n", (unsigned long long)bench_xor);
	return 0;
}
