/* tests/runtime/test_badinput.c: every documented error of the public API.
 * Each bad call must return NULL (or its status), leave the documented code
 * in gc_last_error(), and call the error handler exactly once with that
 * code and a non-empty one-line message: sizes over GCHEAP_MAX_ALLOC (with
 * no address space leaked), sizes under the type's, array overflow, NULL
 * and fake types, every kind of malformed pointer map, calls from threads
 * that are not attached, double attach, the memory limit (OOM handler,
 * default messages on stderr, recovery), a failed heap initialisation, a
 * failpoint sweep that makes each OS request of a mixed scenario fail in
 * turn (as Lua's testalloc), and a sweep of address-space limits under
 * which the OS keeps refusing: never a crash, always NULL +
 * GCHEAP_ERR_NOMEM or an absorbed failure, and a heap that verifies
 * afterwards. */
#include "tests/testing.h"

#include "runtime/runtime.h"

#include "format/export.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define FATAL_EXIT 86

/* ---- Handlers that record their calls ------------------------------------ */

static int tag; /* the data pointer both handlers are registered with */
static unsigned seq;

static struct {
	int calls;
	gc_status code;
	char msg[512];
	void *data;
	unsigned seq;
} err_log;

static struct {
	int calls;
	size_t request;
	void *data;
	unsigned seq;
} oom_log;

static void on_error(gc_status code, const char *msg, void *data)
{
	err_log.calls++;
	err_log.code = code;
	snprintf(err_log.msg, sizeof(err_log.msg), "%s", msg ? msg : "");
	err_log.data = data;
	err_log.seq = ++seq;
}

static void on_oom(size_t request, void *data)
{
	oom_log.calls++;
	oom_log.request = request;
	oom_log.data = data;
	oom_log.seq = ++seq;
}

static void clear_logs(void)
{
	memset(&err_log, 0, sizeof(err_log));
	memset(&oom_log, 0, sizeof(oom_log));
}

static void install_handlers(void)
{
	sys_fatal_exit_code = FATAL_EXIT;
	gc_set_error_handler(on_error, &tag);
	gc_set_oom_handler(on_oom, &tag);
	clear_logs();
}

static gc_type *t_ptr8, *t_pair, *t24, *t_byte, *t_big_scan, *t_big_noscan;

static void make_types(void)
{
	size_t zero = 0, two[] = {0, 16};

	t_ptr8 = gc_type_new("ptr8", 8, &zero, 1, GCHEAP_TAIL_REPEAT);
	t_pair = gc_type_new("pair", 16, &zero, 1, GCHEAP_TAIL_REPEAT);
	t24 = gc_type_new("t24", 24, two, 2, GCHEAP_TAIL_REPEAT);
	t_byte = gc_type_new("byte", 1, NULL, 0, GCHEAP_TAIL_REPEAT);
	t_big_scan = gc_type_new("bigscan", 40000, &zero, 1,
	                         GCHEAP_TAIL_NOSCAN);
	t_big_noscan = gc_type_new("bignoscan", 100, NULL, 0,
	                           GCHEAP_TAIL_REPEAT);
	ck_assert(t_ptr8 && t_pair && t24 && t_byte && t_big_scan &&
	          t_big_noscan);
}

static void setup_attached(void)
{
	install_handlers();
	make_types();
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	/* Only the emergency collection before an out-of-memory error runs;
	 * what the tests hold past one is in registered roots. */
	gc_disable();
	clear_logs();
}

static void setup_detached(void)
{
	install_handlers();
	make_types();
	clear_logs();
}

static void teardown(void)
{
}

/* ---- Expectations -------------------------------------------------------- */

/* Make the thread's last error something other than `want`, so that the
 * check sees the call under test set it; then clear the logs. */
static void prime(gc_status want)
{
	if (want == GCHEAP_ERR_ARG)
		(void)gc_type_new(NULL, 0, NULL, 0, 0);
	else
		(void)gc_read_stats(NULL, 0);
	ck_assert_int_ne(gc_last_error(), want);
	clear_logs();
}

static void expect_error(const char *what, gc_status want)
{
	ck_assert_msg(gc_last_error() == want,
	              "%s: gc_last_error() is \"%s\", want \"%s\"", what,
	              gc_strerror(gc_last_error()), gc_strerror(want));
	ck_assert_msg(err_log.calls == 1, "%s: the error handler ran %d "
	              "times", what, err_log.calls);
	ck_assert_msg(err_log.code == want, "%s: handler got \"%s\", want "
	              "\"%s\"", what, gc_strerror(err_log.code),
	              gc_strerror(want));
	ck_assert_msg(err_log.data == &tag, "%s: handler data %p", what,
	              err_log.data);
	ck_assert_msg(err_log.msg[0] != '\0', "%s: empty message", what);
	ck_assert_msg(strchr(err_log.msg, '\n') == NULL,
	              "%s: message is not one line: \"%s\"", what,
	              err_log.msg);
	if (want != GCHEAP_ERR_NOMEM)
		ck_assert_msg(oom_log.calls == 0, "%s: the OOM handler ran",
		              what);
}

#define EXPECT_NULL(call, want)                                            \
	do {                                                               \
		prime(want);                                               \
		const void *r_ = (call);                                   \
		ck_assert_msg(r_ == NULL, "%s returned %p", #call, r_);    \
		expect_error(#call, want);                                 \
	} while (0)

#define EXPECT_STATUS(call, want)                                          \
	do {                                                               \
		prime(want);                                               \
		gc_status s_ = (call);                                     \
		ck_assert_msg(s_ == (want), "%s returned \"%s\"", #call,   \
		              gc_strerror(s_));                            \
		expect_error(#call, want);                                 \
	} while (0)

#define EXPECT_ZERO(call, want)                                            \
	do {                                                               \
		prime(want);                                               \
		size_t z_ = (call);                                        \
		ck_assert_msg(z_ == 0, "%s returned %zu", #call, z_);      \
		expect_error(#call, want);                                 \
	} while (0)

/* The success of a call: no handler ran. */
static void *ok_ptr(void *p, const char *what)
{
	ck_assert_msg(p != NULL, "%s failed: %s (%s)", what,
	              gc_strerror(gc_last_error()), err_log.msg);
	ck_assert_msg(err_log.calls == 0 && oom_log.calls == 0,
	              "%s succeeded but reported an error", what);
	return p;
}

#define EXPECT_OK_PTR(call) ok_ptr((clear_logs(), (void *)(call)), #call)

typedef struct os_counters {
	size_t reserved, committed, arenas;
} os_counters;

static os_counters os_now(void)
{
	os_counters c;

	mutex_lock(&mheap_.lock);
	c.reserved = mheap_.stats.reserved;
	c.committed = mheap_.stats.committed;
	c.arenas = mheap_.stats.arenas;
	mutex_unlock(&mheap_.lock);
	return c;
}

static void expect_os_unchanged(os_counters before, const char *what)
{
	os_counters now = os_now();

	ck_assert_msg(now.reserved == before.reserved &&
	              now.committed == before.committed &&
	              now.arenas == before.arenas,
	              "%s: reserved %zu -> %zu, committed %zu -> %zu, arenas "
	              "%zu -> %zu", what, before.reserved, now.reserved,
	              before.committed, now.committed, before.arenas,
	              now.arenas);
}

/* Cache a span of every class, scan and noscan, and a tiny block, so that
 * later bad calls meet the fast path and not only the refill. */
static void warm_caches(void)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		size_t size = class_to_size[c];
		EXPECT_OK_PTR(gc_alloc(size, NULL));
		EXPECT_OK_PTR(gc_alloc(size, t_ptr8));
	}
	EXPECT_OK_PTR(gc_alloc(1, NULL));
}

static void check_spans_on_lists(void)
{
	uintptr_t n = 0;

	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		n += mcentral_verify(&mcentral_[i]);
	ck_assert_msg(n == mheap_.stats.spans_inuse,
	              "mcentral lists hold %zu spans, %zu in use", (size_t)n,
	              mheap_.stats.spans_inuse);
}

/* ---- Sizes --------------------------------------------------------------- */

static const size_t bad_sizes[] = {
	SIZE_MAX,
	SIZE_MAX - 1,
	SIZE_MAX - 7,
	SIZE_MAX - 8191,
	SIZE_MAX - 8192,
	SIZE_MAX - GCHEAP_MAX_ALLOC,
	(size_t)SSIZE_MAX - 8192,
	(size_t)SSIZE_MAX - 1,
	(size_t)SSIZE_MAX,
	(size_t)SSIZE_MAX + 1,
	(size_t)SSIZE_MAX + 2,
	(size_t)SSIZE_MAX + 8192,
	GCHEAP_MAX_ALLOC + 1,
	GCHEAP_MAX_ALLOC + 8191,
	GCHEAP_MAX_ALLOC + 8192,
	GCHEAP_MAX_ALLOC * 2,
	(size_t)1 << 47,
	(size_t)1 << 48,
	(size_t)1 << 63,
};

/* An array of at least `bytes` (> GCHEAP_MAX_ALLOC) bytes of t: too large,
 * or an overflow if the element count times the size does not fit. */
static void bad_array(size_t bytes, const gc_type *t)
{
	size_t esize = gc_type_size(t), prod;
	size_t count = bytes / esize + (bytes % esize != 0);
	gc_status want = __builtin_mul_overflow(count, esize, &prod) ?
	                 GCHEAP_ERR_OVERFLOW : GCHEAP_ERR_SIZE;

	EXPECT_NULL(gc_alloc_array(count, t), want);
}

static void bad_sizes_round(const char *when)
{
	os_counters before = os_now();
	const gc_type *types[] = {NULL, t_ptr8, t_pair, t_byte, t_big_scan,
	                          t_big_noscan};

	for (size_t i = 0; i < ARRAY_LEN(bad_sizes); i++) {
		size_t size = bad_sizes[i];
		for (size_t k = 0; k < ARRAY_LEN(types); k++)
			EXPECT_NULL(gc_alloc(size, types[k]),
			            GCHEAP_ERR_SIZE);
		/* Arrays of at least as many bytes. */
		bad_array(size, t_byte);
		bad_array(size, t_ptr8);
		bad_array(size, t24);
		bad_array(size, t_big_scan);
	}
	expect_os_unchanged(before, when);
}

START_TEST(test_too_large)
{
	bad_sizes_round("fresh heap");
	void *a = EXPECT_OK_PTR(gc_alloc(100, NULL));
	void *b = EXPECT_OK_PTR(gc_alloc(3 * MiB, t_pair));
	bad_sizes_round("used heap");
	ck_assert_ptr_eq(gc_base(a), a);
	ck_assert_ptr_eq(gc_base(b), b);
	mcentral_verify_all();
}
END_TEST

static void below_type_size(void)
{
	for (size_t s = 1; s < 24; s++)
		EXPECT_NULL(gc_alloc(s, t24), GCHEAP_ERR_SIZE);
	for (size_t s = 1; s < 8; s++)
		EXPECT_NULL(gc_alloc(s, t_ptr8), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(15, t_pair), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(99, t_big_noscan), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(1, t_big_noscan), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(39999, t_big_scan), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(32768, t_big_scan), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc(100, t_big_scan), GCHEAP_ERR_SIZE);
}

START_TEST(test_below_type_size)
{
	os_counters before = os_now();

	below_type_size();
	expect_os_unchanged(before, "below type size");
	/* Again with spans cached: the fast path must check too. */
	warm_caches();
	below_type_size();
	/* At the type's size they work. */
	EXPECT_OK_PTR(gc_alloc(24, t24));
	EXPECT_OK_PTR(gc_alloc(100, t_big_noscan));
	EXPECT_OK_PTR(gc_alloc(40000, t_big_scan));
	EXPECT_OK_PTR(gc_alloc(8, t_ptr8));
}
END_TEST

START_TEST(test_array_overflow)
{
	os_counters before = os_now();
	gc_type *huge = gc_type_new("huge", GCHEAP_MAX_TYPE_SIZE, NULL, 0,
	                            GCHEAP_TAIL_REPEAT);

	ck_assert_ptr_nonnull(huge);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX, t_ptr8), GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX / 8 + 1, t_ptr8),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array((size_t)1 << 61, t_ptr8),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX / 16 + 1, t_pair),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX / 24 + 1, t24),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX / 40000 + 1, t_big_scan),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array((size_t)1 << 34, huge),
	            GCHEAP_ERR_OVERFLOW);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX, huge), GCHEAP_ERR_OVERFLOW);
	/* Just below the overflow the product fits: too large instead. */
	EXPECT_NULL(gc_alloc_array(SIZE_MAX / 24, t24), GCHEAP_ERR_SIZE);
	EXPECT_NULL(gc_alloc_array(((size_t)1 << 34) - 1, huge),
	            GCHEAP_ERR_SIZE);
	expect_os_unchanged(before, "overflow");
	EXPECT_OK_PTR(gc_alloc_array(3, t24));
}
END_TEST

START_TEST(test_array_null_type)
{
	EXPECT_NULL(gc_alloc_array(0, NULL), GCHEAP_ERR_ARG);
	EXPECT_NULL(gc_alloc_array(1, NULL), GCHEAP_ERR_ARG);
	EXPECT_NULL(gc_alloc_array(100, NULL), GCHEAP_ERR_ARG);
	EXPECT_NULL(gc_alloc_array(SIZE_MAX, NULL), GCHEAP_ERR_ARG);
}
END_TEST

/* ---- Types --------------------------------------------------------------- */

static uint64_t fake_zero[64];
static uint64_t fake_ones[64];

START_TEST(test_fake_type)
{
	const size_t sizes[] = {1, 7, 8, 15, 16, 100, 1000, 32768, 40000,
	                        MiB, SIZE_MAX};
	const gc_type *fakes[3];

	memset(fake_ones, 0xFF, sizeof(fake_ones));
	fakes[0] = (const gc_type *)(void *)fake_zero;
	fakes[1] = (const gc_type *)(void *)fake_ones;
	/* Inside a real type, not at its start. */
	fakes[2] = (const gc_type *)(void *)((char *)t_big_scan + 8);
	for (size_t f = 0; f < 2 * ARRAY_LEN(fakes); f++) {
		const gc_type *t = fakes[f % ARRAY_LEN(fakes)];
		if (f == ARRAY_LEN(fakes))
			warm_caches(); /* then meet the fast path */
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
			EXPECT_NULL(gc_alloc(sizes[i], t), GCHEAP_ERR_TYPE);
		EXPECT_NULL(gc_alloc_array(1, t), GCHEAP_ERR_TYPE);
		EXPECT_NULL(gc_alloc_array(1000, t), GCHEAP_ERR_TYPE);
		EXPECT_NULL(gc_alloc_array(SIZE_MAX, t), GCHEAP_ERR_TYPE);
		EXPECT_NULL(gc_type_name(t), GCHEAP_ERR_TYPE);
		EXPECT_ZERO(gc_type_size(t), GCHEAP_ERR_TYPE);
	}
	EXPECT_NULL(gc_type_name(NULL), GCHEAP_ERR_ARG);
	EXPECT_ZERO(gc_type_size(NULL), GCHEAP_ERR_ARG);
	/* The fakes were not written to. */
	for (size_t i = 0; i < ARRAY_LEN(fake_zero); i++) {
		ck_assert_uint_eq(fake_zero[i], 0);
		ck_assert_uint_eq(fake_ones[i], ~(uint64_t)0);
	}
}
END_TEST

START_TEST(test_malformed_offsets)
{
	const size_t o0 = 0, o1 = 1, o4 = 4, o8 = 8, o16 = 16;
	const size_t dup1[] = {0, 8, 0}, dup2[] = {8, 8};
	const size_t huge[] = {SIZE_MAX & ~(size_t)7};
	const size_t past[] = {0, 8, 16, 24, 32};

	EXPECT_NULL(gc_type_new("zero", 0, NULL, 0, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("zero", 0, &o0, 1, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new(NULL, 0, NULL, 0, GCHEAP_TAIL_NOSCAN),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("big", GCHEAP_MAX_TYPE_SIZE + 1, NULL, 0, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("big", SIZE_MAX, &o0, 1, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("flags", 16, &o0, 1, 3), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("flags", 16, NULL, 0, 4), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("flags", 16, NULL, 0, ~0u),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("unaligned", 16, &o4, 1, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("unaligned", 16, &o1, 1, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("at end", 16, &o16, 1, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("partial", 12, &o8, 1, GCHEAP_TAIL_NOSCAN),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("partial", 4, &o0, 1, GCHEAP_TAIL_NOSCAN),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("past", 32, past, 5, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("huge", 16, huge, 1, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("dup", 16, dup1, 3, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("dup", 16, dup2, 2, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("null", 16, NULL, 1, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new("repeat", 20, &o8, 1, GCHEAP_TAIL_REPEAT),
	            GCHEAP_ERR_TYPE);
	/* The same maps made valid. */
	EXPECT_OK_PTR(gc_type_new("ok", 20, &o8, 1, GCHEAP_TAIL_NOSCAN));
	EXPECT_OK_PTR(gc_type_new("ok", 20, &o8, 1, GCHEAP_TAIL_POINTERS));
	EXPECT_OK_PTR(gc_type_new("ok", 20, NULL, 0, GCHEAP_TAIL_REPEAT));
	EXPECT_OK_PTR(gc_type_new("ok", 16, &o8, 1, GCHEAP_TAIL_REPEAT));
	EXPECT_OK_PTR(gc_type_new("ok", 40, past, 5, GCHEAP_TAIL_REPEAT));
	EXPECT_OK_PTR(gc_type_new("ok", 16, dup1, 2, GCHEAP_TAIL_REPEAT));
}
END_TEST

START_TEST(test_malformed_bitmaps)
{
	const uint64_t w0[2] = {1, 0}, w1[2] = {2, 0}, w2[2] = {4, 0};
	const uint64_t w8[2] = {(uint64_t)1 << 8, 0};
	const uint64_t w64[2] = {0, 1}, w65[2] = {0, 2};
	const uint64_t w127[2] = {0, (uint64_t)1 << 63};
	const uint64_t top[1] = {(uint64_t)1 << 63};

	EXPECT_NULL(gc_type_new_bitmap("zero", 0, NULL, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("zero", 0, w0, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("big", GCHEAP_MAX_TYPE_SIZE + 1, NULL,
	                               0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("big", SIZE_MAX, NULL, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("flags", 16, w0, 3), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("flags", 16, NULL, 0x100),
	            GCHEAP_ERR_TYPE);
	/* A bit for a word outside the size. */
	EXPECT_NULL(gc_type_new_bitmap("out", 16, w2, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("out", 64, w8, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("out", 8, top, 0), GCHEAP_ERR_TYPE);
	/* A bit for a word only partly inside the size. */
	EXPECT_NULL(gc_type_new_bitmap("partial", 12, w1, GCHEAP_TAIL_NOSCAN),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("partial", 4, w0, GCHEAP_TAIL_NOSCAN),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("partial", 516, w64,
	                               GCHEAP_TAIL_NOSCAN), GCHEAP_ERR_TYPE);
	/* In the second bitmap word. */
	EXPECT_NULL(gc_type_new_bitmap("out", 520, w65, 0), GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("out", 1000, w127, 0),
	            GCHEAP_ERR_TYPE);
	EXPECT_NULL(gc_type_new_bitmap("repeat", 20, w1, GCHEAP_TAIL_REPEAT),
	            GCHEAP_ERR_TYPE);
	/* The same maps made valid. */
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 24, w2, 0));
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 72, w8, 0));
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 520, w64, 0));
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 1024, w127, 0));
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 20, w1, GCHEAP_TAIL_NOSCAN));
	EXPECT_OK_PTR(gc_type_new_bitmap("ok", 12, w0, GCHEAP_TAIL_NOSCAN));
}
END_TEST

/* ---- Threads ------------------------------------------------------------- */

/* What an unattached thread sees; run in the calling thread. Returns a
 * description of the first deviation, or NULL. */
static const char *unattached_calls(void)
{
	static const struct {
		size_t size;
		int typed;
	} calls[] = {{0, 0}, {1, 0}, {16, 0}, {8, 1}, {40000, 0},
	             {40000, 1}, {SIZE_MAX, 0}};

	if (gc_thread_is_attached())
		return "gc_thread_is_attached() is 1";
	for (size_t i = 0; i < ARRAY_LEN(calls); i++) {
		clear_logs();
		void *p = gc_alloc(calls[i].size, calls[i].typed ? t_ptr8 :
		                                                   NULL);
		if (p || gc_last_error() != GCHEAP_ERR_NOT_ATTACHED ||
		    err_log.calls != 1 ||
		    err_log.code != GCHEAP_ERR_NOT_ATTACHED || !err_log.msg[0])
			return "gc_alloc did not fail with NOT_ATTACHED once";
	}
	clear_logs();
	if (gc_alloc_array(4, t_ptr8) ||
	    gc_last_error() != GCHEAP_ERR_NOT_ATTACHED || err_log.calls != 1)
		return "gc_alloc_array did not fail with NOT_ATTACHED once";
	/* No cycle runs for a thread that is not attached. */
	uintptr_t cycles = aload(&mgc_.cycles);
	clear_logs();
	gc_collect();
	if (gc_last_error() != GCHEAP_ERR_NOT_ATTACHED || err_log.calls != 1 ||
	    !strstr(err_log.msg, "gc_thread_attach()"))
		return "gc_collect did not fail with NOT_ATTACHED once, "
		       "naming gc_thread_attach()";
	clear_logs();
	gc_safepoint();
	if (gc_last_error() != GCHEAP_ERR_NOT_ATTACHED || err_log.calls != 1 ||
	    !strstr(err_log.msg, "gc_thread_attach()"))
		return "gc_safepoint did not fail with NOT_ATTACHED once, "
		       "naming gc_thread_attach()";
	if (aload(&mgc_.cycles) != cycles)
		return "gc_collect ran a cycle";
	clear_logs();
	if (gc_thread_detach() != GCHEAP_ERR_NOT_ATTACHED ||
	    gc_last_error() != GCHEAP_ERR_NOT_ATTACHED || err_log.calls != 1 ||
	    !err_log.msg[0])
		return "gc_thread_detach did not fail with NOT_ATTACHED once";
	if (gc_thread_is_attached())
		return "gc_thread_is_attached() became 1";
	return NULL;
}

START_TEST(test_unattached_main)
{
	const char *bad = unattached_calls();

	ck_assert_msg(bad == NULL, "never attached: %s", bad);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_int_eq(gc_last_error(), GCHEAP_OK);
	void *p = EXPECT_OK_PTR(gc_alloc(16, NULL));
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	ck_assert_int_eq(gc_last_error(), GCHEAP_OK);
	bad = unattached_calls();
	ck_assert_msg(bad == NULL, "after detach: %s", bad);
	ck_assert_ptr_eq(gc_base(p), p); /* objects outlive the thread */
	ck_assert_uint_eq(gc_size(p), 16);
}
END_TEST

static void *unattached_thread(void *arg)
{
	(void)arg;
	return (void *)unattached_calls();
}

/* A thread that never attached, while the main thread is attached. */
START_TEST(test_unattached_other_thread)
{
	pthread_t th;
	void *ret;

	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	ck_assert_int_eq(pthread_create(&th, NULL, unattached_thread, NULL),
	                 0);
	gc_blocking_begin();
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	gc_blocking_end();
	ck_assert_msg(ret == NULL, "other thread: %s", (const char *)ret);
	/* Its errors were its own. */
	ck_assert_int_eq(gc_last_error(), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	EXPECT_OK_PTR(gc_alloc(16, NULL));
}
END_TEST

START_TEST(test_double_attach)
{
	unsigned char *p = EXPECT_OK_PTR(gc_alloc(64, NULL));

	EXPECT_STATUS(gc_thread_attach(), GCHEAP_ERR_DUPLICATE);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	mutex_lock(&runtime_.lock);
	size_t n = runtime_.nthreads;
	mutex_unlock(&runtime_.lock);
	ck_assert_uint_eq(n, 1);
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.threads, 1);
	/* Nothing changed: the same cache hands out the next object. */
	unsigned char *q = EXPECT_OK_PTR(gc_alloc(64, NULL));
	ck_assert_ptr_eq(q, p + 64);
	EXPECT_STATUS(gc_thread_attach(), GCHEAP_ERR_DUPLICATE);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	EXPECT_STATUS(gc_thread_detach(), GCHEAP_ERR_NOT_ATTACHED);
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	mcentral_verify_all();
	check_spans_on_lists();
}
END_TEST

/* A detach with a frame still pushed is refused, and nothing changes: the
 * frame's objects stay roots (a detached thread's frames are not scanned,
 * so they were freed under it, and the frame could not be popped after a
 * new attach: a precise-mode audit). Popped, the detach goes through. */
START_TEST(test_detach_with_frame)
{
	void *slot[1];
	gc_frame f;

	gc_set_conservative_stacks(0);
	gc_frame_push(&f, slot, 1);
	unsigned char *p = EXPECT_OK_PTR(gc_alloc(64, NULL));
	memset(p, 0x5a, 64);
	slot[0] = p;
	p = NULL;
	EXPECT_STATUS(gc_thread_detach(), GCHEAP_ERR_ARG);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	gc_collect();
	gc_collect();
	for (int i = 0; i < 64; i++)
		ck_assert_uint_eq(((unsigned char *)slot[0])[i], 0x5a);
	gc_frame_pop(&f);
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	ck_assert_int_eq(gc_thread_is_attached(), 0);
}
END_TEST

/* ---- Out of memory ------------------------------------------------------- */

/* Objects the memory-limit tests hold. An allocation that fails runs an
 * emergency collection first, so they are kept in registered roots: all
 * of them stay live and the limit stays reached. */
typedef struct held {
	void **roots; /* registered with gc_add_roots */
	size_t *sizes;
	size_t n, max;
} held;

static held held_new(size_t max)
{
	held h = {calloc(max, sizeof(void *)), calloc(max, sizeof(size_t)),
	          0, max};

	ck_assert(h.roots && h.sizes);
	ck_assert_int_eq(gc_add_roots(h.roots, max), GCHEAP_OK);
	return h;
}

static void held_free(held *h)
{
	ck_assert_int_eq(gc_remove_roots(h->roots), GCHEAP_OK);
	free(h->roots);
	free(h->sizes);
}

static unsigned char held_byte(size_t size)
{
	/* The same non-zero byte in every position: as a pointer word it is
	 * above 2^48, never a heap address. */
	return (unsigned char)((size & 0xFF) | 1);
}

/* Allocate `size` bytes (of type t) until NULL, holding every object;
 * checks the failure and returns how many succeeded. */
static size_t fill_until_null(size_t size, const gc_type *t, held *h,
                              size_t limit)
{
	size_t n = 0;

	for (;;) {
		clear_logs();
		unsigned char *p = gc_alloc(size, t);
		if (!p)
			break;
		REQUIRE(err_log.calls == 0 && oom_log.calls == 0,
		        "gc_alloc(%zu) succeeded but reported", size);
		memset(p, held_byte(size), size);
		REQUIRE(h->n < h->max, "more than %zu objects fit under the "
		        "%zu-byte limit", h->max, limit);
		gc_write(&h->roots[h->n], p);
		h->sizes[h->n++] = size;
		n++;
		REQUIRE(n * size <= limit + 64 * MiB,
		        "gc_alloc(%zu) never fails under a %zu-byte limit",
		        size, limit);
	}
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(err_log.calls, 1);
	ck_assert_int_eq(err_log.code, GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(oom_log.calls, 1);
	ck_assert_uint_eq(oom_log.request, size);
	ck_assert_ptr_eq(oom_log.data, &tag);
	ck_assert_msg(oom_log.seq < err_log.seq,
	              "the OOM handler ran after the error handler");
	char lim[32];
	snprintf(lim, sizeof(lim), "%zu", limit);
	ck_assert_msg(strstr(err_log.msg, "limit") && strstr(err_log.msg, lim),
	              "message \"%s\" does not name the %zu-byte limit",
	              err_log.msg, limit);
	/* The limit held. */
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_le(st.os_committed - st.os_released, limit);
	mcentral_verify_all();
	return n;
}

static void check_held(const held *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const unsigned char *p = h->roots[i];
		unsigned char want = held_byte(h->sizes[i]);
		for (size_t k = 0; k < h->sizes[i]; k++)
			REQUIRE(p[k] == want, "object %zu (%p) byte %zu lost",
			        i, (const void *)p, k);
	}
}

START_TEST(test_memory_limit)
{
	const size_t limit = 16 * MiB;
	held h = held_new((size_t)1 << 20);

	gc_set_memory_limit(limit);
	ck_assert_uint_eq(gc_memory_limit(), limit);
	/* A single request over the limit. */
	clear_logs();
	ck_assert_ptr_null(gc_alloc(limit + 1, NULL));
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(oom_log.calls, 1);
	ck_assert_uint_eq(oom_log.request, limit + 1);
	ck_assert_int_eq(err_log.calls, 1);
	/* The message names the limit (runtime/errors.c reads the heap's). */
	char want[96];
	snprintf(want, sizeof(want), "memory limit of %zu bytes", limit);
	ck_assert_msg(strstr(err_log.msg, want), "message: %s", err_log.msg);
	/* Fill with each kind of object in turn. */
	ck_assert_uint_gt(fill_until_null(MiB, NULL, &h, limit), 0);
	/* Then, each with a little more room, the other kinds. */
	static const struct {
		size_t size;
		gc_type **t;
	} kinds[] = {{40000, &t_big_scan}, {1000, NULL}, {24, &t24},
	             {8, NULL}, {3 * MiB, &t_pair}};
	size_t lim = limit;
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
		lim += 4 * MiB;
		gc_set_memory_limit(lim);
		size_t n = fill_until_null(kinds[i].size,
		                           kinds[i].t ? *kinds[i].t : NULL,
		                           &h, lim);
		ck_assert_msg(n > 0, "no %zu-byte object fits in 4 more MiB",
		              kinds[i].size);
	}
	check_held(&h);
	/* A limit below what is already held. */
	gc_set_memory_limit(1);
	clear_logs();
	ck_assert_ptr_null(gc_alloc(64 * MiB, NULL));
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(oom_log.calls, 1);
	ck_assert_int_eq(err_log.calls, 1);
	/* Raised again, everything works and the heap is sound. */
	gc_set_memory_limit(0);
	ck_assert_uint_eq(gc_memory_limit(), 0);
	EXPECT_OK_PTR(gc_alloc(64 * MiB, NULL));
	EXPECT_OK_PTR(gc_alloc(MiB, NULL));
	EXPECT_OK_PTR(gc_alloc(40000, t_big_scan));
	EXPECT_OK_PTR(gc_alloc(1000, NULL));
	EXPECT_OK_PTR(gc_alloc(24, t24));
	EXPECT_OK_PTR(gc_alloc(5, NULL));
	gc_set_memory_limit(limit * 8);
	for (int i = 0; i < 1000; i++)
		EXPECT_OK_PTR(gc_alloc((size_t)i * 13 + 24,
		                       i % 2 ? NULL : t24));
	check_held(&h);
	mcentral_verify_all();
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	mcentral_verify_all();
	check_spans_on_lists();
	held_free(&h);
}
END_TEST

/* ---- Default handlers on stderr ------------------------------------------ */

typedef struct capture {
	int saved;
	FILE *f;
} capture;

static capture capture_stderr(void)
{
	capture c;

	fflush(stderr);
	c.f = tmpfile();
	ck_assert_ptr_nonnull(c.f);
	c.saved = dup(2);
	ck_assert_int_ge(c.saved, 0);
	ck_assert_int_ge(dup2(fileno(c.f), 2), 0);
	return c;
}

/* Restore stderr; returns what was written (malloc'd). */
static char *capture_end(capture c)
{
	fflush(stderr);
	dup2(c.saved, 2);
	close(c.saved);
	fseek(c.f, 0, SEEK_END);
	long n = ftell(c.f);
	ck_assert_int_ge(n, 0);
	rewind(c.f);
	char *buf = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, c.f), (size_t)n);
	fclose(c.f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_default_handlers)
{
	const size_t limit = 4 * MiB;
	char lim[32];

	gc_set_error_handler(NULL, NULL);
	gc_set_oom_handler(NULL, NULL);
	snprintf(lim, sizeof(lim), "%zu", limit);

	/* A plain error: one line naming the status. */
	capture c = capture_stderr();
	volatile size_t too_big = SIZE_MAX; /* hidden from alloc_size */
	void *p = gc_alloc(too_big, NULL);
	char *out = capture_end(c);
	ck_assert_ptr_null(p);
	ck_assert_msg(strncmp(out, "gcheap: ", 8) == 0 && count_lines(out) == 1,
	              "default error output: \"%s\"", out);
	ck_assert_msg(strstr(out, gc_strerror(GCHEAP_ERR_SIZE)) != NULL,
	              "default error output: \"%s\"", out);
	free(out);

	/* Out of memory under a limit: the message names the limit. */
	gc_set_memory_limit(limit);
	held h = held_new(64);
	c = capture_stderr();
	int fails = 0;
	for (size_t i = 0; i < h.max && fails < 2; i++) {
		void *q = gc_alloc(MiB, NULL);
		fails += q == NULL;
		gc_write(&h.roots[i], q);
	}
	out = capture_end(c);
	ck_assert_int_eq(fails, 2);
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_NOMEM);
	ck_assert_msg(count_lines(out) == 2, "expected two lines: \"%s\"",
	              out);
	ck_assert_msg(strncmp(out, "gcheap: ", 8) == 0 &&
	              strstr(out, gc_strerror(GCHEAP_ERR_NOMEM)) &&
	              strstr(out, "limit") && strstr(out, lim),
	              "default OOM output does not name the %zu-byte limit: "
	              "\"%s\"", limit, out);
	free(out);

	/* A custom handler silences stderr; NULL brings the default back. */
	gc_set_error_handler(on_error, &tag);
	c = capture_stderr();
	clear_logs();
	ck_assert_ptr_null(gc_alloc(MiB, NULL));
	out = capture_end(c);
	ck_assert_int_eq(err_log.calls, 1);
	ck_assert_msg(out[0] == '\0', "custom handler, yet stderr got \"%s\"",
	              out);
	free(out);
	gc_set_error_handler(NULL, &tag);
	c = capture_stderr();
	clear_logs();
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_ERR_DUPLICATE);
	out = capture_end(c);
	ck_assert_int_eq(err_log.calls, 0);
	ck_assert_msg(count_lines(out) == 1 &&
	              strstr(out, gc_strerror(GCHEAP_ERR_DUPLICATE)),
	              "default handler output: \"%s\"", out);
	free(out);
	gc_set_memory_limit(0);
	EXPECT_OK_PTR(gc_alloc(MiB, NULL));
	held_free(&h);
}
END_TEST

/* ---- Failed initialisation ----------------------------------------------- */

/* The OS refuses the heap's tables: gc_init and attach report NOMEM, and
 * the API stays safe to call. */
START_TEST(test_init_fails)
{
	osmem_fail_in(1);
	EXPECT_STATUS(gc_init(), GCHEAP_ERR_NOMEM);
	osmem_fail_in(0);
	EXPECT_STATUS(gc_thread_attach(), GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(gc_thread_is_attached(), 0);
	EXPECT_NULL(gc_alloc(16, NULL), GCHEAP_ERR_NOT_ATTACHED);
	int local;
	ck_assert_ptr_null(gc_base(&local));
	ck_assert_uint_eq(gc_size(&local), 0);
	gc_stats st;
	ck_assert_int_eq(gc_read_stats(&st, sizeof(st)), GCHEAP_OK);
	ck_assert_uint_eq(st.threads, 0);
}
END_TEST

/* The first mark finds its queue's buffers ready: they are taken at
 * initialisation, where a refusal is reported (gc_init: NOMEM). A first
 * mark run while the OS refuses (the collection before an out-of-memory
 * error, with automatic ones off) asked for them then, and stopped the
 * process. */
static void *list_root;

START_TEST(test_first_mark_without_memory)
{
	ck_assert_int_eq(gc_add_roots(&list_root, 1), GCHEAP_OK);
	gc_set_conservative_stacks(0);
	options_.prefault = false; /* the sweeper's requests: not a mark's */
	for (int i = 0; i < 10000; i++) {
		void **n = gc_alloc(16, t_pair);
		ck_assert_ptr_nonnull(n);
		gc_write(&n[0], list_root);
		n[1] = (void *)(uintptr_t)i;
		gc_write(&list_root, n);
	}
	osmem_fail_in(1);
	gc_collect();
	ck_assert(osmem_fail_armed()); /* nothing asked the OS */
	osmem_fail_in(0);
	int i = 10000;
	for (void **n = list_root; n; n = n[0])
		ck_assert_uint_eq((uintptr_t)n[1], (uintptr_t)--i);
	ck_assert_int_eq(i, 0);
}
END_TEST

/* A finalizer and a cleanup queue without memory: the sweep that finds
 * their object dead allocates nothing (each record kept its queue entry
 * when it was set, where the call can report a shortage), so an OS that
 * refuses then costs nothing. The sweep's allocation was fatal. */
static int fin_runs, cleanup_runs;

static void count_fin(void *obj, void *arg);

static void count_cleanup(void *arg)
{
	(void)arg;
	cleanup_runs++;
}

START_TEST(test_finalizer_queue_without_memory)
{
	gc_set_conservative_stacks(0);
	gc_set_finalizer_thread(0);
	options_.prefault = false; /* the sweeper's requests: not a mark's */
	gc_collect();
	gc_collect();
	void *p = gc_alloc(64, NULL), *q = gc_alloc(64, NULL);
	ck_assert_int_eq(gc_set_finalizer(p, count_fin, NULL), GCHEAP_OK);
	ck_assert_uint_ne(gc_add_cleanup(q, count_cleanup, NULL), 0);
	/* One kept, one given back: the entries balance. */
	void *r = gc_alloc(64, NULL);
	ck_assert_int_eq(gc_set_finalizer(r, count_fin, NULL), GCHEAP_OK);
	ck_assert_int_eq(gc_set_finalizer(r, NULL, NULL), GCHEAP_OK);
	p = q = r = NULL;
	osmem_fail_in(1);
	gc_collect();
	gc_collect();
	osmem_fail_in(0);
	ck_assert_uint_eq(gc_run_finalizers(), 2);
	ck_assert_int_eq(fin_runs, 1);
	ck_assert_int_eq(cleanup_runs, 1);
}
END_TEST

/* ---- Failpoint sweep ----------------------------------------------------- */

enum { SCEN_N = 240 };

typedef struct step {
	size_t size;
	const gc_type *type;
} step;

static step scen[SCEN_N];

/* A fixed mix of tiny, small noscan, small scan and large requests, with
 * two that need more than an arena. */
static void make_scenario(void)
{
	test_rng r = rng_make(7);

	for (int i = 0; i < SCEN_N; i++) {
		unsigned pick = (unsigned)rng_below(&r, 100);
		step s = {0, NULL};
		if (pick < 25) {
			s.size = 1 + rng_below(&r, 15);
		} else if (pick < 55) {
			s.size = 16 + rng_below(&r, 2032);
		} else if (pick < 70) {
			s.size = 24 + rng_below(&r, 1000);
			s.type = t24;
		} else if (pick < 85) {
			s.size = 2048 + rng_below(&r, MAX_SMALL_SIZE - 2047);
			s.type = rng_below(&r, 2) ? NULL : t_pair;
		} else if (pick < 95) {
			s.size = MAX_SMALL_SIZE + 1 + rng_below(&r, 4 * MiB);
		} else {
			s.size = MAX_SMALL_SIZE + 1 + rng_below(&r, MiB / 4);
			s.type = t_pair;
		}
		scen[i] = s;
	}
	/* Noscan: the emergency collection need not scan them. */
	scen[SCEN_N / 3] = (step){64 * MiB + 1, NULL};
	scen[2 * SCEN_N / 3] = (step){130 * MiB, NULL};
}

typedef struct sweep_out {
	unsigned nulls;  /* allocations that failed with NOMEM */
	unsigned fired;  /* the failpoint fired during the scenario */
	char problem[300];
} sweep_out;

#define PROBLEM(...)                                                       \
	do {                                                               \
		if (!out->problem[0])                                      \
			snprintf(out->problem, sizeof(out->problem),       \
			         __VA_ARGS__);                             \
	} while (0)

static void write_marks(unsigned char *p, size_t size, int i)
{
	size_t k = MIN(size, 64);

	memset(p, i & 0xFF, k);
	memset(p + size - k, i & 0xFF, k);
}

static bool marks_ok(const unsigned char *p, size_t size, int i)
{
	size_t k = MIN(size, 64);

	for (size_t j = 0; j < k; j++)
		if (p[j] != (i & 0xFF) || p[size - k + j] != (i & 0xFF))
			return false;
	return true;
}

enum sweep_mode {
	SWEEP_FAILPOINT, /* OS request n fails, once */
	SWEEP_RLIMIT,    /* the address space may grow by n * 16 MiB only */
};

/* The process's address space in bytes, from /proc/self/statm. */
static size_t vm_size(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Runs in a fresh child: the scenario with OS request n failing once, or
 * with every OS request past an address-space limit failing. */
static void sweep_child(enum sweep_mode mode, unsigned n, sweep_out *out)
{
	struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
	static void *objs[SCEN_N];

	if (gc_thread_attach() != GCHEAP_OK) {
		PROBLEM("attach failed");
		return;
	}
	/* No automatic collections; the emergency one before each
	 * out-of-memory error keeps the objects, which are roots. */
	gc_disable();
	if (gc_add_roots(objs, SCEN_N) != GCHEAP_OK) {
		PROBLEM("gc_add_roots failed");
		return;
	}
	if (mode == SWEEP_FAILPOINT) {
		osmem_fail_in(n);
	} else {
		struct rlimit lim = {vm_size() + n * 16 * MiB, RLIM_INFINITY};
		if (getrlimit(RLIMIT_AS, &unlimited) ||
		    setrlimit(RLIMIT_AS, &lim)) {
			PROBLEM("setrlimit failed");
			return;
		}
	}
	for (int i = 0; i < SCEN_N; i++) {
		size_t size = scen[i].size;
		clear_logs();
		unsigned char *p = gc_alloc(size, scen[i].type);
		gc_write(&objs[i], p);
		if (!p) {
			out->nulls++;
			if (gc_last_error() != GCHEAP_ERR_NOMEM ||
			    err_log.calls != 1 ||
			    err_log.code != GCHEAP_ERR_NOMEM ||
			    oom_log.calls != 1 || oom_log.request != size)
				PROBLEM("step %d (%zu bytes): NULL with last "
				        "error %d, %d error calls (code %d), "
				        "%d OOM calls (request %zu)", i, size,
				        gc_last_error(), err_log.calls,
				        err_log.code, oom_log.calls,
				        oom_log.request);
			mcentral_verify_all();
			continue;
		}
		if (err_log.calls || oom_log.calls)
			PROBLEM("step %d (%zu bytes) succeeded but reported "
			        "an error: %.100s", i, size, err_log.msg);
		if (gc_base(p) != p && size >= TINY_SIZE)
			PROBLEM("step %d: gc_base(%p) = %p", i, (void *)p,
			        gc_base(p));
		if (gc_size(p) < size)
			PROBLEM("step %d: gc_size %zu < %zu", i, gc_size(p),
			        size);
		write_marks(p, size, i);
	}
	if (mode == SWEEP_FAILPOINT) {
		/* Had the failpoint not fired yet, one of the next n
		 * requests would fail. */
		out->fired = 1;
		for (unsigned k = 0; k < n; k++) {
			void *m = os_alloc_meta(PAGE_SIZE);
			if (!m) {
				out->fired = 0;
				break;
			}
			os_free_meta(m, PAGE_SIZE);
		}
		osmem_fail_in(0);
	} else {
		out->fired = out->nulls > 0;
		if (setrlimit(RLIMIT_AS, &unlimited))
			PROBLEM("cannot lift the address-space limit");
	}
	for (int i = 0; i < SCEN_N; i++)
		if (objs[i] && !marks_ok(objs[i], scen[i].size, i))
			PROBLEM("step %d: object %p lost its marks", i,
			        (void *)objs[i]);
	mcentral_verify_all();
	/* The heap is usable after the failure. */
	for (int i = 0; i < SCEN_N; i += 7) {
		clear_logs();
		unsigned char *p = gc_alloc(scen[i].size, scen[i].type);
		if (!p) {
			PROBLEM("after the sweep, gc_alloc(%zu) failed: %.100s",
			        scen[i].size, err_log.msg);
			break;
		}
		write_marks(p, scen[i].size, i);
	}
	gc_thread_detach();
	mcentral_verify_all();
	uintptr_t listed = 0;
	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		listed += mcentral_verify(&mcentral_[i]);
	if (listed != mheap_.stats.spans_inuse)
		PROBLEM("%zu spans on mcentral lists, %zu in use",
		        (size_t)listed, mheap_.stats.spans_inuse);
}

/* Run the scenario in a fresh child; a crash or a fatal() fails the
 * test, and so does any problem the child saw. */
static sweep_out run_sweep_child(enum sweep_mode mode, unsigned n,
                                 const char *what)
{
	int fds[2];
	sweep_out out;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		memset(&out, 0, sizeof(out));
		close(fds[0]);
		sys_fatal_exit_code = 70;
		sweep_child(mode, n, &out);
		ssize_t w = write(fds[1], &out, sizeof(out));
		_exit(w == (ssize_t)sizeof(out) ? 0 : 71);
	}
	close(fds[1]);
	memset(&out, 0, sizeof(out));
	ssize_t got = read(fds[0], &out, sizeof(out));
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status), "%s %u: killed by signal %d",
	              what, n, WTERMSIG(status));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "%s %u: exit %d (70: fatal)", what, n,
	              WEXITSTATUS(status));
	ck_assert_int_eq(got, sizeof(out));
	ck_assert_msg(out.problem[0] == '\0', "%s %u: %s", what, n,
	              out.problem);
	return out;
}

/* Each OS request of the scenario fails once, in turn, until the
 * failpoint lies past the scenario's last request. A failure may be
 * absorbed (a retry, the emergency collection's second attempt) or
 * become NULL with GCHEAP_ERR_NOMEM; never anything else. */
START_TEST(test_failpoint_sweep)
{
	enum { MAX_N = 2000 };
	unsigned n, failing = 0, absorbed = 0;

	make_scenario();
	for (n = 1; n <= MAX_N; n++) {
		sweep_out out = run_sweep_child(SWEEP_FAILPOINT, n,
		                                "failing OS request");
		if (!out.fired)
			break;
		if (out.nulls)
			failing++;
		else
			absorbed++;
	}
	ck_assert_msg(n <= MAX_N, "the scenario makes over %d OS requests",
	              MAX_N);
	fprintf(stderr, "# failpoint sweep: %u OS requests, %u failed an "
	        "allocation, %u absorbed\n", n - 1, failing, absorbed);
	ck_assert_uint_gt(n, 10);
}
END_TEST

/* The OS keeps refusing: the address space may grow by 0, 16, 32, ... MiB
 * during the scenario, until it all fits. Every refusal the allocator
 * cannot absorb is NULL with GCHEAP_ERR_NOMEM and both handlers called,
 * the heap verifies after each, and works again once the limit is gone. */
/* Sanitizers reserve terabytes of shadow memory at start-up and cannot
 * run under an address-space limit, so this sweep runs in plain builds
 * (the failpoint sweep covers the same paths everywhere). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

/* A finalizer or cleanup is set only with a thread to run it: when the
 * finalizer thread cannot be started (no address space for its stack),
 * the calls fail with GCHEAP_ERR_NOMEM, report once and set nothing.
 * They returned GCHEAP_OK with the record set while they reported the
 * error, and every later call reported it again. */
static void *fin_root;

START_TEST(test_finalizer_thread_fails)
{
	struct rlimit old, lim;

	if (UNDER_SANITIZER) {
		printf("# address-space limit skipped under a sanitizer\n");
		return;
	}
	ck_assert_int_eq(gc_add_roots(&fin_root, 1), GCHEAP_OK);
	gc_set_conservative_stacks(0);
	fin_root = gc_alloc(64, NULL);
	ck_assert_ptr_nonnull(fin_root);
	lim = (struct rlimit){vm_size() + MiB, RLIM_INFINITY};
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
	clear_logs();
	int st = gc_set_finalizer(fin_root, count_fin, NULL);
	int calls = err_log.calls;
	uint64_t id = gc_add_cleanup(fin_root, count_cleanup, NULL);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
	ck_assert_int_eq(st, GCHEAP_ERR_NOMEM);
	ck_assert_int_eq(calls, 1);
	ck_assert_uint_eq(id, 0);
	ck_assert_int_eq(gc_last_error(), GCHEAP_ERR_NOMEM);
	/* Nothing was set: the object dies without a finalizer run. */
	gc_write(&fin_root, NULL);
	gc_collect();
	gc_collect();
	ck_assert_uint_eq(gc_run_finalizers(), 0);
	ck_assert_int_eq(fin_runs + cleanup_runs, 0);
	/* With memory back, the next call starts the thread. */
	void *p = gc_alloc(64, NULL);
	ck_assert_int_eq(gc_set_finalizer(p, count_fin, NULL), GCHEAP_OK);
}
END_TEST

START_TEST(test_rlimit_sweep)
{
	enum { MAX_N = 100 };
	unsigned n, failing = 0;

	if (UNDER_SANITIZER) {
		printf("# rlimit sweep skipped under a sanitizer\n");
		return;
	}
	make_scenario();
	for (n = 0; n <= MAX_N; n++) {
		sweep_out out = run_sweep_child(SWEEP_RLIMIT, n,
		                                "address space limit (16 MiB)");
		if (!out.fired)
			break;
		failing++;
	}
	ck_assert_msg(n <= MAX_N, "the scenario fails even with %d MiB more "
	              "address space", MAX_N * 16);
	fprintf(stderr, "# rlimit sweep: %u limits with failures\n",
	        failing);
	ck_assert_uint_gt(failing, 3);
}
END_TEST

/* ---- Calls that used to crash, hang or pass (issue 12) ------------------- */

/* Each case runs in a forked child that initialises the heap itself (the
 * parent of the detached cases never does, so no collector thread is lost
 * by the fork): a crash, a fatal() or a hang (the alarm) fails the test
 * as surely as a wrong result. The child reports its first problem. */

static char child_problem[400];

#define CHILD_FAIL(...)                                                    \
	do {                                                               \
		if (!child_problem[0])                                     \
			snprintf(child_problem, sizeof(child_problem),     \
			         __VA_ARGS__);                             \
	} while (0)

/* The call just made failed with `want`, reported once with a one-line
 * message that contains `needle` (unless NULL). */
static void child_expect(const char *what, gc_status want, const char *needle)
{
	if (gc_last_error() != want || err_log.calls != 1 ||
	    err_log.code != want || !err_log.msg[0] ||
	    strchr(err_log.msg, '\n'))
		CHILD_FAIL("%s: last error \"%s\", %d handler calls "
		           "(\"%.200s\"); "
		           "want one \"%s\"", what,
		           gc_strerror(gc_last_error()), err_log.calls,
		           err_log.msg, gc_strerror(want));
	else if (needle && !strstr(err_log.msg, needle))
		CHILD_FAIL("%s: the message \"%.200s\" does not say \"%s\"",
		           what,
		           err_log.msg, needle);
}

#define CHILD_NULL(call, want, needle)                                     \
	do {                                                               \
		clear_logs();                                              \
		const void *r_ = (call);                                   \
		if (r_)                                                    \
			CHILD_FAIL("%s returned %p", #call, r_);           \
		else                                                       \
			child_expect(#call, want, needle);                 \
	} while (0)

#define CHILD_STATUS(call, want, needle)                                   \
	do {                                                               \
		clear_logs();                                              \
		gc_status s_ = (call);                                     \
		if (s_ != (want))                                          \
			CHILD_FAIL("%s returned \"%s\"", #call,            \
			           gc_strerror(s_));                       \
		else                                                       \
			child_expect(#call, want, needle);                 \
	} while (0)

#define CHILD_VOID(call, want, needle)                                     \
	do {                                                               \
		clear_logs();                                              \
		call;                                                      \
		child_expect(#call, want, needle);                         \
	} while (0)

#define CHILD_OK(cond)                                                     \
	do {                                                               \
		if (!(cond))                                               \
			CHILD_FAIL("%s:%d: %s is false", __FILE__,         \
			           __LINE__, #cond);                       \
	} while (0)

enum { CHILD_SECONDS = 60 };

/* Run fn(arg) in a child. expect_fault: the child must take a SIGSEGV or
 * SIGBUS (caught in the child, which then exits with FAULT_EXIT). */
#define FAULT_EXIT 42
static void run_child(const char *what, void (*fn)(int), int arg,
                      bool expect_fault)
{
	char buf[sizeof(child_problem)] = "";
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		sys_fatal_exit_code = 70;
		/* check's own SIGALRM handler would kill the test. */
		signal(SIGALRM, SIG_DFL);
		alarm(CHILD_SECONDS);
		child_problem[0] = 0;
		fn(arg);
		ssize_t w = write(fds[1], child_problem, strlen(child_problem));
		(void)w;
		_exit(child_problem[0] ? 1 : expect_fault ? 3 : 0);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(buf) - 1 &&
	       (r = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = 0;
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status), "%s (case %d): killed by signal "
	              "%d%s", what, arg, WTERMSIG(status),
	              WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
	ck_assert_msg(WIFEXITED(status), "%s (case %d): status %#x", what,
	              arg, status);
	int code = WEXITSTATUS(status);
	ck_assert_msg(code != 1, "%s (case %d): %s", what, arg, buf);
	ck_assert_msg(code != 3, "%s (case %d): no fault", what, arg);
	ck_assert_msg(code != 70, "%s (case %d): fatal error", what, arg);
	ck_assert_msg(code == (expect_fault ? FAULT_EXIT : 0),
	              "%s (case %d): exit %d", what, arg, code);
}

static void child_attach(void)
{
	if (gc_thread_attach() != GCHEAP_OK)
		CHILD_FAIL("attach failed: %.200s", err_log.msg);
	gc_disable();
	clear_logs();
}

/* gc_alloc(64, (gc_type *)1) and other addresses that are no type: the
 * address is checked before anything is read from it, and named. */
static void child_bad_type(int which)
{
	static const size_t sizes[] = {0, 1, 8, 16, 64, 600, 40000};
	int local[4] = {0};
	uintptr_t region = gctype_region;
	const void *bad = NULL;

	child_attach();
	warm_caches();
	switch (which) {
	case 0: bad = (void *)1; break;
	case 1: bad = (void *)0x1000; break;
	case 2: bad = (void *)(UINTPTR_MAX & ~(uintptr_t)127); break;
	case 3: bad = local; break;
	case 4: bad = gc_alloc(128, NULL); break;
	/* A slot of the type region that holds no type (yet). */
	case 5: bad = (void *)(region + GCTYPE_REGION - GCTYPE_SLOT); break;
	/* Inside the region, not at a slot. */
	case 6: bad = (void *)(region + GCTYPE_SLOT + 8); break;
	case 7: bad = (void *)(region + GCTYPE_REGION); break;
	}
	char addr[32];
	snprintf(addr, sizeof(addr), "%p", bad);
	const gc_type *t = bad;
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
		CHILD_NULL(gc_alloc(sizes[i], t), GCHEAP_ERR_TYPE, addr);
	CHILD_NULL(gc_alloc_array(4, t), GCHEAP_ERR_TYPE, addr);
	CHILD_NULL(gc_type_name(t), GCHEAP_ERR_TYPE, addr);
	CHILD_VOID((void)gc_type_size(t), GCHEAP_ERR_TYPE, addr);
	CHILD_OK(gc_alloc(64, t_ptr8) != NULL);
}

START_TEST(test_not_a_type)
{
	for (int i = 0; i < 8; i++)
		run_child("a gc_alloc with no gc_type", child_bad_type, i,
		          false);
}
END_TEST

#define JUNK ((uintptr_t)0x123456789a0ULL) /* not a heap address */

/* gc_weak_get and the ephemeron and map calls on addresses that are no
 * such handle: an error, not an endless wait for the "target" (JUNK) to
 * be swept, and no write into what was passed. */
static void child_bad_handle(int which)
{
	uintptr_t stack[8];
	child_attach();
	uintptr_t *obj = gc_alloc(64, NULL), *val = gc_alloc(32, NULL);
	gc_weak *w = gc_weak_new(obj);
	gc_ephemeron *e = gc_ephemeron_new(obj, val);
	gc_weakmap *m = gc_weakmap_new();
	uintptr_t *blob = gc_alloc(64, NULL);
	const void *bad = blob;

	CHILD_OK(w && e && m && blob);
	if (child_problem[0])
		return;
	for (size_t i = 0; i < ARRAY_LEN(stack); i++)
		stack[i] = JUNK;
	for (size_t i = 0; i < 8; i++)
		blob[i] = JUNK;
	switch (which) {
	case 0: bad = stack; break;
	case 1: break; /* a heap object full of JUNK */
	case 2: blob[0] = 0; break;
	/* A copy of real handles' words elsewhere. */
	case 3: memcpy(blob, w, 16); break;
	case 4: memcpy(blob, e, 24); break;
	case 5: memcpy(blob, m, 32); break;
	case 6: bad = (const char *)w + 8; break;
	case 7: bad = (void *)JUNK; break;
	}
	uintptr_t before[8];
	memcpy(before, blob, sizeof(before));
	/* The wrong kind of handle is no handle either. */
	const void *as_weak = which == 4 ? (const void *)e : bad;
	const void *as_eph = which == 3 ? (const void *)w : bad;
	const void *as_map = which == 5 ? (const void *)e : bad;

	CHILD_NULL(gc_weak_get((const gc_weak *)as_weak), GCHEAP_ERR_ARG,
	           "gc_weak");
	CHILD_NULL(gc_weak_get((const gc_weak *)bad), GCHEAP_ERR_ARG,
	           "gc_weak");
	CHILD_NULL(gc_ephemeron_key((const gc_ephemeron *)as_eph),
	           GCHEAP_ERR_ARG, "gc_ephemeron");
	CHILD_NULL(gc_ephemeron_key((const gc_ephemeron *)bad),
	           GCHEAP_ERR_ARG, "gc_ephemeron");
	CHILD_NULL(gc_ephemeron_value((const gc_ephemeron *)bad),
	           GCHEAP_ERR_ARG, "gc_ephemeron");
	CHILD_VOID(gc_ephemeron_set_value((gc_ephemeron *)bad, val),
	           GCHEAP_ERR_ARG, "gc_ephemeron");
	CHILD_NULL(gc_weakmap_get((gc_weakmap *)as_map, obj), GCHEAP_ERR_ARG,
	           "gc_weakmap");
	CHILD_NULL(gc_weakmap_get((gc_weakmap *)bad, obj), GCHEAP_ERR_ARG,
	           "gc_weakmap");
	CHILD_STATUS(gc_weakmap_set((gc_weakmap *)bad, obj, val),
	             GCHEAP_ERR_ARG, "gc_weakmap");
	CHILD_VOID((void)gc_weakmap_delete((gc_weakmap *)bad, obj),
	           GCHEAP_ERR_ARG, "gc_weakmap");
	CHILD_VOID((void)gc_weakmap_count((gc_weakmap *)bad),
	           GCHEAP_ERR_ARG, "gc_weakmap");
	CHILD_OK(memcmp(before, blob, sizeof(before)) == 0);
	/* A key outside the heap: the message names the call made (it
	 * named gc_weak_new). */
	CHILD_NULL(gc_ephemeron_new(stack, val), GCHEAP_ERR_ARG,
	           "gc_ephemeron_new(");
	/* The real ones still work. */
	CHILD_OK(gc_weak_get(w) == obj);
	CHILD_OK(gc_ephemeron_key(e) == obj && gc_ephemeron_value(e) == val);
	CHILD_OK(gc_weakmap_set(m, obj, val) == GCHEAP_OK);
	CHILD_OK(gc_weakmap_get(m, obj) == val && gc_weakmap_count(m) == 1);
}

/* A handle whose cell the collector freed (the program kept it where the
 * collector cannot see it, against the rules): an error, not a read of
 * the freed slot. gc_weak_get's quick check trusts a cell's tag, which
 * the sweep that frees the cell clears; no poison here, so the slot keeps
 * its other bytes. */
static uintptr_t stale_handle;
static void *stale_keep[64]; /* 16-byte objects beside the cell, rooted */

static void child_stale_handle(int which)
{
	(void)which;
	child_attach();
	gc_set_conservative_stacks(0);
	CHILD_OK(gc_add_roots(stale_keep, ARRAY_LEN(stale_keep)) ==
	         GCHEAP_OK);
	uintptr_t *obj = gc_alloc(64, NULL);
	for (int i = 0; i < 32; i++)
		stale_keep[i] = gc_alloc(16, NULL);
	stale_handle = ~(uintptr_t)gc_weak_new(obj);
	for (int i = 32; i < 64; i++) /* the cell's span stays in use */
		stale_keep[i] = gc_alloc(16, NULL);
	CHILD_OK(stale_handle != ~(uintptr_t)0);
	obj = NULL;
	for (int i = 0; i < 3; i++)
		gc_collect();
	CHILD_NULL(gc_weak_get((const gc_weak *)~stale_handle),
	           GCHEAP_ERR_ARG, "gc_weak");
}

START_TEST(test_stale_weak_handle)
{
	run_child("a freed weak handle", child_stale_handle, 0, false);
}
END_TEST

START_TEST(test_not_a_handle)
{
	for (int i = 0; i < 8; i++)
		run_child("a weak call on no handle", child_bad_handle, i,
		          false);
}
END_TEST

/* gc_frame_push and gc_frame_pop with NULLs, and ranges that overflow:
 * refused, and the thread's frames stay as they were. */
static void child_bad_frame(int which)
{
	void *slots[2] = {0};
	gc_frame f, g;

	child_attach();
	gc_set_conservative_stacks(0);
	if (which >= 3) {
		gc_frame_push(&g, slots, 2);
		slots[0] = gc_alloc(32, NULL);
	}
	switch (which) {
	case 0:
	case 3:
		CHILD_VOID(gc_frame_pop(NULL), GCHEAP_ERR_ARG, "gc_frame_pop");
		break;
	case 1:
	case 4:
		CHILD_VOID(gc_frame_push(NULL, slots, 1), GCHEAP_ERR_ARG,
		           "NULL");
		break;
	case 2:
	case 5:
		CHILD_VOID(gc_frame_push(&f, NULL, 4), GCHEAP_ERR_ARG, "NULL");
		CHILD_VOID(gc_frame_push(&f, slots, SIZE_MAX), GCHEAP_ERR_ARG,
		           "address space");
		break;
	}
	/* A collection scans the frames as they were. */
	gc_collect();
	if (which >= 3) {
		CHILD_OK(gc_size(slots[0]) == 32);
		clear_logs();
		gc_frame_pop(&g);
		CHILD_OK(err_log.calls == 0);
	}
	clear_logs();
	gc_frame_push(&f, slots, 2);
	gc_frame_pop(&f);
	CHILD_OK(err_log.calls == 0);
}

START_TEST(test_frame_args)
{
	for (int i = 0; i < 6; i++)
		run_child("a bad frame", child_bad_frame, i, false);
}
END_TEST

/* gc_add_roots with a range that runs past the end of the address space
 * is refused (it used to be registered and crash the next cycle). */
static void child_bad_roots(int which)
{
	static void *slots[4];
	const size_t n[] = {SIZE_MAX, SIZE_MAX / 8, SIZE_MAX / 8 - 1};

	child_attach();
	if (which < 3) {
		CHILD_STATUS(gc_add_roots(slots, n[which]), GCHEAP_ERR_ARG,
		             "address space");
	} else {
		void *top = (void *)(UINTPTR_MAX & ~(uintptr_t)7);
		CHILD_STATUS(gc_add_roots(top, 2), GCHEAP_ERR_ARG,
		             "address space");
	}
	gc_collect();
	CHILD_STATUS(gc_remove_roots(slots), GCHEAP_ERR_ARG,
	             "not registered");
	CHILD_OK(gc_add_roots(slots, 4) == GCHEAP_OK);
	gc_write(&slots[0], gc_alloc(16, NULL));
	gc_collect();
	CHILD_OK(gc_size(slots[0]) == 16);
	CHILD_OK(gc_remove_roots(slots) == GCHEAP_OK);
}

START_TEST(test_roots_overflow)
{
	for (int i = 0; i < 4; i++)
		run_child("gc_add_roots past the address space",
		          child_bad_roots, i, false);
}
END_TEST

/* gc_type_new with more offsets than the size has words: refused before
 * a single offset is read (the array ends at a PROT_NONE page). */
static void child_nptrs(int which)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED || mprotect(map + pg, (size_t)pg, PROT_NONE)) {
		CHILD_FAIL("mmap: %s", strerror(errno));
		return;
	}
	size_t *offs = (size_t *)(void *)(map + pg) - 2;
	offs[0] = 0;
	offs[1] = 8;
	const size_t n[] = {SIZE_MAX, 3, (size_t)1 << 61};
	CHILD_NULL(gc_type_new("nptrs", 16, offs, n[which], 0),
	           GCHEAP_ERR_TYPE, "words");
	clear_logs();
	CHILD_OK(gc_type_new("nptrs", 16, offs, 2, 0) != NULL);
	CHILD_OK(err_log.calls == 0);
}

START_TEST(test_type_nptrs)
{
	for (int i = 0; i < 3; i++)
		run_child("gc_type_new with too many offsets", child_nptrs, i,
		          false);
}
END_TEST

/* gc_copy of nothing is a no-op, whatever the addresses (memmove with
 * NULL is undefined even for 0 bytes: UBSan stops on it); NULL with bytes
 * to copy is an error. */
static void child_copy(int which)
{
	void *buf[2] = {0};

	child_attach();
	clear_logs();
	switch (which) {
	case 0:
		gc_copy(NULL, NULL, 0);
		gc_copy(buf, NULL, 0);
		gc_copy(NULL, buf, 0);
		CHILD_OK(err_log.calls == 0);
		break;
	case 1:
		CHILD_VOID(gc_copy(NULL, buf, 16), GCHEAP_ERR_ARG, "NULL");
		break;
	case 2:
		CHILD_VOID(gc_copy(buf, NULL, 16), GCHEAP_ERR_ARG, "NULL");
		break;
	}
}

START_TEST(test_copy_null)
{
	for (int i = 0; i < 3; i++)
		run_child("gc_copy with NULL", child_copy, i, false);
}
END_TEST

/* gc_alloc(0, t): the one zero-size address, not in the heap; a write or
 * a read through it faults at once (the library is not corrupted). */
static void on_fault(int sig)
{
	(void)sig;
	_exit(FAULT_EXIT);
}

static void child_zero_size(int which)
{
	child_attach();
	clear_logs();
	char *p = gc_alloc(0, NULL);
	char *q = gc_alloc(0, t_ptr8);
	char *r = gc_alloc_array(0, t24);
	CHILD_OK(p && p == q && p == r && err_log.calls == 0);
	CHILD_OK(gc_size(p) == 0 && gc_base(p) == NULL);
	if (child_problem[0])
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	char *volatile hide = p; /* from alloc_size's bounds */
	char *x = hide;
	if (which == 0)
		*(volatile char *)x = 1;
	else if (which == 1)
		(void)*(volatile char *)(x + 7);
	else
		memset(x, 0xAB, 64);
	/* Reached only if nothing faulted. */
}

START_TEST(test_zero_size_faults)
{
	for (int i = 0; i < 3; i++)
		run_child("through the zero-size address", child_zero_size, i,
		          true);
}
END_TEST

/* Inside gc_blocking_begin/end the thread counts as stopped: allocation
 * (the fast path too) and other heap calls are errors that say so. */
START_TEST(test_alloc_while_blocking)
{
	warm_caches();
	EXPECT_OK_PTR(gc_alloc(1, NULL)); /* a tiny block in the cache */
	gc_blocking_begin();
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	const size_t sizes[] = {1, 8, 16, 64, 500, 40000};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		EXPECT_NULL(gc_alloc(sizes[i], NULL), GCHEAP_ERR_NOT_ATTACHED);
		ck_assert_msg(strstr(err_log.msg, "gc_blocking"), "\"%s\"",
		              err_log.msg);
		EXPECT_NULL(gc_alloc(sizes[i] < 8 ? 8 : sizes[i], t_ptr8),
		            GCHEAP_ERR_NOT_ATTACHED);
	}
	EXPECT_NULL(gc_alloc_array(4, t_ptr8), GCHEAP_ERR_NOT_ATTACHED);
	EXPECT_NULL(gc_weak_new(&tag), GCHEAP_ERR_NOT_ATTACHED);
	prime(GCHEAP_ERR_NOT_ATTACHED);
	gc_collect();
	expect_error("gc_collect", GCHEAP_ERR_NOT_ATTACHED);
	prime(GCHEAP_ERR_NOT_ATTACHED);
	gc_safepoint();
	expect_error("gc_safepoint", GCHEAP_ERR_NOT_ATTACHED);
	prime(GCHEAP_ERR_ARG);
	gc_blocking_begin();
	expect_error("gc_blocking_begin (nested)", GCHEAP_ERR_ARG);
	EXPECT_STATUS(gc_thread_attach(), GCHEAP_ERR_DUPLICATE);
	EXPECT_STATUS(gc_thread_detach(), GCHEAP_ERR_NOT_ATTACHED);
	ck_assert_int_eq(gc_thread_is_attached(), 1);
	clear_logs();
	gc_blocking_end();
	ck_assert_int_eq(err_log.calls, 0);
	EXPECT_OK_PTR(gc_alloc(16, NULL));
	EXPECT_OK_PTR(gc_alloc(64, t_ptr8));
	prime(GCHEAP_ERR_ARG);
	gc_blocking_end();
	expect_error("gc_blocking_end without begin", GCHEAP_ERR_ARG);
	gc_collect();
	mcentral_verify_all();
}
END_TEST

/* ---- Bad environment values ---------------------------------------------- */

/* Run init (and what `use` does) with stderr captured; returns it. */
static char *init_captured(void (*use)(void))
{
	capture c = capture_stderr();
	if (gc_init() == GCHEAP_OK && use)
		use();
	return capture_end(c);
}

static void count_fin(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	__atomic_fetch_add(&fin_runs, 1, __ATOMIC_RELAXED);
}

static void set_a_finalizer(void)
{
	child_attach();
	gc_set_conservative_stacks(0);
	void *p = gc_alloc(64, NULL);
	CHILD_OK(gc_set_finalizer(p, count_fin, NULL) == GCHEAP_OK);
}

/* One line on stderr that names the variable and the bad value. */
static void child_one_line(const char *out, const char *var, const char *val)
{
	if (count_lines(out) != 1 || strncmp(out, "gcheap: ", 8) ||
	    !strstr(out, var) || !strstr(out, val))
		CHILD_FAIL("want one line naming %s and %s, got \"%.200s\"",
		           var,
		           val, out);
}

/* Deadlines by the clock: a sleep may take far longer than asked for on a
 * loaded machine under a sanitizer, so a count of sleeps is no clock. */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char export_dir[64];

static void child_env(int which)
{
	static const char digits[] = "12345678901234567890123";
	char *out;

	switch (which) {
	case 0: /* the finalizer thread stays on */
		setenv("GCHEAP_FINALIZERS", "bogus", 1);
		out = init_captured(set_a_finalizer);
		child_one_line(out, "GCHEAP_FINALIZERS", "bogus");
		gc_collect();
		/* Short of the child's alarm, so that a finalizer that never
		 * runs is named as such. */
		uint64_t end = now_ms() + (CHILD_SECONDS - 10) * 1000;
		while (!__atomic_load_n(&fin_runs, __ATOMIC_RELAXED) &&
		       now_ms() < end) {
			gc_blocking_begin();
			usleep(10000);
			gc_blocking_end();
		}
		CHILD_OK(__atomic_load_n(&fin_runs, __ATOMIC_RELAXED) == 1);
		break;
	case 1: { /* no export */
		char file[128];
		snprintf(export_dir, sizeof(export_dir),
		         "/tmp/gcheap-badinput-XXXXXX");
		if (!mkdtemp(export_dir)) {
			CHILD_FAIL("mkdtemp: %s", strerror(errno));
			return;
		}
		setenv("GCHEAP_EXPORT_DIR", export_dir, 1);
		setenv("GCHEAP_EXPORT", "bogus", 1);
		out = init_captured(child_attach);
		child_one_line(out, "GCHEAP_EXPORT", "bogus");
		snprintf(file, sizeof(file), "%s/%d", export_dir,
		         (int)getpid());
		CHILD_OK(access(file, F_OK) != 0);
		gc_export_stop();
		rmdir(export_dir);
		break;
	}
	case 2: { /* numbers that do not fit, or are negative */
		char env[96];
		snprintf(env, sizeof(env), "stress=%s,gctrace=-1,"
		         "forcegc=4294968", digits);
		setenv("GCHEAP_DEBUG", env, 1);
		out = init_captured(NULL);
		if (count_lines(out) != 3 || !strstr(out, digits) ||
		    !strstr(out, "gctrace=-1") ||
		    !strstr(out, "GCHEAP_DEBUG") ||
		    !strstr(out, "forcegc=4294968"))
			CHILD_FAIL("want three lines naming GCHEAP_DEBUG, "
			           "stress=%s, gctrace=-1 and forcegc=4294968 "
			           "(its ms overflow 32 bits): \"%.200s\"",
			           digits, out);
		CHILD_OK(options_.stress == 0 && options_.gctrace == 0);
		CHILD_OK(aload(&options_.forcegc_ms) == 120000); /* Go's */
		break;
	}
	case 3: { /* over 511 bytes: read whole, nothing cut */
		char env[1024] = "";
		while (strlen(env) < 600)
			strcat(env, "poison=0,");
		strcat(env, "stress=4096,forcegc=3,stopwarn=-5");
		setenv("GCHEAP_DEBUG", env, 1);
		out = init_captured(NULL);
		child_one_line(out, "GCHEAP_DEBUG", "stopwarn=-5");
		CHILD_OK(options_.stress == 4096);
		CHILD_OK(aload(&options_.forcegc_ms) == 3000); /* seconds */
		CHILD_OK(options_.stopwarn_ms == 1000);
		break;
	}
	case 4: case 5: case 6: case 7: { /* not a number of workers */
		static const char *bad[] = {"0", "-2", "257", "4x"};
		const char *v = bad[which - 4];
		setenv("GCHEAP_MARKERS", v, 1);
		out = init_captured(NULL);
		child_one_line(out, "GCHEAP_MARKERS", v);
		/* The default stays: one per CPU online. */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		CHILD_OK(gc_set_mark_workers(1) == (ncpu < 1 ? 1 : ncpu));
		break;
	}
	case 8: { /* decimal only; invalidptr's range */
		setenv("GCHEAP_GC", "010", 1);
		setenv("GCHEAP_DEBUG", "invalidptr=3,stress=4k", 1);
		out = init_captured(NULL);
		child_one_line(out, "GCHEAP_DEBUG", "invalidptr=3");
		CHILD_OK(gc_set_percent(100) == 10); /* was 8 */
		CHILD_OK(options_.invalidptr == 1);
		CHILD_OK(options_.stress == 4096);
		break;
	}
	case 9: { /* 0x20 is no percent, 1k no percent, 1e9 fits none */
		setenv("GCHEAP_GC", "0x20", 1);
		out = init_captured(NULL);
		child_one_line(out, "GCHEAP_GC", "0x20");
		CHILD_OK(gc_set_percent(100) == 100);
		break;
	}
	case 10: { /* the export directory: only export files are removed */
		char dir[64], user[128], stale[128];
		snprintf(dir, sizeof(dir), "/tmp/gcheap-badinput-XXXXXX");
		if (!mkdtemp(dir)) {
			CHILD_FAIL("mkdtemp: %s", strerror(errno));
			return;
		}
		/* Two pids with no process: a user's file named by the first,
		 * a dead exporter's file by the second. */
		long pid = 4194000, pids[2];
		for (int k = 0; k < 2; k++) {
			while (pid > 1000 && !(kill((pid_t)pid, 0) &&
			                       errno == ESRCH))
				pid--;
			pids[k] = pid--;
		}
		snprintf(user, sizeof(user), "%s/%ld", dir, pids[0]);
		snprintf(stale, sizeof(stale), "%s/%ld", dir, pids[1]);
		FILE *f = fopen(user, "w");
		if (f) {
			fprintf(f, "the user's own data\n");
			fclose(f);
		}
		export_file e = {.magic = EXPORT_MAGIC};
		f = fopen(stale, "w");
		if (f) {
			fwrite(&e, sizeof(e), 1, f);
			fclose(f);
		}
		setenv("GCHEAP_EXPORT_DIR", dir, 1);
		out = init_captured(NULL);
		CHILD_OK(gc_export_start(1000) == GCHEAP_OK);
		CHILD_OK(access(user, F_OK) == 0); /* was removed */
		CHILD_OK(access(stale, F_OK) != 0);
		gc_export_stop();
		unlink(user);
		rmdir(dir);
		break;
	}
	case 11: { /* a directory path too long is refused, not cut */
		static char dir[PATH_MAX + 200];
		memset(dir, 'd', sizeof(dir) - 1);
		memcpy(dir, "/tmp/", 5);
		dir[sizeof(dir) - 1] = 0;
		setenv("GCHEAP_EXPORT_DIR", dir, 1);
		out = init_captured(NULL);
		CHILD_STATUS(gc_export_start(1000), GCHEAP_ERR_ARG, "over");
		break;
	}
	case 12: { /* unknown keys, named as given; a key alone is =1 */
		setenv("GCHEAP_DEBUG", "a=b,=1,poison", 1);
		out = init_captured(NULL);
		if (count_lines(out) != 2 || !strstr(out, "unknown option "
		                                      "\"a=b\"") ||
		    !strstr(out, "unknown option \"=1\""))
			CHILD_FAIL("want two lines naming a=b and =1 as "
			           "unknown: \"%.200s\"", out);
		CHILD_OK(options_.poison == 1);
		break;
	}
	default:
		return;
	}
	free(out);
}

START_TEST(test_env_values)
{
	for (int i = 0; i < 13; i++)
		run_child("a bad environment value", child_env, i, false);
}
END_TEST

/* ---- A thread that blocks without saying so ------------------------------ */

typedef struct blocker {
	int fd;          /* read end: the thread blocks reading it */
	bool wrapped;    /* in gc_blocking_begin/end */
	int tid;
	int ready;
} blocker;

static void *blocker_main(void *arg)
{
	blocker *b = arg;
	char c;

	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	pthread_setname_np(pthread_self(), "bi-blocker");
	b->tid = gettid();
	/* Ready once the collection may begin: wrapped, only inside the
	 * blocking region (a thread starved of its CPU before it got there
	 * would hold the stop up, and rightly be warned about). */
	if (b->wrapped)
		gc_blocking_begin();
	__atomic_store_n(&b->ready, 1, __ATOMIC_RELEASE);
	ssize_t r = read(b->fd, &c, 1);
	(void)r;
	if (b->wrapped)
		gc_blocking_end();
	gc_safepoint();
	gc_thread_detach();
	return NULL;
}

static void *release_main(void *arg)
{
	int fd = *(int *)arg;

	usleep(1000 * 1000); /* five times stopwarn */
	ssize_t w = write(fd, "x", 1);
	(void)w;
	return NULL;
}

/* A collection waits for a thread blocked in read() without
 * gc_blocking_begin: after stopwarn ms one line names the thread and the
 * remedy, once, and the wait goes on until the thread comes back. */
static void child_stop_warning(int wrapped)
{
	int fds[2];
	blocker b = {0};
	pthread_t bt, rt;

	setenv("GCHEAP_DEBUG", "stopwarn=200", 1);
	child_attach();
	if (pipe(fds)) {
		CHILD_FAIL("pipe: %s", strerror(errno));
		return;
	}
	b.fd = fds[0];
	b.wrapped = wrapped;
	capture c = capture_stderr();
	pthread_create(&bt, NULL, blocker_main, &b);
	while (!__atomic_load_n(&b.ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* Wrapped, the collection must not wait: the thread is released
	 * only after it (a wait would be a hang, caught by the alarm).
	 * Timed from before the releasing thread exists, which writes a
	 * second later at the earliest, however the threads are scheduled:
	 * gc_collect cannot return before that if it waits for the
	 * blocked thread. */
	uint64_t t0 = now_ms();
	if (!wrapped)
		pthread_create(&rt, NULL, release_main, &fds[1]);
	gc_collect();
	uint64_t took = now_ms() - t0;
	if (wrapped)
		release_main(&fds[1]);
	gc_blocking_begin();
	pthread_join(bt, NULL);
	if (!wrapped)
		pthread_join(rt, NULL);
	gc_blocking_end();
	char *out = capture_end(c);
	char who[64];
	snprintf(who, sizeof(who), "thread %d (bi-blocker)", b.tid);
	if (wrapped) {
		if (out[0])
			CHILD_FAIL("the thread was in gc_blocking_begin/end, "
			           "yet: \"%.200s\"", out);
	} else {
		if (count_lines(out) != 1 || !strstr(out, who) ||
		    !strstr(out, "gc_blocking_begin/end") ||
		    !strstr(out, "200 ms"))
			CHILD_FAIL("want one line naming %s and "
			           "gc_blocking_begin/end; got \"%.200s\"", who,
			           out);
		if (took < 800)
			CHILD_FAIL("gc_collect returned after %llu ms, before "
			           "the thread came back",
			           (unsigned long long)took);
	}
	free(out);
}

START_TEST(test_stop_warning)
{
	run_child("a stop held up by a blocked thread", child_stop_warning, 0,
	          false);
	run_child("a stop beside a blocked thread", child_stop_warning, 1,
	          false);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *att = tcase_create("attached");
	TCase *det = tcase_create("detached");

	tcase_add_checked_fixture(att, setup_attached, teardown);
	tcase_add_test(att, test_too_large);
	tcase_add_test(att, test_below_type_size);
	tcase_add_test(att, test_array_overflow);
	tcase_add_test(att, test_array_null_type);
	tcase_add_test(att, test_fake_type);
	tcase_add_test(att, test_malformed_offsets);
	tcase_add_test(att, test_malformed_bitmaps);
	tcase_add_test(att, test_double_attach);
	tcase_add_test(att, test_detach_with_frame);
	tcase_add_test(att, test_memory_limit);
	tcase_add_test(att, test_default_handlers);
	tcase_add_test(att, test_alloc_while_blocking);
	tcase_add_test(att, test_finalizer_queue_without_memory);
	tcase_add_test(att, test_first_mark_without_memory);
	tcase_add_test(att, test_finalizer_thread_fails);
	suite_add_tcase(s, att);

	tcase_add_checked_fixture(det, setup_detached, teardown);
	tcase_set_timeout(det, 120);
	tcase_add_test(det, test_unattached_main);
	tcase_add_test(det, test_unattached_other_thread);
	tcase_add_test(det, test_init_fails);
	tcase_add_test(det, test_failpoint_sweep);
	tcase_add_test(det, test_rlimit_sweep);
	tcase_add_test(det, test_not_a_type);
	tcase_add_test(det, test_not_a_handle);
	tcase_add_test(det, test_stale_weak_handle);
	tcase_add_test(det, test_frame_args);
	tcase_add_test(det, test_roots_overflow);
	tcase_add_test(det, test_type_nptrs);
	tcase_add_test(det, test_copy_null);
	tcase_add_test(det, test_zero_size_faults);
	tcase_add_test(det, test_env_values);
	tcase_add_test(det, test_stop_warning);
	suite_add_tcase(s, det);
	return s;
}

int main(void)
{
	return test_main(badinput_suite());
}
