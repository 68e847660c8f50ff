/* Fixture for check-layering.sh: a benchmark's own header. */
#include <stdio.h>
