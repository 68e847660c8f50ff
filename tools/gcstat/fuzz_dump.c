/* tools/gcstat/fuzz_dump.c: the fuzz target of the heap dump reader:
 * parse the input, and if it parses, run the analysis that `gcstat dump`
 * runs on it (lookups and dominators) and encode its heap profile as
 * `gcstat profile DUMP` does (format/pprof.c), so that every index and
 * string the reader accepted is used. Built with clang
 * -fsanitize=fuzzer (see docs/tools.md) it is a libFuzzer target;
 * otherwise main() below runs it on each file named on the command line
 * (or stdin), which is how the corpus test in tests/tools runs it: it
 * must never crash, whatever the bytes. */
#include "format/pprof.h"
#include "tools/gcstat/gcstat.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hd_dump d;
	dom_result r;
	char err[256];

#ifdef GCSTAT_LIBFUZZER
	/* Mutated inputs rarely keep a valid checksum: skip it so that the
	 * fuzzer reaches the record checks and the analysis. */
	hd_check_sums = false;
#endif
	if (hd_parse(data, size, &d, err, sizeof(err)))
		return 0;
	if (dom_compute(&d, &r) == 0) {
		uint64_t sum = 0;
		for (size_t i = 0; i < r.nnodes; i++)
			sum += r.retained[i];
		(void)sum;
		dom_free(&r);
	}
	for (size_t i = 0; i < d.nobjects; i++) {
		char nb[64];
		hd_type_name(&d, &d.objects[i], nb, sizeof(nb));
	}
	if (d.has_profile) {
		size_t n;
		free(pprof_encode(&d.prof, &n));
	}
	hd_free(&d);
	return 0;
}

#ifndef GCSTAT_LIBFUZZER
/* Run each file; print "ok NAME: parsed" or "ok NAME: rejected: why". */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			fprintf(stderr, "fuzz_dump: cannot open %s\n", argv[i]);
			return 2;
		}
		uint8_t *buf = NULL;
		size_t n = 0, cap = 0;
		for (;;) {
			if (n == cap) {
				cap = cap ? cap * 2 : 4096;
				uint8_t *b = realloc(buf, cap);
				if (!b)
					return 2;
				buf = b;
			}
			size_t k = fread(buf + n, 1, cap - n, f);
			if (!k)
				break;
			n += k;
		}
		fclose(f);
		/* An exact-size copy, so that ASan sees any overread. */
		uint8_t *exact = malloc(n ? n : 1);
		if (!exact)
			return 2;
		memcpy(exact, buf, n);
		free(buf);
		hd_dump d;
		char err[256];
		int rc = hd_parse(exact, n, &d, err, sizeof(err));
		if (!rc)
			hd_free(&d);
		LLVMFuzzerTestOneInput(exact, n);
		printf("%s: %s%s\n", argv[i], rc ? "rejected: " : "parsed",
		       rc ? err : "");
		free(exact);
	}
	return 0;
}
#endif
