/* tests/abi/include-cycle-fixture/alloc/mcentral.c: see mheap.h; the bare
 * name resolves next to this file. */
#include "mcentral.h"
#include "mheap.h"
