/* Fixture for check-layering.sh: the collector reaching up into runtime/. */
#include "alloc/mheap.h"
#include "runtime/thread.h"
