/* Fixture for check-layering.sh: format/ may include the public header
 * and the C library. */
#include "gcheap.h"
#include <stdint.h>
