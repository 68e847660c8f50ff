/* Fixture for check-layering.sh: a tool reaching into the library's
 * internals (it may include format/ and the public header only). */
#include "format/export.h"
#include "alloc/sys/atomic.h"
