/* tests/stress/regscan.c: the collector scans the registers a blocked
 * thread saved. An object whose only reference sits in a callee-saved
 * register (r15) of a thread inside gc_blocking_begin/end must survive
 * collections run meanwhile by another thread. The reference is hidden
 * everywhere else (xor-ed), and the code between the register load and
 * the blocking region is assembly, so no stack slot holds it. The
 * sabotage build 5 (saved registers not scanned) must fail: that proves
 * the reference really was only in the register. x86-64 only, and not
 * under ThreadSanitizer (exit 77, a skip, elsewhere).
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

#if defined(__x86_64__)
static __attribute__((noinline)) uintptr_t hold_in_r15(uintptr_t hidden,
                                                       uintptr_t key)
{
	uintptr_t out;

	__asm__ volatile(
		"mov %[h], %%r15\n\t"
		"xor %[k], %%r15\n\t"
		"xor %[h], %[h]\n\t"
		"mov %%rsp, %%rbx\n\t"
		"sub $128, %%rsp\n\t" /* past the red zone */
		"and $-16, %%rsp\n\t"
		"call regscan_blocked_collect\n\t"
		"mov %%rbx, %%rsp\n\t"
		"mov %%r15, %[out]\n\t"
		: [out] "=r"(out), [h] "+r"(hidden)
		: [k] "r"(key)
		: "rbx", "r15", "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9",
		  "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
		  "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
		  "xmm13", "xmm14", "xmm15", "cc", "memory");
	return out;
}
#define REGSCAN_ARCH 1
#else
static uintptr_t hold_in_r15(uintptr_t hidden, uintptr_t key)
{
	return hidden ^ key;
}
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
	for (int r = 0; r < rounds; r++) {
		uintptr_t h = make((unsigned)r);
		if (!h)
			return 1;
		pthread_t ct;
		go = done = 0;
		if (pthread_create(&ct, NULL, collector, NULL))
			return 1;
		scrub();
		uintptr_t p = hold_in_r15(h, control ? 0 : KEY);
		gc_blocking_begin();
		pthread_join(ct, NULL);
		gc_blocking_end();
		if (control) {
			p ^= KEY;
			if (gc_base((void *)p) == (void *)p &&
			    intact((const unsigned char *)p, (unsigned)r)) {
				fprintf(stderr, "regscan: control: an object "
				        "nobody holds survived\n");
				return 1;
			}
			continue;
		}
		if ((p ^ KEY) != h) {
			fprintf(stderr, "regscan: r15 changed\n");
			return 1;
		}
		if (gc_base((void *)p) != (void *)p ||
		    !intact((const unsigned char *)p, (unsigned)r)) {
			fprintf(stderr, "regscan: round %d: the object held "
			        "only in a saved register was freed\n", r);
			return 1;
		}
	}
	printf(control ? "regscan: control: %d unheld objects were freed\n" :
	       "regscan: %d objects held only in r15 survived\n", rounds);
	gc_thread_detach();
	return 0;
}
