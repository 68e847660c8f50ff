/* alloc/alloc.h: the allocator as seen from the layers above (gc/ and
 * runtime/). It knows spans, size classes, bitmaps, pointer maps and sweep
 * mechanics, and nothing of phases, roots, pacing or barriers. */
#ifndef GCHEAP_ALLOC_H
#define GCHEAP_ALLOC_H

#include "alloc/gctype.h"
#include "alloc/mcache.h"
#include "alloc/mcard.h"
#include "alloc/mcentral.h"
#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/sizeclasses.h"
#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"
#include "alloc/sys/lock.h"
#include "alloc/sys/options.h"
#include "alloc/sys/osmem.h"

#endif
