/* tests/abi/with_bdwgc_order.c: the other include order: gcheap.h first,
 * then bdwgc's <gc.h>. Called by with_bdwgc.c on an attached thread. */
#include "gcheap.h"

#include <gc.h>

int with_bdwgc_gcheap_first(void);

int with_bdwgc_gcheap_first(void)
{
	size_t offs[1] = {0};
	gc_type *t = gc_type_new("abi.node", 2 * sizeof(void *), offs, 1,
				 GCHEAP_TAIL_REPEAT);
	void **p, **q;

	if (t == NULL)
		return 1;
	p = gc_alloc(gc_type_size(t), t);
	q = GC_MALLOC(2 * sizeof(void *));
	if (p == NULL || q == NULL || p[0] != NULL || q[0] != NULL ||
	    p[1] != NULL || q[1] != NULL)
		return 1;
	return 0;
}
