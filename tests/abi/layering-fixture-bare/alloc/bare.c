/* Fixture for check-layering.sh: gc/mgc.h named without its directory. */
#include "mgc.h"
