/* Fixture for check-layering.sh: a tool including its own header by both
 * paths. */
#include "gcstat.h"
#include "tools/gcstat/gcstat.h"
