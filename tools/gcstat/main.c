/* tools/gcstat/main.c: gcstat's command line.
 *
 *   gcstat [--json]                      processes that export stats
 *   gcstat [--json] PID                  one process: summary, classes
 *   gcstat [--json] -i 1s [-n N] PID     a row per interval
 *   gcstat [--json] dump [--top N] FILE  a heap dump's analysis
 *   gcstat plot trace FILE | live PID | heapmap DUMP [-o OUT.svg]
 *
 * See docs/tools.md. Exit status 0 on success, 1 on any error (one line
 * on stderr), 2 on a usage error. */
#include "tools/gcstat/gcstat.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr,
	        "usage: gcstat [--json]                 list processes\n"
	        "       gcstat [--json] PID             summary of one\n"
	        "       gcstat [--json] -i 1s [-n N] PID  a row per interval\n"
	        "       gcstat [--json] dump [--top N] FILE\n"
	        "       gcstat plot trace FILE | live PID [-d 10s] [-i "
	        "100ms] | heapmap DUMP [-o OUT.svg]\n");
	return 2;
}

static bool parse_pid(const char *s, long *pid)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0)
		return false;
	*pid = v;
	return true;
}

int main(int argc, char **argv)
{
	bool json = false;
	uint64_t interval = 0;
	long count = 0;
	size_t top = 20;
	int i = 1;

	if (argc > 1 && !strcmp(argv[1], "plot"))
		return gcs_cmd_plot(argc - 2, argv + 2);
	const char *cmd = NULL, *arg = NULL;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "-i") && i + 1 < argc) {
			if (!gcs_parse_duration(argv[++i], &interval))
				return gcs_error("bad interval %s (try 1s, "
				                 "500ms)", argv[i]);
		} else if (!strcmp(a, "-n") && i + 1 < argc) {
			count = strtol(argv[++i], NULL, 10);
			if (count <= 0)
				return gcs_error("bad count %s", argv[i]);
		} else if (!strcmp(a, "--top") && i + 1 < argc) {
			long t = strtol(argv[++i], NULL, 10);
			if (t <= 0)
				return gcs_error("bad --top %s", argv[i]);
			top = (size_t)t;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			return 0;
		} else if (a[0] == '-' && a[1]) {
			return usage();
		} else if (!cmd) {
			cmd = a;
		} else if (!arg) {
			arg = a;
		} else {
			return usage();
		}
	}
	if (!cmd)
		return interval ? usage() : gcs_cmd_list(json);
	if (!strcmp(cmd, "dump")) {
		if (!arg)
			return usage();
		return gcs_cmd_dump(arg, top, json);
	}
	long pid;
	if (arg || !parse_pid(cmd, &pid))
		return gcs_error("%s is neither a pid nor a command (dump, "
		                 "plot)", cmd);
	if (interval)
		return gcs_cmd_interval(pid, interval, count, json);
	return gcs_cmd_summary(pid, json);
}
