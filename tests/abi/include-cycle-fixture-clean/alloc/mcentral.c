/* See mspan.h. */
#include "alloc/mcentral.h"
