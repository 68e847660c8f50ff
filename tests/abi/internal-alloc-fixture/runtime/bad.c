/* tests/abi/internal-alloc-fixture/runtime/bad.c: a library file that
 * allocates with gc_alloc, the new object in a C local: what
 * tools/check-internal-alloc.sh must reject (the internal-alloc-bad test).
 * Never compiled. */
#include "gcheap.h"

void *fixture_bad(const gc_type *t);

void *fixture_bad(const gc_type *t)
{
	void *a = gc_alloc(16, t);
	return a;
}
