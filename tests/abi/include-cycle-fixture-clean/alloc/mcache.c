/* See mspan.h. */
#include "alloc/mcache.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
