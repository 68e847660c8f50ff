/* alloc/sys/base.c: fatal(), the one way gcheap reports a broken invariant;
 * sys_thread_start, how the library's threads show in top, perf and gdb
 * and which signals they take. */
#include "alloc/sys/base.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int sys_fatal_exit_code;

void sys_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("gcheap: fatal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	if (sys_fatal_exit_code)
		_exit(sys_fatal_exit_code);
	abort();
}

void sys_thread_start(const char *role)
{
	char name[16]; /* the kernel's limit, with the NUL */
	sigset_t async;

	snprintf(name, sizeof name, "gcheap-%s", role);
	pthread_setname_np(pthread_self(), name); /* only cosmetic */
	sigfillset(&async);
	static const int sync[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
	                           SIGSYS, SIGABRT};
	for (size_t i = 0; i < sizeof(sync) / sizeof(sync[0]); i++)
		sigdelset(&async, sync[i]);
	pthread_sigmask(SIG_BLOCK, &async, NULL);
}
