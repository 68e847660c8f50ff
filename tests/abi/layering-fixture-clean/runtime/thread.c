/* Fixture for check-layering.sh: runtime/ may include every layer. */
#include "include/gcheap.h"
#include "alloc/sys/lock.h"
#include "gc/mgc.h"
#include "runtime/lock.h"
#include "lock.h"
