/* tests/abi/getenv-fixture/runtime/export.c: a library file that reads
 * the environment itself, as runtime/export.c once did: what
 * tools/check-getenv.sh must reject (the getenv-catches-stray-read test).
 * Never compiled. */
#include <stdlib.h>

const char *fixture_export_dir(void);

const char *fixture_export_dir(void)
{
	const char *d = getenv("GCHEAP_EXPORT_DIR");
	return d ? d : "/tmp";
}
