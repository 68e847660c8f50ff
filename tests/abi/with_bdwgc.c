/* tests/abi/with_bdwgc.c: gcheap.h and bdwgc's <gc.h> in one translation
 * unit (gc.h first here, gcheap.h first in with_bdwgc_order.c) and in one
 * program, under -Werror: no macro, type or symbol may clash. Each heap
 * hands out a few zeroed blocks. */
#include <gc.h>

#include "gcheap.h"

#include <stdio.h>

int with_bdwgc_gcheap_first(void); /* with_bdwgc_order.c */

static int all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

int main(void)
{
	unsigned char *a, *b;
	unsigned v;

	GC_INIT();
	a = GC_MALLOC(64);
	if (a == NULL || !all_zero(a, 64)) {
		fprintf(stderr, "GC_MALLOC failed\n");
		return 1;
	}
	if (gc_thread_attach() != GCHEAP_OK) {
		fprintf(stderr, "gc_thread_attach: %s\n",
			gc_strerror(gc_last_error()));
		return 1;
	}
	b = gc_alloc(64, NULL);
	if (b == NULL || !all_zero(b, 64)) {
		fprintf(stderr, "gc_alloc failed\n");
		return 1;
	}
	if (with_bdwgc_gcheap_first() != 0)
		return 1;
	if (gc_thread_detach() != GCHEAP_OK) {
		fprintf(stderr, "gc_thread_detach failed\n");
		return 1;
	}
	GC_gcollect();
	v = GC_get_version();
	printf("bdwgc %u.%u.%u and gcheap %s side by side\n", v >> 16,
	       (v >> 8) & 0xff, v & 0xff, gc_version());
	return 0;
}
