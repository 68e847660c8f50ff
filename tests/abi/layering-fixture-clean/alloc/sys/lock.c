/* Fixture for check-layering.sh: includes that are all allowed in alloc/.
 * "lock.h" resolves to alloc/sys/lock.h, in this file's own directory,
 * before any runtime/lock.h. */
#include "config.h"
#include "gcheap.h"
#include "lock.h"
#include "alloc/sys/lock.h"
#include "alloc/mheap.h"
#include <stdint.h>
#include <sys/mman.h>
