/* See mspan.h. */
#include "alloc/mheap.h"
#include "alloc/mspan.h"
