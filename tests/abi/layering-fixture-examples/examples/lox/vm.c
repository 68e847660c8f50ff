/* Fixture for check-layering.sh: an example reaching into the collector
 * (examples may include the public header and examples/ only). */
#include "lox.h"
#include "../../gc/mgc.h"
