/* tests/abi/include-cycle-fixture/alloc/mheap.h: with mcentral.c, the
 * circle alloc/ had (the heap's header includes the centrals', the
 * centrals' code includes the heap's): what tools/check-include-cycles.sh
 * must reject (the include-cycles-catches-module-cycle test). Never
 * compiled. */
#include "alloc/mcentral.h"
