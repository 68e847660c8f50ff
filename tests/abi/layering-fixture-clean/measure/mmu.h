/* Fixture for check-layering.sh: measure/ may include the C library. */
#include <stddef.h>
