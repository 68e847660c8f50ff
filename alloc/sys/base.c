/* alloc/sys/base.c: fatal(), the one way gcheap reports a broken invariant;
 * sys_thread_create and sys_thread_name, which signals the library's
 * threads take and how they show in top, perf and gdb. */
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

int sys_thread_create(pthread_t *t, const pthread_attr_t *attr,
                      void *(*fn)(void *), void *arg)
{
	static const int sync[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
	                           SIGSYS, SIGABRT};
	sigset_t async, old;

	sigfillset(&async);
	for (size_t i = 0; i < ARRAY_LEN(sync); i++)
		sigdelset(&async, sync[i]);
	/* The new thread inherits the mask: blocked from its first
	 * instruction, not from a call it makes once it runs. */
	pthread_sigmask(SIG_BLOCK, &async, &old);
	int err = pthread_create(t, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

void sys_thread_name(const char *role)
{
	char name[16]; /* the kernel's limit, with the NUL */

	snprintf(name, sizeof name, "gcheap-%s", role);
	pthread_setname_np(pthread_self(), name); /* only cosmetic */
}
