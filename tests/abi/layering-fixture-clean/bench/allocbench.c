/* Fixture for check-layering.sh: bench/ may include the public header,
 * its own files and headers from outside the tree (bdwgc's gc.h). */
#include "benchutil.h"
#include <gc.h>
#include <gcheap.h>
