/* bench/mallocbench.c: measures the time of one malloc() in ns, with the
 * same loop and sizes as allocbench.c, for whatever malloc the process
 * has: glibc's, or jemalloc's or mimalloc's through LD_PRELOAD (the
 * allocator is detected and named on each line).
 *
 * Two modes:
 *  - fresh (default): nothing is freed, ever, like gcheap without its
 *    collector, so every object is memory the allocator has never handed
 *    out (and the kernel has to fault in).
 *  - --warm: the same objects are allocated and freed once before the
 *    timed loop, so the timed loop reuses memory already faulted in; the
 *    objects are freed again after it, outside the timing.
 *
 * malloc has a single kind; it is printed as "malloc". */
#include "benchutil.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* Which malloc the dynamic linker bound: LD_PRELOAD puts jemalloc's or
 * mimalloc's symbols ahead of glibc's. */
static const char *detect_malloc(void)
{
	if (dlsym(RTLD_DEFAULT, "mi_version"))
		return "mimalloc";
	if (dlsym(RTLD_DEFAULT, "mallctl"))
		return "jemalloc";
	return "glibc";
}

static void die_nomem(size_t size)
{
	fprintf(stderr, "mallocbench: malloc(%zu) failed\n", size);
	exit(1);
}

/* Allocate a chain of n objects (each holds the previous one in its first
 * word); returns the last. Timed or not, by the caller. */
static void *alloc_chain(size_t size, size_t n)
{
	void *prev = NULL;
	uintptr_t x = 0;

	for (size_t i = 0; i < n; i++) {
		void **p = malloc(size);

		if (__builtin_expect(p == NULL, 0))
			die_nomem(size);
		*p = prev;
		x ^= (uintptr_t)p;
		prev = p;
	}
	bench_xor ^= x;
	return prev;
}

static void free_chain(void *last)
{
	while (last) {
		void *next = *(void **)last;

		free(last);
		last = next;
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	const char *detected = detect_malloc();

	bench_parse(&o, argc, argv, detected, "w",
	            "      --warm          allocate and free each batch "
	            "once before timing it\n");
	if (strcmp(o.name, detected) != 0) {
		fprintf(stderr, "mallocbench: asked for %s but malloc is "
		        "%s (LD_PRELOAD?)\n", o.name, detected);
		return 1;
	}

	printf("# mallocbench %s: objs %zu, budget %zu MiB, reps %u, "
	       "mode %s\n", o.name, o.objs, o.budget >> 20, o.reps,
	       o.warm ? "warm" : "fresh");
	for (unsigned r = 0; r < o.reps; r++) {
		for (size_t i = 0; i < o.nsizes; i++) {
			size_t size = o.sizes[i];
			size_t n = bench_count(&o, size);
			double t0, t1;
			void *last;

			if (size < sizeof(void *)) {
				fprintf(stderr, "mallocbench: size %zu < %zu, "
				        "skipped\n", size, sizeof(void *));
				continue;
			}
			if (o.warm)
				free_chain(alloc_chain(size, n));
			bench_prewarm(&o, n, size);
			t0 = bench_now_ns();
			last = alloc_chain(size, n);
			t1 = bench_now_ns();
			bench_sink = last;
			bench_report(&o, "malloc", size, n, t1 - t0);
			if (o.warm)
				free_chain(last);
		}
	}
	printf("# xor %#llx\n", (unsigned long long)bench_xor);
	return 0;
}
