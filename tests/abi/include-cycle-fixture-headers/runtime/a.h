/* tests/abi/include-cycle-fixture-headers/runtime/a.h: three headers
 * in a ring, each included a different way (a path from the top, an
 * angle include, a ../ path): what tools/check-include-cycles.sh must
 * reject (the include-cycles-catches-header-ring test). Never
 * compiled. */
#include "runtime/b.h"
