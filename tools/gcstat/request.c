/* tools/gcstat/request.c: asking a running process for something it was
 * not started to give (runtime/attach.c is the other side): write
 * <dir>/<pid>.request, send SIGURG, wait for the process to take the
 * request (it unlinks the file: a process without gcheap never does, and
 * SIGURG is ignored by default) and then for <dir>/<pid>.reply. The
 * usual permissions decide: kill(2) refuses another user's process, and
 * the process only reads requests from its own user's private directory.
 * Clients of one process take turns: each holds <dir>/<pid>.lock (flock)
 * from its request to its reply, since the names are the process's (a
 * second client unlinked the first one's request and reply). */
#include "tools/gcstat/gcstat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int request_locked(long pid, const char *dir, const char *what,
                          char *path, size_t n);

int gcs_request(long pid, const char *what, char *path, size_t n)
{
	char dir[PATH_MAX], req[PATH_MAX + 64];
	struct stat st;

	if (kill((pid_t)pid, 0)) {
		if (errno == ESRCH)
			return gcs_error("no process with pid %ld", pid);
		return gcs_error("pid %ld belongs to another user: %s "
		                 "(refused)", pid, strerror(errno));
	}
	if (gcs_export_dir(dir, sizeof(dir)))
		return 1;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return gcs_error("%s: %s", dir, strerror(errno));
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077))
		return gcs_error("%s is not private to uid %u: refusing to "
		                 "use it", dir, (unsigned)geteuid());
	snprintf(req, sizeof(req), "%s/%ld.lock", dir, pid);
	int lock = open(req, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0)
		return gcs_error("%s: %s", req, strerror(errno));
	while (flock(lock, LOCK_EX) && errno == EINTR)
		;
	int r = request_locked(pid, dir, what, path, n);
	close(lock); /* the lock file stays: unlinking it would race */
	return r;
}

static int request_locked(long pid, const char *dir, const char *what,
                          char *path, size_t n)
{
	char req[PATH_MAX + 64], rep[PATH_MAX + 64], buf[PATH_MAX + 128];
	struct stat st;

	snprintf(req, sizeof(req), "%s/%ld.request", dir, pid);
	snprintf(rep, sizeof(rep), "%s/%ld.reply", dir, pid);
	unlink(rep);
	unlink(req);
	int fd = open(req, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	                   O_CLOEXEC, 0600);
	if (fd < 0)
		return gcs_error("%s: %s", req, strerror(errno));
	size_t len = strlen(what);
	bool ok = write(fd, what, len) == (ssize_t)len;
	if (close(fd) || !ok) {
		unlink(req);
		return gcs_error("%s: write error", req);
	}
	if (kill((pid_t)pid, SIGURG)) {
		unlink(req);
		return gcs_error("cannot signal pid %ld: %s", pid,
		                 strerror(errno));
	}
	/* Taken within 2 s, or the process does not listen. */
	for (int i = 0; !lstat(req, &st); i++) {
		if (i == 200) {
			unlink(req);
			return gcs_error("pid %ld does not answer (not linked "
			                 "with gcheap, or run with "
			                 "GCHEAP_ATTACH=0; GCHEAP_EXPORT=1 "
			                 "exports from the start)", pid);
		}
		nap_ms(10);
	}
	/* A heap dump of a large heap takes a while. */
	for (int i = 0; lstat(rep, &st); i++) {
		if (i == 12000 || (kill((pid_t)pid, 0) && errno == ESRCH))
			return gcs_error("pid %ld took the request but did "
			                 "not answer", pid);
		nap_ms(10);
	}
	FILE *f = fopen(rep, "r");
	if (!f)
		return gcs_error("%s: %s", rep, strerror(errno));
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	unlink(rep);
	buf[strcspn(buf, "\n")] = 0;
	if (strncmp(buf, "ok", 2))
		return gcs_error("pid %ld: %s", pid,
		                 strncmp(buf, "error ", 6) ? buf : buf + 6);
	snprintf(path, n, "%s", buf[2] == ' ' ? buf + 3 : "");
	return 0;
}
