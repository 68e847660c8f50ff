/* runtime/export.c: the live export of the stats (gc_export_start, or
 * GCHEAP_EXPORT=1|<ms>): a file per process in a private per-user
 * directory, mapped shared, rewritten under a sequence lock after every
 * cycle (the collector's cycle hook wakes the exporter thread) and on a
 * timer, removed at exit. Layout and reader rules: format/export.h.
 *
 * exporter.lock guards the state below; the thread sleeps on
 * exporter.cond. The file is only written by the exporter thread (and by
 * gc_export_start once, before the thread exists). */
#include "format/export.h"

#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
	gc_mutex lock;
	pthread_cond_t cond;
	export_file *file;       /* the mapping, or NULL */
	char path[PATH_MAX + 64];
	uint64_t interval_ns;
	bool running;            /* the thread exists */
	bool stop;
	bool kick;               /* a cycle ended */
	bool atexit_done;
	uintptr_t gen;           /* bumped by stop, so a late thread quits */
} exporter = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
              .cond = PTHREAD_COND_INITIALIZER};

bool runtime_export_dir(char *buf, size_t n)
{
	const char *d = options_.export_dir;
	int len;
	if (d && *d)
		len = snprintf(buf, n, "%s", d);
	else
		len = snprintf(buf, n, "/tmp/gcheap-%u", (unsigned)geteuid());
	return len >= 0 && (size_t)len < n && (size_t)len <= EXPORT_DIR_MAX;
}

/* An error found under exporter.lock, reported after it is dropped (the
 * error handler may call gc_export_start or gc_export_stop). */
typedef struct export_err {
	gc_status code;
	char msg[PATH_MAX + 160];
} export_err;

static PRINTF_LIKE(3, 4) bool fail(export_err *e, gc_status code,
                                   const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* Create the directory, or check that it is ours and private. */
static bool check_dir(const char *dir, export_err *e)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return fail(e, GCHEAP_ERR_ARG, "gc_export_start: cannot "
		            "create %s: %s", dir, strerror(errno));
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode))
		return fail(e, GCHEAP_ERR_ARG, "gc_export_start: %s is not a "
		            "directory", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return fail(e, GCHEAP_ERR_ARG, "gc_export_start: %s is not "
		            "private to uid %u (owner %u, mode %03o)", dir,
		            (unsigned)geteuid(), (unsigned)st.st_uid,
		            (unsigned)(st.st_mode & 0777));
	return true;
}

/* Remove the files of processes that are gone (or whose pid was reused:
 * the start time differs). Only files we own. */
static void clean_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == (long)getpid())
			continue;
		char path[PATH_MAX + 64];
		int len = snprintf(path, sizeof(path), "%s/%s", dir,
		                   e->d_name);
		if (len < 0 || (size_t)len >= sizeof(path))
			continue;
		bool dead = kill((pid_t)pid, 0) && errno == ESRCH;
		if (!dead) {
			int fd = open(path, O_RDONLY | O_NOFOLLOW);
			export_file h;
			if (fd < 0)
				continue;
			ssize_t n = pread(fd, &h, offsetof(export_file, stats),
			                  0);
			close(fd);
			dead = n == (ssize_t)offsetof(export_file, stats) &&
			       h.magic == EXPORT_MAGIC && h.start_ticks &&
			       h.start_ticks != export_start_ticks(pid);
		}
		if (dead && export_file_is_ours(path))
			unlink(path);
	}
	closedir(d);
}

/* Write s into f (a seqlock: readers retry while seq is odd). */
static void publish_stats(export_file *f, const gc_stats *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	afetch_add((atomic_word *)&f->seq, 1); /* odd: writing */
	f->updated_ns = (uint64_t)ts.tv_sec * 1000000000u +
	                (uint64_t)ts.tv_nsec;
	memcpy(&f->stats, s, sizeof(*s));
	astore_rel((atomic_word *)&f->seq, f->seq + 1);
}

static void publish(export_file *f)
{
	gc_stats s;

	gc_read_stats(&s, sizeof(s));
	publish_stats(f, &s);
}

static void cycle_hook(void)
{
	mutex_lock(&exporter.lock);
	exporter.kick = true;
	pthread_cond_signal(&exporter.cond);
	mutex_unlock(&exporter.lock);
}

static void *exporter_main(void *arg)
{
	uintptr_t gen = (uintptr_t)arg;

	sys_thread_name("export");
	mutex_lock(&exporter.lock);
	while (!exporter.stop && exporter.gen == gen) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t t = (uint64_t)ts.tv_nsec + exporter.interval_ns;
		ts.tv_sec += (time_t)(t / 1000000000u);
		ts.tv_nsec = (long)(t % 1000000000u);
		while (!exporter.kick && !exporter.stop &&
		       mutex_cond_timedwait(&exporter.cond, &exporter.lock,
		                            &ts) != ETIMEDOUT)
			;
		exporter.kick = false;
		if (exporter.stop || exporter.gen != gen || !exporter.file)
			break;
		export_file *f = exporter.file;
		mutex_unlock(&exporter.lock);
		publish(f);
		mutex_lock(&exporter.lock);
	}
	exporter.running = false;
	pthread_cond_broadcast(&exporter.cond);
	mutex_unlock(&exporter.lock);
	return NULL;
}

static void remove_file_locked(void)
{
	mutex_assert_held(&exporter.lock);
	if (!exporter.file)
		return;
	gcstats_set_hook(NULL);
	unlink(exporter.path);
	/* The mapping stays: a late publish() may still write to it. */
	exporter.file = NULL;
}

static void at_exit(void)
{
	/* A child of fork() runs it too when it calls exit() (after a
	 * failed exec, say): the file is the parent's, and the lock may be
	 * held by the parent's export thread, which the child has not. */
	if (aload(&runtime_.forked))
		return;
	mutex_lock(&exporter.lock);
	exporter.stop = true;
	remove_file_locked();
	pthread_cond_broadcast(&exporter.cond);
	mutex_unlock(&exporter.lock);
}

static void read_comm(char *buf, size_t n)
{
	FILE *f = fopen("/proc/self/comm", "r");
	buf[0] = 0;
	if (!f)
		return;
	if (fgets(buf, (int)n, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* Create and map the file; caller holds exporter.lock, and reports *e
 * after dropping it. */
/* first: the first snapshot, read before exporter.lock was taken (in
 * verify mode gc_read_stats stops the world, which must not wait for a
 * thread that waits for this lock). */
static bool open_file(export_err *e, const gc_stats *first)
{
	char dir[PATH_MAX];

	mutex_assert_held(&exporter.lock);
	if (!runtime_export_dir(dir, sizeof(dir)))
		return fail(e, GCHEAP_ERR_ARG, "gc_export_start: the export "
		            "directory's path is over %d bytes: %.64s...",
		            (int)EXPORT_DIR_MAX, dir);
	if (!check_dir(dir, e))
		return false;
	clean_stale(dir);
	snprintf(exporter.path, sizeof(exporter.path), "%s/%ld", dir,
	         (long)getpid());
	int fd = -1;
	for (int tries = 0; tries < 2 && fd < 0; tries++) {
		fd = open(exporter.path, O_RDWR | O_CREAT | O_EXCL |
		          O_NOFOLLOW | O_CLOEXEC, 0600);
		/* Our pid's file: left by a dead process with this pid
		 * (anything else by that name is left alone). */
		if (fd < 0 && errno == EEXIST &&
		    export_file_is_ours(exporter.path))
			unlink(exporter.path);
	}
	if (fd < 0 || fchmod(fd, 0600) ||
	    ftruncate(fd, (off_t)sizeof(export_file))) {
		fail(e, GCHEAP_ERR_ARG, "gc_export_start: cannot create %s: "
		     "%s", exporter.path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(exporter.path);
		}
		return false;
	}
	void *m = mmap(NULL, sizeof(export_file), PROT_READ | PROT_WRITE,
	               MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		unlink(exporter.path);
		return fail(e, GCHEAP_ERR_NOMEM, "gc_export_start: cannot map "
		            "%s", exporter.path);
	}
	export_file *f = m;
	f->version = EXPORT_VERSION;
	f->header_size = offsetof(export_file, stats);
	f->pid = getpid();
	f->uid = (uint32_t)geteuid();
	f->stats_size = sizeof(gc_stats);
	f->start_ticks = export_start_ticks((long)getpid());
	f->interval_ns = exporter.interval_ns;
	read_comm(f->comm, sizeof(f->comm));
	publish_stats(f, first);
	/* Last: a reader that sees the magic sees a whole first snapshot. */
	astore_rel((atomic_word *)&f->magic, (uintptr_t)EXPORT_MAGIC);
	exporter.file = f;
	return true;
}

static gc_status start(unsigned interval_ms)
{
	gc_stats first;

	gc_read_stats(&first, sizeof(first));
	mutex_lock(&exporter.lock);
	exporter.interval_ns = (uint64_t)(interval_ms ? interval_ms : 1000) *
	                       1000000u;
	if (!exporter.file) {
		/* Wait out a thread that is still quitting; it may stop the
		 * world (verify mode), so an attached caller counts as
		 * blocked meanwhile. */
		gc_thread *me = thread_current;
		/* Until no thread runs with the lock held: while the lock was
		 * dropped to leave the blocking region, another caller may
		 * have started one (and a third stopped it again). */
		while (!exporter.file && exporter.running) {
			if (me) {
				mutex_unlock(&exporter.lock);
				runtime_blocking_begin(me);
				mutex_lock(&exporter.lock);
			}
			while (exporter.running)
				mutex_cond_wait(&exporter.cond, &exporter.lock);
			if (me) {
				mutex_unlock(&exporter.lock);
				runtime_blocking_end(me);
				mutex_lock(&exporter.lock);
			}
		}
		if (exporter.file) {
			/* Another thread started it meanwhile. */
			exporter.file->interval_ns = exporter.interval_ns;
			pthread_cond_signal(&exporter.cond);
			mutex_unlock(&exporter.lock);
			return GCHEAP_OK;
		}
		export_err e;
		if (!open_file(&e, &first)) {
			mutex_unlock(&exporter.lock);
			runtime_error(e.code, "%s", e.msg);
			return e.code;
		}
		exporter.stop = false;
		exporter.gen++;
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (sys_thread_create(&t, &a, exporter_main,
		                      (void *)exporter.gen) == 0)
			exporter.running = true;
		pthread_attr_destroy(&a);
		gcstats_set_hook(cycle_hook);
		if (!exporter.atexit_done && atexit(at_exit) == 0)
			exporter.atexit_done = true;
	} else {
		exporter.file->interval_ns = exporter.interval_ns;
		pthread_cond_signal(&exporter.cond);
	}
	mutex_unlock(&exporter.lock);
	return GCHEAP_OK;
}

gc_status gc_export_start(unsigned interval_ms)
{
	gc_status st = gc_init();
	if (st != GCHEAP_OK)
		return st;
	int cs = cancel_off(); /* it opens files under its lock (lock.h) */
	st = start(interval_ms);
	cancel_restore(cs);
	return st;
}

void gc_export_stop(void)
{
	/* The exporter may stop the world (verify mode): count as blocked
	 * while waiting for it. */
	bool attached = thread_current != NULL;
	if (attached)
		gc_blocking_begin();
	int cs = cancel_off(); /* it unlinks under its lock (lock.h) */
	mutex_lock(&exporter.lock);
	exporter.stop = true;
	remove_file_locked();
	pthread_cond_broadcast(&exporter.cond);
	while (exporter.running)
		mutex_cond_wait(&exporter.cond, &exporter.lock);
	mutex_unlock(&exporter.lock);
	cancel_restore(cs);
	if (attached)
		gc_blocking_end();
}

void export_from_env(void)
{
	unsigned ms = options_.export_ms;

	if (ms)
		start(ms > 1 ? ms : 0);
}
