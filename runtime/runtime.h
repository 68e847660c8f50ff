/* runtime/runtime.h: the runtime's own state: attached threads, the error
 * and OOM handlers, and the glue the public API is made of.
 *
 * Each attached thread has a gc_thread, reached through the thread-local
 * gc_current (initial-exec TLS: one instruction on x86-64). The registry
 * of threads is guarded by runtime_.lock, the outermost lock (see
 * alloc/sys/lock.h).
 * A thread that exits while attached is detached by a pthread key
 * destructor, so its cached spans are not lost. */
#ifndef GCHEAP_RUNTIME_H
#define GCHEAP_RUNTIME_H

#include "alloc/alloc.h"
#include "gcheap.h"

#include <pthread.h>

typedef struct gc_thread {
	mcache mcache;            /* first: the fast path's offsets are small */
	struct gc_thread *next;   /* registry, under runtime_.lock */
	struct gc_thread *prev;
	pthread_t self;
} gc_thread;

typedef struct runtime_state {
	gc_mutex lock;            /* guards threads, nthreads, handlers */
	gc_thread *threads;
	size_t nthreads;
	gc_error_fn error_fn;     /* NULL: the default handler */
	void *error_data;
	gc_oom_fn oom_fn;         /* NULL: the default handler */
	void *oom_data;
	pthread_key_t exit_key;   /* detaches threads that exit attached */
	bool init;
} runtime_state;

extern runtime_state runtime_;

extern __thread gc_thread *gc_current
	__attribute__((tls_model("initial-exec")));

/* Report an error: set the thread's last error, call the handler. */
PRINTF_LIKE(2, 3) void runtime_error(gc_status code, const char *fmt, ...);
/* Record success as the thread's last error. */
void runtime_ok(void);
/* Report out-of-memory for a request: the OOM handler, then the error. */
void runtime_oom(size_t request, heap_err why);

#endif
