/* tests/abi/include-cycle-fixture-headers/runtime/c.h: see a.h. */
#include "../runtime/a.h"
