/* runtime/options.c: options from the environment, read once at start-up
 * into the one options struct (alloc/sys/options.h), and the GOGC percent
 * into mgc_.percent. The library's only reader of the environment
 * (tools/check-getenv.sh):
 *
 *   GCHEAP_GC=<percent>|off   the GOGC percent (default 100)
 *   GCHEAP_MARKERS=<n>        mark workers, 1..GCHEAP_MAX_MARKERS
 *                             (default: one per CPU online)
 *   GCHEAP_GENERATIONAL=1|0   minor marks between major ones
 *                             (gc_set_generational; default 0)
 *   GCHEAP_DEBUG=k=v,...      verification modes, in GODEBUG's style:
 *     checkmark=1     re-mark with the world stopped after each mark and
 *                     abort on anything reachable left unmarked
 *     stoptheworld=1  run whole cycles with the world stopped
 *     poison=1        fill freed objects with 0xdb at sweep
 *     invalidptr=N    a precise slot pointing into the heap but into a
 *                     span not in use (1, the default) or also at a free
 *                     object (2) is fatal; 0 ignores them; others are
 *                     reported
 *     verify=1        verify the whole heap around each cycle
 *     zombie=1        marked-but-free objects are fatal at sweep (always
 *                     on; accepted for GODEBUG familiarity)
 *     stress=N        start a cycle once N bytes are allocated since the
 *                     last start (at a slow path, one at a time; k and
 *                     m suffixes, as GCHEAP_MEMPROFILERATE's)
 *     gctrace=1       a line per cycle on stderr
 *     conservative=0  do not scan native stacks
 *     hugepages=1     heap arenas ask for transparent huge pages
 *                     (madvise MADV_HUGEPAGE; default 0)
 *     prefault=0      do not fault the heap's memory in ahead of use on
 *                     the background sweeper (default 1)
 *     types=1         record each small object's type for heap dumps
 *     stopwarn=MS     warn on stderr when a thread has held up a stop of
 *                     the world (or a handshake) for MS ms (default
 *                     1000; 0 never)
 *     rootcheck=1|2   report objects that only unregistered globals
 *                     point to (runtime/rootcheck.c): 1 warns once per
 *                     object and keeps it, 2 aborts
 *     greentea=1|0    mark small scan objects a span at a time (Go's
 *                     Green Tea, gc/mgcspanq.h; the default) or an
 *                     object at a time
 *     forcegc=S       a heap S seconds without a cycle gets one, and
 *                     its free memory goes back to the OS (default 120,
 *                     Go's forcegcperiod; 0 never)
 *   checkmark and rootcheck turn type recording on (their messages name
 *   types) unless types=0 is given.
 *   GCHEAP_MEMLIMIT=<bytes>[B|KiB|MiB|GiB|TiB]|off  the memory limit, in
 *                     GOMEMLIMIT's syntax (gc_set_memory_limit)
 *   GCHEAP_EXPORT=1|<ms>  publish the stats for gcstat (runtime/export.c)
 *   GCHEAP_EXPORT_DIR=<dir>  where (default /tmp/gcheap-<uid>)
 *   GCHEAP_FINALIZERS=thread|manual  who runs finalizers (finalizer.c)
 * Numbers are decimal. Unknown keys and bad values (not a number, out of
 * range) are reported with one line on stderr each and ignored: the
 * default stays. */
#include "runtime/runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STOPWARN_MS 1000
#define DEFAULT_FORCEGC_S 120 /* Go's forcegcperiod */

static bool types_given;

/* A decimal number, and with bytes, an optional k or m (KiB, MiB). Not
 * strtoull's base 0: "010" is ten, not eight, and "0x20" is no number. */
static bool parse_number(const char *v, uintptr_t *out, bool bytes)
{
	char *end;

	if (*v < '0' || *v > '9') /* strtoull takes "-1" and spaces */
		return false;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno == ERANGE)
		return false;
	unsigned shift = 0;
	if (bytes && (*end == 'k' || *end == 'K'))
		shift = 10, end++;
	else if (bytes && (*end == 'm' || *end == 'M'))
		shift = 20, end++;
	if (*end || n > (UINTPTR_MAX >> shift))
		return false;
	*out = (uintptr_t)(n << shift);
	return true;
}

bool runtime_parse_uint(const char *v, uintptr_t *out)
{
	return parse_number(v, out, false);
}

bool runtime_parse_bytes(const char *v, uintptr_t *out)
{
	return parse_number(v, out, true);
}

/* The keys GCHEAP_DEBUG knows (set_option sets each). */
static const char *const debug_keys[] = {
	"checkmark", "stoptheworld", "poison", "invalidptr", "verify",
	"stress", "gctrace", "zombie", "types", "rootcheck", "conservative",
	"hugepages", "prefault", "stopwarn", "greentea", "forcegc",
};

static void set_option(const char *k, const char *v)
{
	sys_options *d = &options_;
	uintptr_t n = 0;
	size_t i = 0;

	while (i < ARRAY_LEN(debug_keys) && strcmp(k, debug_keys[i]))
		i++;
	if (i == ARRAY_LEN(debug_keys)) {
		fprintf(stderr, "gcheap: GCHEAP_DEBUG: unknown option "
		        "\"%s=%s\": ignored\n", k, v);
		return;
	}
	bool bytes = !strcmp(k, "stress");
	if (!(bytes ? runtime_parse_bytes(v, &n) : runtime_parse_uint(v, &n)) ||
	    (!strcmp(k, "stopwarn") && n > UINT_MAX) ||
	    (!strcmp(k, "forcegc") && n > UINT_MAX / 1000) ||
	    ((!strcmp(k, "rootcheck") || !strcmp(k, "invalidptr")) &&
	     n > 2)) {
		fprintf(stderr, "gcheap: GCHEAP_DEBUG: bad value %s=%s (not "
		        "a number, or out of range): %s keeps its default\n",
		        k, v, k);
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
		d->record_types = n, types_given = true;
	else if (!strcmp(k, "rootcheck") && n <= 2)
		d->rootcheck = (unsigned)n;
	else if (!strcmp(k, "conservative"))
		d->conservative = n;
	else if (!strcmp(k, "hugepages"))
		d->hugepages = n;
	else if (!strcmp(k, "prefault"))
		d->prefault = n;
	else if (!strcmp(k, "stopwarn"))
		d->stopwarn_ms = (unsigned)n;
	else if (!strcmp(k, "greentea"))
		d->greentea = n;
	else if (!strcmp(k, "forcegc"))
		astore(&d->forcegc_ms, n * 1000);
	else /* a key in debug_keys that this chain forgot */
		fatal("GCHEAP_DEBUG: known key %s is set nowhere", k);
}

/* GOMEMLIMIT's syntax: a byte count with an optional unit B, KiB, MiB,
 * GiB or TiB, or "off". False if v is none of these or does not fit. */
bool runtime_parse_memlimit(const char *v, size_t *out)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	char *end;

	if (!strcmp(v, "off")) {
		*out = 0;
		return true;
	}
	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno == ERANGE)
		return false;
	unsigned shift = 0;
	if (*end) {
		size_t u = 0;
		while (u < 5 && strcmp(end, units[u]))
			u++;
		if (u == 5)
			return false;
		shift = 10 * (unsigned)u;
	}
	if (n > (SIZE_MAX >> shift))
		return false;
	*out = (size_t)(n << shift);
	return true;
}

static void parse_memlimit(void)
{
	const char *v = getenv("GCHEAP_MEMLIMIT");
	size_t n;

	if (!v)
		return;
	if (runtime_parse_memlimit(v, &n))
		astore(&mheap_.limit, n);
	else
		fprintf(stderr, "gcheap: GCHEAP_MEMLIMIT=%s is not a byte "
		        "count (with an optional unit B, KiB, MiB, GiB or "
		        "TiB, as GOMEMLIMIT) or off: no limit\n", v);
}

/* GCHEAP_EXPORT, GCHEAP_EXPORT_DIR and GCHEAP_FINALIZERS. */
static void parse_runtime_vars(void)
{
	const char *e = getenv("GCHEAP_EXPORT");
	uintptr_t ms;

	if (e && (!runtime_parse_uint(e, &ms) || ms > UINT_MAX))
		fprintf(stderr, "gcheap: GCHEAP_EXPORT=%s is not 0, 1 or an "
		        "interval in ms: not exporting\n", e);
	else if (e)
		options_.export_ms = (unsigned)ms;
	const char *d = getenv("GCHEAP_EXPORT_DIR");
	if (d && *d) {
		options_.export_dir = strdup(d);
		if (!options_.export_dir)
			fprintf(stderr, "gcheap: GCHEAP_EXPORT_DIR: no memory "
			        "to read its %zu bytes: ignored\n", strlen(d));
	}
	const char *f = getenv("GCHEAP_FINALIZERS");
	bool manual = f && !strcmp(f, "manual");
	if (f && !manual && strcmp(f, "thread"))
		fprintf(stderr, "gcheap: GCHEAP_FINALIZERS=%s is not thread "
		        "or manual: keeping thread\n", f);
	options_.finalizers_manual = manual;
}

static void parse_debug(void)
{
	const char *env = getenv("GCHEAP_DEBUG");
	if (!env)
		return;
	/* The whole value, however long: nothing is cut. */
	char *buf = strdup(env);
	if (!buf) {
		fprintf(stderr, "gcheap: GCHEAP_DEBUG: no memory to read its "
		        "%zu bytes: ignored\n", strlen(env));
		return;
	}
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
	free(buf);
	if ((options_.checkmark || options_.rootcheck) && !types_given)
		astore(&options_.record_types, 1);
}

/* GCHEAP_MEMPROFILERATE and GCHEAP_ATTACH (runtime/mprof.c, attach.c). */
static void parse_profiling(void)
{
	const char *v = getenv("GCHEAP_MEMPROFILERATE");
	uintptr_t n = MEMPROFILERATE_DEFAULT;

	if (v && (!runtime_parse_bytes(v, &n) || n > ((uintptr_t)1 << 40))) {
		fprintf(stderr, "gcheap: GCHEAP_MEMPROFILERATE=%s is not a "
		        "number of bytes (0 off, 1 every allocation, at most "
		        "2^40): keeping %d\n", v, MEMPROFILERATE_DEFAULT);
		n = MEMPROFILERATE_DEFAULT;
	}
	options_.memprofilerate = n;
	const char *e = getenv("GCHEAP_ATTACH");
	if (e && strcmp(e, "0") && strcmp(e, "1"))
		fprintf(stderr, "gcheap: GCHEAP_ATTACH=%s is not 0 or 1: "
		        "answering requests\n", e);
	options_.attach_off = e && !strcmp(e, "0");
}

/* GCHEAP_MARKERS, into mgc_.markers (read by mgc_init). */
static void parse_markers(void)
{
	const char *mk = getenv("GCHEAP_MARKERS");
	if (mk) {
		uintptr_t n;
		if (runtime_parse_uint(mk, &n) && n >= 1 &&
		    n <= GCHEAP_MAX_MARKERS)
			mgc_.markers = (unsigned)n;
		else
			fprintf(stderr, "gcheap: GCHEAP_MARKERS=%s is not a "
			        "number of workers in 1..%d: keeping one per "
			        "CPU\n", mk, GCHEAP_MAX_MARKERS);
	}
}

void runtime_parse_options(void)
{
	options_.invalidptr = 1;
	astore(&options_.conservative, 1);
	options_.greentea = true;
	options_.prefault = true;
	options_.stopwarn_ms = DEFAULT_STOPWARN_MS;
	astore(&options_.forcegc_ms, DEFAULT_FORCEGC_S * 1000);
	astore(&mgc_.percent, 100);

	const char *g = getenv("GCHEAP_GC");
	if (g) {
		uintptr_t n;
		if (!strcmp(g, "off"))
			astore(&mgc_.percent, (uintptr_t)-1);
		else if (runtime_parse_uint(g, &n) && n <= INT_MAX)
			astore(&mgc_.percent, n);
		else
			fprintf(stderr, "gcheap: GCHEAP_GC=%s is not a percent "
			        "or off: keeping 100\n", g);
	}
	const char *gen = getenv("GCHEAP_GENERATIONAL");
	if (gen) {
		if (!strcmp(gen, "1") || !strcmp(gen, "0"))
			astore(&mgc_.gen_want, gen[0] == '1');
		else
			fprintf(stderr, "gcheap: GCHEAP_GENERATIONAL=%s is not "
			        "1 or 0: keeping 0\n", gen);
	}
	parse_markers();
	parse_profiling();
	parse_debug();
	parse_runtime_vars();
	parse_memlimit();
}
