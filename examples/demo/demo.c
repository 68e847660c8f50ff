/* examples/demo/demo.c: the README's demo until the toy language exists.
 * Builds a binary tree of typed nodes, some noscan strings and a few large
 * arrays on the gcheap heap, checks that everything reads back, prints the
 * heap statistics, and exits. With a path argument it also writes a
 * heap dump there for `gcstat dump` (scripts/demo does); with a second
 * argument it then waits that many milliseconds before it exits, so that
 * `gcstat PID` can look at it (run it with GCHEAP_EXPORT=1). */
#include <gcheap.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct node {
	struct node *left, *right;
	long value;
} node;

static gc_type *node_type;

static node *build(int depth, long *next)
{
	node *n = gc_alloc(sizeof(node), node_type);
	if (!n)
		return NULL;
	n->value = (*next)++;
	if (depth > 0) {
		n->left = build(depth - 1, next);
		n->right = build(depth - 1, next);
	}
	return n;
}

static long sum(const node *n)
{
	return n ? n->value + sum(n->left) + sum(n->right) : 0;
}

int main(int argc, char **argv)
{
	static const size_t node_ptrs[] = {offsetof(node, left),
	                                   offsetof(node, right)};
	gc_stats st;
	long next = 0;

	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_record_types(argc > 1); /* name every object in the dump */
	node_type = gc_type_new("node", sizeof(node), node_ptrs, 2,
	                        GCHEAP_TAIL_REPEAT);
	node *root = build(16, &next);
	long want = next * (next - 1) / 2;
	if (!root || sum(root) != want) {
		fprintf(stderr, "demo: tree checksum mismatch\n");
		return 1;
	}
	/* Strings, of which a table keeps every third (the rest is
	 * garbage: the dump's span map shows the holes). */
	static const size_t slot0[] = {0};
	gc_type *table_t = gc_type_new("string table", sizeof(char *), slot0,
	                               1, GCHEAP_TAIL_REPEAT);
	char **table = gc_alloc_array(10000 / 3 + 1, table_t);
	if (!table)
		return 1;
	for (int i = 0; i < 10000; i++) {
		char *s = gc_alloc(1 + i % 40, NULL);
		memset(s, 'a' + i % 26, i % 40);
		if (i % 3 == 0)
			gc_write(&table[i / 3], s);
	}
	for (int i = 0; i < 8; i++) {
		node **arr = gc_alloc_array(4096 * (i + 1), node_type);
		if (!arr || gc_size(arr) < 4096 * (i + 1) * sizeof(node))
			return 1;
	}
	gc_read_stats(&st, sizeof(st));
	printf("gcheap %s demo: a tree of %ld nodes, checksum %ld ok\n",
	       gc_version(), next, sum(root));
	printf("  allocated   %10" PRIu64 " objects, %" PRIu64 " bytes\n",
	       st.alloc_objects, st.alloc_bytes);
	printf("  tiny        %10" PRIu64 " objects packed\n",
	       st.tiny_allocs);
	printf("  large       %10" PRIu64 " objects, %" PRIu64 " bytes\n",
	       st.large_objects, st.large_bytes);
	printf("  heap in use %10" PRIu64 " bytes in %" PRIu64 " spans\n",
	       st.heap_inuse, st.spans_inuse);
	printf("  OS          %10" PRIu64 " bytes committed of %" PRIu64
	       " reserved (%" PRIu64 " arenas), %" PRIu64 " metadata\n",
	       st.os_committed, st.os_reserved, st.arenas,
	       st.metadata_bytes);
	if (argc > 1 && gc_heap_dump(argv[1]) != GCHEAP_OK)
		return 1;
	if (!table[9999 / 3] || table[9999 / 3][0] != 'a' + 9999 % 26)
		return 1; /* keeps the table alive until here */
	if (argc > 2) {
		long ms = atol(argv[2]);
		struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
		gc_blocking_begin(); /* no heap use while it waits */
		nanosleep(&ts, NULL);
		gc_blocking_end();
	}
	gc_thread_detach();
	return 0;
}
