/* bench/allocbench.c: measures the time of one gc_alloc() in ns, for
 * sizes 8 B .. 32 KiB, noscan (type NULL) and scan (a pointer at offset 0
 * of every 8- or 16-byte element). The collector is off (gc_disable), so
 * nothing is freed: every object is fresh memory, and the number of
 * objects per size is capped by a byte budget (bench/benchutil.h).
 *
 * Each object stores the previous one in its first word (a chain that
 * keeps every object reachable) and the addresses are xored together,
 * which is all the touching the loop does. */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>

#include "gcheap.h"

#ifndef ALLOCBENCH_NAME
#define ALLOCBENCH_NAME "gcheap"
#endif

static gc_type *ptr8, *ptr16; /* the scan objects' types, see main */

static void die(const char *what)
{
	gc_status st = gc_last_error();

	fprintf(stderr, "allocbench: %s: %s\n", what, gc_strerror(st));
	exit(1);
}

static void nomem(size_t size)
{
	(void)size;
	die("gc_alloc");
}

static void *alloc(size_t size, const void *type)
{
	return gc_alloc(size, type);
}

/* A scan object's first word is a pointer slot, so the store goes through
 * gc_write as the API requires (with the collector idle: a load, a
 * predicted branch and the store); a noscan object's is plain data. */
static void store_barrier(void **slot, void *prev)
{
	gc_write(slot, prev);
}

static double run_noscan(size_t size, size_t n)
{
	return bench_chain(size, n, alloc, NULL, bench_store, nomem);
}

static double run_scan(size_t size, size_t n)
{
	const gc_type *type = size < 16 ? ptr8 : ptr16;

	return bench_chain(size, n, alloc, type, store_barrier, nomem);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	static const size_t off0[] = {0};
	gc_stats st;

	bench_parse(&o, argc, argv, ALLOCBENCH_NAME, "", "");

	if (gc_thread_attach() != GCHEAP_OK)
		die("gc_thread_attach");
	/* The collector is off: this measures allocation alone. */
	gc_disable();
	/* An 8-byte type for the objects under 16 bytes (a type may not be
	 * larger than the object), a 16-byte one, repeated, for the rest:
	 * one word in two is a pointer. */
	ptr8 = gc_type_new("bench.ptr8", 8, off0, 1, GCHEAP_TAIL_REPEAT);
	ptr16 = gc_type_new("bench.ptr16", 16, off0, 1, GCHEAP_TAIL_REPEAT);
	if (!ptr8 || !ptr16)
		die("gc_type_new");

	printf("# allocbench %s: gcheap %s, objs %zu, budget %zu MiB, "
	       "reps %u\n", o.name, gc_version(), o.objs, o.budget >> 20,
	       o.reps);
	bench_run(&o, "allocbench", run_noscan, run_scan);

	if (gc_read_stats(&st, sizeof st) == GCHEAP_OK)
		printf("# stats alloc_objects=%llu alloc_bytes=%llu "
		       "tiny_allocs=%llu heap_inuse=%llu os_committed=%llu "
		       "arenas=%llu\n",
		       (unsigned long long)st.alloc_objects,
		       (unsigned long long)st.alloc_bytes,
		       (unsigned long long)st.tiny_allocs,
		       (unsigned long long)st.heap_inuse,
		       (unsigned long long)st.os_committed,
		       (unsigned long long)st.arenas);
	printf("# xor %#llx\n", (unsigned long long)bench_xor);
	if (gc_thread_detach() != GCHEAP_OK)
		die("gc_thread_detach");
	return 0;
}
