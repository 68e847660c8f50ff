/* tests/abi/include-cycle-fixture/alloc/mspan.h: see mheap.h (below
 * both, as it should be). */
#include <stdint.h>
