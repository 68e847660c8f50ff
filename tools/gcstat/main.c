/* tools/gcstat/main.c: gcstat's command line.
 *
 *   gcstat [--json]                      processes that export stats
 *   gcstat [--json] PID                  one process: summary, classes
 *   gcstat [--json] -i [1s] [-n N] PID   a row per interval (1 s)
 *   gcstat [--json] dump [--top N] FILE  a heap dump's analysis
 *   gcstat [--json] dump --path ADDR|TYPE FILE  a shortest root path
 *   gcstat [--json] diff [--top N] A B   what grew from dump A to B
 *   gcstat [--json] dump PID             ask a process for a dump
 *   gcstat profile PID [-o FILE]         ask a process for its heap
 *                                        profile (pprof format)
 *   gcstat profile DUMP [-o FILE]        the heap profile a dump holds
 * A process that does not export is asked to (runtime/attach.c).
 *   gcstat [--json] mmu [-w 1ms,...] FILE  minimum mutator utilization
 *                                        from a gctrace file
 *   gcstat plot trace FILE | live PID | heapmap DUMP | mmu FILE
 *               [-o OUT.svg]
 *
 * See docs/tools.md. Exit status 0 on success, 1 on any error (one line
 * on stderr), 2 on a usage error. */
#include "format/export.h"
#include "format/heapdump.h"
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void print_usage(FILE *f)
{
	fprintf(f,
	        "usage: gcstat [--json]                 list processes\n"
	        "       gcstat [--json] PID             summary of one\n"
	        "       gcstat [--json] -i [1s] [-n N] PID  a row per "
	        "interval\n"
	        "       gcstat [--json] dump [--top N] FILE\n"
	        "       gcstat [--json] dump --path ADDR|TYPE FILE\n"
	        "       gcstat [--json] diff [--top N] A B\n"
	        "       gcstat profile PID|DUMP [-o FILE.pb.gz]\n"
	        "       gcstat [--json] mmu [-w 1ms,10ms,100ms] FILE\n"
	        "       gcstat plot trace FILE | live PID [-d 10s] [-i "
	        "100ms] | heapmap DUMP | mmu FILE [-o OUT.svg]\n"
	        "       gcstat --version | --help\n");
}

/* A usage error: the usage on stderr, exit status 2. */
static int usage(void)
{
	print_usage(stderr);
	return 2;
}

/* A positive decimal number (a pid, a count), nothing after it. */
static bool parse_positive(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0 || errno == ERANGE)
		return false;
	*out = v;
	return true;
}

/* The positive number s, or 0 if it is not one. */
static long positive(const char *s)
{
	long v;
	return parse_positive(s, &v) ? v : 0;
}

/* True if an argument after argv[j] is not an option or an option's
 * value: then argv[j] (after -i) is the interval, not the pid. */
static bool positional_after(int argc, char **argv, int j)
{
	for (int k = j + 1; k < argc; k++) {
		if (!strcmp(argv[k], "-n") || !strcmp(argv[k], "--top") ||
		    !strcmp(argv[k], "-i") || !strcmp(argv[k], "--path") ||
		    !strcmp(argv[k], "-o"))
			k++;
		else if (argv[k][0] != '-')
			return true;
	}
	return false;
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
	/* `gcstat mmu ...` or `gcstat --json mmu ...`: its own options. */
	if (argc > 1 && !strcmp(argv[1], "mmu"))
		return gcs_cmd_mmu(argc - 2, argv + 2, false);
	if (argc > 2 && !strcmp(argv[1], "--json") && !strcmp(argv[2], "mmu"))
		return gcs_cmd_mmu(argc - 3, argv + 3, true);
	const char *cmd = NULL, *arg = NULL, *arg2 = NULL, *path = NULL;
	const char *out = NULL;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "-i")) {
			/* The interval is optional: `-i PID` is every 1 s. */
			interval = 1000000000ull;
			if (i + 1 < argc && argv[i + 1][0] != '-' &&
			    positional_after(argc, argv, i + 1) &&
			    !gcs_parse_duration(argv[++i], &interval))
				return gcs_error("bad interval %s (try 1s, "
				                 "500ms)", argv[i]);
		} else if (!strcmp(a, "-n") && i + 1 < argc) {
			count = positive(argv[++i]);
			if (count <= 0)
				return gcs_error("bad count %s", argv[i]);
		} else if (!strcmp(a, "--top") && i + 1 < argc) {
			long t = positive(argv[++i]);
			if (t <= 0)
				return gcs_error("bad --top %s", argv[i]);
			top = (size_t)t;
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			out = argv[++i];
		} else if (!strcmp(a, "--path") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("gcstat %d.%d.%d (gcheap; export format %d, "
			       "heap dump format %d)\n", GCHEAP_VERSION_MAJOR,
			       GCHEAP_VERSION_MINOR, GCHEAP_VERSION_PATCH,
			       EXPORT_VERSION, HEAPDUMP_VERSION);
			return 0;
		} else if (a[0] == '-' && a[1]) {
			return usage();
		} else if (!cmd) {
			cmd = a;
		} else if (!arg) {
			arg = a;
		} else if (!arg2) {
			arg2 = a;
		} else {
			return usage();
		}
	}
	if ((path && (!cmd || strcmp(cmd, "dump"))) ||
	    (out && (!cmd || strcmp(cmd, "profile"))))
		return usage();
	if (!cmd)
		return interval ? usage() : gcs_cmd_list(json);
	long pid;
	char got[PATH_MAX + 64];
	if (!strcmp(cmd, "profile")) {
		struct stat st;
		if (!arg || arg2)
			return usage();
		/* A pid (and no file of that name): ask it for its profile;
		 * otherwise a heap dump holding one. */
		if (parse_positive(arg, &pid) && stat(arg, &st))
			return gcs_cmd_profile(pid, out);
		return gcs_cmd_profile_dump(arg, out);
	}
	if (!strcmp(cmd, "dump")) {
		struct stat st;
		if (!arg || arg2)
			return usage();
		/* A pid (and no file of that name): ask it for a dump. */
		if (parse_positive(arg, &pid) && stat(arg, &st)) {
			if (gcs_request(pid, "dump", got, sizeof(got)))
				return 1;
			fprintf(stderr, "%s: pid %ld wrote %s\n", gcstat_prog,
			        pid, got);
			arg = got;
		}
		if (path)
			return gcs_cmd_path(arg, path, json);
		return gcs_cmd_dump(arg, top, json);
	}
	if (!strcmp(cmd, "diff")) {
		if (!arg || !arg2)
			return usage();
		return gcs_cmd_diff(arg, arg2, top, json);
	}
	if (arg || !parse_positive(cmd, &pid))
		return gcs_error("%s is neither a pid nor a command (dump, "
		                 "diff, profile, mmu, plot)", cmd);
	if (interval)
		return gcs_cmd_interval(pid, interval, count, json);
	return gcs_cmd_summary(pid, json);
}
