/* Fixture for check-layering.sh: a benchmark reaching into the runtime
 * (benchmarks may include the public header and bench/ only). */
#include "benchutil.h"
#include <runtime/runtime.h>
