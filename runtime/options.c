/* runtime/options.c: options from the environment, read once at start-up.
 *
 *   GCHEAP_GC=<percent>|off   the GOGC percent (default 100)
 *   GCHEAP_DEBUG=k=v,...      verification modes, in GODEBUG's style:
 *     checkmark=1     re-mark with the world stopped after each mark and
 *                     abort on anything reachable left unmarked
 *     stoptheworld=1  run whole cycles with the world stopped
 *     poison=1        fill freed objects with 0xdb at sweep
 *     invalidptr=N    a precise slot pointing into the heap but into a
 *                     span not in use (1, the default) or also at a free
 *                     object (2) is fatal; 0 ignores them
 *     verify=1        verify the whole heap around each cycle
 *     zombie=1        marked-but-free objects are fatal at sweep (always
 *                     on; accepted for GODEBUG familiarity)
 *     stress=N        start a cycle every N bytes allocated
 *     gctrace=1       a line per cycle on stderr
 *     conservative=0  do not scan native stacks
 *     types=1         record each small object's type for heap dumps
 *   GCHEAP_EXPORT=1|<ms>  publish the stats for gcstat (runtime/export.c)
 * Unknown keys are reported once on stderr and ignored. */
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_uint(const char *v, uintptr_t *out)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 0);
	if (end == v)
		return false;
	if (*end == 'k' || *end == 'K')
		n <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		n <<= 20, end++;
	if (*end)
		return false;
	*out = (uintptr_t)n;
	return true;
}

static void set_option(const char *k, const char *v)
{
	mgc_debug *d = &mgc_.debug;
	uintptr_t n = 0;

	if (!parse_uint(v, &n)) {
		fprintf(stderr, "gcheap: GCHEAP_DEBUG: bad value %s=%s\n", k,
		        v);
		return;
	}
	if (!strcmp(k, "checkmark"))
		d->checkmark = n;
	else if (!strcmp(k, "stoptheworld"))
		d->stoptheworld = n;
	else if (!strcmp(k, "poison"))
		d->poison = n;
	else if (!strcmp(k, "invalidptr"))
		d->invalidptr = n;
	else if (!strcmp(k, "verify"))
		d->verify = n;
	else if (!strcmp(k, "stress"))
		d->stress = n;
	else if (!strcmp(k, "gctrace"))
		d->gctrace = n;
	else if (!strcmp(k, "zombie"))
		(void)n; /* always checked */
	else if (!strcmp(k, "types"))
		mspan_record_types = n;
	else if (!strcmp(k, "conservative"))
		runtime_.conservative = n;
	else
		fprintf(stderr, "gcheap: GCHEAP_DEBUG: unknown option %s\n", k);
}

void runtime_parse_options(void)
{
	mgc_.debug.invalidptr = 1;
	astore(&mgc_.percent, 100);
	runtime_.conservative = true;

	const char *g = getenv("GCHEAP_GC");
	if (g) {
		uintptr_t n;
		if (!strcmp(g, "off"))
			astore(&mgc_.percent, (uintptr_t)-1);
		else if (parse_uint(g, &n) && n < 100000)
			astore(&mgc_.percent, n);
		else
			fprintf(stderr, "gcheap: GCHEAP_GC=%s is not a percent "
			        "or off\n", g);
	}
	const char *env = getenv("GCHEAP_DEBUG");
	if (!env)
		return;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			set_option(kv, "1");
			continue;
		}
		*eq = 0;
		set_option(kv, eq + 1);
	}
}
