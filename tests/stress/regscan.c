/* tests/stress/regscan.c: the collector scans the registers a blocked
 * thread saved. An object whose only reference sits in a callee-saved
 * register of a thread inside gc_blocking_begin/end must survive
 * collections run meanwhile by another thread. The reference is hidden
 * everywhere else (xor-ed), and the code between the register load and
 * the blocking region is assembly, so no stack slot holds it.
 *
 * Two ways to wait in the region: spinning in a C function that calls
 * nothing (r15 only), and, for each of rbx and r12-r15 in turn, calling a
 * helper that saves the five registers deep below the blocking call's
 * frame and zeroes them, as any helper that blocks (a read, a lock) may:
 * the value is then only in what gc_blocking_begin saved of its
 * caller's registers. (A setjmp in the blocking call recorded registers
 * its own prologue had reused, rbx among them, and the object was
 * freed.) The sabotage build 5 (saved registers not scanned) must fail:
 * that proves the reference really was only in the register. x86-64
 * only, and not under ThreadSanitizer (exit 77, a skip, elsewhere).
 *
 *   regscan [--rounds N]     exit 0: every object survived intact */
#include "gcheap.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
#define SIZE 4096

static int go, done;

/* Waits for the blocked thread, collects twice, says so. */
static void *collector(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		sched_yield();
	/* Attached (gc_collect from an unattached thread is an error); it
	 * never sees the objects, so its own roots cannot hold them. */
	if (gc_thread_attach() != GCHEAP_OK) {
		fprintf(stderr, "regscan: gc_thread_attach: %s\n",
		        gc_strerror(gc_last_error()));
		exit(2);
	}
	gc_collect();
	gc_collect();
	if (gc_last_error() != GCHEAP_OK || gc_thread_detach() != GCHEAP_OK) {
		fprintf(stderr, "regscan: the collector thread failed: %s\n",
		        gc_strerror(gc_last_error()));
		exit(2);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Called from the assembly below with the object only in r15. While
 * blocked it only spins, calling nothing: a callee would save r15 in a
 * frame on the part of the stack the collector scans (which is safe, but
 * would hide what this test is about). */
__attribute__((noinline, used)) void regscan_blocked_collect(void);
__attribute__((noinline, used)) void regscan_blocked_collect(void)
{
	gc_blocking_begin();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause" ::: "memory");
	gc_blocking_end();
}

/* The deep wait's body: called with the callee-saved registers zeroed
 * and their values saved deep below the region's frame. */
__attribute__((noinline, used)) void regscan_spin(void);
__attribute__((noinline, used)) void regscan_spin(void)
{
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause" ::: "memory");
}

#if defined(__x86_64__)
/* regscan_blocked_deep: gc_blocking_begin, then zero the 512 bytes of
 * stack below (where its frames were, as the frames of any call made in
 * the region overwrite them), save rbx and r12-r15 past them, zero the
 * registers, regscan_spin, restore them, gc_blocking_end. */
__asm__(".text\n"
        ".globl regscan_blocked_deep\n"
        ".type regscan_blocked_deep, @function\n"
        "regscan_blocked_deep:\n\t"
        "sub $8, %rsp\n\t"
        "call gc_blocking_begin\n\t"
        "sub $512, %rsp\n\t"
        "mov %rsp, %rdi\n\tmov $64, %ecx\n\txor %eax, %eax\n\t"
        "rep stosq\n\t"
        "push %rbx\n\tpush %r12\n\tpush %r13\n\t"
        "push %r14\n\tpush %r15\n\tpush %rbx\n\t"
        "xor %ebx, %ebx\n\txor %r12d, %r12d\n\txor %r13d, %r13d\n\t"
        "xor %r14d, %r14d\n\txor %r15d, %r15d\n\t"
        "call regscan_spin\n\t"
        "pop %rbx\n\tpop %r15\n\tpop %r14\n\t"
        "pop %r13\n\tpop %r12\n\tpop %rbx\n\t"
        "add $512, %rsp\n\t"
        "call gc_blocking_end\n\t"
        "add $8, %rsp\n\t"
        "ret\n\t"
        ".size regscan_blocked_deep, .-regscan_blocked_deep\n");

/* Hold hidden ^ key in REG alone (SAVE keeps the stack pointer) while
 * FN runs; returns what REG then holds ^ key (hidden, if unchanged), so
 * that the caller never has the object's address in a register that a
 * later round's gc_blocking_begin would save (a stale copy holds the
 * next object allocated at the same address). */
#define HOLD_IN(reg, save, fn)                                              \
	static __attribute__((noinline)) uintptr_t hold_##fn##_##reg(     \
		uintptr_t hidden, uintptr_t key)                            \
	{                                                                   \
		uintptr_t out;                                              \
		__asm__ volatile(                                           \
			"mov %[h], %%" #reg "\n\t"                           \
			"xor %[k], %%" #reg "\n\t"                           \
			"xor %[h], %[h]\n\t"                                 \
			"mov %%rsp, %%" #save "\n\t"                         \
			"sub $128, %%rsp\n\t" /* past the red zone */        \
			"and $-16, %%rsp\n\t"                                \
			"call regscan_" #fn "\n\t"                           \
			"mov %%" #save ", %%rsp\n\t"                         \
			"mov %%" #reg ", %[out]\n\t"                         \
			"xor %[k], %[out]\n\t" /* hidden again */           \
			: [out] "=&r"(out), [h] "+r"(hidden)                \
			: [k] "r"(key)                                      \
			: #reg, #save, "rax", "rcx", "rdx", "rsi", "rdi",    \
			  "r8", "r9", "r10", "r11",                          \
			  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",    \
			  "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",  \
			  "xmm12", "xmm13", "xmm14", "xmm15", "cc",          \
			  "memory");                                         \
		return out;                                                 \
	}
HOLD_IN(r15, rbx, blocked_collect)
HOLD_IN(rbx, r12, blocked_deep)
HOLD_IN(r12, rbx, blocked_deep)
HOLD_IN(r13, rbx, blocked_deep)
HOLD_IN(r14, rbx, blocked_deep)
HOLD_IN(r15, rbx, blocked_deep)
#define REGSCAN_ARCH 1
#define hold_in_r15 hold_blocked_collect_r15
static uintptr_t (*const deep[])(uintptr_t, uintptr_t) = {
	hold_blocked_deep_rbx, hold_blocked_deep_r12, hold_blocked_deep_r13,
	hold_blocked_deep_r14, hold_blocked_deep_r15,
};
static const char *const deep_names[] = {"rbx", "r12", "r13", "r14",
                                         "r15"};
#else
static uintptr_t hold_in_r15(uintptr_t hidden, uintptr_t key)
{
	(void)key;
	return hidden;
}
static uintptr_t (*const deep[])(uintptr_t, uintptr_t) = {hold_in_r15};
static const char *const deep_names[] = {"none"};
#define REGSCAN_ARCH 0
#endif

#if defined(__SANITIZE_THREAD__)
#define REGSCAN_TSAN 1
#else
#define REGSCAN_TSAN 0
#endif

static void fill(unsigned char *p, unsigned seed)
{
	for (size_t i = 0; i < SIZE; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7);
}

static int intact(const unsigned char *p, unsigned seed)
{
	for (size_t i = 0; i < SIZE; i++)
		if (p[i] != (unsigned char)(seed * 131 + i * 7))
			return 0;
	return 1;
}

/* Make the object in a separate frame, so no live slot of main has it. */
static __attribute__((noinline)) uintptr_t make(unsigned seed)
{
	unsigned char *p = gc_alloc(SIZE, NULL);
	if (!p)
		return 0;
	fill(p, seed);
	uintptr_t h = (uintptr_t)p ^ KEY;
	p = NULL;
	return h;
}

/* Is the object hidden in h allocated and intact? Its address lives only
 * in this frame (and caller-saved registers, which later calls reuse). */
static __attribute__((noinline)) int survived(uintptr_t h, unsigned seed)
{
	uintptr_t p = h ^ KEY;

	return gc_base((void *)p) == (void *)p &&
	       intact((const unsigned char *)p, seed);
}

/* Overwrite the stack below us, where make() and its callees ran. */
static __attribute__((noinline)) void scrub(void)
{
	volatile uintptr_t junk[2048];
	for (size_t i = 0; i < 2048; i++)
		junk[i] = 0;
	(void)junk[0];
}

int main(int argc, char **argv)
{
	int rounds = 20, control = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--control"))
			control = 1; /* r15 hidden: must be lost */
	}
	if (!REGSCAN_ARCH || REGSCAN_TSAN) {
		/* ThreadSanitizer's calls (atomics, mutexes) spill r15 into
		 * frames the collector scans: the register alone cannot be
		 * tested there. */
		puts("regscan: x86-64 without ThreadSanitizer only; skipped");
		return 77;
	}
	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(1);
	int nways = 1 + (int)(sizeof(deep) / sizeof(deep[0]));
	for (int r = 0; r < rounds * nways; r++) {
		int way = r % nways;
		uintptr_t h = make((unsigned)r);
		if (!h)
			return 1;
		pthread_t ct;
		go = done = 0;
		if (pthread_create(&ct, NULL, collector, NULL))
			return 1;
		scrub();
		uintptr_t k = control ? 0 : KEY;
		uintptr_t p = way ? deep[way - 1](h, k) : hold_in_r15(h, k);
		gc_blocking_begin();
		pthread_join(ct, NULL);
		gc_blocking_end();
		if (control) {
			if (survived(p, (unsigned)r)) {
				fprintf(stderr, "regscan: control: an object "
				        "nobody holds survived (round %d, "
				        "way %d)\n", r / nways, way);
				return 1;
			}
			continue;
		}
		const char *reg = way ? deep_names[way - 1] : "r15";
		if (p != h) {
			fprintf(stderr, "regscan: %s changed\n", reg);
			return 1;
		}
		if (!survived(p, (unsigned)r)) {
			fprintf(stderr, "regscan: round %d: the object held "
			        "only in %s%s was freed\n", r / nways, reg,
			        way ? " (a deep wait)" : "");
			return 1;
		}
	}
	printf(control ? "regscan: control: %d unheld objects were freed\n" :
	       "regscan: %d objects held only in a register survived\n",
	       rounds * nways);
	gc_thread_detach();
	return 0;
}
