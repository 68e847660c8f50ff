/* Fixture for check-layering.sh: a measurement header reaching into the
 * library (measure/ may include the C library only). */
#include "alloc/sys/atomic.h"
