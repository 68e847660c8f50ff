/* Fixture for check-layering.sh: a format header leaning on the library
 * (format/ may include the public header only, so that tools/ can
 * include it). */
#include "gcheap.h"
#include "alloc/sys/atomic.h"
