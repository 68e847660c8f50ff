/* Fixture for check-layering.sh: bench/ may include the public header,
 * measure/, its own files and headers from outside the tree (bdwgc's
 * gc.h). */
#include "benchutil.h"
#include "measure/mmu.h"
#include <gc.h>
#include <gcheap.h>
