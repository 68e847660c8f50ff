/* alloc/mksizeclasses.c: generates alloc/sizeclasses.c, the size-class tables
 * declared in alloc/sizeclasses.h, with the algorithm of Go 1.19's runtime.
 * A program of its own beside what it generates (as Go's mksizeclasses.go
 * is in its runtime), not part of the library.
 * It owns the class layout: object sizes on a grid that gets coarser at each
 * power of two (so rounding a request up costs at most 1/8 of it before the
 * merges), the fewest pages whose tail waste is at most 1/8 of the span,
 * classes merged when they share page and object counts, sizes grown to
 * fill their span in LARGE_SIZE_DIV steps, and then the spans of the small
 * classes doubled up to SMALL_SPAN_MIN bytes.
 *
 * Nothing is written unless every invariant holds: exactly NUM_SIZE_CLASSES
 * classes, the last MAX_SMALL_SIZE, sizes strictly increasing multiples of
 * MIN_ALIGN (of LARGE_SIZE_DIV above SMALL_SIZE_MAX), tail waste at most 1/8
 * of the span, a 32-bit division magic exact for every span offset, and
 * lookup tables giving the smallest fitting class for every small size.
 *
 * Usage: mksizeclasses [output.c]   (standard output without an argument)
 * It includes alloc/sizeclasses.h for the constants only and links none of
 * the tables it generates. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/sizeclasses.h"

/* The grid of candidate sizes: MIN_ALIGN steps, 16-byte steps from
 * STEP16_FROM (Go's heap bitmap wants 16-byte alignment there), steps of
 * 1/8 of the power of two from STEP_EIGHTH_FROM, and COARSE_STEP steps from
 * COARSE_FROM. Every change happens at a power of two. */
#define STEP16_FROM 32
#define STEP_EIGHTH_FROM 128
#define COARSE_FROM 2048
#define COARSE_STEP 256

/* Tail waste of a span is at most 1/WASTE_DIV of the span. */
#define WASTE_DIV 8

/* Classes of objects up to SMALL_SPAN_OBJ_MAX bytes get spans of at least
 * SMALL_SPAN_MIN bytes (alloc/sizeclasses.h): the pages the waste rule
 * picked, doubled (so the tail stays within 1/WASTE_DIV, and the sizes
 * stay those of the smaller spans). A span's fixed costs (its refill into
 * a thread cache, its trip through the central lock, its sweep, the misses
 * on its header) are then paid once per 32 KiB of small objects instead of
 * once per 8 (mimalloc's pages are 64 KiB): 20% off the allocation
 * benchmark's time, and less RSS in the heap-growth one
 * (docs/benchmarks.md). */

#define MAX_CANDIDATES (MAX_SMALL_SIZE / MIN_ALIGN + 1)
#define NUM_CLASS8 (SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1)
#define NUM_CLASS128 ((MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1)

struct size_class {
	uint32_t size;   /* bytes per object; 0 for the dummy class 0 */
	uint32_t npages; /* pages per span */
	uint32_t magic;  /* ceil(2^32 / size); 0 for class 0 */
};

static struct size_class classes[MAX_CANDIDATES];
static unsigned nclasses;
static uint8_t class8[NUM_CLASS8];
static uint8_t class128[NUM_CLASS128];

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("mksizeclasses: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

static int is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static uint32_t span_bytes(const struct size_class *c)
{
	return c->npages * (uint32_t)PAGE_SIZE;
}

static uint32_t span_objects(const struct size_class *c)
{
	return span_bytes(c) / c->size;
}

static uint32_t span_tail(const struct size_class *c)
{
	return span_bytes(c) - span_objects(c) * c->size;
}

/* The step between candidate sizes from `size` on, given the step so far. */
static uint32_t grid_step(uint32_t size, uint32_t step)
{
	if (!is_pow2(size))
		return step;
	if (size >= COARSE_FROM)
		return COARSE_STEP;
	if (size >= STEP_EIGHTH_FROM)
		return size / 8;
	if (size >= STEP16_FROM)
		return 16;
	return step;
}

/* The fewest pages whose leftover after packing `size` objects is at most
 * 1/WASTE_DIV of the span. */
static uint32_t pages_for(uint32_t size)
{
	uint32_t bytes = PAGE_SIZE;

	while (bytes % size > bytes / WASTE_DIV)
		bytes += PAGE_SIZE;
	return bytes / PAGE_SIZE;
}

static void build_classes(void)
{
	uint32_t step = MIN_ALIGN;

	memset(classes, 0, sizeof(classes));
	nclasses = 1; /* class 0 stays the all-zero dummy */
	for (uint32_t size = step; size <= MAX_SMALL_SIZE; size += step) {
		step = grid_step(size, step);
		if (!is_pow2(step))
			fail("grid step %u at size %u is not a power of two",
			     (unsigned)step, (unsigned)size);

		uint32_t npages = pages_for(size);
		uint32_t bytes = npages * (uint32_t)PAGE_SIZE;
		struct size_class *last = &classes[nclasses - 1];

		/* Same span, same number of objects: the larger size costs
		 * nothing more, so it replaces the previous class. */
		if (nclasses > 1 && last->npages == npages &&
		    bytes / last->size == bytes / size) {
			last->size = size;
			continue;
		}
		if (nclasses == MAX_CANDIDATES)
			fail("too many candidate classes");
		classes[nclasses].size = size;
		classes[nclasses].npages = npages;
		nclasses++;
	}

	/* Grow each size to the largest LARGE_SIZE_DIV multiple that still
	 * packs the same number of objects into the span: the tail shrinks
	 * and the class serves more requests for free. */
	for (unsigned i = 1; i < nclasses; i++) {
		struct size_class *c = &classes[i];
		uint32_t grown = span_bytes(c) / span_objects(c);

		grown &= ~(uint32_t)(LARGE_SIZE_DIV - 1);
		if (grown > c->size)
			c->size = grown;
	}

	for (unsigned i = 1; i < nclasses; i++) {
		struct size_class *c = &classes[i];
		if (c->size <= SMALL_SPAN_OBJ_MAX)
			while (span_bytes(c) < SMALL_SPAN_MIN)
				c->npages *= 2;
	}
}

/* The magic for dividing span offsets by c->size with one 32x32->64
 * multiply, checked against true division for every offset of the span. */
static void compute_magic(struct size_class *c)
{
	uint64_t ceil_magic;
	uint32_t max = span_bytes(c);

	c->magic = UINT32_MAX / c->size + 1;
	ceil_magic = (((uint64_t)1 << 32) + c->size - 1) / c->size;
	if (c->magic != ceil_magic)
		fail("size %u: magic %u is not ceil(2^32/size)",
		     (unsigned)c->size, (unsigned)c->magic);
	for (uint64_t off = 0; off <= max; off++) {
		uint32_t q = (uint32_t)((off * c->magic) >> 32);

		if (q != off / c->size)
			fail("size %u: magic %u gives %u for offset %u, "
			     "want %u", (unsigned)c->size, (unsigned)c->magic,
			     (unsigned)q, (unsigned)off,
			     (unsigned)(off / c->size));
	}
}

static void check_classes(void)
{
	if (nclasses != NUM_SIZE_CLASSES)
		fail("%u size classes, alloc/sizeclasses.h says %d",
		     nclasses, NUM_SIZE_CLASSES);
	if (classes[nclasses - 1].size != MAX_SMALL_SIZE)
		fail("last class is %u bytes, want MAX_SMALL_SIZE %d",
		     (unsigned)classes[nclasses - 1].size, MAX_SMALL_SIZE);
	if (classes[TINY_SIZE_CLASS].size != TINY_SIZE)
		fail("class TINY_SIZE_CLASS %d is %u bytes, want %d",
		     TINY_SIZE_CLASS, (unsigned)classes[TINY_SIZE_CLASS].size,
		     TINY_SIZE);
	for (unsigned i = 1; i < nclasses; i++) {
		struct size_class *c = &classes[i];
		uint32_t tail;

		if (c->size <= classes[i - 1].size)
			fail("class %u: size %u not above class %u's %u", i,
			     (unsigned)c->size, i - 1,
			     (unsigned)classes[i - 1].size);
		if (c->size % MIN_ALIGN != 0 || c->size % SMALL_SIZE_DIV != 0)
			fail("class %u: size %u not a multiple of %d", i,
			     (unsigned)c->size, MIN_ALIGN);
		if (c->size > SMALL_SIZE_MAX && c->size % LARGE_SIZE_DIV != 0)
			fail("class %u: size %u above %d not a multiple of %d",
			     i, (unsigned)c->size, SMALL_SIZE_MAX,
			     LARGE_SIZE_DIV);
		if (c->size > UINT16_MAX || c->npages == 0 ||
		    c->npages > UINT8_MAX)
			fail("class %u: size %u or %u pages overflow the "
			     "tables", i, (unsigned)c->size,
			     (unsigned)c->npages);
		if (span_objects(c) == 0)
			fail("class %u: a %u-page span holds no %u-byte object",
			     i, (unsigned)c->npages, (unsigned)c->size);
		tail = span_tail(c);
		if ((uint64_t)tail * WASTE_DIV > span_bytes(c))
			fail("class %u: tail waste %u over 1/%d of %u bytes", i,
			     (unsigned)tail, WASTE_DIV,
			     (unsigned)span_bytes(c));
		compute_magic(c);
	}
}

/* The smallest class whose objects hold `size` bytes (class 0 for 0). */
static unsigned smallest_class(uint32_t size)
{
	for (unsigned i = 0; i < nclasses; i++)
		if (classes[i].size >= size)
			return i;
	fail("no class holds %u bytes", (unsigned)size);
	return 0;
}

/* Build the lookup tables, then replay the lookup of size_to_class() in
 * alloc/sizeclasses.h for every small size against a linear search. */
static void build_lookup(void)
{
	for (unsigned i = 0; i < NUM_CLASS8; i++)
		class8[i] = (uint8_t)smallest_class(i * SMALL_SIZE_DIV);
	for (unsigned i = 0; i < NUM_CLASS128; i++)
		class128[i] = (uint8_t)smallest_class(SMALL_SIZE_MAX +
		                                      i * LARGE_SIZE_DIV);
	for (uint32_t size = 1; size <= MAX_SMALL_SIZE; size++) {
		unsigned got;

		if (size <= SMALL_SIZE_MAX - 8)
			got = class8[(size + SMALL_SIZE_DIV - 1) /
			             SMALL_SIZE_DIV];
		else
			got = class128[(size - SMALL_SIZE_MAX +
			                LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
		if (got != smallest_class(size))
			fail("lookup of %u bytes gives class %u, want %u",
			     (unsigned)size, got, smallest_class(size));
	}
}

/* value * 10000 / total rounded to nearest (ties up): hundredths of a
 * percent, in integers so that the output is the same everywhere. */
static unsigned long hundredths(uint64_t value, uint64_t total)
{
	return (unsigned long)((value * 20000 + total) / (2 * total));
}

static void print_comment(FILE *out)
{
	uint32_t prev = 0;

	fputs("/* alloc/sizeclasses.c: generated by alloc/mksizeclasses.c; "
	      "DO NOT EDIT.\n"
	      " * Regenerate with `mksizeclasses alloc/sizeclasses.c`; the "
	      "sizeclasses-regen\n"
	      " * test fails when this file and the generator disagree.\n"
	      " *\n"
	      " * The size-class tables declared in alloc/sizeclasses.h. "
	      "Tail waste is what a\n"
	      " * span leaves after its last object; max waste is the "
	      "share of a span lost\n"
	      " * when every object holds the smallest request of its "
	      "class.\n"
	      " *\n", out);
	fprintf(out, " * %-5s  %-9s  %-10s  %-7s  %-10s  %-9s\n", "class",
	        "bytes/obj", "bytes/span", "objects", "tail waste",
	        "max waste");
	for (unsigned i = 1; i < nclasses; i++) {
		const struct size_class *c = &classes[i];
		uint32_t bytes = span_bytes(c), n = span_objects(c);
		uint32_t tail = span_tail(c);
		uint64_t worst = (uint64_t)(c->size - prev - 1) * n + tail;
		unsigned long w = hundredths(worst, bytes);

		fprintf(out, " * %5u  %9u  %10u  %7u  %10u  %5lu.%02lu%%\n",
		        i, (unsigned)c->size, (unsigned)bytes, (unsigned)n,
		        (unsigned)tail, w / 100, w % 100);
		prev = c->size;
	}
	fputs(" */\n", out);
}

/* `decl = {` then the values, wrapped under 80 columns, then `};`. */
static void print_array(FILE *out, const char *decl, const uint32_t *v,
                        unsigned n)
{
	unsigned col = 0;

	fprintf(out, "\n%s = {\n", decl);
	for (unsigned i = 0; i < n; i++) {
		char item[16];
		int len = snprintf(item, sizeof(item), "%u,", (unsigned)v[i]);

		if (col != 0 && col + 1 + (unsigned)len > 79) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0) {
			fputc('\t', out);
			col = 8;
		} else {
			fputc(' ', out);
			col++;
		}
		fputs(item, out);
		col += (unsigned)len;
	}
	fputs("\n};\n", out);
}

static void print_tables(FILE *out)
{
	uint32_t v[MAX_CANDIDATES];

	fputs("\n#include \"alloc/sizeclasses.h\"\n", out);
	for (unsigned i = 0; i < nclasses; i++)
		v[i] = classes[i].size;
	print_array(out, "const uint16_t class_to_size[NUM_SIZE_CLASSES]", v,
	            nclasses);
	for (unsigned i = 0; i < nclasses; i++)
		v[i] = classes[i].npages;
	print_array(out, "const uint8_t class_to_npages[NUM_SIZE_CLASSES]", v,
	            nclasses);
	for (unsigned i = 0; i < nclasses; i++)
		v[i] = classes[i].magic;
	print_array(out, "const uint32_t class_to_divmagic[NUM_SIZE_CLASSES]",
	            v, nclasses);
	for (unsigned i = 0; i < NUM_CLASS8; i++)
		v[i] = class8[i];
	print_array(out, "const uint8_t size_to_class8"
	            "[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]", v, NUM_CLASS8);
	for (unsigned i = 0; i < NUM_CLASS128; i++)
		v[i] = class128[i];
	print_array(out, "const uint8_t size_to_class128[\n"
	            "\t(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1]",
	            v, NUM_CLASS128);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	FILE *out = stdout;

	if (argc > 2) {
		fprintf(stderr, "usage: mksizeclasses [output.c]\n");
		return 2;
	}
	build_classes();
	check_classes();
	build_lookup();

	if (path && !(out = fopen(path, "w")))
		fail("%s: %s", path, strerror(errno));
	print_comment(out);
	print_tables(out);
	if (fflush(out) != 0 || ferror(out))
		fail("%s: write error", path ? path : "stdout");
	if (path && fclose(out) != 0)
		fail("%s: %s", path, strerror(errno));
	return EXIT_SUCCESS;
}
