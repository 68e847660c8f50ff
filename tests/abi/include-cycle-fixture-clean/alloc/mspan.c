/* See mspan.h. */
#include "alloc/mspan.h"
