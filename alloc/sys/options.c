/* alloc/sys/options.c: the one options struct (see options.h). Zero until
 * runtime/options.c sets its defaults and parses the environment. */
#include "alloc/sys/options.h"

sys_options options_;
