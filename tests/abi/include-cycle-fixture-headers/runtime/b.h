/* tests/abi/include-cycle-fixture-headers/runtime/b.h: see a.h. */
#include <runtime/c.h>
