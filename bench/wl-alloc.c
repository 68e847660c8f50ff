/* bench/wl-alloc.c: allocation throughput in steady state, collector on:
 * N objects (default 100 M) of 16, 32 and 64 bytes, each with a pointer
 * in its first word and its index in the second, in two modes: "none",
 * nothing retained (the malloc twins free each object at once), and
 * "ring", one object in 1000 kept in a 16384-slot ring (the one it
 * replaces is dropped, or freed). Reports ns per allocation for each
 * (size, mode), by the wall clock (ns_) and by the CPU time of the
 * whole process, collector threads included (cpuns_). Stresses the
 * allocation fast path with sweeping and span reuse behind it: memory is
 * recycled, not freshly faulted in (the difference from
 * bench/allocbench.c). Options: --objs N; --size S and --ring 0|1 run
 * one column only (for profiling); --types K (1, 2 or 4; not in bench/run's
 * columns) allocates K types of the same size in turn (a language
 * runtime's several object kinds of one size class). */
#include "wl.h"

#define RING 16384

typedef struct obj {
	struct obj *p;
	uint64_t v;
} obj;

/* The timed loop: object i of type types[i & mask]. Inlined twice, so
 * that one type (mask 0) costs no more than it did before --types. */
static inline __attribute__((always_inline)) void
alloc_loop(size_t size, int ring_mode, size_t n, wl_type *const *types,
           size_t mask, obj **ring)
{
	for (size_t i = 0; i < n; i++) {
		obj *o = wl_alloc(size, types[i & mask]);

		o->v = i;
		if (!WL_ZEROED)
			o->p = NULL;
		wl_sink = o;
		if (ring_mode && i % 1000 == 0) {
			size_t k = (i / 1000) % RING;
			obj *old = ring[k];

			wl_write(&ring[k], o);
			if (WL_HAS_FREE && old)
				wl_free(old);
		} else if (WL_HAS_FREE) {
			wl_free(o);
		}
	}
}

static void run(size_t size, int ring_mode, size_t n, unsigned ntypes,
                uint64_t *h)
{
	/* Type k: a pointer in word 0, and in words 2 and 3 as k's bits
	 * say, where the object has them (word 1 is the index). */
	wl_type *types[4];
	for (unsigned k = 0; k < ntypes; k++) {
		size_t offs[3] = {0}, np = 1;
		for (unsigned b = 0; b < 2; b++)
			if (k >> b & 1 && (2 + b) * 8 < size)
				offs[np++] = (2 + b) * 8;
		types[k] = wl_type_new("obj", size, offs, np);
	}
	obj **ring = ring_mode ? (obj **)wl_alloc_slots(RING) : NULL;
	double t0, t1, c0, c1;
	char name[64];

	c0 = wl_cpu_s();
	t0 = wl_now_ns();
	if (ntypes == 1) /* the loop bench/run times, as it always was */
		alloc_loop(size, ring_mode, n, types, 0, ring);
	else
		alloc_loop(size, ring_mode, n, types, ntypes - 1, ring);
	t1 = wl_now_ns();
	c1 = wl_cpu_s();
	snprintf(name, sizeof name, "ns_%zu_%s", size, ring_mode ? "ring"
	                                                          : "none");
	wl_figure(name, (t1 - t0) / (double)n);
	/* The CPU of the whole process (collector threads included) per
	 * allocation: what the allocation cost, whatever the load. */
	snprintf(name, sizeof name, "cpuns_%zu_%s", size,
	         ring_mode ? "ring" : "none");
	wl_figure(name, (c1 - c0) * 1e9 / (double)n);
	*h = wl_fold(*h, (uint64_t)n * size);
	if (ring_mode) {
		for (size_t k = 0; k < RING; k++) {
			if (!ring[k])
				continue;
			*h = wl_fold(*h, ring[k]->v);
			if (WL_HAS_FREE)
				wl_free(ring[k]);
		}
		wl_free(ring);
	}
	wl_sink = NULL;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {16, 32, 64};
	uint64_t h = WL_FOLD_INIT;
	size_t n;

	wl_args(argc, argv);
	wl_init();
	n = (size_t)wl_arg("objs", wl_quick() ? 200000 : 100000000);
	size_t only_size = (size_t)wl_arg("size", 0);
	long only_ring = wl_arg("ring", -1);
	unsigned ntypes = (unsigned)wl_arg("types", 1);
	if (ntypes != 1 && ntypes != 2 && ntypes != 4)
		wl_die("--types takes 1, 2 or 4");
	for (int s = 0; s < 3; s++)
		for (int mode = 0; mode < 2; mode++)
			if ((!only_size || only_size == sizes[s]) &&
			    (only_ring < 0 || only_ring == mode))
				run(sizes[s], mode, n, ntypes, &h);
	wl_checksum(h);
	wl_finish();
	return 0;
}
