/* Fixture for check-layering.sh: gc/ may include alloc/ and itself. */
#include "alloc/mheap.h"
#include "mgc_inline.h"
int gcmark_fixture(void);
