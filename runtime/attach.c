/* runtime/attach.c: inspection on demand (as the JVM's attach mechanism):
 * a process linked with gcheap answers gcstat's requests without having
 * been started for it.
 *
 * The request: gcstat writes the file <dir>/<pid>.request (dir: the
 * private export directory of runtime/export.c, $GCHEAP_EXPORT_DIR or
 * /tmp/gcheap-<uid>) holding one word, "export", "dump" or "profile",
 * and sends the process SIGURG (ignored by default, so a process without
 * gcheap is not harmed). The signal handler only writes a byte to a pipe
 * (write(2) is async-signal-safe) and calls the handler it displaced; a
 * library thread, blocked on the pipe with every signal masked, does the
 * work: it takes the request (unlinks it), starts the export, or writes
 * a heap dump (<dir>/<pid>.heapdump; it attaches for that) or the heap
 * profile (<dir>/<pid>.pprof.gz), and answers in <dir>/<pid>.reply
 * ("ok PATH" or "error MESSAGE", written whole then renamed in).
 *
 * Permissions: only the process's own user (or root) may signal it, and
 * the thread reads a request only from a directory owned by its euid
 * with mode 0700, from a regular file of that user (not a link). It writes
 * only to fixed names in that directory.
 *
 * Installed at gc_init unless GCHEAP_ATTACH=0. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ATTACH_SIGNAL SIGURG

/* The displaced handler is kept as its two fields, not as the struct
 * sigaction that sigaction(2) filled: glibc copies the whole 128-byte
 * sa_mask from its stack, of which the kernel wrote 8 bytes, and the rest
 * may hold stale heap addresses that rootcheck, scanning this global,
 * took for an unregistered root (test_rootcheck_warns_once). */
static struct {
	int rd, wr;               /* the pipe */
	int old_flags;            /* the displaced handler's sa_flags */
	union {
		void (*handler)(int);
		void (*action)(int, siginfo_t *, void *);
	} old;                    /* and its function */
} attach_ = {.rd = -1, .wr = -1};

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int e = errno;
	ssize_t r = write(attach_.wr, "r", 1);
	(void)r; /* a full pipe already holds a wake-up */
	errno = e;
	if (attach_.old_flags & SA_SIGINFO) {
		if (attach_.old.action)
			attach_.old.action(sig, si, uc);
	} else if (attach_.old.handler != SIG_IGN &&
	           attach_.old.handler != SIG_DFL) {
		attach_.old.handler(sig);
	}
}

/* Write the reply: whole into a temporary name, then renamed. */
static void reply(const char *dir, const char *fmt, ...)
	PRINTF_LIKE(2, 3);

static void reply(const char *dir, const char *fmt, ...)
{
	char tmp[PATH_MAX + 64], path[PATH_MAX + 64], msg[PATH_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	snprintf(tmp, sizeof(tmp), "%s/%ld.reply.tmp", dir, (long)getpid());
	snprintf(path, sizeof(path), "%s/%ld.reply", dir, (long)getpid());
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	                   O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = write(fd, msg, (size_t)n) == n;
	if (close(fd) || !ok || rename(tmp, path))
		unlink(tmp);
}

/* The error message of the last failed call on this thread. */
static const char *last_error(void)
{
	return gc_strerror(gc_last_error());
}

/* Take and answer the request, if there is a valid one. */
static void serve(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], out[PATH_MAX + 64];
	char tmp[PATH_MAX + 80], req[64];
	struct stat st;
	long pid = (long)getpid();

	if (!runtime_export_dir(dir, sizeof(dir)) || lstat(dir, &st) ||
	    !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077))
		return; /* not ours or not private: no request is valid */
	snprintf(path, sizeof(path), "%s/%ld.request", dir, pid);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	ssize_t n = -1;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid())
		n = read(fd, req, sizeof(req) - 1);
	close(fd);
	unlink(path); /* taken: gcstat waits for this */
	if (n < 0)
		return;
	req[n] = 0;
	req[strcspn(req, " \t\r\n")] = 0;
	if (!strcmp(req, "export")) {
		if (gc_export_start(0) == GCHEAP_OK)
			reply(dir, "ok export");
		else
			reply(dir, "error cannot export: %s", last_error());
	} else if (!strcmp(req, "dump")) {
		/* Written aside, then renamed into place: a client still
		 * reading the last dump keeps the whole old file. */
		snprintf(out, sizeof(out), "%s/%ld.heapdump", dir, pid);
		snprintf(tmp, sizeof(tmp), "%s.tmp", out);
		gc_status s = gc_thread_attach();
		if (s == GCHEAP_OK) {
			s = gc_heap_dump(tmp);
			gc_thread_detach();
		}
		if (s == GCHEAP_OK && rename(tmp, out))
			s = GCHEAP_ERR_ARG;
		unlink(tmp);
		if (s == GCHEAP_OK)
			reply(dir, "ok %s", out);
		else
			reply(dir, "error cannot write a heap dump: %s",
			      gc_strerror(s));
	} else if (!strcmp(req, "profile")) {
		snprintf(out, sizeof(out), "%s/%ld.pprof.gz", dir, pid);
		snprintf(tmp, sizeof(tmp), "%s.tmp", out);
		if (gc_write_heap_profile(tmp) == GCHEAP_OK &&
		    !rename(tmp, out))
			reply(dir, "ok %s", out);
		else
			reply(dir, "error cannot write the heap profile: %s",
			      last_error());
		unlink(tmp);
	} else {
		reply(dir, "error unknown request '%s' (export, dump, "
		      "profile)", req);
	}
}

/* Every asynchronous signal is blocked here from the start, as in every
 * library thread (sys_thread_create), SIGURG included, so that the
 * handler that writes to the pipe runs on a program thread; the
 * synchronous ones stay open, so that a fault while it writes a dump
 * reaches the program's handler (docs/api.md, "Signals"). */
static void *listener(void *arg)
{
	char buf[64];

	(void)arg;
	sys_thread_name("attach");
	for (;;) {
		ssize_t n = read(attach_.rd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		serve();
	}
}

void attach_from_env(void)
{
	int fds[2];
	pthread_t th;
	pthread_attr_t attr;
	struct sigaction sa, old;

	if (options_.attach_off) /* GCHEAP_ATTACH=0 (runtime/options.c) */
		return;
	if (pipe2(fds, O_CLOEXEC))
		return;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	attach_.rd = fds[0];
	attach_.wr = fds[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	/* SA_ONSTACK: a Go program that links gcheap through cgo takes
	 * SIGURG to preempt goroutines, and refuses (fatal error) any
	 * handler that would not run on the goroutine's signal stack. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	/* The thread first, so that no wake-up is written before a reader
	 * exists; then the handler. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int err = sys_thread_create(&th, &attr, listener, NULL);
	pthread_attr_destroy(&attr);
	/* The old handler's fields before ours can run: the signal may
	 * come as soon as sigaction returns. */
	memset(&old, 0, sizeof(old));
	if (!err && !sigaction(ATTACH_SIGNAL, NULL, &old)) {
		attach_.old_flags = old.sa_flags;
		if (old.sa_flags & SA_SIGINFO)
			attach_.old.action = old.sa_sigaction;
		else
			attach_.old.handler = old.sa_handler;
	}
	if (err || sigaction(ATTACH_SIGNAL, &sa, NULL)) {
		fprintf(stderr, "gcheap: cannot listen for gcstat's requests "
		        "(%s): gcstat needs GCHEAP_EXPORT=1 here\n",
		        strerror(err ? err : errno));
		return;
	}
}
