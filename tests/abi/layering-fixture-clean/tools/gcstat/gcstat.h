/* Fixture for check-layering.sh: tools/ may include format/, measure/, the
 * public header and its own files. */
#include "format/heapdump.h"
#include "gcheap.h"
#include <atomic_ops.h>
#include "measure/mmu.h"
