/* Fixture for check-layering.sh: gc/mgc.h reached through ../. */
#include "../../gc/mgc.h"
