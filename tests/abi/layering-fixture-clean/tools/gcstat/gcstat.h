/* Fixture for check-layering.sh: tools/ may include format/, the public
 * header and its own files. */
#include "format/heapdump.h"
#include "gcheap.h"
#include <atomic_ops.h>
