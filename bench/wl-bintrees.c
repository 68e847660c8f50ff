/* bench/wl-bintrees.c: binary-trees, the Benchmarks Game algorithm: a
 * stretch tree of depth max+1 built and checked, a long-lived tree of
 * depth max kept to the end, then for depth 4, 6, .., max: 2^(max-d+4)
 * trees of depth d built bottom-up, checked (node count) and dropped.
 * Nodes are 16 bytes, two pointers. --threads T splits every depth's
 * trees between T mutator threads. Stresses: the small-object fast path
 * and the sweep of almost wholly dead spans (the malloc twins free each
 * tree node by node). Options: --depth N (default 21), --threads T. */
#include "wl.h"

typedef struct node {
	struct node *l, *r;
} node;

static wl_type *node_t;
static int max_depth, min_depth = 4, nthreads = 1;

static node *bottom_up(int d)
{
	node *l = NULL, *r = NULL, *n;

	if (d > 0) {
		l = bottom_up(d - 1);
		r = bottom_up(d - 1);
	}
	n = wl_alloc(sizeof *n, node_t);
	if (WL_ZEROED && !l)
		return n;
	wl_write(&n->l, l);
	wl_write(&n->r, r);
	return n;
}

static long check(const node *n)
{
	wl_poll();
	if (!n->l)
		return 1;
	return 1 + check(n->l) + check(n->r);
}

static void tree_free(node *n)
{
	if (n->l) {
		tree_free(n->l);
		tree_free(n->r);
	}
	wl_free(n);
}

/* checks[depth index][thread] */
static long checks[32][8];

struct job {
	int id;
	pthread_t t;
};

static void *mutator(void *arg)
{
	struct job *j = arg;

	if (j->id)
		wl_thread_begin();
	for (int d = min_depth; d <= max_depth; d += 2) {
		long iters = 1L << (max_depth - d + min_depth);
		long lo = iters * j->id / nthreads;
		long hi = iters * (j->id + 1) / nthreads;
		long c = 0;

		for (long i = lo; i < hi; i++) {
			node *t = bottom_up(d);

			c += check(t);
			if (WL_HAS_FREE)
				tree_free(t);
		}
		checks[(d - min_depth) / 2][j->id] = c;
	}
	if (j->id)
		wl_thread_end();
	return NULL;
}

int main(int argc, char **argv)
{
	static const size_t offs[] = {0, 8};
	struct job jobs[8];
	uint64_t h = WL_FOLD_INIT;
	node *stretch, *longlived;
	long c;

	wl_args(argc, argv);
	wl_init();
	max_depth = (int)wl_arg("depth", wl_quick() ? 12 : 21);
	nthreads = (int)wl_arg("threads", 1);
	if (max_depth < min_depth + 2)
		max_depth = min_depth + 2;
	if (max_depth > 30 || nthreads < 1 || nthreads > 8)
		wl_die("bad --depth or --threads");
	node_t = wl_type_new("node", sizeof(node), offs, 2);

	stretch = bottom_up(max_depth + 1);
	c = check(stretch);
	printf("stretch tree of depth %d\t check: %ld\n", max_depth + 1, c);
	h = wl_fold(h, (uint64_t)c);
	if (WL_HAS_FREE)
		tree_free(stretch);
	stretch = NULL;

	longlived = bottom_up(max_depth);
	for (int i = 0; i < nthreads; i++) {
		jobs[i].id = i;
		if (i && pthread_create(&jobs[i].t, NULL, mutator, &jobs[i]))
			wl_die("pthread_create");
	}
	mutator(&jobs[0]);
	wl_blocking_begin();
	for (int i = 1; i < nthreads; i++)
		pthread_join(jobs[i].t, NULL);
	wl_blocking_end();
	for (int d = min_depth; d <= max_depth; d += 2) {
		long sum = 0;

		for (int i = 0; i < nthreads; i++)
			sum += checks[(d - min_depth) / 2][i];
		printf("%ld\t trees of depth %d\t check: %ld\n",
		       1L << (max_depth - d + min_depth), d, sum);
		h = wl_fold(h, (uint64_t)sum);
	}
	c = check(longlived);
	printf("long lived tree of depth %d\t check: %ld\n", max_depth, c);
	h = wl_fold(h, (uint64_t)c);
	wl_sink = longlived;
	wl_checksum(h);
	wl_finish();
	return 0;
}
