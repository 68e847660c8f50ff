/* See mspan.h. */
#include "alloc/mheap.h"
#include "mspan.h"
