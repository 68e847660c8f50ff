/* bench/wl-mark.c: mark throughput. A complete binary tree of 64-byte
 * objects (two child pointers and six words), depth 23 by default: 16.8 M
 * objects, 1 GiB, built with the collector disabled; then --cycles full
 * collections (default 3), each timed (wall, and the CPU time of the
 * whole process, every collector thread included). Reports the best
 * cycle's MB marked per second of wall time and per CPU second (MB/s per
 * worker: the CPU the collection burned). The heap is one big live
 * structure, wide enough for parallel markers. The collection includes
 * what each collector does with the world stopped after the mark (gcheap
 * and Go also wait for the sweep). Options: --depth N, --cycles C,
 * --shuffle 1 (the nodes' addresses in random order: no locality for
 * a depth-first marker to find; the checksum differs). */
#include "wl.h"

typedef struct mobj {
	struct mobj *a, *b;
	uint64_t v[6];
} mobj;

static wl_type *mobj_t;

static mobj *build(int d, uint64_t *id)
{
	mobj *a = NULL, *b = NULL, *o;

	if (d > 0) {
		a = build(d - 1, id);
		b = build(d - 1, id);
	}
	o = wl_alloc(sizeof *o, mobj_t);
	if (!WL_ZEROED || a) {
		wl_write(&o->a, a);
		wl_write(&o->b, b);
	}
	o->v[0] = (*id)++;
	return o;
}

/* The same complete tree, its nodes' addresses in random order: node i
 * of the heap order (children 2i+1, 2i+2) is the allocation shuffled to
 * place i, so parent and children lie on unrelated spans. */
static mobj *build_shuffled(int d, uint64_t *id)
{
	size_t n = ((size_t)2 << d) - 1;
	mobj **v = malloc(n * sizeof(*v));
	uint64_t x = 88172645463325252ULL;

	if (!v)
		wl_die("out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = wl_alloc(sizeof(mobj), mobj_t);
	for (size_t i = n - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t j = (size_t)(x % (i + 1));
		mobj *t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (size_t i = n; i-- > 0;) {
		if (2 * i + 2 < n || !WL_ZEROED) {
			wl_write(&v[i]->a, 2 * i + 2 < n ? v[2 * i + 1] : NULL);
			wl_write(&v[i]->b, 2 * i + 2 < n ? v[2 * i + 2] : NULL);
		}
		v[i]->v[0] = (*id)++;
	}
	mobj *root = v[0];
	free(v);
	return root;
}

static uint64_t walk(const mobj *o)
{
	uint64_t h = o->v[0];

	wl_poll();
	if (o->a)
		h += walk(o->a) * 3 + walk(o->b);
	return h;
}

int main(int argc, char **argv)
{
	static const size_t offs[] = {0, 8};
	uint64_t id = 0, h = WL_FOLD_INIT;
	double best_wall = 0, best_cpu = 0, mb;
	int depth, cycles;
	mobj *root;

	wl_args(argc, argv);
	wl_init();
	depth = (int)wl_arg("depth", wl_quick() ? 16 : 23);
	cycles = (int)wl_arg("cycles", 3);
	if (depth < 1 || depth > 28 || cycles < 1)
		wl_die("bad --depth or --cycles");
	mobj_t = wl_type_new("mobj", sizeof(mobj), offs, 2);

	wl_gc_off();
	root = wl_arg("shuffle", 0) ? build_shuffled(depth, &id)
	                            : build(depth, &id);
	wl_gc_on();
	mb = (double)id * sizeof(mobj) / 1e6;
	for (int c = 0; c < cycles; c++) {
		double w0 = wl_now_ns(), c0 = wl_cpu_s(), w, cpu;

		wl_collect();
		w = (wl_now_ns() - w0) / 1e9;
		cpu = wl_cpu_s() - c0;
		if (c == 0 || w < best_wall)
			best_wall = w;
		if (c == 0 || cpu < best_cpu)
			best_cpu = cpu;
	}
	if (best_cpu <= 0)
		best_cpu = 1e-6;
	if (WL_HAS_GC) {
		wl_figure("live_mb", mb);
		wl_figure("marked_mb", wl_marked_bytes() / 1e6);
		wl_figure("collect_s", best_wall);
		wl_figure("mb_per_s", mb / best_wall);
		wl_figure("mb_per_cpu_s", mb / best_cpu);
	}
	h = wl_fold(h, walk(root));
	h = wl_fold(h, id);
	wl_sink = root;
	wl_checksum(h);
	wl_finish();
	return 0;
}
