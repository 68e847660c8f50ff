/* tests/abi/include-cycle-fixture/alloc/mcentral.h: see mheap.h. */
#include "alloc/mspan.h"
