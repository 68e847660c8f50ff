/* Fixture for check-layering.sh: examples/ may include the public header
 * and its own files. */
#include "lox.h"
#include "gcheap.h"
