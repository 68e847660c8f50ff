/* tests/gc/precise_fixture.c: the fixture of the precise-mode collector
 * tests, included after test_harness.c (not a test of its own): a 32-byte
 * node type with two pointers, a 24-byte type with one, a repeating
 * pointer type, and start(debug), which sets GCHEAP_DEBUG, attaches with
 * conservative stacks off (C locals are no roots), no finalizer thread and
 * collection disabled: only the cycles a test asks for run. */
typedef struct node {
	struct node *a, *b;
	uint64_t key, pad;
} node;

static gc_type *t_node; /* {ptr a, ptr b, word key, word pad}: 32 bytes */
static gc_type *t_one;  /* one pointer and two words: 24 bytes */
static gc_type *t_ptr;  /* one pointer, repeating */

static H_UNUSED void start(const char *debug)
{
	static const size_t off[] = {offsetof(node, a), offsetof(node, b)};
	static const size_t zero = 0;

	setenv("GCHEAP_DEBUG", debug, 1);
	sys_fatal_exit_code = 70;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_set_conservative_stacks(0);
	gc_set_finalizer_thread(0);
	gc_disable(); /* only the cycles each test asks for */
	t_node = gc_type_new("node", sizeof(node), off, 2,
	                     GCHEAP_TAIL_NOSCAN);
	t_one = gc_type_new("one", 3 * sizeof(void *), &zero, 1,
	                    GCHEAP_TAIL_NOSCAN);
	t_ptr = gc_type_new("ptr", sizeof(void *), &zero, 1,
	                    GCHEAP_TAIL_REPEAT);
	ck_assert(t_node && t_one && t_ptr);
}

static H_UNUSED node *new_node(uint64_t key)
{
	node *n = gc_alloc(sizeof(node), t_node);
	REQUIRE(n, "gc_alloc of a node failed");
	n->key = key;
	return n;
}
