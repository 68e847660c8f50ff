/* tools/gcstat/live.c: the live side of gcstat: list the processes that
 * export their stats, print one process's summary and size-class table,
 * or a row per interval (jstat -gc style; a refreshing screen on a
 * terminal). Files are read under the sequence lock of format/export.h,
 * with libatomic_ops' acquire loads called directly (gcstat is not the
 * library and includes none of its headers; the writer's release store
 * is libatomic_ops' too); a file of another user, or in a directory that
 * is not private, is refused; stale files (dead or reused pids) are
 * removed. */
#include "format/export.h"
#include "tools/gcstat/gcstat.h"

#include <atomic_ops.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An acquire load of a word of the shared file. */
static uint64_t load_acq(const volatile void *p)
{
	return (uint64_t)AO_load_acquire((const volatile AO_t *)p);
}

int gcs_export_dir(char *buf, size_t n)
{
	const char *d = getenv("GCHEAP_EXPORT_DIR");
	int len;
	if (d && *d)
		len = snprintf(buf, n, "%s", d);
	else
		len = snprintf(buf, n, "/tmp/gcheap-%u", (unsigned)geteuid());
	if (len < 0 || (size_t)len >= n || len > EXPORT_DIR_MAX)
		return gcs_error("GCHEAP_EXPORT_DIR is over %d bytes, as the "
		                 "library refuses too", (int)EXPORT_DIR_MAX);
	return 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum { LIVE_OK, LIVE_STALE, LIVE_ERROR, LIVE_MISSING };

/* Check the directory; 0 or 1 after printing the error. */
static int check_dir(const char *dir, bool quiet)
{
	struct stat st;

	if (lstat(dir, &st)) {
		if (quiet)
			return 1;
		return gcs_error("%s: %s (no gcheap process exports its stats; "
		                 "run it with GCHEAP_EXPORT=1)", dir,
		                 strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return gcs_error("%s is not a directory", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return gcs_error("%s is not private to uid %u (owner %u, mode "
		                 "%03o): refusing to read it", dir,
		                 (unsigned)geteuid(), (unsigned)st.st_uid,
		                 (unsigned)(st.st_mode & 0777));
	return 0;
}

/* Read pid's file into out. LIVE_STALE: the process is gone (the file is
 * removed). LIVE_ERROR: err says why. */
static int read_file(const char *dir, long pid, gcs_snapshot *out, char *err,
                     size_t errlen)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%ld", dir, pid);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			snprintf(err, errlen, "pid %ld does not export gcheap "
			         "stats (no %s; run it with GCHEAP_EXPORT=1)",
			         pid, path);
			return LIVE_MISSING;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return LIVE_ERROR;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s is not a regular file", path);
		return LIVE_ERROR;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		snprintf(err, errlen, "%s belongs to uid %u, not to you (uid "
		         "%u): refusing to read it", path, (unsigned)st.st_uid,
		         (unsigned)geteuid());
		return LIVE_ERROR;
	}
	if ((size_t)st.st_size < offsetof(export_file, stats) + 8) {
		close(fd);
		snprintf(err, errlen, "%s is too short (%lld bytes) to be a "
		         "gcheap export file", path, (long long)st.st_size);
		return LIVE_ERROR;
	}
	size_t size = (size_t)st.st_size;
	const export_file *f = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (f == MAP_FAILED) {
		snprintf(err, errlen, "%s: cannot map: %s", path,
		         strerror(errno));
		return LIVE_ERROR;
	}
	int r = LIVE_OK;
	if (f->magic != EXPORT_MAGIC || f->version != EXPORT_VERSION ||
	    f->header_size != offsetof(export_file, stats)) {
		snprintf(err, errlen, "%s is not a gcheap export file of "
		         "version %d", path, EXPORT_VERSION);
		r = LIVE_ERROR;
		goto out;
	}
	bool dead = kill((pid_t)pid, 0) && errno == ESRCH;
	if (dead || (f->start_ticks &&
	             f->start_ticks != export_start_ticks(pid))) {
		snprintf(err, errlen, "pid %ld is gone or was reused (removed "
		         "its stale stats file)", pid);
		unlink(path);
		r = LIVE_STALE;
		goto out;
	}
	size_t ssize = f->stats_size & ~(size_t)7; /* whole words */
	if (ssize > sizeof(gc_stats))
		ssize = sizeof(gc_stats);
	if (ssize > size - offsetof(export_file, stats))
		ssize = size - offsetof(export_file, stats);
	memset(out, 0, sizeof(*out));
	for (int tries = 0;; tries++) {
		uint64_t s1 = load_acq(&f->seq);
		if (!(s1 & 1)) {
			/* Acquire loads: none may move below the second
			 * read of seq. */
			const uint64_t *src = (const uint64_t *)&f->stats;
			uint64_t *dst = (uint64_t *)&out->st;
			for (size_t w = 0; w < ssize / 8; w++)
				dst[w] = load_acq(&src[w]);
			out->updated_ns = load_acq(&f->updated_ns);
			memcpy(out->comm, f->comm, sizeof(out->comm));
			if (load_acq(&f->seq) == s1)
				break;
		}
		if (tries > 10000) {
			snprintf(err, errlen, "%s: the writer never finishes "
			         "an update", path);
			r = LIVE_ERROR;
			goto out;
		}
		sched_yield();
	}
	out->comm[sizeof(out->comm) - 1] = 0;
	out->pid = pid;
out:
	munmap((void *)f, size);
	return r;
}

int gcs_read_live(long pid, gcs_snapshot *out)
{
	char dir[PATH_MAX], err[PATH_MAX + 256];

	if (gcs_export_dir(dir, sizeof(dir)))
		return 1;
	if (kill((pid_t)pid, 0) && errno == ESRCH) {
		/* Still clean up after it (its export file only). */
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%ld", dir, pid);
		if (export_file_is_ours(path))
			unlink(path);
		return gcs_error("no process with pid %ld", pid);
	}
	struct stat st;
	if (!lstat(dir, &st) && check_dir(dir, false))
		return 1;
	int r = LIVE_MISSING;
	if (!lstat(dir, &st))
		r = read_file(dir, pid, out, err, sizeof(err));
	if (r == LIVE_MISSING) {
		/* Not exporting: ask it to start (runtime/attach.c). */
		char path[PATH_MAX + 64];
		if (gcs_request(pid, "export", path, sizeof(path)))
			return 1;
		r = read_file(dir, pid, out, err, sizeof(err));
	}
	if (r != LIVE_OK)
		return gcs_error("%s", err);
	return 0;
}

static void json_summary(const gcs_snapshot *s, FILE *f);

int gcs_cmd_list(bool json)
{
	char dir[PATH_MAX], err[PATH_MAX + 256];
	int n = 0;

	if (gcs_export_dir(dir, sizeof(dir)))
		return 1;
	if (check_dir(dir, true)) {
		struct stat st;
		if (lstat(dir, &st) == 0)
			return check_dir(dir, false);
		if (json)
			printf("[]\n");
		else
			printf("no gcheap process exports its stats (run one "
			       "with GCHEAP_EXPORT=1)\n");
		return 0;
	}
	DIR *d = opendir(dir);
	if (!d)
		return gcs_error("%s: %s", dir, strerror(errno));
	struct dirent *e;
	if (json)
		printf("[");
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (pid > 0 && !strcmp(end, ".lock")) {
			/* A request's lock (request.c), left for good: gone
			 * with its process (no request to it can succeed). */
			if (kill((pid_t)pid, 0) && errno == ESRCH)
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (*end || pid <= 0)
			continue;
		gcs_snapshot s;
		int r = read_file(dir, pid, &s, err, sizeof(err));
		if (r == LIVE_STALE || r == LIVE_MISSING)
			continue;
		if (r == LIVE_ERROR) {
			fprintf(stderr, "%s: %s\n", gcstat_prog, err);
			continue;
		}
		char b1[32], b2[32], b3[32];
		if (json) {
			printf("%s", n ? ",\n " : "");
			json_summary(&s, stdout);
		} else {
			if (!n)
				printf("%8s  %-16s %9s %11s %11s %7s %7s\n",
				       "PID", "PROGRAM", "UPTIME", "HEAP-INUSE",
				       "LIVE", "CYCLES", "GC-CPU");
			printf("%8ld  %-16s %8.1fs %11s %11s %7llu %6.2f%%\n",
			       pid, s.comm, s.st.uptime_ns / 1e9,
			       gcs_bytes(b1, sizeof(b1), s.st.heap_inuse),
			       gcs_bytes(b2, sizeof(b2), s.st.heap_live),
			       (unsigned long long)s.st.gc_cycles,
			       100 * s.st.gc_cpu_fraction);
			(void)b3;
		}
		n++;
	}
	closedir(d);
	if (json)
		printf("]\n");
	else if (!n)
		printf("no gcheap process exports its stats (run one with "
		       "GCHEAP_EXPORT=1)\n");
	return 0;
}

/* Pause percentiles over the ring. */
static void pause_stats(const gc_stats *st, uint64_t *p50, uint64_t *p99)
{
	uint64_t v[GCHEAP_PAUSE_RING];
	size_t n = st->pause_count < GCHEAP_PAUSE_RING ?
	           (size_t)st->pause_count : GCHEAP_PAUSE_RING;

	memcpy(v, st->pause_ring, n * sizeof(*v));
	*p50 = gcs_percentile(v, n, 50);
	*p99 = gcs_percentile(v, n, 99);
}

static const char *phase_names[GCHEAP_NPHASES] = {
	"sweep_term", "mark", "mark_term", "sweep"};

#define U(x) ((unsigned long long)(x))

static void json_summary(const gcs_snapshot *s, FILE *f)
{
	const gc_stats *st = &s->st;
	uint64_t p50, p99;

	pause_stats(st, &p50, &p99);
	fprintf(f, "{\"pid\": %ld, \"program\": ", s->pid);
	gcs_json_str(f, s->comm, strlen(s->comm));
	fprintf(f, ", \"stats_version\": %u, \"uptime_ns\": %llu, "
	        "\"heap_inuse\": %llu, \"heap_alloc\": %llu, "
	        "\"heap_objects\": %llu, \"heap_live\": %llu, "
	        "\"heap_marked\": %llu, \"heap_goal\": %llu, "
	        "\"alloc_bytes\": %llu, \"alloc_objects\": %llu, "
	        "\"frees\": %llu, \"os_committed\": %llu, "
	        "\"os_reserved\": %llu, \"os_released\": %llu, "
	        "\"gc_cycles\": %llu, \"gc_cpu_fraction\": %.6f, "
	        "\"pause_count\": %llu, \"pause_p50_ns\": %llu, "
	        "\"pause_p99_ns\": %llu, \"pause_max_ns\": %llu, "
	        "\"pause_total_ns\": %llu, \"assist_ns\": %llu, "
	        "\"mark_worker_ns\": %llu, \"sweeper_ns\": %llu",
	        st->version, U(st->uptime_ns), U(st->heap_inuse),
	        U(st->heap_alloc), U(st->heap_objects), U(st->heap_live),
	        U(st->heap_marked), U(st->heap_goal), U(st->alloc_bytes),
	        U(st->alloc_objects), U(st->frees), U(st->os_committed),
	        U(st->os_reserved), U(st->os_released), U(st->gc_cycles),
	        st->gc_cpu_fraction, U(st->pause_count), U(p50), U(p99),
	        U(st->pause_max_ns), U(st->pause_total_ns), U(st->assist_ns),
	        U(st->mark_worker_ns), U(st->sweeper_ns));
	if (st->version >= 3)
		fprintf(f, ", \"stop_count\": %llu, \"ttsp_max_ns\": %llu, "
		        "\"ttsp_max_tid\": %d, \"ttsp_total_ns\": %llu, "
		        "\"alloc_layout_writes\": %llu", U(st->stop_count),
		        U(st->ttsp_max_ns), (int)st->ttsp_max_tid,
		        U(st->ttsp_total_ns), U(st->alloc_layout_writes));
	fprintf(f, ", \"phases\": {");
	for (int i = 0; i < GCHEAP_NPHASES; i++)
		fprintf(f, "%s\"%s\": {\"last_ns\": %llu, \"total_ns\": %llu}",
		        i ? ", " : "", phase_names[i], U(st->phase_last_ns[i]),
		        U(st->phase_total_ns[i]));
	fprintf(f, "}, \"classes\": [");
	int n = 0;
	for (uint32_t c = 0; c < st->nclasses && c < GCHEAP_MAX_CLASSES;
	     c++) {
		const struct gc_class_stats *k = &st->classes[c];
		if (!k->spans && !k->mallocs)
			continue;
		fprintf(f, "%s{\"class\": %u, \"size\": %llu, \"spans\": %llu, "
		        "\"span_bytes\": %llu, \"objects\": %llu, "
		        "\"bytes\": %llu, \"free_bytes\": %llu, "
		        "\"mallocs\": %llu, \"frees\": %llu}", n++ ? ", " : "",
		        c, U(k->size), U(k->spans), U(k->span_bytes),
		        U(k->objects), U(k->bytes), U(k->free_bytes),
		        U(k->mallocs), U(k->frees));
	}
	fprintf(f, "]}");
}

static void print_summary(const gcs_snapshot *s)
{
	const gc_stats *st = &s->st;
	char a[32], b[32], c[32], d[32];
	uint64_t p50, p99;

	pause_stats(st, &p50, &p99);
	uint64_t now = realtime_ns();
	printf("pid %ld (%s): up %.2f s, gcheap stats v%u, updated %.2f s "
	       "ago\n", s->pid, s->comm, st->uptime_ns / 1e9, st->version,
	       now > s->updated_ns ? (now - s->updated_ns) / 1e9 : 0.0);
	printf("  heap in use   %10s in %llu spans (%s free in committed "
	       "arenas)\n", gcs_bytes(a, sizeof(a), st->heap_inuse),
	       U(st->spans_inuse), gcs_bytes(b, sizeof(b), st->heap_free));
	printf("  objects       %10s in %llu objects (%llu allocated, "
	       "%llu freed since start)\n",
	       gcs_bytes(a, sizeof(a), st->heap_alloc), U(st->heap_objects),
	       U(st->alloc_objects), U(st->frees));
	printf("  live          %10s now, %s marked by the last cycle\n",
	       gcs_bytes(a, sizeof(a), st->heap_live),
	       gcs_bytes(b, sizeof(b), st->heap_marked));
	printf("  goal          %10s\n", gcs_bytes(a, sizeof(a),
	                                           st->heap_goal));
	printf("  OS            %10s committed of %s reserved, %s "
	       "released, %s metadata\n",
	       gcs_bytes(a, sizeof(a), st->os_committed),
	       gcs_bytes(b, sizeof(b), st->os_reserved),
	       gcs_bytes(c, sizeof(c), st->os_released),
	       gcs_bytes(d, sizeof(d), st->metadata_bytes));
	printf("  cycles        %10llu, GC CPU %.2f%% (%u CPUs, %u mark "
	       "workers)\n", U(st->gc_cycles), 100 * st->gc_cpu_fraction,
	       st->ncpu, st->mark_workers);
	printf("  pauses        %10llu: p50 %s, p99 %s, max %s, total %s\n",
	       U(st->pause_count), gcs_dur(a, sizeof(a), p50),
	       gcs_dur(b, sizeof(b), p99),
	       gcs_dur(c, sizeof(c), st->pause_max_ns),
	       gcs_dur(d, sizeof(d), st->pause_total_ns));
	if (st->version >= 3 && st->stop_count)
		printf("  safepoints    %10llu stops: time-to-safepoint max %s "
		       "(thread %d), last cycle %s (thread %d)\n",
		       U(st->stop_count), gcs_dur(a, sizeof(a),
		                                 st->ttsp_max_ns),
		       (int)st->ttsp_max_tid,
		       gcs_dur(b, sizeof(b), st->last_ttsp_ns),
		       (int)st->last_ttsp_tid);
	printf("  last cycle    sweep-term %s, mark %s, mark-term %s, sweep "
	       "%s\n", gcs_dur(a, sizeof(a), st->phase_last_ns[0]),
	       gcs_dur(b, sizeof(b), st->phase_last_ns[1]),
	       gcs_dur(c, sizeof(c), st->phase_last_ns[2]),
	       gcs_dur(d, sizeof(d), st->phase_last_ns[3]));
	printf("  CPU           assist %s, mark workers %s, sweeper %s\n",
	       gcs_dur(a, sizeof(a), st->assist_ns),
	       gcs_dur(b, sizeof(b), st->mark_worker_ns),
	       gcs_dur(c, sizeof(c), st->sweeper_ns));
	printf("\n  %5s %7s %7s %10s %11s %11s %6s\n", "class", "size",
	       "spans", "objects", "bytes", "free", "frag");
	for (uint32_t k = 0; k < st->nclasses && k < GCHEAP_MAX_CLASSES;
	     k++) {
		const struct gc_class_stats *x = &st->classes[k];
		if (!x->spans)
			continue;
		char sz[16];
		if (k)
			snprintf(sz, sizeof(sz), "%llu", U(x->size));
		else
			snprintf(sz, sizeof(sz), "large");
		printf("  %5u %7s %7llu %10llu %11s %11s %5.1f%%\n", k, sz,
		       U(x->spans), U(x->objects),
		       gcs_bytes(a, sizeof(a), x->bytes),
		       gcs_bytes(b, sizeof(b), x->free_bytes),
		       x->span_bytes ? 100.0 * x->free_bytes / x->span_bytes
		                     : 0.0);
	}
}

int gcs_cmd_summary(long pid, bool json)
{
	gcs_snapshot s;

	if (gcs_read_live(pid, &s))
		return 1;
	if (json) {
		json_summary(&s, stdout);
		printf("\n");
	} else {
		print_summary(&s);
	}
	return 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u),
	                      (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int gcs_cmd_interval(long pid, uint64_t interval_ns, long count, bool json)
{
	bool screen = !json && isatty(STDOUT_FILENO);
	gcs_snapshot prev = {0}, s;
	char a[32], b[32], c[32], d[32], e[32];

	for (long i = 0; count <= 0 || i < count; i++) {
		if (i)
			sleep_ns(interval_ns);
		if (gcs_read_live(pid, &s))
			return i ? 0 : 1; /* the process went away */
		const gc_stats *st = &s.st;
		/* The first row covers the time since the process started
		 * (as vmstat's first line does), the others an interval. */
		const gc_stats *p0 = i ? &prev.st : NULL;
		double dt = (st->uptime_ns - (p0 ? p0->uptime_ns : 0)) / 1e9;
		double rate = dt > 0 ? (st->alloc_bytes -
		              (p0 ? p0->alloc_bytes : 0)) / dt : 0;
		uint64_t npause = st->pause_count -
		                  (p0 ? p0->pause_count : 0);
		uint64_t maxp = p0 ? 0 : st->pause_max_ns;
		for (uint64_t k = 0; k < npause && k < GCHEAP_PAUSE_RING; k++) {
			uint64_t v = st->pause_ring[(st->pause_count - 1 - k) %
			                            GCHEAP_PAUSE_RING];
			maxp = v > maxp ? v : maxp;
		}
		if (json) {
			printf("{\"pid\": %ld, \"uptime_ns\": %llu, "
			       "\"heap_inuse\": %llu, \"heap_live\": %llu, "
			       "\"heap_goal\": %llu, \"heap_objects\": %llu, "
			       "\"alloc_rate\": %.0f, \"gc_cycles\": %llu, "
			       "\"pauses\": %llu, \"pause_max_ns\": %llu, "
			       "\"gc_cpu_fraction\": %.6f}\n", pid,
			       U(st->uptime_ns), U(st->heap_inuse),
			       U(st->heap_live), U(st->heap_goal),
			       U(st->heap_objects), rate, U(st->gc_cycles),
			       U(npause), U(maxp), st->gc_cpu_fraction);
		} else if (screen) {
			printf("\033[H\033[2J");
			print_summary(&s);
			printf("\n  every %s; allocating %s/s; %llu pauses %s"
			       ", longest %s (Ctrl-C quits)\n",
			       gcs_dur(a, sizeof(a), interval_ns),
			       gcs_bytes(b, sizeof(b), rate), U(npause),
			       i ? "in the last interval" : "since start",
			       gcs_dur(c, sizeof(c), maxp));
		} else {
			if (i % 20 == 0)
				printf("%9s %10s %10s %10s %11s %7s %6s %9s "
				       "%7s\n", "UPTIME", "INUSE", "LIVE",
				       "GOAL", "ALLOC/S", "CYCLES", "PAUSES",
				       "MAXPAUSE", "GC-CPU");
			printf("%8.2fs %10s %10s %10s %11s %7llu %6llu %9s "
			       "%6.2f%%\n", st->uptime_ns / 1e9,
			       gcs_bytes(a, sizeof(a), st->heap_inuse),
			       gcs_bytes(b, sizeof(b), st->heap_live),
			       gcs_bytes(c, sizeof(c), st->heap_goal),
			       gcs_bytes(d, sizeof(d), rate), U(st->gc_cycles),
			       U(npause), gcs_dur(e, sizeof(e), maxp),
			       100 * st->gc_cpu_fraction);
		}
		fflush(stdout);
		prev = s;
	}
	return 0;
}
