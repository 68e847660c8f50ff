/* alloc/sys/atomic.h: the library's only includer of <atomic_ops.h>.
 * Every atomic in the library goes through these wrappers (gcstat, a
 * client of format/export.h, calls libatomic_ops itself), whose names
 * carry the ordering:
 *   aload / astore               relaxed (no ordering)
 *   aload_acq / astore_rel       acquire load / release store
 *   acas                         full-barrier compare-and-swap, true on
 *                                success
 *   afetch_add                   full-barrier fetch-and-add, returns old value
 *   afetch_or                    full-barrier fetch-or, returns old value
 *   aor / aand                   full-barrier or / and (no value returned)
 *   aload_int_acq / astore_int_rel  acquire load / release store of an
 *                                int (the public barrier switch)
 * Values are uintptr-sized (AO_t) unless named _int. libatomic_ops has no
 * fetch-or and no exchange: afetch_or is the one wrapper built on the
 * compiler's __atomic builtin, the same one libatomic_ops itself uses on
 * gcc and clang (sysdeps/gcc/generic.h); when a caller tests a single bit
 * of its result, gcc makes it one `lock bts` (no retry loop). An
 * exchange, if ever needed, is built from acas. The one atomic outside
 * this header is gc_write's relaxed load of gc_barrier_enabled in the
 * public gcheap.h, which cannot include it. */
#ifndef GCHEAP_SYS_ATOMIC_H
#define GCHEAP_SYS_ATOMIC_H

#include <atomic_ops.h>
#include <stdbool.h>
#include <stdint.h>

typedef volatile AO_t atomic_word;

static inline uintptr_t aload(const atomic_word *p)
{
	return (uintptr_t)AO_load(p);
}

static inline uintptr_t aload_acq(const atomic_word *p)
{
	return (uintptr_t)AO_load_acquire(p);
}

static inline void astore(atomic_word *p, uintptr_t v)
{
	AO_store(p, (AO_t)v);
}

static inline void astore_rel(atomic_word *p, uintptr_t v)
{
	AO_store_release(p, (AO_t)v);
}

static inline bool acas(atomic_word *p, uintptr_t old, uintptr_t new_)
{
	return AO_compare_and_swap_full(p, (AO_t)old, (AO_t)new_) != 0;
}

static inline uintptr_t afetch_add(atomic_word *p, uintptr_t v)
{
	return (uintptr_t)AO_fetch_and_add_full(p, (AO_t)v);
}

static inline uintptr_t afetch_or(atomic_word *p, uintptr_t v)
{
	return (uintptr_t)__atomic_fetch_or(p, (AO_t)v, __ATOMIC_SEQ_CST);
}

static inline void aor(atomic_word *p, uintptr_t v)
{
	AO_or_full(p, (AO_t)v);
}

static inline void aand(atomic_word *p, uintptr_t v)
{
	AO_and_full(p, (AO_t)v);
}

static inline int aload_int_acq(const volatile int *p)
{
	return (int)AO_int_load_acquire((const volatile unsigned *)p);
}

static inline void astore_int_rel(volatile int *p, int v)
{
	AO_int_store_release((volatile unsigned *)p, (unsigned)v);
}

static inline unsigned char aload8_acq(const volatile unsigned char *p)
{
	return AO_char_load_acquire(p);
}

static inline void astore8_rel(volatile unsigned char *p, unsigned char v)
{
	AO_char_store_release(p, v);
}

/* A full memory barrier (the store-load order that a store, then a load
 * of another word, needs on every architecture). ThreadSanitizer has no
 * fences: there a locked read-modify-write stands in, a full barrier on
 * x86-64, where the sanitizer builds run. */
static inline void afence(void)
{
#if defined(__SANITIZE_THREAD__)
	static atomic_word fence_word;
	AO_fetch_and_add_full(&fence_word, 0);
#else
	AO_nop_full();
#endif
}

/* Load-load and store-store fences, for sequence locks: a reader's reads
 * of the data stay above its second read of the sequence, a writer's odd
 * sequence stays above its writes of the data. ThreadSanitizer rejects
 * fences; its builds run on x86-64, which keeps loads in order with
 * loads and stores with stores, so there the compiler's barrier is
 * enough. */
static inline void afence_read(void)
{
#if defined(__SANITIZE_THREAD__)
	__asm__ __volatile__("" ::: "memory");
#else
	AO_nop_read();
#endif
}

static inline void afence_write(void)
{
#if defined(__SANITIZE_THREAD__)
	__asm__ __volatile__("" ::: "memory");
#else
	AO_nop_write();
#endif
}

/* In a spin-wait loop: let the sibling hyperthread run (x86's pause). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Pointer-typed helpers for lists published to other threads. */
static inline void *aload_ptr_acq(void *const volatile *p)
{
	return (void *)AO_load_acquire((const volatile AO_t *)p);
}

static inline void astore_ptr_rel(void *volatile *p, void *v)
{
	AO_store_release((volatile AO_t *)p, (AO_t)v);
}

#endif
