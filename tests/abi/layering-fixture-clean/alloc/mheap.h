/* Fixture for check-layering.sh: an allocator header. */
#include "alloc/sys/lock.h"
#include "format/heapdump.h"
int mheap_fixture(void);
