/* alloc/sys/base.h: compiler attributes, bit operations, check-level asserts
 * and fatal(), shared by every layer. Nothing here allocates or locks.
 *
 * Check levels (GCHEAP_CHECK_LEVEL, config.h): the API's argument checks
 * are made at every level (1 adds nothing to 0 today), 2 internal
 * invariants (gc_assert), 3 expensive verification (gc_assert_expensive).
 * Both branches of every check are always compiled; the compiler drops the
 * dead one. A broken invariant calls fatal(), which
 * prints the message and aborts (or exits with sys_fatal_exit_code if a test
 * set it, so death tests do not confuse a sanitizer's abort with ours). */
#ifndef GCHEAP_SYS_BASE_H
#define GCHEAP_SYS_BASE_H

#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define NORETURN __attribute__((noreturn))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define CACHE_LINE 64
#define ALIGNED_CACHE __attribute__((aligned(CACHE_LINE)))

/* Scanners read memory the sanitizers consider off limits (stack redzones,
 * words raced by mutators that the barrier protocol makes benign). */
#define NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
/* A sequence lock's reader, whose reads may race the writer and are
 * thrown away when the sequence says so (mheap_find_object): not
 * instrumented, and not inlined into an instrumented caller, under
 * ThreadSanitizer. Its reads are RACY_LOADs, which the compiler keeps in
 * the function, not calls to the atomic wrappers (instrumented
 * functions of their own there). */
#if defined(__SANITIZE_THREAD__)
#define NO_SANITIZE_THREAD __attribute__((no_sanitize_thread, noinline))
#else
#define NO_SANITIZE_THREAD
#endif
#define RACY_LOAD(x) (*(const volatile __typeof__(x) *)&(x))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* pthread_create for the library's own threads: each starts with the
 * asynchronous signals blocked, so that the program's handlers run on the
 * program's threads (a handler that ran on a mark worker and called
 * gcheap could wait for the worker it had interrupted). */
int sys_thread_create(pthread_t *t, const pthread_attr_t *attr,
                      void *(*fn)(void *), void *arg);

/* Name the calling thread "gcheap-<role>" (cut to the kernel's 15
 * characters), as top -H, perf and gdb show it: each of the library's own
 * threads does so when it starts. */
void sys_thread_name(const char *role);

/* a + b, or UINTPTR_MAX if that does not fit. */
static inline uintptr_t add_sat(uintptr_t a, uintptr_t b)
{
	return a > UINTPTR_MAX - b ? UINTPTR_MAX : a + b;
}

static inline uintptr_t align_up(uintptr_t x, uintptr_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline uintptr_t align_down(uintptr_t x, uintptr_t a)
{
	return x & ~(a - 1);
}

static inline bool is_pow2(uintptr_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Count trailing zeros; 64 for 0. */
static inline unsigned ctz64(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

/* Count leading zeros; 64 for 0. */
static inline unsigned clz64(uint64_t x)
{
	return x ? (unsigned)__builtin_clzll(x) : 64;
}

static inline unsigned popcount64(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

/* A mask of the low n bits, n in [0, 64]. */
static inline uint64_t low_mask(unsigned n)
{
	return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* Prints "gcheap: fatal: <message>" and never returns. */
NORETURN PRINTF_LIKE(1, 2) void sys_fatal(const char *fmt, ...);
#define fatal(...) sys_fatal(__VA_ARGS__)

/* Tests set this to a nonzero exit code so that fatal() exits with it. */
extern int sys_fatal_exit_code;

#define gc_assert_level(level, cond)                                       \
	do {                                                                \
		if (GCHEAP_CHECK_LEVEL >= (level) && !(cond))               \
			sys_fatal("assertion failed: %s (%s:%d)", #cond,    \
			          __FILE__, __LINE__);                      \
	} while (0)

/* Level 2: cheap internal invariants. */
#define gc_assert(cond) gc_assert_level(2, cond)
/* Level 3: expensive checks (whole-structure verification). */
#define gc_assert_expensive(cond) gc_assert_level(3, cond)

#endif
