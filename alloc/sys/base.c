/* alloc/sys/base.c: fatal(), the one way gcheap reports a broken invariant. */
#include "alloc/sys/base.h"

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
