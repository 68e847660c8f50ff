/* tests/gc/test_calls.c: the calls of issue 18 against their contracts in
 * docs/api.md: gc_realloc (in place, moved with its pointers, zeroed
 * growth, every bad input, a large noscan object's copied prefix not
 * zeroed first), gc_strdup/gc_strndup, gc_free (clears what
 * the object kept alive; in the debug modes: double free refused, a write
 * after it and a reachable object pointing to it are fatal),
 * gc_alloc_uncollectable/gc_free_uncollectable, gc_keep_alive,
 * gc_set_cycle_callback (every event in order, on a thread that holds no
 * lock: gc_collect returns while the callback waits for a lock the caller
 * holds), gc_set_finalizer_notify (manual mode), gc_free_os_memory,
 * GCHEAP_MEMLIMIT, checkmark naming the holder of a missed object, and
 * GCHEAP_DEBUG=rootcheck (found, kept and warned once, silent once the
 * global is registered, fatal at 2). Scenarios whose outcome is a message
 * or a fatal stop run in a forked child whose stderr is read. Stacks are
 * not scanned (precise mode) unless a test says so, so that what keeps an
 * object alive is exactly what the test says. */
#include "test_harness.c"

#include "runtime/pprof.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define FATAL_CODE 70

static gc_type *t_ptrs;   /* a pointer array (8 bytes, repeating) */
static gc_type *t_hdr;    /* {pointer, word} then noscan bytes */
static gc_type *t_holder; /* {word, pointer, pointer}: "holder" */

static struct {
	int calls;
	gc_status code;
	char msg[512];
} err;

static void on_error(gc_status code, const char *msg, void *data)
{
	(void)data;
	err.calls++;
	err.code = code;
	snprintf(err.msg, sizeof(err.msg), "%s", msg);
}

/* Attach (GCHEAP_DEBUG as the environment has it, or `debug`), precise
 * roots only, no automatic cycles. */
static void start(const char *debug)
{
	size_t zero = 0, one = 8, holder[] = {8, 16};

	sys_fatal_exit_code = FATAL_CODE;
	if (debug)
		setenv("GCHEAP_DEBUG", debug, 1);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_disable();
	gc_set_conservative_stacks(0);
	gc_set_error_handler(on_error, NULL);
	t_ptrs = gc_type_new("ptrs", 8, &zero, 1, GCHEAP_TAIL_REPEAT);
	t_hdr = gc_type_new("hdr", 16, &zero, 1, GCHEAP_TAIL_NOSCAN);
	t_holder = gc_type_new("holder", 24, holder, 2, GCHEAP_TAIL_NOSCAN);
	ck_assert(t_ptrs && t_hdr && t_holder);
	(void)one;
}

static void clear_err(void)
{
	memset(&err, 0, sizeof(err));
}

#define EXPECT_ERR(want, substr)                                           \
	do {                                                               \
		ck_assert_msg(err.calls == 1 && err.code == (want),        \
		              "calls %d code %s msg %s", err.calls,        \
		              gc_strerror(err.code), err.msg);             \
		ck_assert_msg(strstr(err.msg, substr), "message: %s",      \
		              err.msg);                                    \
		clear_err();                                               \
	} while (0)

/* Run fn in a forked child with stderr captured into out; returns the
 * wait status. */
static int run_child(void (*fn)(void), char *out, size_t n)
{
	char path[] = "/tmp/gcheap-calls-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd, 2);
		fn();
		fflush(NULL);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ssize_t k = pread(fd, out, n - 1, 0);
	close(fd);
	out[k > 0 ? k : 0] = 0;
	return status;
}

static void expect_fatal(void (*fn)(void), const char *want)
{
	char buf[8192];
	int status = run_child(fn, buf, sizeof(buf));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == FATAL_CODE,
	              "status %#x, stderr: %s", status, buf);
	ck_assert_msg(strstr(buf, want), "wanted \"%s\" on stderr, got: %s",
	              want, buf);
}

/* A weak reference to p, to ask later whether p's object is alive. */
static gc_weak *watch(void *p)
{
	gc_weak *w = gc_weak_new(p);
	ck_assert_ptr_nonnull(w);
	return w;
}

/* ---- gc_realloc ---------------------------------------------------------- */

START_TEST(test_realloc_noscan)
{
	start(NULL);
	unsigned char *p = gc_alloc(40, NULL);
	memset(p, 0xab, 40);
	ck_assert_uint_eq(gc_size(p), 48);
	/* Shrink in place: the slot's tail is zeroed. */
	unsigned char *q = gc_realloc(p, 30, NULL);
	ck_assert_ptr_eq(q, p);
	/* The whole slot, through gc_base: the compiler takes q to be 30
	 * bytes (alloc_size), and UBSan would stop a read past them. */
	const unsigned char *slot = gc_base(q);
	for (int i = 0; i < 48; i++)
		ck_assert_uint_eq(slot[i], i < 30 ? 0xab : 0);
	/* Grow in place, then out of the slot: zeroed growth. */
	ck_assert_ptr_eq(gc_realloc(q, 48, NULL), q);
	unsigned char *r = gc_realloc(q, 5000, NULL);
	ck_assert_ptr_ne(r, q);
	ck_assert_uint_ge(gc_size(r), 5000);
	for (int i = 0; i < 5000; i++)
		REQUIRE(r[i] == (i < 30 ? 0xab : 0), "byte %d is %#x", i,
		        r[i]);
	ck_assert(spanclass_noscan(spanof((uintptr_t)r)->spc));
	/* Large, shrunk in place and grown again. */
	unsigned char *big = gc_realloc(r, 100000, NULL);
	ck_assert_ptr_eq(gc_realloc(big, 70000, NULL), big);
	ck_assert_uint_eq(big[29], 0xab);
	ck_assert_uint_eq(big[30], 0);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* A tiny object's bytes run to its block's end, and its new copy can be
 * packed into the same block just past it: the copy overlapped itself,
 * through memcpy (undefined; AddressSanitizer's memcpy-param-overlap). */
START_TEST(test_realloc_tiny_within_block)
{
	int overlapped = 0;

	start(NULL);
	for (int i = 0; i < 64; i++) {
		unsigned char *p = gc_alloc(1, NULL);
		p[0] = (unsigned char)(0x80 + i);
		unsigned char *q = gc_realloc(p, 9, NULL);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq(q[0], 0x80 + i);
		if (q > p && q < p + 9)
			overlapped++;
	}
	/* The case was met (a 1-byte block start, then 9 bytes fit). */
	ck_assert_int_gt(overlapped, 0);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* A large noscan object's first growth in place is zeroed too, though
 * the program wrote into its slot's tail: it kept those bytes when the
 * span did not know its size before a gc_realloc had set it. */
START_TEST(test_realloc_large_noscan_first_growth)
{
	start(NULL);
	unsigned char *p = gc_alloc(40000, NULL);
	size_t slot = gc_size(p);
	ck_assert_uint_gt(slot, 40002);
	unsigned char *base = gc_base(p); /* the whole slot (UBSan) */
	memset(base, 0x11, slot);
	ck_assert_ptr_eq(gc_realloc(p, 40002, NULL), p);
	ck_assert_uint_eq(base[39999], 0x11);
	ck_assert_uint_eq(base[40000], 0);
	ck_assert_uint_eq(base[40001], 0);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* An error raised with longjmp past functions that pushed frames: the
 * frames saved by gc_frame_top come back with gc_frame_unwind, the dead
 * ones dropped unread. Without a way to drop them, the next scan walked
 * frames in stack memory the calls after the longjmp had overwritten. */
static jmp_buf raise_env;

static volatile int raise_depth;
static void raise_deep(void);
/* Called through a pointer: GCC takes the recursion for an endless one. */
static void (*volatile raise_again)(void) = raise_deep;

static NOINLINE void raise_deep(void)
{
	void *slots[2] = {gc_alloc(16, NULL), NULL};
	gc_frame f;

	gc_frame_push(&f, slots, 2);
	if (raise_depth-- > 0)
		raise_again();
	else
		longjmp(raise_env, 1);
	gc_frame_pop(&f);
}

static NOINLINE void scribble(void)
{
	volatile uintptr_t junk[4096];

	for (size_t i = 0; i < 4096; i++)
		junk[i] = 0xdeadbeef00 + i;
	(void)junk[0];
}

START_TEST(test_frame_unwind_after_longjmp)
{
	void *slots[1];
	gc_frame outer;

	start(NULL);
	slots[0] = gc_alloc(64, t_ptrs);
	memset(slots[0], 0, 64);
	gc_frame_push(&outer, slots, 1);
	gc_frame *volatile top = gc_frame_top();
	ck_assert_ptr_eq(top, &outer);
	raise_depth = 20;
	if (!setjmp(raise_env))
		raise_deep();
	gc_frame_unwind(top);
	scribble(); /* the dead frames' memory, as later calls write it */
	ck_assert_ptr_eq(gc_frame_top(), &outer);
	gc_collect();
	gc_collect();
	ck_assert_uint_eq(gc_size(slots[0]), 64);
	gc_frame_pop(&outer);
	ck_assert_ptr_null(gc_frame_top());
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* ---- Calling contexts ---------------------------------------------------- */

/* gc_realloc refuses a weak handle, as gc_free does: it cleared the
 * handle's tag in place (the handle then said "not a gc_weak") and lost
 * a weak map's entry for the same key. */
START_TEST(test_realloc_refuses_handles)
{
	void *slots[3];
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slots, 3);
	slots[0] = gc_alloc(32, NULL);
	slots[1] = gc_weak_new(slots[0]);
	slots[2] = gc_ephemeron_new(slots[0], slots[0]);
	ck_assert(slots[1] && slots[2]);
	clear_err();
	ck_assert_ptr_null(gc_realloc(slots[1], 1, NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "weak handle");
	ck_assert_ptr_null(gc_realloc(slots[2], 64, NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "weak handle");
	ck_assert_ptr_eq(gc_weak_get(slots[1]), slots[0]);
	ck_assert_int_eq(err.calls, 0);
	gc_frame_pop(&f);
}
END_TEST

/* The OOM and error handlers run on the thread that made the failing
 * call, which goes on using its record: gc_thread_detach is refused
 * there (it freed the record, and gc_alloc read it afterwards). */
static int detach_status = -1;

static void detach_in_oom(size_t request, void *data)
{
	(void)request, (void)data;
	detach_status = gc_thread_detach();
}

START_TEST(test_detach_refused_in_handlers)
{
	start(NULL);
	gc_set_memory_limit(64 << 20);
	gc_set_oom_handler(detach_in_oom, NULL);
	clear_err();
	ck_assert_ptr_null(gc_alloc(128 << 20, NULL));
	ck_assert_int_eq(detach_status, GCHEAP_ERR_ARG);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	gc_set_oom_handler(NULL, NULL);
}
END_TEST

/* The cycle callback's thread must not touch the heap, nor attach: the
 * next mark waited for it for ever (it never reached a safepoint). */
static atomic_word cb_attach_status = 100;

static void attach_in_cycle(gc_cycle_event ev, uint64_t cycle, void *data)
{
	(void)cycle, (void)data;
	if (ev == GCHEAP_CYCLE_MARK_START &&
	    aload(&cb_attach_status) == 100)
		astore(&cb_attach_status, (uintptr_t)gc_thread_attach());
}

START_TEST(test_attach_refused_in_callback)
{
	start(NULL);
	ck_assert_int_eq(gc_set_cycle_callback(attach_in_cycle, NULL),
	                 GCHEAP_OK);
	for (int i = 0; i < 20 && aload(&cb_attach_status) == 100; i++) {
		gc_collect();
		gc_blocking_begin();
		sleep_us(10000);
		gc_blocking_end();
	}
	gc_collect();
	gc_collect();
	ck_assert_uint_eq(aload(&cb_attach_status), GCHEAP_ERR_ARG);
	gc_set_cycle_callback(NULL, NULL);
}
END_TEST

/* A finalizer run by gc_run_finalizers that returns inside a blocking
 * region, or with a frame pushed: repaired, and reported (its caller came
 * back unable to allocate; the frame lay in dead stack memory). */
static void fin_leaves_state(void *obj, void *arg)
{
	static void *slot[1];
	static gc_frame f;

	(void)obj;
	if (arg)
		gc_blocking_begin();
	else
		gc_frame_push(&f, slot, 1);
}

START_TEST(test_finalizer_leftovers_repaired)
{
	start(NULL);
	gc_set_finalizer_thread(0);
	for (int which = 0; which < 2; which++) {
		void *p = gc_alloc(32, NULL);
		ck_assert_int_eq(gc_set_finalizer(p, fin_leaves_state,
		                                  which ? (void *)1 : NULL),
		                 GCHEAP_OK);
		p = NULL;
		gc_collect();
		gc_collect();
		clear_err();
		ck_assert_uint_eq(gc_run_finalizers(), 1);
		EXPECT_ERR(GCHEAP_ERR_ARG, which ? "gc_blocking_begin" :
		                                   "gc_frame");
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
		ck_assert_ptr_null(gc_frame_top());
	}
}
END_TEST

/* gc_frame_unwind refuses what it can tell is no frame of the caller's:
 * misaligned, or in this stack below the caller (stored as the innermost
 * frame, it crashed the next collection's scan). */
static NOINLINE gc_frame *dead_frame(void)
{
	static void *slot[1];
	gc_frame f;

	gc_frame_push(&f, slot, 1);
	gc_frame *top = gc_frame_top();
	gc_frame_pop(&f);
	return top;
}

START_TEST(test_frame_unwind_refuses)
{
	start(NULL);
	gc_frame *dead = dead_frame();
	clear_err();
	gc_frame_unwind((gc_frame *)(uintptr_t)1);
	EXPECT_ERR(GCHEAP_ERR_ARG, "misaligned");
	gc_frame_unwind(dead);
	EXPECT_ERR(GCHEAP_ERR_ARG, "has returned");
	ck_assert_ptr_null(gc_frame_top());
	gc_collect();
}
END_TEST

/* The library's threads block asynchronous signals: a process-wide
 * signal runs its handler on a thread of the program (one that ran on a
 * mark worker and called gcheap could wait for the worker it had
 * interrupted). The synchronous ones stay open in every one of them, so
 * that a fault there reaches the program's handler (the attach
 * listener blocked them all once). */
/* The name of thread `tid` (a /proc/self/task entry) into name ("" if
 * it cannot be read). */
static void task_name(const char *tid, char *name, size_t n)
{
	char path[320];

	name[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%s/comm", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(name, (int)n, f))
		name[0] = 0;
	fclose(f);
}

static void count_tids(int *lib, int *blocked, int *sync_blocked)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	*lib = *blocked = *sync_blocked = 0;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[320], line[256], name[32];
		if (e->d_name[0] == '.')
			continue;
		task_name(e->d_name, name, sizeof(name));
		if (strncmp(name, "gcheap-", 7))
			continue;
		(*lib)++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
		         e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "SigBlk:", 7)) {
				/* SIGALRM (14) and SIGUSR1 (10) blocked */
				unsigned long long m = strtoull(line + 7,
				                                NULL, 16);
				if ((m >> 13 & 1) && (m >> 9 & 1))
					(*blocked)++;
				/* SIGSEGV (11), SIGBUS (7), SIGFPE (8) */
				if ((m >> 10 & 1) || (m >> 6 & 1) ||
				    (m >> 7 & 1))
					(*sync_blocked)++;
			}
		fclose(f);
	}
	closedir(d);
}

static bool thread_named(const char *want)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;

	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d))) {
		char name[32];
		if (e->d_name[0] == '.')
			continue;
		task_name(e->d_name, name, sizeof(name));
		found = !strncmp(name, want, strlen(want));
	}
	closedir(d);
	return found;
}

START_TEST(test_library_threads_block_signals)
{
	int lib, blocked, sync_blocked;
	const char *env = getenv("GCHEAP_ATTACH");
	bool want_attach = !env || strcmp(env, "0"), attach = false;

	start(NULL);
	gc_collect(); /* the workers and the sweeper are running */
	/* A new thread names itself when it first runs, which on a busy
	 * machine can be after the collection: up to 5 s for the names
	 * (the attach listener's among them, unless GCHEAP_ATTACH=0). */
	for (int i = 0; i < 500; i++) {
		count_tids(&lib, &blocked, &sync_blocked);
		attach = thread_named("gcheap-attach");
		if (lib >= 2 && (attach || !want_attach))
			break;
		usleep(10000);
	}
	ck_assert_int_ge(lib, 2);
	ck_assert_msg(attach || !want_attach, "no gcheap-attach thread");
	ck_assert_int_eq(blocked, lib);
	ck_assert_int_eq(sync_blocked, 0);
}
END_TEST

/* A pointer array grown past its slot: the new object carries the
 * pointers (which keep their targets alive), the rest is NULL. */
START_TEST(test_realloc_moves_pointers)
{
	void *slot[1] = {0};
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slot, 1);
	void **a = gc_alloc(4 * sizeof(void *), t_ptrs);
	slot[0] = a;
	gc_weak *w[4];
	for (int i = 0; i < 4; i++) {
		gc_write(&a[i], new_payload(64, (uint64_t)i));
		w[i] = watch(a[i]);
	}
	void **b = gc_realloc(a, 64 * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(b, a);
	slot[0] = b; /* the old array is no longer reachable */
	a = NULL;
	for (int i = 4; i < 64; i++)
		ck_assert_ptr_null(b[i]);
	gc_collect();
	gc_collect();
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_eq(gc_weak_get(w[i]), b[i]);
		ck_assert(check_payload(b[i], 64, (uint64_t)i));
	}
	gc_frame_pop(&f);
}
END_TEST

/* A pointer vector grown a word at a time moves only when it outgrows
 * its slot (a moved object's slot carries the type's bits throughout):
 * it moved at every call, 63 times in 64, when a grown array's bits
 * had to equal the type's cut at the new size. Every element keeps its
 * target alive across collections in between, and a shrink within the
 * slot clears the dropped pointers (their targets die). */
START_TEST(test_realloc_vector_grows_in_slot)
{
	void *slot[1] = {0};
	gc_frame f;
	gc_weak *w[64];
	unsigned moves = 0;

	start(NULL);
	gc_frame_push(&f, slot, 1);
	void **a = gc_alloc(sizeof(void *), t_ptrs);
	slot[0] = a;
	for (unsigned n = 1; n <= 64; n++) {
		if (n > 1) {
			void **b = gc_realloc(a, n * sizeof(void *), t_ptrs);
			ck_assert_ptr_nonnull(b);
			moves += b != a;
			slot[0] = a = b;
			ck_assert_ptr_null(a[n - 1]);
		}
		gc_write(&a[n - 1], new_payload(32, n));
		w[n - 1] = watch(a[n - 1]);
		if (n % 16 == 0)
			gc_collect();
	}
	/* 26 size classes from 8 to 512 bytes: a move at each. */
	ck_assert_uint_le(moves, 26);
	gc_collect();
	for (unsigned n = 1; n <= 64; n++) {
		ck_assert_ptr_eq(gc_weak_get(w[n - 1]), a[n - 1]);
		ck_assert(check_payload(a[n - 1], 32, n));
	}
	/* Shrink within the slot: the dropped elements are cleared. */
	void **b = gc_realloc(a, 50 * sizeof(void *), t_ptrs);
	ck_assert_ptr_eq(b, a);
	for (unsigned n = 50; n < 64; n++)
		ck_assert_ptr_null(((void **)a)[n]);
	gc_collect();
	gc_collect();
	for (unsigned n = 1; n <= 50; n++)
		ck_assert(check_payload(a[n - 1], 32, n));
	for (unsigned n = 51; n <= 64; n++)
		ck_assert_ptr_null(gc_weak_get(w[n - 1]));
	gc_frame_pop(&f);
}
END_TEST

/* A large object grown a little at a time moves with room to grow into
 * (an eighth of its size, in its slot), so that it moves O(log n) times,
 * not every 8 KiB; doubling gets no room. A byte buffer grown 1 KiB at a
 * time from 40 KiB to 4 MiB, and a pointer array grown 64 elements at a
 * time to 300,000 (its elements checked through collections). */
START_TEST(test_realloc_large_growth_room)
{
	void *slot[2] = {0};
	gc_frame f;
	unsigned moves = 0;

	start(NULL);
	gc_frame_push(&f, slot, 2);
	char *b = gc_alloc(40 << 10, NULL);
	slot[0] = b;
	for (size_t n = 40 << 10; n < (4u << 20); n += 1024) {
		char *c = gc_realloc(b, n + 1024, NULL);
		ck_assert_ptr_nonnull(c);
		moves += c != b;
		slot[0] = b = c;
		ck_assert_uint_ge(gc_size(b), n + 1024);
		REQUIRE(b[n] == 0 && b[n + 1023] == 0, "growth at %zu not "
		        "zeroed", n);
		memset(b + n, (int)(n / 1024 % 251) + 1, 1024);
	}
	/* log(4 MiB / 40 KiB) / log(1.125) = 39; every 8 KiB: 507. */
	ck_assert_uint_le(moves, 45);
	for (size_t n = 40 << 10; n < (4u << 20); n += 1024)
		REQUIRE(b[n] == (char)(n / 1024 % 251 + 1) &&
		        b[n + 1023] == b[n], "bytes at %zu lost", n);
	/* Doubling: the slot is the size, rounded to pages. */
	b = gc_realloc(b, 8u << 20, NULL);
	ck_assert_ptr_nonnull(b);
	slot[0] = b;
	ck_assert_uint_eq(gc_size(b), 8u << 20);

	enum { N = 300000, STEP = 64 };
	void **a = gc_alloc(STEP * sizeof(void *), t_ptrs);
	slot[1] = a;
	moves = 0;
	for (size_t n = 0; n < N; n += STEP) {
		if (n) {
			void **c = gc_realloc(a, (n + STEP) * sizeof(void *),
			                      t_ptrs);
			ck_assert_ptr_nonnull(c);
			moves += c != a;
			slot[1] = a = c;
		}
		for (size_t i = n; i < n + STEP; i++) {
			ck_assert_ptr_null(a[i]);
			gc_write(&a[i], new_payload(16, i));
		}
		if (n % (N / 4) < STEP)
			gc_collect();
	}
	ck_assert_uint_le(moves, 60);
	gc_collect();
	for (size_t i = 0; i < N; i++)
		REQUIRE(check_payload(a[i], 16, i), "element %zu lost", i);
	gc_frame_pop(&f);
}
END_TEST

/* The room a small growth gets is no reason to fail: under a memory limit
 * that holds the new size but not its room, the move still succeeds
 * (the room is dropped for the attempt after the emergency collection). */
START_TEST(test_realloc_room_under_limit)
{
	void *slot[1] = {0};
	gc_frame f;
	const size_t sz = 4u << 20, step = 4096;

	start(NULL);
	gc_frame_push(&f, slot, 1);
	char *b = gc_alloc(sz, NULL);
	ck_assert_ptr_nonnull(b);
	slot[0] = b;
	memset(b, 7, sz);
	gc_collect();
	(void)gc_release_memory();
	heap_stats *st = &mheap_.stats;
	size_t held = aload(&st->committed) - aload(&st->released);
	/* Room for the grown copy beside the old one, not for its eighth. */
	gc_set_memory_limit(held + sz + step + (256u << 10));
	char *c = gc_realloc(b, sz + step, NULL);
	gc_set_memory_limit(0);
	ck_assert_msg(c != NULL, "a growth by %zu bytes that fits the limit "
	              "failed (error %d)", step, (int)gc_last_error());
	slot[0] = c;
	ck_assert_uint_ge(gc_size(c), sz + step);
	REQUIRE(c[0] == 7 && c[sz - 1] == 7 && c[sz] == 0 &&
	        c[sz + step - 1] == 0, "bytes lost in the move");
	gc_frame_pop(&f);
}
END_TEST

/* A large pointer array shrunk and grown again in place by small steps
 * while another thread collects without pause: a marker that read the
 * larger extent before a shrink may still read the words a later growth
 * clears, so the growth clears them with word stores (ThreadSanitizer saw
 * a memset race the marker's loads; this test runs in the TSan build). */
static atomic_word sg_stop;

static void *sg_collector(void *arg)
{
	(void)arg;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	while (!aload(&sg_stop))
		gc_collect();
	gc_thread_detach();
	return NULL;
}

START_TEST(test_realloc_shrink_grow_while_marking)
{
	void *slot[1] = {0};
	gc_frame f;
	pthread_t th;
	size_t len = 8192; /* 64 KiB: a large object */

	start(NULL);
	gc_frame_push(&f, slot, 1);
	void **a = gc_alloc(len * sizeof(void *), t_ptrs);
	slot[0] = a;
	for (size_t i = 0; i < len; i++)
		gc_write(&a[i], new_payload(16, i));
	astore(&sg_stop, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, sg_collector, NULL), 0);
	for (unsigned it = 0; it < 3000; it++) {
		size_t nl = it & 1 ? len + 1 + it % 7 : len - 1 - it % 5;
		void **b = gc_realloc(a, nl * sizeof(void *), t_ptrs);
		ck_assert_ptr_nonnull(b);
		slot[0] = a = b;
		for (size_t i = len < nl ? len : nl; i < nl; i++) {
			REQUIRE(a[i] == NULL, "step %u: slot %zu not cleared",
			        it, i);
			gc_write(&a[i], new_payload(16, i));
		}
		len = nl;
	}
	astore(&sg_stop, 1);
	gc_blocking_begin();
	pthread_join(th, NULL);
	gc_blocking_end();
	for (size_t i = 0; i < len; i++)
		REQUIRE(check_payload(a[i], 16, i), "element %zu lost", i);
	gc_frame_pop(&f);
}
END_TEST

/* The same layout for the new size: in place; a header type's tail of
 * bytes never changes the layout. */
/* Shrinking to a size that ends inside a pointer word cuts that pointer:
 * the object moves, and the word's bytes are not carried over, so that
 * growing the object back finds zero there, not the pointer (whose
 * target the collector freed meanwhile: the next mark found it in a
 * precise slot, pointing at a free page, and aborted). */
/* A large scan object grown in place within its slot: the words past its
 * old size were never scanned, so a pointer the program stored there
 * (gc_size calls the slot the object's) may name a freed object. It
 * became a scanned slot, and the next mark aborted ("invalid pointer").
 * The grown part is cleared first now. */
START_TEST(test_realloc_grow_clears_unscanned)
{
	void *slots[2] = {0};
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slots, 2);
	void **l = gc_alloc(40000, t_ptrs);
	slots[0] = l;
	size_t slot = gc_size(l);
	ck_assert_uint_gt(slot, 40000);
	void *leaf = gc_alloc(64, NULL);
	gc_weak *w = gc_weak_new(leaf);
	slots[1] = w;
	gc_write(&l[slot / 8 - 1], leaf); /* past the object: not a root */
	leaf = NULL;
	gc_collect();
	gc_collect();
	ck_assert_ptr_null(gc_weak_get(w));
	void **l2 = gc_realloc(l, slot, t_ptrs);
	ck_assert_ptr_eq(l2, l); /* in place */
	ck_assert_ptr_null(l2[slot / 8 - 1]);
	gc_collect(); /* aborted here */
	gc_frame_pop(&f);
}
END_TEST

/* Setters called before the heap is initialised hold: conservative
 * stack scanning switched off before the first attach came back on (the
 * options read at initialisation reset it). */
START_TEST(test_conservative_off_before_init)
{
	gc_set_conservative_stacks(0);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert(!options_.conservative);
}
END_TEST

/* The zero-size address is NULL to the free calls, as to gc_realloc:
 * they reported it as never allocated. */
START_TEST(test_free_zero_size)
{
	start(NULL);
	clear_err();
	gc_free(gc_alloc(0, NULL));
	ck_assert_int_eq(gc_free_uncollectable(gc_alloc_uncollectable(0,
	                                                              NULL)),
	                 GCHEAP_OK);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

START_TEST(test_realloc_cut_inside_word)
{
	void *slots[1] = {0};
	gc_frame f;

	start(NULL);
	gc_enable();
	gc_frame_push(&f, slots, 1);
	void **v = gc_alloc(40, t_ptrs);
	ck_assert_ptr_nonnull(v);
	slots[0] = v;
	gc_write(&v[3], gc_alloc(64, NULL)); /* its only reference */
	void **q = gc_realloc(v, 31, t_ptrs);
	ck_assert_ptr_nonnull(q);
	slots[0] = q;
	for (size_t b = 24; b < 31; b++)
		ck_assert_uint_eq(((unsigned char *)q)[b], 0);
	gc_collect();
	void **r = gc_realloc(slots[0], 40, t_ptrs);
	ck_assert_ptr_nonnull(r);
	slots[0] = r;
	ck_assert_ptr_null(r[3]);
	gc_collect();
	gc_frame_pop(&f);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* Two orders of checks: gc_realloc(p, 0, T) of an object with pointers
 * gives the zero-size address, as gc_alloc(0, T) does (it reported "smaller
 * than the type's size"); gc_free of a tiny uncollectable object is refused
 * as a larger one is (it was accepted: the tiny block's early return came
 * first). */
START_TEST(test_realloc_zero_free_tiny_uncollectable)
{
	start(NULL);
	void *zero = gc_alloc(0, t_ptrs);
	void **v = gc_alloc(24, t_ptrs);
	ck_assert_ptr_nonnull(v);
	clear_err();
	ck_assert_ptr_eq(gc_realloc(v, 0, t_ptrs), zero);
	ck_assert_int_eq(err.calls, 0);
	void *u = gc_alloc_uncollectable(8, NULL);
	ck_assert_ptr_nonnull(u);
	gc_free(u);
	EXPECT_ERR(GCHEAP_ERR_ARG, "uncollectable");
	gc_free_uncollectable(u);
}
END_TEST

/* gc_free refuses the library's weak handles: their records stay with
 * the collector, and an ephemeron freed (its fields poisoned) made the
 * marker follow a poisoned key and crash. The handles keep working. */
START_TEST(test_free_refuses_handles)
{
	void *slots[4] = {0};
	gc_frame f;

	start(NULL);
	gc_enable();
	gc_frame_push(&f, slots, 4);
	slots[0] = gc_alloc(32, t_ptrs);
	slots[1] = gc_alloc(32, t_ptrs);
	slots[2] = gc_ephemeron_new(slots[0], slots[1]);
	slots[3] = gc_weakmap_new();
	ck_assert_ptr_nonnull(slots[2]);
	ck_assert_ptr_nonnull(slots[3]);
	clear_err();
	gc_free(slots[2]);
	EXPECT_ERR(GCHEAP_ERR_ARG, "weak handle");
	gc_free(slots[3]);
	EXPECT_ERR(GCHEAP_ERR_ARG, "weak handle");
	/* A gc_weak: a 16-byte object, in the tiny blocks' span class (it
	 * was taken for a tiny block and the call ignored). */
	gc_weak *w = gc_weak_new(slots[0]);
	ck_assert_ptr_nonnull(w);
	gc_free(w);
	EXPECT_ERR(GCHEAP_ERR_ARG, "weak handle");
	ck_assert_ptr_eq(gc_weak_get(w), slots[0]);
	gc_collect();
	ck_assert_ptr_eq(gc_ephemeron_key(slots[2]), slots[0]);
	ck_assert_ptr_eq(gc_ephemeron_value(slots[2]), slots[1]);
	ck_assert_int_eq(err.calls, 0);
	gc_frame_pop(&f);
}
END_TEST

/* A 16-byte noscan object shares the tiny allocator's span class, and
 * was taken for a tiny block (whose packed objects start anywhere in it):
 * an interior pointer was accepted by gc_free, gc_realloc and
 * gc_set_finalizer (two finalizers on one object), and gc_free ignored
 * the object. Each slot now says whether it is a tiny block; sweep clears
 * that with the slot. */
static void on_fin_none(void *obj, void *arg)
{
	(void)obj, (void)arg;
}

START_TEST(test_sixteen_bytes_not_tiny)
{
	void *slots[2] = {0};
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slots, 2);
	unsigned char *p = gc_alloc(16, NULL);
	slots[0] = p;
	mspan *s = spanof((uintptr_t)p);
	ck_assert_uint_eq(s->spc, TINY_SPANCLASS);
	ck_assert(!mspan_is_tiny_block(s, mspan_object_index(s,
	                                                     (uintptr_t)p)));
	clear_err();
	gc_free(p + 4);
	EXPECT_ERR(GCHEAP_ERR_ARG, "interior pointer");
	ck_assert_ptr_null(gc_realloc(p + 4, 32, NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "interior pointer");
	ck_assert_int_eq(gc_set_finalizer(p + 8, on_fin_none, NULL),
	                 GCHEAP_ERR_ARG);
	EXPECT_ERR(GCHEAP_ERR_ARG, "not the start");
	memset(p, 0xee, 16);
	gc_free(p); /* freed (poisoned, with the suite's poison=1) */
	ck_assert_int_eq(err.calls, 0);
	ck_assert_uint_ne(p[0], 0xee);
	/* A tiny object: its block is one; any address in it may be
	 * given, and gc_free leaves it to the collector. */
	unsigned char *t = gc_alloc(8, NULL);
	slots[1] = t;
	s = spanof((uintptr_t)t);
	uintptr_t i = mspan_object_index(s, (uintptr_t)t);
	ck_assert(mspan_is_tiny_block(s, i));
	ck_assert_int_eq(gc_set_finalizer(t, on_fin_none, NULL), GCHEAP_OK);
	ck_assert_int_eq(gc_set_finalizer(t, NULL, NULL), GCHEAP_OK);
	gc_free(t);
	ck_assert_int_eq(err.calls, 0);
	/* Once the block dies, its slot is no tiny block any more. */
	slots[1] = t = NULL;
	gc_collect();
	gc_collect();
	ck_assert(mspan_is_free(s, i));
	ck_assert(!mspan_is_tiny_block(s, i));
	gc_frame_pop(&f);
}
END_TEST

/* p lies in the tiny blocks' span class, in a slot that is a tiny block
 * or not as `block` says. */
static void expect_tiny_class(const void *p, bool block)
{
	mspan *s = spanof((uintptr_t)p);

	ck_assert_uint_eq(s->spc, TINY_SPANCLASS);
	ck_assert(mspan_is_tiny_block(s, mspan_object_index(s,
	                                                    (uintptr_t)p)) ==
	          block);
}

/* A noscan type under 16 bytes is packed by the tiny allocator when
 * asked for at its own size too: the fast path's own-size shortcut
 * (equal layout keys, alloc/gctype.h) must not take it from the span of
 * its size class. A 16-byte noscan type is a slot of its own. */
START_TEST(test_tiny_types_packed)
{
	void *slots[4] = {0};
	gc_frame f;

	/* No type recording (checkmark turns it on): its type ids keep
	 * every allocation off the fast path. */
	start("checkmark=1,verify=1,poison=1,types=0");
	gc_frame_push(&f, slots, 4);
	gc_type *four = gc_type_new("four", 4, NULL, 0, GCHEAP_TAIL_NOSCAN);
	gc_type *twelve = gc_type_new("twelve", 12, NULL, 0,
	                              GCHEAP_TAIL_NOSCAN);
	gc_type *sixteen = gc_type_new("sixteen", 16, NULL, 0,
	                               GCHEAP_TAIL_NOSCAN);
	ck_assert_ptr_nonnull(four);
	ck_assert_ptr_nonnull(twelve);
	ck_assert_ptr_nonnull(sixteen);
	for (int round = 0; round < 3; round++) {
		/* A 16-byte object caches the class's span first: a
		 * 12-byte type's own size class is the same. */
		unsigned char *c = gc_alloc(16, sixteen);
		slots[0] = c;
		expect_tiny_class(c, false);
		for (int k = 1; k < 4; k++) {
			gc_type *t = k == 1 ? twelve : four;
			unsigned char *p = gc_alloc(gc_type_size(t), t);
			slots[k] = p;
			expect_tiny_class(p, true);
			ck_assert_uint_eq(gc_size(p), 16);
		}
		/* The two 4-byte objects share a block. */
		ck_assert_ptr_eq(slots[3], (unsigned char *)slots[2] + 4);
		gc_collect();
	}
	ck_assert_int_eq(err.calls, 0);
	gc_frame_pop(&f);
}
END_TEST

/* A new large object is zeroed and typed before it counts as allocated:
 * until then a lookup (and so a marker that reached its pages through a
 * stale conservative word) finds no object there. It counted as allocated
 * and typed first, and a marker read the pages' old bytes as pointers.
 * The hook looks the object up just before its zeroing; the pages are
 * reused ones (a large object freed by a collection), so they need it. */
static uintptr_t large_seen;

static void large_hook(uintptr_t base)
{
	large_seen = mheap_find_object(base, NULL) ? 1 : 2;
}

START_TEST(test_large_published_last)
{
	void *slots[1] = {0};
	gc_frame f;

	start(NULL);
	gc_enable();
	gc_frame_push(&f, slots, 1);
	void **old = gc_alloc((size_t)1 << 20, t_ptrs);
	ck_assert_ptr_nonnull(old);
	for (size_t i = 0; i < ((size_t)1 << 20) / sizeof(void *); i++)
		old[i] = (void *)(uintptr_t)0x5a5a5a5a5a5a5a5aULL;
	old = NULL;
	gc_collect();
	runtime_large_test_hook = large_hook;
	void **v = gc_alloc((size_t)1 << 20, t_ptrs);
	runtime_large_test_hook = NULL;
	ck_assert_ptr_nonnull(v);
	slots[0] = v;
	ck_assert_uint_eq(large_seen, 2); /* no object yet */
	ck_assert_ptr_eq(gc_base(v), v);
	for (size_t i = 0; i < ((size_t)1 << 20) / sizeof(void *); i++)
		ck_assert_ptr_null(v[i]);
	gc_collect();
	gc_frame_pop(&f);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

START_TEST(test_realloc_in_place_scan)
{
	start(NULL);
	void **p = gc_alloc(40, t_hdr); /* class 48 */
	gc_write(&p[0], p);
	ck_assert_ptr_eq(gc_realloc(p, 44, t_hdr), p);
	ck_assert_ptr_eq(gc_realloc(p, 17, t_hdr), p);
	ck_assert_ptr_eq(p[0], p);
	/* A pointer array shrunk within its slot, whose bits run to the
	 * slot's end: in place, the dropped pointer cleared (through the
	 * barrier), the bits left whole. */
	void **a = gc_alloc(48, t_ptrs);
	gc_write(&a[5], a);
	void **b = gc_realloc(a, 40, t_ptrs);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_null(((void *volatile *)a)[5]);
	ck_assert_ptr_eq(gc_realloc(a, 48, t_ptrs), a);
	/* One whose bits stop short of its slot (a size between the
	 * class's) cannot take a longer map in place: it moves. */
	a = gc_alloc(40, t_ptrs);
	b = gc_realloc(a, 48, t_ptrs);
	ck_assert_ptr_ne(a, b);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* Objects scanned through their type (no heap bits: over 512 bytes)
 * stay in place when the new size fits their slot, small or large: the
 * tail is cleared, so what only it held dies; a large object's scanned
 * extent follows its new size, so what a grown part holds lives; a size
 * that ends inside a word moves. A large object shrunk below half its
 * slot moves, and its pages go back to the heap. */
START_TEST(test_realloc_in_place_typed)
{
	enum { SMALL = 1024, LARGE = 100000 };
	void *slot[4] = {0}; /* slot[2], slot[3]: weak handles */
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slot, 4);
	/* Small: 128 pointer slots in a 1024-byte slot. */
	void **a = gc_alloc(SMALL, t_ptrs);
	slot[0] = a;
	ck_assert_ptr_null(spanof((uintptr_t)a)->heap_bits);
	gc_write(&a[0], new_payload(64, 1));
	gc_write(&a[127], new_payload(64, 2));
	gc_weak *w0 = watch(a[0]), *w127 = watch(a[127]);
	slot[2] = w127;
	ck_assert_ptr_eq(gc_realloc(a, SMALL, t_ptrs), a);
	ck_assert_ptr_eq(gc_realloc(a, SMALL - 8, t_ptrs), a);
	gc_collect();
	gc_collect();
	ck_assert(check_payload(gc_weak_get(w0), 64, 1));
	ck_assert_ptr_null(gc_weak_get(w127)); /* held by the cut tail */
	ck_assert_ptr_eq(gc_realloc(a, SMALL, t_ptrs), a);
	ck_assert_ptr_null(((void *volatile *)a)[127]);
	void **moved = gc_realloc(a, SMALL - 4, t_ptrs); /* inside a word */
	ck_assert_ptr_ne(moved, a);
	slot[0] = moved;
	ck_assert(check_payload(moved[0], 64, 1));

	/* Large: grown in place by 8 bytes at a time, a pointer stored in
	 * each grown word; the collections scan the new extent. */
	void **b = gc_alloc(LARGE, t_ptrs);
	slot[1] = b;
	size_t have = gc_size(b), n = LARGE / 8;
	ck_assert_uint_gt(have, LARGE + 64 * 8);
	void **b0 = b;
	for (size_t k = 0; k < 64; k++, n++) {
		b = gc_realloc(b, (n + 1) * 8, t_ptrs);
		ck_assert_ptr_eq(b, b0);
		gc_write(&b[n], new_payload(64, 100 + k));
		if (k % 16 == 0)
			gc_collect();
	}
	gc_collect();
	gc_collect();
	for (size_t k = 0; k < 64; k++)
		REQUIRE(check_payload(b[LARGE / 8 + k], 64, 100 + k),
		        "grown word %zu lost its object", k);
	/* Shrunk in place (above half the slot): the cut part's objects
	 * die, the rest live; grown again, the cut part reads NULL. */
	gc_weak *wl = watch(b[LARGE / 8 + 63]);
	slot[3] = wl;
	gc_write(&b[10], new_payload(64, 10));
	b = gc_realloc(b, LARGE, t_ptrs);
	ck_assert_ptr_eq(b, b0);
	gc_collect();
	gc_collect();
	ck_assert_ptr_null(gc_weak_get(wl));
	ck_assert(check_payload(b[10], 64, 10));
	b = gc_realloc(b, LARGE + 64 * 8, t_ptrs);
	ck_assert_ptr_eq(b, b0);
	for (size_t k = 0; k < 64; k++)
		ck_assert_ptr_null(((void *volatile *)b)[LARGE / 8 + k]);
	/* Below half its slot: it moves, with its prefix. */
	void **c = gc_realloc(b, have / 2 - 8, t_ptrs);
	ck_assert_ptr_ne(c, b);
	slot[1] = c;
	ck_assert(check_payload(c[10], 64, 10));

	/* A large noscan object shrunk to 16 bytes: its 4 MiB go back. */
	gc_collect();
	size_t before = mheap_.stats.large_bytes;
	unsigned char *big = gc_alloc(4 * MiB, NULL);
	memset(big, 7, 4 * MiB);
	slot[1] = big;
	unsigned char *tiny = gc_realloc(big, 16, NULL);
	ck_assert_ptr_ne(tiny, big);
	slot[1] = tiny;
	big = NULL;
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(tiny[i], 7);
	gc_collect();
	gc_collect();
	ck_assert_uint_le(mheap_.stats.large_bytes, before);
	ck_assert_msg(err.calls == 0, "%d errors, the last: %s", err.calls,
	              err.msg);
	gc_frame_pop(&f);
}
END_TEST

/* A tail cut in place while marking goes through the deletion barrier:
 * an object held only by the tail, moved onto an already scanned frame
 * just before the cut, survives the cycle (the large object itself is
 * white until the mark's end, held by an unscanned thread). */
START_TEST(test_realloc_cut_while_marking)
{
	enum { LARGE = 100000 };
	void *slot[1] = {0};
	gc_frame f;
	helper h;

	start(NULL);
	gc_frame_push(&f, slot, 1);
	helper_start(&h);
	void **b = gc_alloc(LARGE, t_ptrs);
	gc_write(&b[LARGE / 8 - 1], new_payload(64, 77));
	h.slots[0] = b;
	pause_begin(&h); /* our frame is scanned; H's is not */
	slot[0] = b[LARGE / 8 - 1];
	b = gc_realloc(b, LARGE - 8, t_ptrs); /* in place: the tail cut */
	ck_assert_ptr_eq(b, h.slots[0]);
	pause_end(&h, NULL, NULL);
	gc_collect();
	ck_assert(check_payload(slot[0], 64, 77));
	h.slots[0] = NULL;
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

START_TEST(test_realloc_errors)
{
	int local;

	start(NULL);
	unsigned char *p = gc_alloc(64, NULL);
	memset(p, 7, 64);
	void **s = gc_alloc(64, t_ptrs);
	clear_err();

	ck_assert_ptr_null(gc_realloc(p + 8, 128, NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "interior pointer");
	ck_assert_ptr_null(gc_realloc(&local, 128, NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "not an allocated heap object");
	ck_assert_ptr_null(gc_realloc(p, 128, t_ptrs));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "not the object's type");
	ck_assert_ptr_null(gc_realloc(s, 128, NULL));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "not the object's type");
	ck_assert_ptr_null(gc_realloc(s, 128, t_holder));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "not the object's type");
	/* Without type records (checkmark keeps them), from the heap bits
	 * alone: a type whose map begins with the object's pointers is
	 * refused where the size class rules out the cut that would make
	 * them agree ({ptr, long, long, long} is not all-pointers, nor
	 * {ptr, ptr, ptr, long}); objects of sizes that are not word
	 * multiples (bits cut at their whole words) keep their type. */
	gc_set_record_types(0);
	static const size_t one[1] = {0}, three[3] = {0, 8, 16};
	gc_type *plll = gc_type_new("plll", 32, one, 1, GCHEAP_TAIL_NOSCAN);
	gc_type *pppl = gc_type_new("pppl", 32, three, 3, GCHEAP_TAIL_NOSCAN);
	void **q = gc_alloc(32, plll);
	ck_assert_ptr_null(gc_realloc(q, 64, t_ptrs));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "a scan object takes the type it was "
	           "made with");
	ck_assert_ptr_null(gc_realloc(q, 64, pppl));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "not the object's type");
	q = gc_realloc(q, 64, plll);
	ck_assert_ptr_nonnull(q);
	static const size_t odd[] = {20, 24, 16, 20, 32, 200, 512, 8, 13};
	q = gc_alloc(odd[0], t_ptrs);
	for (size_t i = 1; i < ARRAY_LEN(odd); i++) {
		q = gc_realloc(q, odd[i], t_ptrs);
		ck_assert_msg(q != NULL, "gc_realloc to %zu bytes refused",
		              odd[i]);
	}
	clear_err();
	ck_assert_ptr_null(gc_realloc(p, 128, (const gc_type *)&local));
	EXPECT_ERR(GCHEAP_ERR_TYPE, "not a gc_type");
	ck_assert_ptr_null(gc_realloc(p, GCHEAP_MAX_ALLOC + 1, NULL));
	EXPECT_ERR(GCHEAP_ERR_SIZE, "GCHEAP_MAX_ALLOC");
	volatile size_t huge = SIZE_MAX; /* no compile-time warning */
	ck_assert_ptr_null(gc_realloc(p, huge, NULL));
	EXPECT_ERR(GCHEAP_ERR_SIZE, "GCHEAP_MAX_ALLOC");
	ck_assert_ptr_null(gc_realloc(s, 4, t_ptrs));
	EXPECT_ERR(GCHEAP_ERR_SIZE, "smaller than the type");
	/* Nothing changed. */
	for (int i = 0; i < 64; i++)
		ck_assert_uint_eq(p[i], 7);
	/* NULL and the zero-size address allocate; size 0 gives the
	 * zero-size address. */
	void *z = gc_realloc(p, 0, NULL);
	ck_assert_ptr_nonnull(z);
	ck_assert_uint_eq(gc_size(z), 0);
	void *n = gc_realloc(z, 24, NULL);
	ck_assert_uint_ge(gc_size(n), 24);
	ck_assert_uint_ge(gc_size(gc_realloc(NULL, 24, t_ptrs)), 24);
	ck_assert_int_eq(err.calls, 0);
	/* Not attached. */
	gc_thread_detach();
	ck_assert_ptr_null(gc_realloc(NULL, 8, NULL));
	EXPECT_ERR(GCHEAP_ERR_NOT_ATTACHED, "gc_thread_attach()");
}
END_TEST

/* Free dirty pages for the next large spans: a noscan object of n bytes
 * filled with 0xab, dropped and collected (first fit takes the lowest
 * free run, and pages in use before are dirty). */
static void dirty_pages(size_t n)
{
	unsigned char *d = gc_alloc(n, NULL);
	memset(d, 0xab, n);
	d = NULL;
	gc_collect();
}

/* The bytes zeroed for large objects since `since`. */
static size_t zeroed_since(size_t since)
{
	return aload(&mheap_.stats.large_zeroed) - since;
}

/* p's old bytes (the pattern of key) over n bytes, then zeros to the end
 * of the object. */
static void check_grown(const unsigned char *p, size_t n, uint64_t key)
{
	REQUIRE(check_payload(p, n, key), "prefix of %p", (const void *)p);
	size_t size = gc_size(p);
	for (size_t i = n; i < size; i++)
		REQUIRE(p[i] == 0, "byte %zu of %zu is %#x", i, size, p[i]);
}

/* A vector whose bits run to its slot's end, shrunk in place while a
 * mark runs: the dropped pointer is shaded (runtime_wipe), since its only
 * other copy is in a frame already scanned; with a plain memset there its
 * target was freed while the frame held it (a review's mutation). */
START_TEST(test_realloc_shrink_in_place_shades)
{
	void *slots[2] = {0};
	gc_frame f;
	helper h;

	start("poison=1");
	helper_start(&h);
	gc_frame_push(&f, slots, 2);
	void **a = gc_alloc(48, t_ptrs); /* class 48: bits over the slot */
	gc_write(&a[5], new_payload(64, 5));
	h.slots[0] = a;
	a = NULL;
	pause_begin(&h); /* our frame scanned, the helper's not */
	void **b = h.slots[0];
	slots[0] = b[5]; /* a scanned frame: no barrier */
	ck_assert_ptr_eq(gc_realloc(b, 40, t_ptrs), b);
	ck_assert_ptr_null(((void *volatile *)b)[5]);
	b = NULL;
	pause_end(&h, NULL, NULL);
	gc_collect();
	ck_assert(check_payload(slots[0], 64, 5));
	gc_frame_pop(&f);
	helper_stop(&h);
}
END_TEST

/* gc_alloc_uninit: a large object on dirty pages keeps their bytes (no
 * clearing but the slot's tail past its size, which gc_realloc's growth
 * in place relies on), where gc_alloc clears it (the control, on the
 * same pages); a small one comes cleared; the thread's nozero is spent. */
START_TEST(test_alloc_uninit)
{
	enum { N = 300000 };

	start(NULL);
	dirty_pages(4 * MiB);
	size_t z0 = aload(&mheap_.stats.large_zeroed);
	unsigned char *a = gc_alloc(N, NULL);
	mspan *s = spanof((uintptr_t)a);
	ck_assert_msg(s->needzero, "fresh pages");
	ck_assert_uint_eq(zeroed_since(z0), s->elemsize);
	ck_assert_uint_eq(a[0], 0);
	a = NULL;
	dirty_pages(4 * MiB);
	z0 = aload(&mheap_.stats.large_zeroed);
	unsigned char *b = gc_alloc_uninit(N);
	ck_assert_ptr_nonnull(b);
	s = spanof((uintptr_t)b);
	ck_assert_msg(s->needzero, "fresh pages");
	ck_assert_uint_eq(zeroed_since(z0), s->elemsize - N);
	/* Its bytes are whatever the pages held: the dead object's, the
	 * poison a free left (poison=1), or zeros where pages went back to
	 * the OS; only the tail past N was cleared. */
	/* The slot's tail, through the span (b is N bytes to the compiler:
	 * gc_alloc_uninit's alloc_size, which UBSan holds reads to). */
	const unsigned char *slot = (const unsigned char *)s->base;
	for (size_t i = N; i < s->elemsize; i++)
		REQUIRE(slot[i] == 0, "tail byte %zu", i);
	ck_assert_uint_eq(thread_current->nozero, 0);
	unsigned char *c = gc_alloc_uninit(100);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(c[i], 0);
	ck_assert_uint_eq(thread_current->nozero, 0);
	ck_assert_ptr_eq(gc_base(b), b);
	ck_assert_int_eq(err.calls, 0);
	ck_assert_ptr_null(gc_alloc_uninit(GCHEAP_MAX_ALLOC + 1));
	ck_assert_int_eq(err.calls, 1);
	ck_assert_uint_eq(thread_current->nozero, 0);
}
END_TEST

/* A noscan object grown by gc_realloc into a large one, on dirty pages,
 * through the automatic zeroing's own path: only the tail past the
 * copied bytes is zeroed (mheap_.stats.large_zeroed), and the object is
 * the old bytes then zeros: from a small object, from a large one, and
 * while a mark is running (the new object allocated black; it keeps its
 * bytes through the cycle). A large scan object is zeroed in full (the
 * copy's barrier reads the slots it overwrites). */
START_TEST(test_realloc_large_prefix)
{
	void *slot[1] = {0};
	gc_frame f;
	helper h;
	static const struct {
		size_t from, to;
		bool marking;
	} cases[] = {
		{20000, 300000, false},   /* small -> large */
		{100000, 400000, false},  /* large -> large */
		{300000, 200000, false},  /* large, shrunk in place */
		{50000, 1000000, true},   /* large -> large, mid-mark */
		{3000, 70000, true},      /* small -> large, mid-mark */
	};

	start(NULL);
	gc_frame_push(&f, slot, 1);
	helper_start(&h);
	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		size_t from = cases[k].from, to = cases[k].to;
		unsigned char *p = new_payload(from, k);
		slot[0] = p;
		dirty_pages(4 * MiB);
		if (cases[k].marking)
			pause_begin(&h);
		/* The old slot is copied whole (its tail is zeros). */
		size_t copied = MIN(gc_size(p), to);
		size_t z0 = aload(&mheap_.stats.large_zeroed);
		unsigned char *q = gc_realloc(p, to, NULL);
		slot[0] = q;
		size_t zeroed = zeroed_since(z0);
		size_t n = MIN(from, to);
		if (to <= from) { /* in place: nothing allocated */
			ck_assert_ptr_eq(q, p);
			ck_assert_uint_eq(zeroed, 0);
		} else {
			mspan *s = spanof((uintptr_t)q);
			ck_assert(spanclass_noscan(s->spc));
			ck_assert_msg(s->needzero, "case %zu: fresh pages", k);
			ck_assert_uint_eq(zeroed, s->elemsize - copied);
			if (cases[k].marking)
				ck_assert(is_marked(q));
		}
		check_grown(q, n, k);
		if (cases[k].marking)
			pause_end(&h, NULL, NULL);
		gc_collect();
		check_grown(slot[0], n, k);
	}
	/* A scan object: zeroed in full, then the pointers copied. */
	void **a = gc_alloc(8192 * sizeof(void *), t_ptrs);
	slot[0] = a;
	for (size_t i = 0; i < 8192; i++)
		gc_write(&a[i], a);
	dirty_pages(4 * MiB);
	size_t z0 = aload(&mheap_.stats.large_zeroed);
	void **b = gc_realloc(a, 16384 * sizeof(void *), t_ptrs);
	slot[0] = b;
	mspan *s = spanof((uintptr_t)b);
	ck_assert(s->needzero);
	ck_assert_uint_eq(zeroed_since(z0), s->elemsize);
	for (size_t i = 0; i < 16384; i++)
		REQUIRE(b[i] == (i < 8192 ? (void *)a : NULL), "slot %zu", i);
	ck_assert_uint_eq(thread_current->nozero, 0);
	helper_stop(&h);
	gc_frame_pop(&f);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* ---- gc_strdup ----------------------------------------------------------- */

START_TEST(test_strdup)
{
	start(NULL);
	char *s = gc_strdup("hello, world");
	ck_assert_str_eq(s, "hello, world");
	ck_assert_ptr_eq(gc_base(s), s);
	ck_assert(spanclass_noscan(spanof((uintptr_t)s)->spc));
	ck_assert_str_eq(gc_strndup("hello", 3), "hel");
	ck_assert_str_eq(gc_strndup("hi", 100), "hi");
	ck_assert_str_eq(gc_strndup(NULL, 0), "");
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ck_assert_str_eq(gc_strdup(big), big);
	ck_assert_int_eq(err.calls, 0);
	ck_assert_ptr_null(gc_strdup(NULL));
	EXPECT_ERR(GCHEAP_ERR_ARG, "NULL");
	ck_assert_ptr_null(gc_strndup(NULL, 1));
	EXPECT_ERR(GCHEAP_ERR_ARG, "NULL");
}
END_TEST

/* ---- gc_free ------------------------------------------------------------- */

/* Without a debug mode: the object is cleared, so what only it pointed to
 * dies while the object itself is still referenced. */
START_TEST(test_free_clears)
{
	void *slot[1] = {0};
	gc_frame f;

	start("checkmark=0,poison=0,verify=1");
	gc_frame_push(&f, slot, 1);
	void **a = gc_alloc(3 * sizeof(void *), t_holder);
	slot[0] = a;
	gc_write(&a[1], new_payload(64, 1));
	gc_weak *child = watch(a[1]);
	gc_collect();
	ck_assert_ptr_nonnull(gc_weak_get(child));
	gc_free(a);
	ck_assert_int_eq(err.calls, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(a[i]);
	gc_collect();
	ck_assert_ptr_null(gc_weak_get(child));
	ck_assert_ptr_eq(gc_base(a), a); /* still referenced: kept */
	/* A hint, no tracking: a second call is accepted. */
	gc_free(a);
	ck_assert_int_eq(err.calls, 0);
	/* A noscan object holds nothing: left as it is, small or large
	 * (a large buffer's free cleared all its pages). The slot goes
	 * once unreachable. */
	size_t sizes[] = {64, 1 << 20};
	for (int k = 0; k < 2; k++) {
		unsigned char *b = gc_alloc(sizes[k], NULL);
		memset(b, 0x5a, sizes[k]);
		gc_free(b);
		ck_assert_int_eq(err.calls, 0);
		ck_assert_uint_eq(b[0], 0x5a);
		ck_assert_uint_eq(b[sizes[k] - 1], 0x5a);
	}
	gc_frame_pop(&f);
}
END_TEST

START_TEST(test_free_errors)
{
	int local;

	start(NULL);
	char *p = gc_alloc(64, NULL);
	clear_err();
	gc_free(NULL);
	ck_assert_int_eq(err.calls, 0);
	gc_free(p + 1);
	EXPECT_ERR(GCHEAP_ERR_ARG, "interior pointer");
	gc_free(&local);
	EXPECT_ERR(GCHEAP_ERR_ARG, "not an allocated heap object");
	/* Debug mode (the suite's poison=1): filled, and refused twice. */
	gc_free(p);
	ck_assert_int_eq(err.calls, 0);
	for (int i = 0; i < 64; i++)
		ck_assert_uint_eq((unsigned char)p[i], POISON_BYTE);
	gc_free(p);
	EXPECT_ERR(GCHEAP_ERR_ARG, "freed twice");
	/* Once collected, the record goes: a new object in the slot may
	 * be freed again. */
	uintptr_t h = hide(p);
	p = NULL;
	gc_collect();
	ck_assert(!is_live(unhide(h)));
	char *q = NULL;
	for (int i = 0; i < 100000 && q != unhide(h); i++)
		q = gc_alloc(64, NULL);
	ck_assert_ptr_eq(q, unhide(h));
	gc_free(q);
	ck_assert_int_eq(err.calls, 0);
	gc_thread_detach();
	gc_free(q);
	EXPECT_ERR(GCHEAP_ERR_NOT_ATTACHED, "gc_thread_attach()");
}
END_TEST

static void write_after_free(void)
{
	start("poison=1,checkmark=0");
	char *p = gc_alloc(256, NULL);
	gc_free(p);
	uintptr_t h = hide(p);
	p = NULL;
	((char *)unhide(h))[200] = 1; /* the write after gc_free */
	gc_collect();
}

static void use_after_free(void)
{
	void *slot[1] = {0};
	gc_frame f;

	start("checkmark=1");
	gc_frame_push(&f, slot, 1);
	void **a = gc_alloc(3 * sizeof(void *), t_holder);
	slot[0] = a;
	gc_write(&a[2], new_payload(100, 3));
	gc_free(a[2]); /* and a still points to it */
	gc_collect();
}

START_TEST(test_free_debug_messages)
{
	expect_fatal(write_after_free, "write after gc_free: byte 200 of "
	             "object");
	expect_fatal(use_after_free, "use after gc_free");
	expect_fatal(use_after_free, "held by an object of type holder at");
	expect_fatal(use_after_free, "field +16");
}
END_TEST

/* gc_free's records (gc/mfree.c) are checked and dropped at every mark
 * termination, before the sweep frees their objects; the check walks the
 * records' table, which may be in the middle of an incremental rehash
 * (alloc/sys/addrset.c) and must be settled first: a record left in the
 * old table outlives its object (a later object at the address is taken
 * for a freed one). In a fresh process, K objects freed and a collection:
 * no record may remain. A table filled from empty starts a rehash at its
 * 33rd, 129th, 513th and 2049th entry, the last two moving an old table
 * of 1024 and 4096 slots 32 slots a call: K a little past each lands
 * the collection inside a move. */
static int free_burst_k;

static void free_burst(void)
{
	static uintptr_t h[2100];

	start("poison=1,checkmark=1");
	for (int i = 0; i < free_burst_k; i++) {
		void *p = gc_alloc(48, NULL);
		h[i] = hide(p);
		gc_free(p);
		p = NULL;
	}
	gc_collect();
	for (int k = 0; k < free_burst_k; k++)
		if (mfree_is_freed((uintptr_t)unhide(h[k]))) {
			fprintf(stderr, "K=%d: object %d still recorded as "
			        "freed after the collection that swept it\n",
			        free_burst_k, k);
			_exit(3);
		}
	fprintf(stderr, "clean\n");
}

START_TEST(test_free_records_mid_rehash)
{
	static const int ks[] = {40, 136, 520, 530, 2056, 2080};
	char buf[8192];

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		free_burst_k = ks[i];
		int status = run_child(free_burst, buf, sizeof(buf));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		                      strstr(buf, "clean"),
		              "K=%d: status %#x, stderr: %s", ks[i], status,
		              buf);
	}
}
END_TEST

/* ---- Uncollectable objects ----------------------------------------------- */

START_TEST(test_uncollectable)
{
	start(NULL);
	void **u = gc_alloc_uncollectable(4 * sizeof(void *), t_ptrs);
	ck_assert_ptr_nonnull(u);
	gc_write(&u[3], new_payload(80, 9));
	gc_weak *wu = watch(u), *wc = watch(u[3]);
	uintptr_t h = hide(u);
	u = NULL;
	for (int i = 0; i < 3; i++)
		gc_collect();
	ck_assert_ptr_eq(gc_weak_get(wu), unhide(h));
	ck_assert(check_payload(gc_weak_get(wc), 80, 9));
	/* Not a hint: gc_free and gc_realloc refuse it. */
	clear_err();
	gc_free(unhide(h));
	EXPECT_ERR(GCHEAP_ERR_ARG, "gc_free_uncollectable");
	ck_assert_ptr_null(gc_realloc(unhide(h), 64, t_ptrs));
	EXPECT_ERR(GCHEAP_ERR_ARG, "uncollectable");
	ck_assert_int_eq(gc_free_uncollectable(unhide(h)), GCHEAP_OK);
	ck_assert_int_eq(gc_free_uncollectable(unhide(h)), GCHEAP_ERR_ARG);
	EXPECT_ERR(GCHEAP_ERR_ARG, "not an object from");
	gc_collect();
	ck_assert_ptr_null(gc_weak_get(wu));
	ck_assert_ptr_null(gc_weak_get(wc));
	void *plain = gc_alloc(16, NULL);
	ck_assert_int_eq(gc_free_uncollectable(plain), GCHEAP_ERR_ARG);
	EXPECT_ERR(GCHEAP_ERR_ARG, "not an object from");
	ck_assert_int_eq(gc_free_uncollectable(NULL), GCHEAP_OK);
	/* Many, to grow the table. */
	void *keep[300];
	for (int i = 0; i < 300; i++)
		keep[i] = gc_alloc_uncollectable(32, NULL);
	uintptr_t hk[300];
	for (int i = 0; i < 300; i++)
		hk[i] = hide(keep[i]), keep[i] = NULL;
	gc_collect();
	for (int i = 0; i < 300; i++) {
		ck_assert(is_live(unhide(hk[i])));
		ck_assert_int_eq(gc_free_uncollectable(unhide(hk[i])),
		                 GCHEAP_OK);
	}
	gc_collect();
	for (int i = 0; i < 300; i++)
		ck_assert(!is_live(unhide(hk[i])));
	ck_assert_int_eq(err.calls, 0);
	gc_thread_detach();
	ck_assert_ptr_null(gc_alloc_uncollectable(8, NULL));
	EXPECT_ERR(GCHEAP_ERR_NOT_ATTACHED, "gc_thread_attach()");
}
END_TEST

/* Uncollectable objects stay roots while their table's rehash is in
 * progress: the table moves to a larger one a few slots a call
 * (alloc/sys/addrset.c), so soon after the add that starts a rehash most
 * entries are still in the old table, which the root scan
 * (runtime_mark_uncollectable) and the root walk of heap dumps
 * (runtime_each_uncollectable) must settle first. A look every 16 adds
 * up to 3000 objects lands inside every move of an old table of 1024
 * slots or more (each lasts at least 32 calls). Each look is of one kind
 * only (both settle the table, so one would hide the other's miss): a
 * collection, which every object made so far must survive, its payload
 * intact (poison would overwrite a freed one), or the walk, which must
 * visit each of them once. */
enum { MR_N = 3000, MR_EVERY = 16 };
#define MR_MAGIC 0x756e636f6c6c6563ULL

static unsigned mr_seen[MR_N];

static void mr_visit(void **slot, void *arg)
{
	const uint64_t *o = *slot;
	(void)arg;
	if (o && o[0] == MR_MAGIC && o[1] < MR_N)
		mr_seen[o[1]]++;
}

static void uncollectable_mid_rehash(bool walk)
{
	static uintptr_t h[MR_N];

	start(NULL);
	for (uint64_t i = 0; i < MR_N; i++) {
		uint64_t *p = gc_alloc_uncollectable(2 * sizeof(uint64_t),
		                                     NULL);
		ck_assert_ptr_nonnull(p);
		p[0] = MR_MAGIC;
		p[1] = i;
		h[i] = hide(p);
		p = NULL;
		if (i % MR_EVERY != MR_EVERY - 1)
			continue;
		if (walk) {
			memset(mr_seen, 0, sizeof(mr_seen));
			runtime_each_uncollectable(mr_visit, NULL);
			for (uint64_t k = 0; k <= i; k++)
				REQUIRE(mr_seen[k] == 1, "uncollectable %d of "
				        "%d visited %u times", (int)k,
				        (int)i + 1, mr_seen[k]);
			continue;
		}
		gc_collect();
		for (uint64_t k = 0; k <= i; k++) {
			const uint64_t *o = unhide(h[k]);
			REQUIRE(is_live(o) && o[0] == MR_MAGIC && o[1] == k,
			        "uncollectable %d of %d collected", (int)k,
			        (int)i + 1);
		}
	}
	for (int i = 0; i < MR_N; i++)
		ck_assert_int_eq(gc_free_uncollectable(unhide(h[i])),
		                 GCHEAP_OK);
	gc_collect();
	ck_assert_int_eq(err.calls, 0);
}

START_TEST(test_uncollectable_mid_rehash)
{
	uncollectable_mid_rehash(false);
}
END_TEST

START_TEST(test_uncollectable_walk_mid_rehash)
{
	uncollectable_mid_rehash(true);
}
END_TEST

/* ---- gc_keep_alive ------------------------------------------------------- */

static int finalized;

static void count_final(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	finalized++;
}

/* Conservative stacks: an object whose only reference is a local that
 * is used again (by gc_keep_alive) after a collection is not finalized.
 * (That the compiler would drop the local without the call cannot be
 * staged reliably; this checks the call's contract, any value goes.) */
START_TEST(test_keep_alive)
{
	start(NULL);
	gc_set_conservative_stacks(1);
	gc_set_finalizer_thread(0);
	void *p = gc_alloc(64, NULL);
	ck_assert_int_eq(gc_set_finalizer(p, count_final, NULL), GCHEAP_OK);
	gc_collect();
	gc_run_finalizers();
	ck_assert_int_eq(finalized, 0);
	gc_keep_alive(p);
	gc_keep_alive(NULL);
	gc_keep_alive(&finalized);
	ck_assert_int_eq(err.calls, 0);
}
END_TEST

/* ---- Cycle callbacks ----------------------------------------------------- */

static struct {
	pthread_mutex_t lock; /* held by the test around gc_collect */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int n;
	gc_cycle_event ev[64];
	uint64_t cycle[64];
	int attached;
} cb = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
        PTHREAD_COND_INITIALIZER, 0, {0}, {0}, 0};

static void on_cycle(gc_cycle_event ev, uint64_t cycle, void *data)
{
	ck_assert_ptr_eq(data, &cb);
	/* The embedder's lock, which its own thread holds around
	 * gc_collect: taking it here must not hold up the collector. */
	pthread_mutex_lock(&cb.lock);
	pthread_mutex_unlock(&cb.lock);
	pthread_mutex_lock(&cb.mu);
	if (cb.n < 64) {
		cb.ev[cb.n] = ev;
		cb.cycle[cb.n] = cycle;
		cb.n++;
	}
	cb.attached |= gc_thread_is_attached();
	pthread_cond_broadcast(&cb.cond);
	pthread_mutex_unlock(&cb.mu);
}

/* Wait until the sweep of cycle `last` has been reported: in a blocking
 * region (a sweep ends once every attached thread has released its
 * cache, at a safepoint or on its behalf while it blocks). */
static void wait_sweep_end(uint64_t last)
{
	struct timespec dl;
	gc_blocking_begin();
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 20;
	pthread_mutex_lock(&cb.mu);
	while (!cb.n || cb.cycle[cb.n - 1] < last ||
	       cb.ev[cb.n - 1] != GCHEAP_CYCLE_SWEEP_END)
		if (pthread_cond_timedwait(&cb.cond, &cb.mu, &dl))
			break;
	pthread_mutex_unlock(&cb.mu);
	gc_blocking_end();
}

START_TEST(test_cycle_callback)
{
	start(NULL);
	gc_collect(); /* before the registration: not reported */
	uint64_t first = aload(&mgc_.cycles) + 1;
	ck_assert_int_eq(gc_set_cycle_callback(on_cycle, &cb), GCHEAP_OK);
	pthread_mutex_lock(&cb.lock);
	for (int i = 0; i < 3; i++)
		gc_collect();
	pthread_mutex_unlock(&cb.lock);
	wait_sweep_end(first + 2);
	/* One sequence, in order, with no gap: (cycle, event) counts up.
	 * It may open with the previous cycle's sweep end, which came
	 * after the registration. */
	char seq[512] = "";
	for (int i = 0; i < cb.n; i++)
		snprintf(seq + strlen(seq), sizeof(seq) - strlen(seq),
		         " %d/%d", (int)cb.cycle[i], (int)cb.ev[i]);
	ck_assert_msg(cb.n >= 9, "first %d, events%s", (int)first, seq);
	uint64_t e0 = 3 * (cb.cycle[0] - 1) + cb.ev[0];
	ck_assert_uint_le(e0, 3 * (first - 1));
	ck_assert_uint_ge(e0, 3 * (first - 1) - 1);
	for (int i = 0; i < cb.n; i++)
		ck_assert_uint_eq(3 * (cb.cycle[i] - 1) + cb.ev[i],
		                  e0 + (uint64_t)i);
	ck_assert_uint_eq(cb.cycle[cb.n - 1], first + 2);
	ck_assert_int_eq(cb.attached, 0);
	/* Cleared: no more calls once gc_set_cycle_callback returned. */
	ck_assert_int_eq(gc_set_cycle_callback(NULL, NULL), GCHEAP_OK);
	int n = cb.n;
	gc_collect();
	gc_blocking_begin();
	sleep_us(200000);
	gc_blocking_end();
	ck_assert_int_eq(cb.n, n);
}
END_TEST

/* A callback that blocks on the embedder's lock (docs/api.md allows it,
 * even a lock that the thread calling gc_collect holds) while another
 * attached thread replaces it: the replacing thread waits for the
 * running callback, and must count as blocked meanwhile, or the next
 * collection (which waits for it to flush its barrier buffer) waits
 * forever for a thread that waits for a callback that waits for the
 * collector's caller. It hung 5 runs of 5 before. */
static pthread_mutex_t cbl_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_word cbl_in, cbl_replacing, cbl_done;

static void cbl_callback(gc_cycle_event e, uint64_t cycle, void *data)
{
	(void)e, (void)cycle, (void)data;
	astore_rel(&cbl_in, 1);
	pthread_mutex_lock(&cbl_lock);
	pthread_mutex_unlock(&cbl_lock);
}

static void *cbl_replacer(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	while (!aload_acq(&cbl_in)) {
		gc_safepoint();
		sleep_us(1000);
	}
	astore_rel(&cbl_replacing, 1);
	gc_set_cycle_callback(NULL, NULL); /* waits for cbl_callback */
	astore_rel(&cbl_done, 1);
	gc_thread_detach();
	return NULL;
}

START_TEST(test_cycle_callback_replaced_while_blocked)
{
	pthread_t b;

	start(NULL);
	ck_assert_int_eq(gc_set_cycle_callback(cbl_callback, NULL),
	                 GCHEAP_OK);
	ck_assert_int_eq(pthread_create(&b, NULL, cbl_replacer, NULL), 0);
	pthread_mutex_lock(&cbl_lock);
	gc_collect(); /* the callback now waits for cbl_lock */
	gc_blocking_begin();
	while (!aload_acq(&cbl_replacing))
		sleep_us(1000);
	sleep_us(50000); /* the replacer is waiting for the callback */
	gc_blocking_end();
	ck_assert(!aload_acq(&cbl_done));
	gc_collect(); /* hung here */
	pthread_mutex_unlock(&cbl_lock);
	gc_blocking_begin();
	ck_assert_int_eq(pthread_join(b, NULL), 0);
	gc_blocking_end();
	ck_assert(aload_acq(&cbl_done));
}
END_TEST

/* A memory limit set (or lowered) moves the goal and trigger at once, as
 * gc_set_percent does: with 24 MiB live the goal was 48 MiB before and
 * after a limit of 32 MiB, until the next mark ended. */
START_TEST(test_memory_limit_repaces)
{
	void *slot = NULL;
	gc_frame f;
	gc_stats st;

	start(NULL);
	gc_frame_push(&f, &slot, 1);
	slot = gc_alloc(24 << 20, NULL);
	ck_assert_ptr_nonnull(slot);
	gc_collect();
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	uint64_t goal = st.heap_goal;
	ck_assert_uint_ge(goal, (uint64_t)46 << 20);
	gc_set_memory_limit((size_t)32 << 20);
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_msg(st.heap_goal <= (uint64_t)(32 << 20) / 20 * 19,
	              "goal %llu under a 32 MiB limit",
	              (unsigned long long)st.heap_goal);
	gc_set_memory_limit(0);
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.heap_goal, goal);
	gc_frame_pop(&f);
}
END_TEST

/* ---- The finalizer notifier ---------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int calls;
	size_t pending;
} fn_ = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void on_finalizers(size_t pending, void *data)
{
	(void)data;
	pthread_mutex_lock(&fn_.mu);
	fn_.calls++;
	fn_.pending = pending;
	pthread_cond_broadcast(&fn_.cond);
	pthread_mutex_unlock(&fn_.mu);
}

START_TEST(test_finalizer_notify)
{
	start(NULL);
	gc_set_finalizer_thread(0);
	ck_assert_int_eq(gc_set_finalizer_notify(on_finalizers, NULL),
	                 GCHEAP_OK);
	void *p = gc_alloc(64, NULL);
	ck_assert_int_eq(gc_set_finalizer(p, count_final, NULL), GCHEAP_OK);
	p = NULL;
	gc_collect();
	struct timespec dl;
	gc_blocking_begin();
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 20;
	pthread_mutex_lock(&fn_.mu);
	while (!fn_.calls)
		if (pthread_cond_timedwait(&fn_.cond, &fn_.mu, &dl))
			break;
	pthread_mutex_unlock(&fn_.mu);
	gc_blocking_end();
	ck_assert_int_ge(fn_.calls, 1);
	ck_assert_uint_eq(fn_.pending, 1);
	ck_assert_int_eq(finalized, 0); /* manual: nothing ran by itself */
	ck_assert_uint_eq(gc_run_finalizers(), 1);
	ck_assert_int_eq(finalized, 1);
	ck_assert_int_eq(gc_set_finalizer_notify(NULL, NULL), GCHEAP_OK);
}
END_TEST

/* ---- gc_free_os_memory --------------------------------------------------- */

START_TEST(test_free_os_memory)
{
	gc_stats a, b;

	start(NULL);
	for (int i = 0; i < 64; i++)
		gc_alloc(1 << 20, NULL); /* dropped at once */
	ck_assert_int_eq(gc_read_stats(&a, sizeof(a)), GCHEAP_OK);
	/* Without a collection the pages are still allocated. */
	size_t before = gc_release_memory();
	ck_assert_uint_lt(before, (size_t)16 << 20);
	size_t got = gc_free_os_memory();
	ck_assert_int_eq(gc_read_stats(&b, sizeof(b)), GCHEAP_OK);
	/* The scavenger may have returned part of it after the sweep;
	 * together, all of it went back. */
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_ge(b.os_released - a.os_released, (size_t)48 << 20);
	ck_assert_uint_gt(b.gc_cycles, a.gc_cycles);
	gc_thread_detach();
	clear_err();
	ck_assert_uint_eq(gc_free_os_memory(), 0);
	EXPECT_ERR(GCHEAP_ERR_NOT_ATTACHED, "gc_thread_attach()");
}
END_TEST

/* ---- GCHEAP_MEMLIMIT ----------------------------------------------------- */

START_TEST(test_memlimit_syntax)
{
	static const struct {
		const char *v;
		bool ok;
		size_t n;
	} cases[] = {
		{"0", true, 0}, {"off", true, 0}, {"123", true, 123},
		{"123B", true, 123}, {"4KiB", true, 4096},
		{"64MiB", true, (size_t)64 << 20}, {"3GiB", true, 3ULL << 30},
		{"2TiB", true, 2ULL << 40}, {"1.5GiB", false, 0},
		{"1kb", false, 0}, {"1K", false, 0}, {"", false, 0},
		{"-1", false, 0}, {" 1", false, 0}, {"1 MiB", false, 0},
		{"99999999999TiB", false, 0}, {"Off", false, 0},
		{"18446744073709551616", false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 77;
		bool ok = runtime_parse_memlimit(cases[i].v, &n);
		ck_assert_msg(ok == cases[i].ok, "\"%s\"", cases[i].v);
		if (ok)
			ck_assert_msg(n == cases[i].n, "\"%s\": %zu",
			              cases[i].v, n);
	}
}
END_TEST

START_TEST(test_memlimit_env)
{
	setenv("GCHEAP_MEMLIMIT", "96MiB", 1);
	start(NULL);
	ck_assert_uint_eq(gc_memory_limit(), (size_t)96 << 20);
	/* The limit holds: more than it cannot be allocated. */
	void *slot[1];
	gc_frame f;
	gc_frame_push(&f, slot, 1);
	slot[0] = gc_alloc((size_t)128 << 20, NULL);
	ck_assert_ptr_null(slot[0]);
	EXPECT_ERR(GCHEAP_ERR_NOMEM, "limit");
	gc_frame_pop(&f);
}
END_TEST

/* An allocation that passes the memory limit collects and tries again
 * (gc_alloc_slow); if the retry's object runs the heap profiler's
 * countdown out, it is sampled then. It was not: the sample stayed
 * pending, and the next slow path charged the span's window again (on a
 * span the thread might no longer own) and recorded its own object
 * under that span's size. The countdown is set to run out at every slow
 * path of 64-byte objects, with GOGC off and 32 MiB of garbage, under a
 * limit of what the heap holds. */
START_TEST(test_limit_retry_samples)
{
	const spanclass spc = make_spanclass(size_to_class(64), true);

	setenv("GCHEAP_GC", "off", 1);
	sys_fatal_exit_code = FATAL_CODE;
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_set_conservative_stacks(0);
	gc_set_error_handler(on_error, NULL);
	gc_thread *th = thread_current;
	for (int j = 0; j < (32 << 20) / 64; j++)
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	mutex_lock(&mheap_.lock);
	size_t held = mheap_.stats.committed - mheap_.stats.released;
	mutex_unlock(&mheap_.lock);
	gc_set_memory_limit(held);
	bool retried = false;
	for (int j = 0; j < (64 << 20) / 64 && !retried; j++) {
		if (!th->mcache.alloc[spc]->alloc_cache)
			th->mcache.prof_left = 0;
		uintptr_t c0 = aload(&mgc_.cycles);
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
		REQUIRE(th->mcache.prof_span == NULL, "allocation %d left "
		        "its sample pending", j);
		retried = aload(&mgc_.cycles) != c0;
	}
	REQUIRE(retried, "no allocation passed the limit");
	ck_assert_int_eq(err.calls, 0);
	gc_set_memory_limit(0);
}
END_TEST

/* ---- The heap profiler's sampling ---------------------------------------- */

static uint64_t sampled_allocs(void)
{
	size_t n;
	uint64_t allocs = 0;

	for (mprof_bucket *b = mprof_buckets(&n); b; b = b->all_next)
		allocs += aload(&b->allocs);
	return allocs;
}

/* A thread that attaches, allocates 64 bytes and detaches, 1000 times: at
 * the default rate (512 KiB) the 64,000 bytes are sampled about 0.12
 * times. Every attach sampled its first allocation for certain (the
 * countdown started at 0, and only a thread's very first allocation
 * skipped recording), 999 samples, each then scaled up to ~512 KiB: a
 * profile of ~500 MB for 64 KB. */
START_TEST(test_profile_per_attach)
{
	unsetenv("GCHEAP_MEMPROFILERATE");
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
		ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	}
	ck_assert_int_eq((int)mprof_rate(), 512 * 1024);
	uint64_t n = sampled_allocs();
	ck_assert_msg(n <= 10, "%llu samples of 1000 allocations of 64 B",
	              (unsigned long long)n);
}
END_TEST

/* A profile written before the heap is initialised (any thread may ask)
 * read the rate before the options were parsed: 0, kept for good, and
 * the profiler stayed off. */
START_TEST(test_profile_before_init)
{
	char path[] = "/tmp/gcheap-prof-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	setenv("GCHEAP_MEMPROFILERATE", "1", 1);
	ck_assert_int_eq(gc_write_heap_profile(path), GCHEAP_OK);
	unlink(path);
	start(NULL);
	for (int i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(gc_alloc(64, NULL));
	ck_assert_int_eq((int)mprof_rate(), 1);
	ck_assert_uint_ge(sampled_allocs(), 100);
}
END_TEST

/* ---- Stats read while large objects are allocated ------------------------ */

static atomic_word large_stop;

static void *large_allocator(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	while (!aload_acq(&large_stop))
		(void)gc_alloc((size_t)1 << 20, NULL);
	gc_thread_detach();
	return NULL;
}

/* The large objects' frees are counted as allocations less those in use;
 * the allocation was counted after the span (in use at once), so a read
 * between the two made frees 2^64 - 1 (in 1,035 of 1,052 reads under
 * ASan). */
START_TEST(test_stats_large_frees)
{
	pthread_t t;
	gc_stats st;

	start(NULL);
	gc_enable();
	ck_assert_int_eq(pthread_create(&t, NULL, large_allocator, NULL), 0);
	for (int i = 0; i < 2000; i++) {
		ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
		REQUIRE(st.classes[0].frees <= st.classes[0].mallocs &&
		        st.frees < (uint64_t)1 << 62, "read %d: large mallocs "
		        "%llu frees %llu, all frees %llu", i,
		        (unsigned long long)st.classes[0].mallocs,
		        (unsigned long long)st.classes[0].frees,
		        (unsigned long long)st.frees);
		gc_safepoint();
	}
	astore_rel(&large_stop, 1);
	gc_blocking_begin();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	gc_blocking_end();
}
END_TEST

/* A 4 MiB object under a 16 MiB limit with 6.8 MiB live: the free pages
 * (every other 40 KiB object freed) held 14 MiB committed and made no
 * 4 MiB run, and the allocation failed after its emergency collection.
 * The pages are given back first now, as Go's heap growth does. */
START_TEST(test_limit_releases_for_a_run)
{
	static void *keep[340];

	start(NULL);
	ck_assert_int_eq(gc_add_roots(keep, 340), GCHEAP_OK);
	gc_set_memory_limit((size_t)16 << 20);
	for (int i = 0; i < 340; i++)
		gc_write(&keep[i], gc_alloc(40 << 10, NULL));
	for (int i = 0; i < 340; i += 2)
		gc_write(&keep[i], NULL);
	gc_collect();
	clear_err();
	void *big = gc_alloc((size_t)4 << 20, NULL);
	ck_assert_msg(big != NULL, "%s", err.msg);
	ck_assert_int_eq(err.calls, 0);
	gc_set_memory_limit(0);
	ck_assert_int_eq(gc_remove_roots(keep), GCHEAP_OK);
}
END_TEST

/* GOGC off with a memory limit: cycles start as the heap nears the limit
 * (Go's GOGC=off with GOMEMLIMIT). They did not: only an allocation
 * refused at the limit collected. */
START_TEST(test_gogc_off_limit_paces)
{
	gc_stats st;

	start(NULL);
	gc_enable();
	gc_set_percent(-1);
	gc_set_memory_limit((size_t)32 << 20);
	gc_collect();
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.heap_goal, ((uint64_t)32 << 20) / 20 * 19);
	uint64_t c0 = st.gc_cycles;
	/* Garbage until the heap passes the trigger, short of the goal
	 * (95% of the limit): no allocation is refused at the limit. */
	for (int i = 0; i < 31 * 16 && aload(&mgc_.cycles) == c0 &&
	                aload(&mheap_.stats.heap_live) <= aload(&mgc_.trigger);
	     i++)
		ck_assert_ptr_nonnull(gc_alloc(64 << 10, NULL));
	/* The next allocation looks at the heap it passed, and starts a
	 * cycle, which ends at this thread's safepoints. */
	ck_assert_ptr_nonnull(gc_alloc(64 << 10, NULL));
	for (double end = test_now_s() + 10;
	     aload(&mgc_.cycles) == c0 && test_now_s() < end;)
		gc_safepoint();
	ck_assert_uint_gt(aload(&mgc_.cycles), c0);
	gc_set_memory_limit(0);
}
END_TEST

static void bad_memlimit(void)
{
	setenv("GCHEAP_MEMLIMIT", "12 apples", 1);
	start(NULL);
	if (gc_memory_limit() == 0)
		fatal("no limit, as documented");
}

START_TEST(test_memlimit_bad)
{
	expect_fatal(bad_memlimit, "GCHEAP_MEMLIMIT=12 apples is not a byte "
	             "count");
}
END_TEST

/* ---- Checkmark names the holder ------------------------------------------ */

/* X moves from A (reachable only from the unscanned helper) into B, an
 * object allocated black during the mark, with plain stores. */
static void missed_store(void)
{
	helper h;
	void *ms[1] = {0};
	gc_frame f;

	start("checkmark=1");
	helper_start(&h);
	gc_frame_push(&f, ms, 1);
	void **a = gc_alloc(2 * sizeof(void *), t_ptrs);
	gc_write(&a[0], new_payload(128, 5));
	h.slots[0] = a;
	pause_begin(&h);
	void **b = gc_alloc(3 * sizeof(void *), t_holder);
	ms[0] = b;
	b[2] = a[0]; /* no barrier */
	a[0] = NULL; /* no barrier */
	pause_end(&h, NULL, NULL);
}

START_TEST(test_checkmark_names_holder)
{
	expect_fatal(missed_store, "held by an object of type holder at");
	expect_fatal(missed_store, "field +16");
	expect_fatal(missed_store, "probably lacked gc_write");
}
END_TEST

/* ---- A stack that is not the thread's own ------------------------------- */

/* A coroutine (makecontext) collects. With conservative stacks on, the
 * scan of its own stack ran from the coroutine's stack pointer to the top
 * of the thread's stack, across unmapped memory (SIGSEGV every run), or,
 * for a coroutine stack above it, scanned nothing and freed what the
 * coroutine held. Now that is a fatal error that says what to do; with
 * conservative stacks off the coroutine's frames are its roots. */
static ucontext_t coro_main_ctx, coro_ctx;

static void coro_body(void)
{
	void *slot = NULL;
	gc_frame f;

	gc_frame_push(&f, &slot, 1);
	slot = new_payload(100, 7);
	gc_collect();
	gc_collect();
	if (!check_payload(slot, 100, 7))
		fatal("the coroutine's object was not kept");
	gc_frame_pop(&f);
}

/* The soft stack limit at most 8 MiB (what a main thread's stack may grow
 * to, which the foreign-stack check allows it). */
static void stack_limit_8m(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_STACK, &rl))
		fatal("getrlimit");
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ((rlim_t)8 << 20))
		rl.rlim_cur = (rlim_t)8 << 20;
	if (setrlimit(RLIMIT_STACK, &rl))
		fatal("setrlimit");
}

static void run_coroutine(bool conservative)
{
	const size_t size = (size_t)1 << 20;

	stack_limit_8m();
	start(NULL);
	gc_set_conservative_stacks(conservative);
	char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED || getcontext(&coro_ctx))
		fatal("no coroutine");
	coro_ctx.uc_stack.ss_sp = stack;
	coro_ctx.uc_stack.ss_size = size;
	coro_ctx.uc_link = &coro_main_ctx;
	makecontext(&coro_ctx, coro_body, 0);
	if (swapcontext(&coro_main_ctx, &coro_ctx))
		fatal("no switch");
	fprintf(stderr, "done\n");
}

static void coroutine_conservative(void)
{
	run_coroutine(true);
}

static void coroutine_precise(void)
{
	run_coroutine(false);
}

/* The main thread attaches under an 8 MiB stack limit, raises it (as an
 * interpreter does before deep recursion) and collects 16 MiB down: its
 * own stack, below what pthread_getattr_np said at attach. That was
 * reported as a foreign stack, fatally. */
static volatile int deep_sink;

static NOINLINE void deep_collect(int n)
{
	volatile char pad[4096];

	memset((char *)pad, n, sizeof(pad));
	if (n > 0)
		deep_collect(n - 1);
	else
		gc_collect();
	deep_sink += pad[0];
}

static void raised_stack_limit(void)
{
	struct rlimit rl;

	stack_limit_8m();
	start(NULL);
	gc_set_conservative_stacks(1);
	if (getrlimit(RLIMIT_STACK, &rl))
		fatal("getrlimit");
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < ((rlim_t)64 << 20)) {
		fprintf(stderr, "skip: hard limit\n");
		return;
	}
	rl.rlim_cur = (rlim_t)64 << 20;
	if (setrlimit(RLIMIT_STACK, &rl))
		fatal("setrlimit");
	deep_collect(4000);
	fprintf(stderr, "done\n");
}

START_TEST(test_own_stack_grown)
{
	char buf[8192];

	int st = run_child(raised_stack_limit, buf, sizeof(buf));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x: %s", st,
	              buf);
	ck_assert_msg(strstr(buf, "done") || strstr(buf, "skip"), "%s", buf);
}
END_TEST

START_TEST(test_foreign_stack)
{
	char buf[8192];

	expect_fatal(coroutine_conservative, "on a stack that is not its own");
	expect_fatal(coroutine_conservative, "gc_set_conservative_stacks(0)");
	int st = run_child(coroutine_precise, buf, sizeof(buf));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x: %s", st,
	              buf);
	ck_assert_msg(strstr(buf, "done"), "%s", buf);
}
END_TEST

/* ---- rootcheck ----------------------------------------------------------- */

/* Globals the library does not scan (exported: the test is linked with
 * -rdynamic, so that dladdr names them). */
#define EXPORTED __attribute__((visibility("default")))
EXPORTED void *calls_forgotten_global;
EXPORTED void *calls_registered_global;

static void forget_global(void)
{
	start(NULL); /* GCHEAP_DEBUG from the environment */
	char *p = new_payload(200, 4);
	calls_forgotten_global = p;
	uintptr_t h = hide(p);
	p = NULL;
	gc_collect();
	gc_collect();
	/* rootcheck=1 kept it: intact. */
	if (!is_live(unhide(h)) || !check_payload(unhide(h), 200, 4))
		fatal("the object was not kept");
	fprintf(stderr, "kept\n");
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

START_TEST(test_rootcheck_warns_once)
{
	char buf[8192];

	setenv("GCHEAP_DEBUG", "rootcheck=1,poison=1", 1);
	int st = run_child(forget_global, buf, sizeof(buf));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x: %s", st,
	              buf);
	ck_assert_msg(strstr(buf, "kept\n"), "%s", buf);
	ck_assert_msg(count(buf, "rootcheck: object") == 1, "%s", buf);
	ck_assert_msg(strstr(buf, "calls_forgotten_global+0"), "%s", buf);
	ck_assert_msg(strstr(buf, "gc_add_roots"), "%s", buf);
}
END_TEST

START_TEST(test_rootcheck_fatal)
{
	setenv("GCHEAP_DEBUG", "rootcheck=2", 1);
	expect_fatal(forget_global, "rootcheck: object");
	expect_fatal(forget_global, "calls_forgotten_global+0");
}
END_TEST

/* The heap's own record of the range it is faulting in ahead holds heap
 * addresses (page boundaries, which may fall inside a dead object): not
 * a forgotten root. rootcheck reported it (and with rootcheck=2 aborted
 * a correct program) when a collection met the background sweeper in
 * the middle of faulting in. Set here by hand around a dead object. */
static void prefault_range_global(void)
{
	/* The arena's first object stays live: a word of the process's
	 * own state (a signal mask saved by the test framework, seen under
	 * ThreadSanitizer) can equal the arena's base, and the dead object
	 * must be one only the prefault range points into. */
	void *pad[1];
	gc_frame f;
	start(NULL);
	gc_frame_push(&f, pad, 1);
	pad[0] = new_payload(200, 3);
	char *p = new_payload(200, 4);
	uintptr_t h = hide(p);
	mutex_lock(&mheap_.lock);
	mheap_.prefault_lo = (uintptr_t)unhide(h) + 16;
	mheap_.prefault_hi = (uintptr_t)unhide(h) + 16 + PAGE_SIZE;
	mutex_unlock(&mheap_.lock);
	p = NULL;
	gc_collect();
	gc_collect();
	bool live = is_live(unhide(h));
	mutex_lock(&mheap_.lock);
	mheap_.prefault_lo = mheap_.prefault_hi = 0;
	mutex_unlock(&mheap_.lock);
	gc_frame_pop(&f);
	if (live)
		fatal("the object was kept");
	fprintf(stderr, "done\n");
}

/* fn in a child under rootcheck=2: it must end well, rootcheck silent. */
static void expect_rootcheck_silent(void (*fn)(void))
{
	char buf[8192];

	setenv("GCHEAP_DEBUG", "rootcheck=2,checkmark=1", 1);
	int st = run_child(fn, buf, sizeof(buf));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x: %s", st,
	              buf);
	ck_assert_msg(!strstr(buf, "rootcheck"), "%s", buf);
	ck_assert_msg(strstr(buf, "done"), "%s", buf);
}

START_TEST(test_rootcheck_skips_heap_state)
{
	expect_rootcheck_silent(prefault_range_global);
}
END_TEST

static void register_global(void)
{
	start(NULL);
	ck_assert_int_eq(gc_add_roots(&calls_registered_global, 1),
	                 GCHEAP_OK);
	void **p = gc_alloc(3 * sizeof(void *), t_holder);
	gc_write(&calls_registered_global, p);
	gc_write(&p[1], new_payload(50, 2));
	p = NULL;
	gc_collect();
	gc_collect();
	fprintf(stderr, "done\n");
}

START_TEST(test_rootcheck_silent_when_registered)
{
	expect_rootcheck_silent(register_global);
}
END_TEST

/* A weak handle kept in an unregistered global while its target lives
 * (the program roots the target): nothing marks the cell, but sweep keeps
 * it while its target is set, so rootcheck, which looks for what would be
 * freed, says nothing (it said the cell "would be freed"). */
EXPORTED void *calls_weak_global;

static void weak_in_global(void)
{
	void *slot[1] = {0};
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, slot, 1);
	slot[0] = new_payload(40, 3);
	calls_weak_global = gc_weak_new(slot[0]);
	gc_collect();
	gc_collect();
	ck_assert_ptr_eq(gc_weak_get(calls_weak_global), slot[0]);
	gc_frame_pop(&f);
	fprintf(stderr, "done\n");
}

START_TEST(test_rootcheck_silent_for_weak_handle)
{
	expect_rootcheck_silent(weak_in_global);
}
END_TEST

/* A global array that a frame covers in part (a VM's value stack, as
 * the Lox VM keeps it): the stale values past the frame's live slots
 * are no roots, not forgotten globals; rootcheck reported every one. A
 * forgotten pointer in another global is still reported (the control). */
EXPORTED void *calls_frame_stack[8];

static void frame_stack_global(void)
{
	gc_frame f;

	start(NULL);
	gc_frame_push(&f, calls_frame_stack, 1);
	calls_frame_stack[0] = new_payload(64, 1);
	calls_frame_stack[3] = new_payload(64, 2); /* popped: stale */
	uintptr_t h = hide(calls_frame_stack[3]);
	gc_collect();
	gc_collect();
	if (is_live(unhide(h)))
		fatal("the stale slot's object was kept");
	if (!check_payload(calls_frame_stack[0], 64, 1))
		fatal("the live slot's object was lost");
	calls_frame_stack[3] = NULL;
	gc_frame_pop(&f);
	fprintf(stderr, "done\n");
}

START_TEST(test_rootcheck_skips_frame_tail)
{
	expect_rootcheck_silent(frame_stack_global);
	setenv("GCHEAP_DEBUG", "rootcheck=2", 1);
	expect_fatal(forget_global, "calls_forgotten_global+0");
}
END_TEST

/* ---- Under concurrent collections ---------------------------------------- */

/* Threads grow pointer arrays with gc_realloc, fill them with gc_strdup'd
 * strings, clear them with gc_free and keep uncollectable ones, while a
 * cycle starts every 64 KiB (stress, and a gc_collect now and then) with
 * checkmark and poison on: what each thread can reach must stay intact.
 * (A smoke test for the sanitizers: replacing gc_realloc's gc_copy with
 * memcpy goes unnoticed, since the old array keeps its pointers.) */
#define CONC_THREADS 3
#define CONC_ROUNDS TSAN_CUT(300, 3)

static void *conc_main(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	void *slots[2] = {0};
	gc_frame f;
	char want[32];

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_frame_push(&f, slots, 2);
	for (int r = 0; r < CONC_ROUNDS; r++) {
		size_t n = 1 + (size_t)(r % 40);
		void **a = NULL;
		for (size_t k = 1; k <= n; k++) {
			a = gc_realloc(a, k * sizeof(void *), t_ptrs);
			REQUIRE(a, "realloc failed");
			slots[0] = a;
			snprintf(want, sizeof(want), "%zu-%d-%zu",
			         (size_t)id, r, k - 1);
			gc_write(&a[k - 1], gc_strdup(want));
		}
		for (size_t k = 0; k < n; k++) {
			snprintf(want, sizeof(want), "%zu-%d-%zu",
			         (size_t)id, r, k);
			REQUIRE(a[k] && !strcmp(a[k], want), "lost %s", want);
		}
		void **u = gc_alloc_uncollectable(2 * sizeof(void *),
		                                  t_ptrs);
		gc_write(&u[0], a);
		if (slots[1])
			REQUIRE(gc_free_uncollectable(slots[1]) == GCHEAP_OK,
			        "free_uncollectable");
		slots[1] = u;
		if (r % 50 == 49)
			gc_collect();
		if (r % 3 == 0) {
			gc_free(a);
			slots[0] = NULL;
			gc_write(&u[0], NULL);
		}
	}
	gc_frame_pop(&f);
	gc_thread_detach();
	return NULL;
}

START_TEST(test_calls_concurrent)
{
	pthread_t th[CONC_THREADS];

	start("checkmark=1,poison=1,stress=64k");
	gc_enable();
	for (uintptr_t i = 0; i < CONC_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main,
		                                (void *)i), 0);
	gc_blocking_begin();
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	gc_blocking_end();
	ck_assert_int_eq(err.calls, 0);
	ck_assert_uint_gt(aload(&mgc_.cycles), 3);
}
END_TEST

static Suite *calls_suite(void)
{
	Suite *s = suite_create("calls");
	TCase *tc = tcase_create("calls");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_realloc_noscan);
	tcase_add_test(tc, test_realloc_tiny_within_block);
	tcase_add_test(tc, test_realloc_moves_pointers);
	tcase_add_test(tc, test_realloc_large_noscan_first_growth);
	tcase_add_test(tc, test_frame_unwind_after_longjmp);
	tcase_add_test(tc, test_realloc_refuses_handles);
	tcase_add_test(tc, test_detach_refused_in_handlers);
	tcase_add_test(tc, test_attach_refused_in_callback);
	tcase_add_test(tc, test_finalizer_leftovers_repaired);
	tcase_add_test(tc, test_frame_unwind_refuses);
	tcase_add_test(tc, test_library_threads_block_signals);
	tcase_add_test(tc, test_realloc_vector_grows_in_slot);
	tcase_add_test(tc, test_realloc_large_growth_room);
	tcase_add_test(tc, test_realloc_room_under_limit);
	tcase_add_test(tc, test_realloc_shrink_grow_while_marking);
	tcase_add_test(tc, test_alloc_uninit);
	tcase_add_test(tc, test_realloc_shrink_in_place_shades);
	tcase_add_test(tc, test_realloc_in_place_scan);
	tcase_add_test(tc, test_realloc_cut_inside_word);
	tcase_add_test(tc, test_realloc_grow_clears_unscanned);
	tcase_add_test(tc, test_conservative_off_before_init);
	tcase_add_test(tc, test_free_zero_size);
	tcase_add_test(tc, test_realloc_zero_free_tiny_uncollectable);
	tcase_add_test(tc, test_free_refuses_handles);
	tcase_add_test(tc, test_sixteen_bytes_not_tiny);
	tcase_add_test(tc, test_tiny_types_packed);
	tcase_add_test(tc, test_large_published_last);
	tcase_add_test(tc, test_realloc_in_place_typed);
	tcase_add_test(tc, test_realloc_cut_while_marking);
	tcase_add_test(tc, test_realloc_errors);
	tcase_add_test(tc, test_realloc_large_prefix);
	tcase_add_test(tc, test_strdup);
	tcase_add_test(tc, test_free_clears);
	tcase_add_test(tc, test_free_errors);
	tcase_add_test(tc, test_free_debug_messages);
	tcase_add_test(tc, test_free_records_mid_rehash);
	tcase_add_test(tc, test_uncollectable);
	tcase_add_test(tc, test_uncollectable_mid_rehash);
	tcase_add_test(tc, test_uncollectable_walk_mid_rehash);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_cycle_callback);
	tcase_add_test(tc, test_cycle_callback_replaced_while_blocked);
	tcase_add_test(tc, test_memory_limit_repaces);
	tcase_add_test(tc, test_finalizer_notify);
	tcase_add_test(tc, test_free_os_memory);
	tcase_add_test(tc, test_memlimit_syntax);
	tcase_add_test(tc, test_memlimit_env);
	tcase_add_test(tc, test_limit_retry_samples);
	tcase_add_test(tc, test_memlimit_bad);
	tcase_add_test(tc, test_checkmark_names_holder);
	tcase_add_test(tc, test_rootcheck_warns_once);
	tcase_add_test(tc, test_rootcheck_skips_frame_tail);
	tcase_add_test(tc, test_rootcheck_fatal);
	tcase_add_test(tc, test_rootcheck_silent_when_registered);
	tcase_add_test(tc, test_rootcheck_silent_for_weak_handle);
	tcase_add_test(tc, test_rootcheck_skips_heap_state);
	tcase_add_test(tc, test_foreign_stack);
	tcase_add_test(tc, test_own_stack_grown);
	tcase_add_test(tc, test_profile_per_attach);
	tcase_add_test(tc, test_profile_before_init);
	tcase_add_test(tc, test_stats_large_frees);
	tcase_add_test(tc, test_limit_releases_for_a_run);
	tcase_add_test(tc, test_gogc_off_limit_paces);
	tcase_add_test(tc, test_calls_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(calls_suite());
}
