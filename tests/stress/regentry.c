/* tests/stress/regentry.c: the library's entries keep the program's
 * registers. A conservative scan of a thread inside the library starts at
 * the entry's frame (runtime/runtime.h, "Entries"), whose prologue saved
 * every callee-saved register; an object whose only reference is in one
 * of them while the thread runs the allocation slow path (gc_alloc of 4
 * KiB in a loop), gc_safepoint in a loop, or gc_collect, with another
 * thread collecting throughout, must survive. The reference is hidden
 * everywhere else (xor-ed), and the code from the register load to the
 * library calls is assembly that never saves it. Each of rbx, rbp and
 * r12-r15 in turn, for each way in. An entry that lost its saves, that
 * recorded a frame above them, or that became a tail call freed such
 * objects (a review's mutants, none caught by the rest of the suite).
 * --control drops the reference instead: those objects must be freed,
 * which shows the test can see a loss. x86-64 only, not under
 * ThreadSanitizer (exit 77, a skip, elsewhere).
 *
 *   regentry [--rounds N] [--control]   exit 0: every object as it should */
#include "gcheap.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)

#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
#define SIZE 4096
#define ITERS 20000

static int stop;

static void *collector(void *arg)
{
	(void)arg;
	if (gc_thread_attach() != GCHEAP_OK)
		exit(2);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		gc_collect();
		gc_blocking_begin();
		sched_yield();
		gc_blocking_end();
	}
	gc_thread_detach();
	return NULL;
}

/* The ways in, called with the count in rdi: each keeps its count on the
 * stack and touches no callee-saved register. */
__asm__(".text\n"
        ".globl regentry_alloc\n"
        ".type regentry_alloc,@function\n"
        "regentry_alloc:\n\t"
        "push %rdi\n"
        "1:\n\t"
        "mov $4096, %edi\n\t"
        "xor %esi, %esi\n\t"
        "call gc_alloc\n\t"
        "decq (%rsp)\n\t"
        "jnz 1b\n\t"
        "pop %rdi\n\t"
        "ret\n"
        ".size regentry_alloc,.-regentry_alloc\n"
        ".globl regentry_safepoint\n"
        ".type regentry_safepoint,@function\n"
        "regentry_safepoint:\n\t"
        "push %rdi\n"
        "1:\n\t"
        "call sched_yield\n\t"
        "call gc_safepoint\n\t"
        "decq (%rsp)\n\t"
        "jnz 1b\n\t"
        "pop %rdi\n\t"
        "ret\n"
        ".size regentry_safepoint,.-regentry_safepoint\n"
        ".globl regentry_collect\n"
        ".type regentry_collect,@function\n"
        "regentry_collect:\n\t"
        "push %rdi\n\t"
        "call gc_collect\n\t"
        "call gc_collect\n\t"
        "pop %rdi\n\t"
        "ret\n"
        ".size regentry_collect,.-regentry_collect\n");

/* Unhide the reference into `reg` alone, call the way in with an aligned
 * stack (the old one kept in `save`), and hand back what `reg` holds
 * after, hidden again. Without a frame pointer whatever the build's
 * flags (ASan's keep rbp for one), so that rbp may be held; at -O0,
 * where the attribute does not take, rbp is not tried. */
#define HOLD(reg, save, way)                                                 \
	static __attribute__((noinline, optimize("omit-frame-pointer")))   \
	uintptr_t hold_##way##_##reg(uintptr_t hidden, uintptr_t key, long n) \
	{                                                                    \
		uintptr_t out;                                               \
		__asm__ volatile(                                            \
			"mov %[h], %%" #reg "\n\t"                            \
			"xor %[k], %%" #reg "\n\t"                            \
			"xor %[h], %[h]\n\t"                                  \
			"mov %%rsp, %%" #save "\n\t"                          \
			"sub $128, %%rsp\n\t"                                 \
			"and $-16, %%rsp\n\t"                                 \
			"call regentry_" #way "\n\t"                          \
			"mov %%" #save ", %%rsp\n\t"                          \
			"mov %%" #reg ", %[out]\n\t"                          \
			"xor %[k], %[out]\n\t"                                \
			: [out] "=&r"(out), [h] "+r"(hidden), [n] "+D"(n)    \
			: [k] "m"(key)                                       \
			: #reg, #save, "rax", "rcx", "rdx", "rsi", "r8",      \
			  "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", \
			  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",     \
			  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",        \
			  "xmm15", "cc", "memory");                           \
		return out;                                                  \
	}

#ifdef __OPTIMIZE__
#define HOLD_RBP(way) HOLD(rbp, rbx, way)
#else
#define HOLD_RBP(way)                                                        \
	static uintptr_t hold_##way##_rbp(uintptr_t h, uintptr_t k, long n) \
	{                                                                    \
		return hold_##way##_rbx(h, k, n);                            \
	}
#endif

#define HOLD_ALL(way)                                                        \
	HOLD(rbx, r12, way)                                                  \
	HOLD(r12, rbx, way)                                                  \
	HOLD(r13, rbx, way)                                                  \
	HOLD(r14, rbx, way)                                                  \
	HOLD(r15, rbx, way)                                                  \
	HOLD_RBP(way)
HOLD_ALL(alloc)
HOLD_ALL(safepoint)
HOLD_ALL(collect)

typedef uintptr_t (*hold_fn)(uintptr_t, uintptr_t, long);

#define WAY(w, n)                                                            \
	{#w " in rbx", hold_##w##_rbx, n}, {#w " in r12", hold_##w##_r12, n}, \
	{#w " in r13", hold_##w##_r13, n}, {#w " in r14", hold_##w##_r14, n}, \
	{#w " in r15", hold_##w##_r15, n}, {#w " in rbp", hold_##w##_rbp, n}

static const struct {
	const char *name;
	hold_fn fn;
	long n;
} ways[] = {WAY(alloc, ITERS), WAY(safepoint, ITERS), WAY(collect, 1)};

static unsigned char pattern(unsigned seed, size_t i)
{
	return (unsigned char)(seed * 131 + i * 7 + 1);
}

static __attribute__((noinline)) uintptr_t make(unsigned seed)
{
	unsigned char *p = gc_alloc(SIZE, NULL);

	if (!p)
		exit(2);
	for (size_t i = 0; i < SIZE; i++)
		p[i] = pattern(seed, i);
	return (uintptr_t)p ^ KEY;
}

static __attribute__((noinline)) int intact(uintptr_t hidden, unsigned seed)
{
	const unsigned char *p = (const unsigned char *)(hidden ^ KEY);

	if (gc_base(p) != p)
		return 0;
	for (size_t i = 0; i < SIZE; i++)
		if (p[i] != pattern(seed, i))
			return 0;
	return 1;
}

/* Overwrite the dead stack where make() left the address. */
static __attribute__((noinline)) void scrub(void)
{
	volatile uintptr_t junk[8192];

	for (size_t i = 0; i < 8192; i++)
		junk[i] = 0;
	(void)junk[0];
}

int main(int argc, char **argv)
{
	int rounds = 2, control = 0, bad = 0, n = 0;
	pthread_t c;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--control"))
			control = 1;
	}
	if (gc_thread_attach() != GCHEAP_OK ||
	    pthread_create(&c, NULL, collector, NULL) != 0)
		return 2;
	for (int r = 0; r < rounds; r++)
		for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
			unsigned seed = (unsigned)(r * 100 + w);
			uintptr_t h = make(seed);
			scrub();
			uintptr_t got = ways[w].fn(h, control ? 0 : KEY,
			                           ways[w].n);
			n++;
			if (control) {
				/* The register held the hidden value: the
				 * object had no reference at all. */
				bad += intact(got, seed);
				continue;
			}
			if (got != h) {
				fprintf(stderr, "regentry: %s: the register "
				        "changed\n", ways[w].name);
				return 1;
			}
			if (!intact(h, seed)) {
				fprintf(stderr, "regentry: round %d: the "
				        "object held only in %s was freed\n",
				        r, ways[w].name);
				bad++;
			}
		}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	gc_blocking_begin();
	pthread_join(c, NULL);
	gc_blocking_end();
	printf("regentry%s: %d of %d objects %s\n",
	       control ? " --control" : "", bad, n,
	       control ? "survived unheld" : "lost");
	return bad != 0;
}

#else

int main(void)
{
	return 77;
}

#endif
