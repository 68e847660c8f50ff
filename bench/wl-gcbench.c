/* bench/wl-gcbench.c: GCBench (Ellis, Kovac, Boehm), rewritten for this
 * suite: a stretch tree of depth 18 built and dropped, a long-lived tree
 * of depth 16 and an array of 500,000 doubles kept to the end, then for
 * depth 4, 6, .., 16 as many temporary trees as make up twice the stretch
 * tree's nodes, built top-down (allocate a node, then populate its
 * children) and as many bottom-up. Nodes are 24 bytes: two pointers and
 * two ints. Stresses: allocation with a medium live heap (the long-lived
 * tree, 1.5 MB, and the 4 MB pointer-free array) and the collector's
 * young-garbage case. --quick shrinks every depth by 6. */
#include "wl.h"

typedef struct gnode {
	struct gnode *left, *right;
	int i, j;
} gnode;

static wl_type *gnode_t;
static int stretch_depth = 18, long_depth = 16, min_depth = 4,
           max_depth = 16;
static long array_size = 500000;

static long tree_size(int d)
{
	return (1L << (d + 1)) - 1;
}

static gnode *new_node(gnode *l, gnode *r)
{
	gnode *n = wl_alloc(sizeof *n, gnode_t);

	if (!WL_ZEROED || l) {
		wl_write(&n->left, l);
		wl_write(&n->right, r);
	}
	n->i = 0;
	n->j = 0;
	return n;
}

/* Top-down: the node exists before its children. */
static void populate(int d, gnode *n)
{
	if (d <= 0)
		return;
	d--;
	wl_write(&n->left, new_node(NULL, NULL));
	wl_write(&n->right, new_node(NULL, NULL));
	populate(d, n->left);
	populate(d, n->right);
}

/* Bottom-up: the children exist before their parent. */
static gnode *make_tree(int d)
{
	gnode *l, *r;

	if (d <= 0)
		return new_node(NULL, NULL);
	l = make_tree(d - 1);
	r = make_tree(d - 1);
	return new_node(l, r);
}

static void tree_free(gnode *n)
{
	if (n->left) {
		tree_free(n->left);
		tree_free(n->right);
	}
	wl_free(n);
}

static long walk(const gnode *n, long *sum)
{
	wl_poll();
	if (!n)
		return 0;
	*sum += n->i + n->j;
	return 1 + walk(n->left, sum) + walk(n->right, sum);
}

static void time_construction(int d)
{
	long iters = 2 * tree_size(stretch_depth) / tree_size(d);

	for (long i = 0; i < iters; i++) {
		gnode *t = new_node(NULL, NULL);

		populate(d, t);
		if (WL_HAS_FREE)
			tree_free(t);
	}
	for (long i = 0; i < iters; i++) {
		gnode *t = make_tree(d);

		if (WL_HAS_FREE)
			tree_free(t);
	}
}

int main(int argc, char **argv)
{
	static const size_t offs[] = {0, 8};
	uint64_t h = WL_FOLD_INIT;
	gnode *t, *longlived;
	double *array, sum = 0;
	long n, isum = 0;

	wl_args(argc, argv);
	wl_init();
	if (wl_quick()) {
		stretch_depth -= 6, long_depth -= 6, max_depth -= 6;
		array_size /= 64;
	}
	gnode_t = wl_type_new("gnode", sizeof(gnode), offs, 2);

	t = make_tree(stretch_depth);
	n = walk(t, &isum);
	h = wl_fold(h, (uint64_t)n);
	if (WL_HAS_FREE)
		tree_free(t);
	t = NULL;

	longlived = new_node(NULL, NULL);
	populate(long_depth, longlived);
	array = wl_alloc((size_t)array_size * sizeof(double), NULL);
	for (long i = 0; i < array_size; i++)
		array[i] = 0;
	for (long i = 1; i < array_size / 2; i++)
		array[i] = 1.0 / (double)i;

	for (int d = min_depth; d <= max_depth; d += 2)
		time_construction(d);

	if (array[1000] != 1.0 / 1000)
		wl_die("the array was lost");
	n = walk(longlived, &isum);
	if (n != tree_size(long_depth))
		wl_die("the long-lived tree was damaged");
	for (long i = 0; i < array_size; i++)
		sum += array[i];
	h = wl_fold(h, (uint64_t)n);
	h = wl_fold(h, (uint64_t)isum);
	h = wl_fold(h, (uint64_t)(sum * 1e6));
	printf("gcbench: long-lived nodes %ld, array sum %.6f\n", n, sum);
	wl_sink = longlived;
	wl_sink = array;
	wl_checksum(h);
	wl_finish();
	return 0;
}
