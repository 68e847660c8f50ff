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

/* One function per entry point, so that both are direct calls in the
 * timed loops. */
static void *alloc_atomic(size_t size, const void *unused)
{
	(void)unused;
	return GC_malloc_atomic(size);
}

static void *alloc_scan(size_t size, const void *unused)
{
	(void)unused;
	return GC_malloc(size);
}

static double run_atomic(size_t size, size_t n)
{
	return bench_chain(size, n, alloc_atomic, NULL, bench_store,
	                   die_nomem);
}

static double run_scan(size_t size, size_t n)
{
	return bench_chain(size, n, alloc_scan, NULL, bench_store, die_nomem);
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
	bench_run(&o, "bdwbench", run_atomic, run_scan);
	printf("# heap_size=%zu gc_no=%zu\n", (size_t)GC_get_heap_size(),
	       (size_t)GC_get_gc_no());
	printf("# xor %#llx\n", (unsigned long long)bench_xor);
	return 0;
}
