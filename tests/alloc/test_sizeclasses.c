/* tests/alloc/test_sizeclasses.c: checks the generated tables of
 * alloc/sizeclasses.c against the properties the allocator relies on, for
 * every small size: Go 1.19's 68 classes, the smallest fitting class from
 * size_to_class(), object alignment inside a page-aligned span, the waste
 * bounds Go's construction really guarantees, exact division magics, and
 * lookup tables that agree with class_to_size. */
#include "tests/testing.h"

#include "alloc/mspan.h"
#include "alloc/sizeclasses.h"

#define SPAN_BYTES(c) ((uint64_t)class_to_npages[c] * PAGE_SIZE)
/* The span Go's construction gives the class, before the small classes'
 * spans are doubled to SMALL_SPAN_MIN: the waste bounds are its. */
#define GO_SPAN_BYTES(c) ((uint64_t)go_npages[c] * PAGE_SIZE)
#define NUM_CLASS8 (SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1)
#define NUM_CLASS128 ((MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1)

/* Alignment that every object of a request gets whatever its size; above
 * it the grid is too coarse (2560 bytes land in the 2688 = 21 * 128 class,
 * so a 512-divisible request only gets 128-byte alignment). */
#define GUARANTEED_ALIGN_CAP 128

/* Go 1.19's runtime/sizeclasses.go, the reference the generator follows. */
static const uint16_t go_sizes[NUM_SIZE_CLASSES] = {
	0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208,
	224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704,
	768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
	10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760,
	24576, 27264, 28672, 32768,
};
static const uint8_t go_npages[NUM_SIZE_CLASSES] = {
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3,
	4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4,
};

/* Alignment of offset `off` from a page-aligned span start. */
static uint64_t offset_align(uint64_t off)
{
	uint64_t a = off & -off;

	return off == 0 || a > PAGE_SIZE ? PAGE_SIZE : a;
}

/* The smallest class whose objects hold `size` bytes, by linear search. */
static unsigned smallest_fit(size_t size)
{
	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++)
		if (class_to_size[c] >= size)
			return c;
	return NUM_SIZE_CLASSES;
}

START_TEST(test_class_list)
{
	ck_assert_uint_eq(class_to_size[0], 0);
	ck_assert_uint_eq(class_to_npages[0], 0);
	ck_assert_uint_eq(class_to_divmagic[0], 0);
	ck_assert_uint_eq(class_to_size[NUM_SIZE_CLASSES - 1], MAX_SMALL_SIZE);
	ck_assert_uint_eq(class_to_size[TINY_SIZE_CLASS], TINY_SIZE);
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		ck_assert_msg(class_to_size[c] > class_to_size[c - 1],
		              "class %u: size %u not above %u", c,
		              class_to_size[c], class_to_size[c - 1]);
		ck_assert_msg(class_to_size[c] % MIN_ALIGN == 0,
		              "class %u: size %u not a multiple of %d", c,
		              class_to_size[c], MIN_ALIGN);
		/* size_to_class128 rounds requests up to LARGE_SIZE_DIV. */
		if (class_to_size[c] > SMALL_SIZE_MAX)
			ck_assert_msg(class_to_size[c] % LARGE_SIZE_DIV == 0,
			              "class %u: size %u not a multiple of %d",
			              c, class_to_size[c], LARGE_SIZE_DIV);
	}
}
END_TEST

START_TEST(test_matches_go)
{
	for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
		ck_assert_msg(class_to_size[c] == go_sizes[c],
		              "class %u: size %u, Go has %u", c,
		              class_to_size[c], go_sizes[c]);
		unsigned want = go_npages[c];
		if (c && go_sizes[c] <= SMALL_SPAN_OBJ_MAX)
			while (want * PAGE_SIZE < SMALL_SPAN_MIN)
				want *= 2;
		ck_assert_msg(class_to_npages[c] == want,
		              "class %u: %u pages, want %u (Go has %u)", c,
		              class_to_npages[c], want, go_npages[c]);
		ck_assert_msg(c == 0 || SPAN_BYTES(c) / class_to_size[c] <=
		                        MSPAN_MAX_NELEMS,
		              "class %u: over MSPAN_MAX_NELEMS objects", c);
	}
}
END_TEST

/* Every request 1..MAX_SMALL_SIZE gets the smallest class that holds it. */
START_TEST(test_smallest_fit)
{
	for (size_t size = 1; size <= MAX_SMALL_SIZE; size++) {
		unsigned c = size_to_class(size);

		REQUIRE(c >= 1 && c < NUM_SIZE_CLASSES,
		        "size %zu: class %u out of range", size, c);
		REQUIRE(class_to_size[c] >= size,
		        "size %zu: class %u holds only %u", size, c,
		        class_to_size[c]);
		REQUIRE(class_to_size[c - 1] < size,
		        "size %zu: class %u (%u) fits but %u is used",
		        size, c - 1, class_to_size[c - 1], c);
	}
}
END_TEST

/* Each lookup entry is the smallest class for its step's upper bound. */
START_TEST(test_lookup_tables)
{
	for (unsigned i = 0; i < NUM_CLASS8; i++)
		ck_assert_msg(size_to_class8[i] == smallest_fit(i * 8u),
		              "size_to_class8[%u] = %u, want %u", i,
		              size_to_class8[i], smallest_fit(i * 8u));
	for (unsigned i = 0; i < NUM_CLASS128; i++) {
		size_t size = SMALL_SIZE_MAX + (size_t)i * LARGE_SIZE_DIV;

		ck_assert_msg(size_to_class128[i] == smallest_fit(size),
		              "size_to_class128[%u] = %u, want %u", i,
		              size_to_class128[i], smallest_fit(size));
	}
}
END_TEST

/* Objects laid out from a page-aligned span start: the object at index i
 * sits at i * size. Every one of them is aligned to MIN_ALIGN, to the
 * largest power of two dividing the request up to GUARANTEED_ALIGN_CAP, and
 * a power-of-two request gets its own alignment up to a page. */
START_TEST(test_object_alignment)
{
	for (uint64_t req = 1; req <= MAX_SMALL_SIZE; req++) {
		unsigned c = size_to_class(req);
		uint64_t size = class_to_size[c];
		uint64_t n = SPAN_BYTES(c) / size;
		uint64_t want = req & -req;

		if ((req & (req - 1)) == 0)
			want = want > PAGE_SIZE ? PAGE_SIZE : want;
		else if (want > GUARANTEED_ALIGN_CAP)
			want = GUARANTEED_ALIGN_CAP;
		if (want < MIN_ALIGN)
			want = MIN_ALIGN;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t a = offset_align(i * size);

			if (a < want)
				ck_abort_msg("request %" PRIu64 ": object %"
				             PRIu64 " of class %u (%" PRIu64
				             " bytes) aligned to %" PRIu64
				             ", want %" PRIu64, req, i, c,
				             size, a, want);
		}
	}
}
END_TEST

/* Go's heap bitmap assumes 16-byte alignment for objects from 32 bytes. */
START_TEST(test_class_alignment)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
		if (class_to_size[c] >= 32)
			ck_assert_msg(class_to_size[c] % 16 == 0,
			              "class %u: %u bytes not 16-aligned", c,
			              class_to_size[c]);
}
END_TEST

/* Merging and growing classes break a per-request 12.5% round-up (4097
 * bytes get a 4864-byte object, +18.7%), but never its cost in memory:
 * from 128 bytes on, the span of a request's class could not hold one more
 * object even if requests were rounded up by 1/8 only, so the memory per
 * object stays under 9/8 of the request plus the 1/8 tail: below 9/7 r. */
START_TEST(test_roundup_waste)
{
	for (uint64_t req = 128; req <= MAX_SMALL_SIZE; req++) {
		unsigned c = size_to_class(req);
		uint64_t span = GO_SPAN_BYTES(c);
		uint64_t n = span / class_to_size[c];

		REQUIRE(8 * span < 9 * req * (n + 1),
		        "request %" PRIu64 ": class %u packs %" PRIu64
		        " objects, one more would fit at +1/8", req, c, n);
		REQUIRE(7 * span < 9 * req * n,
		        "request %" PRIu64 ": class %u costs %" PRIu64
		        "/%" PRIu64 " bytes per object", req, c, span, n);
	}
}
END_TEST

/* Every span is mostly objects, has no spare page, and its objects are as
 * large as the LARGE_SIZE_DIV grid allows for their number. */
START_TEST(test_span_layout)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint64_t span = SPAN_BYTES(c), size = class_to_size[c];
		uint64_t n = span / size, tail = span - n * size;

		ck_assert_msg(class_to_npages[c] >= 1, "class %u: no pages", c);
		ck_assert_msg(n >= 1, "class %u: span holds no object", c);
		ck_assert_msg(tail * 8 <= span,
		              "class %u: tail %" PRIu64 " over 1/8 of %" PRIu64,
		              c, tail, span);
		ck_assert_msg((n * size + PAGE_SIZE - 1) / PAGE_SIZE ==
		              class_to_npages[c],
		              "class %u: %" PRIu64 " objects need other than %u"
		              " pages", c, n, class_to_npages[c]);
		uint64_t go_span = GO_SPAN_BYTES(c);
		ck_assert_msg((size + LARGE_SIZE_DIV) * (go_span / size) >
		              go_span,
		              "class %u: %" PRIu64 "-byte objects could grow",
		              c, size);
	}
}
END_TEST

/* (offset * magic) >> 32 is offset / size for every offset of the span. */
START_TEST(test_divmagic)
{
	for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
		uint64_t size = class_to_size[c], magic = class_to_divmagic[c];
		uint64_t span = SPAN_BYTES(c);

		ck_assert_msg(magic == (((uint64_t)1 << 32) + size - 1) / size,
		              "class %u: magic %" PRIu64 " is not ceil(2^32/%"
		              PRIu64 ")", c, magic, size);
		for (uint64_t off = 0; off <= span; off++)
			if ((off * magic) >> 32 != off / size)
				ck_abort_msg("class %u: offset %" PRIu64
				             " gives index %" PRIu64 ", want %"
				             PRIu64, c, off,
				             (off * magic) >> 32, off / size);
	}
}
END_TEST

static Suite *sizeclasses_suite(void)
{
	Suite *s = suite_create("sizeclasses");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, test_class_list);
	tcase_add_test(tc, test_matches_go);
	tcase_add_test(tc, test_smallest_fit);
	tcase_add_test(tc, test_lookup_tables);
	tcase_add_test(tc, test_object_alignment);
	tcase_add_test(tc, test_class_alignment);
	tcase_add_test(tc, test_roundup_waste);
	tcase_add_test(tc, test_span_layout);
	tcase_add_test(tc, test_divmagic);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(sizeclasses_suite());
}
