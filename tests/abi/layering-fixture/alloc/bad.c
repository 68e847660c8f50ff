/* Fixture for check-layering.sh: the allocator reaching up into gc/. */
#include "gc/mgc.h"
