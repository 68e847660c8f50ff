/* tests/stress/harness.h: the run around the stand-alone stress programs
 * model.c and stress.c (each includes it once): the options they share,
 * the seed (GCHEAP_SEED, else the clock), the failure report and the
 * crash report, and the sabotage exit codes. The generator and the mixer
 * are tests/rng.h's.
 *
 * The options: --threads N (1..MAXT), --ops N, --conservative (scan
 * stacks conservatively), --sabotage (for the sabotage builds: a library
 * fatal() exits 86, a failed check 87, a crash 99, so that only a clean
 * detection counts as the expected failure). A program adds options of
 * its own with a table of harness_opt. */
#ifndef GCHEAP_STRESS_HARNESS_H
#define GCHEAP_STRESS_HARNESS_H

#include "alloc/sys/base.h"
#include "tests/rng.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXT 8 /* mutator threads at most */

/* The shared settings: the program sets prog and the defaults, then
 * calls harness_start. */
static struct {
	const char *prog;  /* "model", "stress": opens every message */
	int nthreads;      /* --threads */
	long ops;          /* --ops */
	bool conservative; /* --conservative */
	bool sabotage;     /* --sabotage */
	uint64_t seed;     /* set by harness_start */
} cfg;

/* Each mutator's operation counter, for the crash report (NULL until the
 * thread's state exists). */
static const volatile uint64_t *harness_op[MAXT];

/* An option of the program's own: "--name N" sets *value or, where value
 * is NULL, "--name" sets *flag. A table of them ends with a NULL name. */
typedef struct harness_opt {
	const char *name;
	long *value;
	bool *flag;
} harness_opt;

static inline NORETURN void harness_usage(const harness_opt *own)
{
	fprintf(stderr, "usage: %s [--threads N] [--ops N]", cfg.prog);
	for (; own->name; own++)
		fprintf(stderr, " [%s%s]", own->name, own->value ? " N" : "");
	fputs(" [--conservative] [--sabotage]\n", stderr);
	exit(2);
}

/* Reads the options, the shared ones into cfg and the program's own
 * (own) into its variables. An unknown option, one without its number,
 * or --threads outside 1..MAXT exits 2. */
static inline void harness_args(int argc, char **argv, const harness_opt *own)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const harness_opt *o = own;

		while (o->name && strcmp(a, o->name))
			o++;
		if (o->name && !o->value)
			*o->flag = true;
		else if (o->name && i + 1 < argc)
			*o->value = atol(argv[++i]);
		else if (!strcmp(a, "--threads") && i + 1 < argc)
			cfg.nthreads = atoi(argv[++i]);
		else if (!strcmp(a, "--ops") && i + 1 < argc)
			cfg.ops = atol(argv[++i]);
		else if (!strcmp(a, "--conservative"))
			cfg.conservative = true;
		else if (!strcmp(a, "--sabotage"))
			cfg.sabotage = true;
		else
			harness_usage(own);
	}
	if (cfg.nthreads < 1 || cfg.nthreads > MAXT) {
		fprintf(stderr, "%s: --threads must be 1..%d\n", cfg.prog,
		        MAXT);
		exit(2);
	}
}

/* Async-signal-safe: names the seed and where each mutator was, then
 * exits 99 under --sabotage or dies of the signal. */
static void harness_on_signal(int sig)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s: signal %d (seed %" PRIu64
	                 ", replay with GCHEAP_SEED=%" PRIu64 ")\n", cfg.prog,
	                 sig, cfg.seed, cfg.seed);
	if (write(2, buf, (size_t)n) < 0)
		_exit(98);
	for (int t = 0; t < cfg.nthreads; t++) {
		if (!harness_op[t])
			continue;
		n = snprintf(buf, sizeof(buf), "%s: thread %d was at "
		             "operation %" PRIu64 "\n", cfg.prog, t,
		             *harness_op[t]);
		if (write(2, buf, (size_t)n) < 0)
			_exit(98);
	}
	if (cfg.sabotage)
		_exit(99);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The start of main, once cfg holds the program's name and defaults:
 * the options (harness_args), the seed (GCHEAP_SEED, else the realtime
 * clock), fatal()'s exit code under --sabotage, the crash handlers. */
static inline void harness_start(int argc, char **argv,
                                 const harness_opt *own)
{
	const char *env = getenv("GCHEAP_SEED");
	struct timespec now;

	harness_args(argc, argv, own);
	clock_gettime(CLOCK_REALTIME, &now);
	cfg.seed = env ? strtoull(env, NULL, 0) :
	           (uint64_t)now.tv_sec * 1000003u ^ (uint64_t)now.tv_nsec;
	if (cfg.sabotage)
		sys_fatal_exit_code = 86;
	signal(SIGSEGV, harness_on_signal);
	signal(SIGBUS, harness_on_signal);
	signal(SIGABRT, harness_on_signal);
}

/* Mutator t's generator: a function of the seed and t only. */
static inline test_rng harness_rng(int t)
{
	test_rng r;

	r.s = mix(cfg.seed ^ 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1)) | 1;
	return r;
}

/* The head of a failure report, with stderr locked by the caller:
 * "<prog>: FAILED (seed S, replay with GCHEAP_SEED=S)", then
 * " thread T, operation N" when tid >= 0, then ": <message>\n". */
static inline void harness_vreport(int tid, uint64_t op, const char *fmt,
                                   va_list ap)
{
	fprintf(stderr, "%s: FAILED (seed %" PRIu64 ", replay with "
	        "GCHEAP_SEED=%" PRIu64 ")", cfg.prog, cfg.seed, cfg.seed);
	if (tid >= 0)
		fprintf(stderr, " thread %d, operation %" PRIu64, tid, op);
	fputs(": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* Ends a failure: exit 87 under --sabotage, else abort. */
static inline NORETURN void harness_die(void)
{
	fflush(stderr);
	if (cfg.sabotage)
		_exit(87);
	abort();
}

/* Seconds from t0 to t1. */
static inline double harness_seconds(const struct timespec *t0,
                                     const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) +
	       (double)(t1->tv_nsec - t0->tv_nsec) / 1e9;
}

#endif
