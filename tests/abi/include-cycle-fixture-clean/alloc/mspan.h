/* tests/abi/include-cycle-fixture-clean/alloc/: alloc/'s order in small,
 * mspan < mheap < mcentral < mcache, with a diamond (mcache reaches mspan
 * two ways) and each .c including its own header: what
 * tools/check-include-cycles.sh must accept (the
 * include-cycles-accepts-clean-fixture test). Never compiled. */
#include <stdint.h>
