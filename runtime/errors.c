/* runtime/errors.c: error codes, messages, the thread's last error, and
 * the error and OOM handlers (defaults print one line on stderr). */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

static __thread gc_status last_error;

static const char *const messages[GCHEAP_STATUS_COUNT] = {
	[GCHEAP_OK] = "success",
	[GCHEAP_ERR_SIZE] = "invalid allocation size",
	[GCHEAP_ERR_OVERFLOW] = "allocation size overflows",
	[GCHEAP_ERR_TYPE] = "malformed or invalid type",
	[GCHEAP_ERR_NOMEM] = "out of memory",
	[GCHEAP_ERR_NOT_ATTACHED] = "thread not attached",
	[GCHEAP_ERR_DUPLICATE] = "thread already attached",
	[GCHEAP_ERR_ARG] = "invalid argument",
};

const char *gc_strerror(gc_status code)
{
	if ((unsigned)code >= GCHEAP_STATUS_COUNT)
		return "unknown status";
	return messages[code];
}

gc_status gc_last_error(void)
{
	return last_error;
}

void runtime_ok(void)
{
	last_error = GCHEAP_OK;
}

void gc_set_error_handler(gc_error_fn fn, void *data)
{
	mutex_lock(&runtime_.hlock);
	runtime_.error_fn = fn;
	runtime_.error_data = data;
	mutex_unlock(&runtime_.hlock);
}

void gc_set_oom_handler(gc_oom_fn fn, void *data)
{
	mutex_lock(&runtime_.hlock);
	runtime_.oom_fn = fn;
	runtime_.oom_data = data;
	mutex_unlock(&runtime_.hlock);
}

void runtime_error(gc_status code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	last_error = code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mutex_lock(&runtime_.hlock);
	gc_error_fn fn = runtime_.error_fn;
	void *data = runtime_.error_data;
	mutex_unlock(&runtime_.hlock);
	int cs = cancel_off(); /* not a cancellation point (lock.h) */
	gc_thread *t = thread_current; /* it may not detach in the handler */
	if (t)
		t->in_handler++;
	uintptr_t entry = runtime_callout(t);
	if (fn)
		fn(code, msg, data);
	else
		fprintf(stderr, "gcheap: %s: %s\n", gc_strerror(code), msg);
	if (t)
		runtime_leave(t, entry);
	if (t)
		t->in_handler--;
	cancel_restore(cs);
}

void runtime_not_attached(const char *fn)
{
	if (thread_blocked)
		runtime_error(GCHEAP_ERR_NOT_ATTACHED, "%s inside "
		              "gc_blocking_begin/end: the thread counts as "
		              "stopped and must not touch the heap until "
		              "gc_blocking_end()", fn);
	else
		runtime_error(GCHEAP_ERR_NOT_ATTACHED, "%s: the calling thread "
		              "is not attached; call gc_thread_attach() first",
		              fn);
}

void runtime_oom(size_t request, heap_err why)
{
	mutex_lock(&runtime_.hlock);
	gc_oom_fn fn = runtime_.oom_fn;
	void *data = runtime_.oom_data;
	mutex_unlock(&runtime_.hlock);
	gc_thread *t = thread_current; /* the caller goes on using it */
	if (fn) {
		if (t)
			t->in_handler++;
		uintptr_t entry = runtime_callout(t);
		fn(request, data);
		if (t) {
			runtime_leave(t, entry);
			t->in_handler--;
		}
	}
	if (why == HEAP_LIMIT)
		runtime_error(GCHEAP_ERR_NOMEM,
		              "allocating %zu bytes would pass the memory "
		              "limit of %zu bytes", request,
		              (size_t)aload(&mheap_.limit));
	else
		runtime_error(GCHEAP_ERR_NOMEM,
		              "the OS refused memory for a %zu-byte request",
		              request);
}
