/* Fixture for check-layering.sh: an example's own header. */
#include <gcheap.h>
