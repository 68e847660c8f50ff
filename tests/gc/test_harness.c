/* tests/gc/test_harness.c: shared helpers of the collector tests, included
 * by them (#include "test_harness.c"; it is not a test of its own).
 *
 * The harness holds a concurrent mark open at a chosen point, so that the
 * classic lost-object races can be staged deterministically:
 *
 *   pause_begin()   a helper thread H (attached, with a precise frame of
 *                   HELPER_SLOTS slots) spins without safepoints, and the
 *                   test marks it TS_CLAIMED: it counts as stopped, but the
 *                   collector can neither scan it for itself nor wait for
 *                   it to scan itself. An unattached thread calls
 *                   gc_collect; the test's thread answers the stop and
 *                   scans its own roots. On return the cycle is in
 *                   GCPHASE_MARK, the test's thread is black (its roots
 *                   scanned) and H is grey (not scanned), and marking
 *                   cannot finish until H is released.
 *   pause_end(fn)   H becomes TS_RUNNING, runs fn on its own thread (it
 *                   may touch the heap; its roots are still unscanned),
 *                   then answers safepoints; the test's thread waits for
 *                   the cycle and its sweep to finish.
 *
 * Anything reachable only from H's frame is therefore unmarked until
 * pause_end, whatever the background worker does meanwhile. */
#include "tests/testing.h"

#include "runtime/runtime.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define HELPER_SLOTS 16
#define H_UNUSED __attribute__((unused))

static H_UNUSED void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* ---- Object helpers ------------------------------------------------------ */

/* Is the object containing p marked in the current cycle? */
static H_UNUSED bool is_marked(const void *p)
{
	mspan *s = spanof((uintptr_t)p);
	if (!s)
		return false;
	uintptr_t i = mspan_object_index(s, (uintptr_t)p);
	const atomic_word *w = (const atomic_word *)&s->gcmark_bits[i / 64];
	/* Allocated black: its bit is set in bulk later (alloc/mcache.h). */
	return mspan_black_pending(s, i) || ((aload(w) >> (i % 64)) & 1);
}

/* Is p the start of an allocated object? */
static H_UNUSED bool is_live(const void *p)
{
	return gc_base(p) == p;
}

/* The pattern of a payload, a word at a time (a byte at a time, it was
 * most of some tests' time under ThreadSanitizer, which checks every
 * access): x is the generator's state, started from the key. */
static H_UNUSED uint64_t payload_word(uint64_t *x)
{
	*x ^= *x >> 13;
	*x ^= *x << 7;
	*x ^= *x >> 17;
	return *x;
}

/* Fill a noscan payload of n bytes with a pattern derived from key. */
static H_UNUSED void fill_payload(void *p, size_t n, uint64_t key)
{
	unsigned char *b = p;
	uint64_t x = key * 0x9E3779B97F4A7C15ULL + 1, w;

	for (size_t i = 0; i < n; i += sizeof(w)) {
		w = payload_word(&x);
		memcpy(b + i, &w, MIN(sizeof(w), n - i));
	}
}

static H_UNUSED bool check_payload(const void *p, size_t n, uint64_t key)
{
	const unsigned char *b = p;
	uint64_t x = key * 0x9E3779B97F4A7C15ULL + 1, w;

	for (size_t i = 0; i < n; i += sizeof(w)) {
		w = payload_word(&x);
		if (memcmp(b + i, &w, MIN(sizeof(w), n - i)))
			return false;
	}
	return true;
}

/* A noscan object of n bytes filled with key's pattern. */
static H_UNUSED void *new_payload(size_t n, uint64_t key)
{
	void *p = gc_alloc(n, NULL);
	REQUIRE(p, "gc_alloc(%zu) failed", n);
	fill_payload(p, n, key);
	return p;
}

/* Hide a pointer from conservative scanning (and unhide it). */
#define HIDE_KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
static H_UNUSED uintptr_t hide(const void *p)
{
	return (uintptr_t)p ^ HIDE_KEY;
}

static H_UNUSED void *unhide(uintptr_t h)
{
	return (void *)(h ^ HIDE_KEY);
}

/* Attach with GCHEAP_DEBUG = debug (NULL: as the environment says), a
 * fatal error exiting with `code`, automatic cycles off and precise
 * roots only; returns a type whose every word is a pointer. */
static H_UNUSED gc_type *attach_precise(const char *debug, int code)
{
	size_t zero = 0;

	sys_fatal_exit_code = code;
	if (debug)
		setenv("GCHEAP_DEBUG", debug, 1);
	ck_assert_int_eq(gc_thread_attach(), GCHEAP_OK);
	gc_disable();
	gc_set_conservative_stacks(0);
	gc_type *t = gc_type_new("ptrs", sizeof(void *), &zero, 1,
	                         GCHEAP_TAIL_REPEAT);
	ck_assert_ptr_nonnull(t);
	return t;
}

/* ---- The helper thread --------------------------------------------------- */

enum helper_cmd { H_SAFE, H_SPIN, H_RUN, H_EXIT };

typedef struct helper helper;
typedef void (*helper_fn)(helper *h, void *arg);

struct helper {
	pthread_t tid;
	gc_thread *t;               /* its gc_thread, once attached */
	void *slots[HELPER_SLOTS];  /* its precise frame */
	gc_frame frame;
	int cmd;                    /* enum helper_cmd, set by the test */
	int spinning;               /* H is in its safepoint-free spin */
	int ran;                    /* H finished running fn */
	helper_fn fn;
	void *arg;
	uintptr_t saw[8];           /* results fn records for the test */
};

static int hload(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void hstore(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void *helper_main(void *arg)
{
	helper *h = arg;

	if (gc_thread_attach() != GCHEAP_OK)
		abort();
	gc_frame_push(&h->frame, h->slots, HELPER_SLOTS);
	__atomic_store_n(&h->t, thread_current, __ATOMIC_RELEASE);
	for (;;) {
		int c = hload(&h->cmd);
		if (c == H_EXIT)
			break;
		if (c == H_SPIN) {
			/* No safepoint and no heap access in here. */
			hstore(&h->spinning, 1);
			while (hload(&h->cmd) == H_SPIN)
				sched_yield();
			hstore(&h->spinning, 0);
			continue;
		}
		if (c == H_RUN && !hload(&h->ran)) {
			if (h->fn)
				h->fn(h, h->arg);
			hstore(&h->ran, 1);
		}
		gc_safepoint();
		sleep_us(20);
	}
	gc_frame_pop(&h->frame);
	gc_thread_detach();
	return NULL;
}

static H_UNUSED void helper_start(helper *h)
{
	memset(h, 0, sizeof(*h));
	ck_assert_int_eq(pthread_create(&h->tid, NULL, helper_main, h), 0);
	while (!__atomic_load_n(&h->t, __ATOMIC_ACQUIRE))
		sleep_us(50);
}

static H_UNUSED void helper_stop(helper *h)
{
	hstore(&h->cmd, H_EXIT);
	gc_blocking_begin();
	pthread_join(h->tid, NULL);
	gc_blocking_end();
}

/* ---- Holding a mark open ------------------------------------------------- */

static pthread_t pause_collector;
static uintptr_t pause_cycles;

/* A thread of its own that attaches, runs gc_collect once and detaches. */
static H_UNUSED void *collect_attached_main(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		return NULL;
	gc_collect();
	gc_thread_detach();
	return NULL;
}

static void *collect_main(void *arg)
{
	(void)arg;
	/* From an unattached thread: the collector's own entry (gc_collect
	 * wants an attached caller). */
	mgc_run_cycle(true);
	return NULL;
}

/* Start a cycle and stop it in mid-mark: on return the caller (attached)
 * has scanned its roots, H has not. Automatic cycles should be off
 * (gc_disable) so that the cycle is the one started here. */
static H_UNUSED void pause_begin(helper *h)
{
	gc_thread *me = thread_current;

	ck_assert_ptr_nonnull(me);
	ck_assert_int_eq((int)aload(&mgc_.phase), GCPHASE_OFF);
	hstore(&h->ran, 0);
	hstore(&h->cmd, H_SPIN);
	while (!hload(&h->spinning))
		sleep_us(20);
	ck_assert_msg(acas(&h->t->status, TS_RUNNING, TS_CLAIMED),
	              "helper status %zu", (size_t)aload(&h->t->status));
	pause_cycles = aload(&mgc_.cycles);
	ck_assert_int_eq(pthread_create(&pause_collector, NULL, collect_main,
	                                NULL), 0);
	while (aload(&mgc_.phase) != GCPHASE_MARK) {
		gc_safepoint();
		sleep_us(10);
	}
	/* The stop that set the phase also asked us to scan our roots. */
	gc_safepoint();
	ck_assert(!(aload(&me->pending) & P_SCAN));
	ck_assert(aload(&h->t->pending) & P_SCAN);
	ck_assert_int_eq((int)aload(&mgc_.phase), GCPHASE_MARK);
}

/* Let H run fn (may be NULL), then scan itself at its next safepoint. */
static H_UNUSED void pause_release(helper *h, helper_fn fn, void *arg)
{
	h->fn = fn;
	h->arg = arg;
	ck_assert(acas(&h->t->status, TS_CLAIMED, TS_RUNNING));
	hstore(&h->cmd, H_RUN);
}

/* After pause_release: wait until the cycle and its sweep are done. */
static H_UNUSED void pause_wait(helper *h)
{
	while (aload(&mgc_.cycles) == pause_cycles) {
		gc_safepoint();
		sleep_us(10);
	}
	/* The collector's thread finishes the sweep: it may flush our cache
	 * for us while we wait. */
	gc_blocking_begin();
	pthread_join(pause_collector, NULL);
	gc_blocking_end();
	while (!hload(&h->ran))
		sleep_us(20);
	hstore(&h->cmd, H_SAFE);
}

/* pause_release and pause_wait. */
static H_UNUSED void pause_end(helper *h, helper_fn fn, void *arg)
{
	pause_release(h, fn, arg);
	pause_wait(h);
}
