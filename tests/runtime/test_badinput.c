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

#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQUIRE(cond, ...)                                                 \
	do {                                                               \
		if (!(cond))                                               \
			ck_abort_msg(__VA_ARGS__);                         \
	} while (0)

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
		n += mcentral_verify(&mheap_.central[i]);
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
	mheap_verify();
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
	ck_assert_int_eq(pthread_join(th, &ret), 0);
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
	mheap_verify();
	check_spans_on_lists();
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
	mheap_verify();
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
	mheap_verify();
	ck_assert_int_eq(gc_thread_detach(), GCHEAP_OK);
	mheap_verify();
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
			mheap_verify();
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
	mheap_verify();
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
	mheap_verify();
	uintptr_t listed = 0;
	for (unsigned i = 0; i < NUM_SPANCLASSES; i++)
		listed += mcentral_verify(&mheap_.central[i]);
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
	tcase_add_test(att, test_memory_limit);
	tcase_add_test(att, test_default_handlers);
	suite_add_tcase(s, att);

	tcase_add_checked_fixture(det, setup_detached, teardown);
	tcase_set_timeout(det, 120);
	tcase_add_test(det, test_unattached_main);
	tcase_add_test(det, test_unattached_other_thread);
	tcase_add_test(det, test_init_fails);
	tcase_add_test(det, test_failpoint_sweep);
	tcase_add_test(det, test_rlimit_sweep);
	suite_add_tcase(s, det);
	return s;
}

int main(void)
{
	return test_main(badinput_suite());
}
