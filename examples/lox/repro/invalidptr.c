/* examples/lox/repro/invalidptr.c: a precise root that points at a freed
 * object. With neighbours alive (the span stays in use) invalidptr=2
 * stops it; once the span is empty and back in the heap, nothing does,
 * although docs/design.md says invalidptr=1 makes "a precise pointer into
 * a span that is not in use fatal".
 *   cc -I include repro/invalidptr.c build/libgcheap.a -latomic_ops \
 *      -lpthread && GCHEAP_DEBUG=invalidptr=2 ./a.out 64 {0|1} */
#include <gcheap.h>
#include <stdio.h>
#include <stdlib.h>
static void *root[2];
int main(int argc, char **argv)
{
	size_t size = strtoul(argv[1], NULL, 0);
	int neighbours = atoi(argv[2]);
	gc_thread_attach();
	gc_set_conservative_stacks(0);
	gc_add_roots(root, 2);
	char *keep = gc_alloc(size, NULL);
	uintptr_t h = (uintptr_t)gc_alloc(size, NULL) ^ 0x5555;
	if (neighbours)
		gc_write(&root[1], keep);
	keep = NULL;
	for (int i = 0; i < 3; i++)
		gc_collect();
	void *p = (void *)(h ^ 0x5555);
	printf("%p: gc_size %zu, neighbour kept: %d\n", p, gc_size(p),
	       neighbours);
	gc_write(&root[0], p);
	gc_collect();
	printf("no error\n");
	return 0;
}
