/* tools/gcstat/util.c: gcstat's output helpers (errors, units, JSON
 * strings, durations, percentiles). */
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *gcstat_prog = "gcstat";

int gcs_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", gcstat_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

const char *gcs_root_kind(unsigned kind)
{
	static const char *const names[HD_ROOT_NKINDS] = {
		"?", "global", "frame", "stack", "register", "finalizable",
		"record", "finq"};
	return kind < HD_ROOT_NKINDS ? names[kind] : "?";
}

const char *gcs_bytes(char *buf, size_t n, double b)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%.0f B", b);
	else
		snprintf(buf, n, "%.1f %s", b, unit[u]);
	return buf;
}

const char *gcs_dur(char *buf, size_t n, double ns)
{
	if (ns < 1e3)
		snprintf(buf, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, n, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, n, "%.2f s", ns / 1e9);
	return buf;
}

void gcs_json_str(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

bool gcs_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v = strtod(s, &end);
	double mul = 1e9;

	if (end == s || !(v >= 0 && v <= 1e6)) /* NaN too */
		return false;
	if (!strcmp(end, "ms"))
		mul = 1e6;
	else if (!strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "m"))
		mul = 60e9;
	else if (*end && strcmp(end, "s"))
		return false;
	*ns = (uint64_t)(v * mul);
	return *ns > 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t gcs_percentile(uint64_t *v, size_t n, unsigned p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t k = (n * p + 99) / 100;
	return v[k ? k - 1 : 0];
}
