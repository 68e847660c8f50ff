/* tests/alloc/test_gctype.c: tests pointer maps (alloc/gctype.c):
 * gctype_make and gctype_from_offsets reject every malformed map with
 * GCHEAP_ERR_TYPE and a one-line message and accept good ones with the
 * right fields; gctype_word_is_ptr and small_bits agree with an
 * independent model for all three tail rules; and the typed pointer-slot
 * iterator yields exactly the model's slots for objects of 1..2000 words. */
#include "tests/testing.h"

#include "alloc/alloc.h"

#include <string.h>

#define MAX_WORDS 4096
#define BM_WORDS (MAX_WORDS / 64 + 1)

static bool bit(const uint64_t *bm, size_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void set_bit(uint64_t *bm, size_t i)
{
	bm[i / 64] |= (uint64_t)1 << (i % 64);
}

/* ---- Rejections --------------------------------------------------------- */

static char err[256];
static gc_status st;

/* The call returned NULL with GCHEAP_ERR_TYPE and a one-line message that
 * names the type and contains `why` (the reason, or the bad offset). */
static void check_rejected_why(const gc_type *t, const char *name,
                               const char *what, const char *why)
{
	ck_assert_msg(t == NULL, "%s: accepted", what);
	ck_assert_msg(st == GCHEAP_ERR_TYPE, "%s: status %d", what, (int)st);
	ck_assert_msg(err[0] != '\0', "%s: no message", what);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: message has a newline",
	              what);
	ck_assert_msg(strstr(err, name) != NULL, "%s: message '%s' does not "
	              "name '%s'", what, err, name);
	ck_assert_msg(strstr(err, why) != NULL, "%s: message '%s' does not "
	              "say '%s'", what, err, why);
}

#define check_rejected(t, name, what) check_rejected_why(t, name, what, "")

static gc_type *make(const char *name, size_t size, const uint64_t *bm,
                     unsigned flags)
{
	err[0] = '\0';
	st = GCHEAP_OK;
	return gctype_make(name, size, bm, flags, &st, err, sizeof err);
}

static gc_type *from_offs(const char *name, size_t size, const size_t *o,
                          size_t n, unsigned flags)
{
	err[0] = '\0';
	st = GCHEAP_OK;
	return gctype_from_offsets(name, size, o, n, flags, &st, err,
	                           sizeof err);
}

START_TEST(test_reject_bitmap)
{
	uint64_t bm[4] = {0};

	check_rejected_why(make("zero", 0, NULL, 0), "zero", "size 0",
	                   "size 0");
	check_rejected(make("zero2", 0, bm, GCHEAP_TAIL_NOSCAN), "zero2",
	               "size 0 with a map");
	check_rejected(make("big", GCHEAP_MAX_TYPE_SIZE + 1, NULL, 0), "big",
	               "size over the limit");
	check_rejected(make("huge", SIZE_MAX, NULL, 0), "huge", "SIZE_MAX");
	static const unsigned badflags[] = {3, 4, 8, 0x100, 0x80000000u,
	                                    ~0u};
	for (unsigned i = 0; i < ARRAY_LEN(badflags); i++)
		check_rejected_why(make("flags", 16, NULL, badflags[i]),
		                   "flags", "unknown flags", "flags");
	check_rejected(make(NULL, 0, NULL, 0), "(anonymous)", "no name");

	/* Bits for words not wholly inside size. */
	static const struct {
		size_t size, w;
	} past[] = {{16, 2}, {20, 2}, {4, 0}, {7, 0}, {8, 1}, {8, 63},
	            {100, 12}, {516, 64}, {600, 75}, {1000, 125},
	            {1020, 127}};
	for (unsigned i = 0; i < ARRAY_LEN(past); i++) {
		memset(bm, 0, sizeof bm);
		if (past[i].size >= 8)
			set_bit(bm, 0);
		set_bit(bm, past[i].w);
		char why[32];
		snprintf(why, sizeof why, "word %zu ", past[i].w);
		for (unsigned f = 0; f < 3; f++)
			check_rejected_why(make("past", past[i].size, bm, f),
			                   "past", "bit past size", why);
	}
	/* A repeating map needs a whole number of words. */
	memset(bm, 0, sizeof bm);
	set_bit(bm, 1);
	check_rejected(make("rep", 20, bm, GCHEAP_TAIL_REPEAT), "rep",
	               "REPEAT of 20 bytes");
	check_rejected(make("rep", 17, bm, GCHEAP_TAIL_REPEAT), "rep",
	               "REPEAT of 17 bytes");
	check_rejected(make("rep", 199, bm, GCHEAP_TAIL_REPEAT), "rep",
	               "REPEAT of 199 bytes");
}
END_TEST

START_TEST(test_reject_offsets)
{
	static const size_t one[] = {8};

	check_rejected_why(from_offs("nul", 32, NULL, 1, 0), "nul",
	                   "NULL offsets", "NULL");
	check_rejected(from_offs("nul", 32, NULL, 3, GCHEAP_TAIL_NOSCAN),
	               "nul", "NULL offsets, 3");
	check_rejected(from_offs("zero", 0, one, 1, 0), "zero", "size 0");
	check_rejected(from_offs("zero", 0, NULL, 0, 0), "zero",
	               "size 0, no offsets");
	check_rejected(from_offs("big", GCHEAP_MAX_TYPE_SIZE + 8, one, 1, 0),
	               "big", "size over the limit");
	check_rejected(from_offs("flags", 32, one, 1, 3), "flags",
	               "unknown flags");
	check_rejected(from_offs("flags", 32, NULL, 0, 7), "flags",
	               "unknown flags, no offsets");

	static const struct {
		size_t size, n, offs[4];
		unsigned flags;
		const char *what;
	} bad[] = {
		{32, 1, {4}, 0, "unaligned"},
		{32, 2, {0, 9}, 1, "unaligned second"},
		{32, 1, {1}, 2, "unaligned by 1"},
		{32, 1, {32}, 0, "at the end"},
		{32, 1, {40}, 1, "past the end"},
		{32, 1, {SIZE_MAX - 7}, 2, "far past the end"},
		{20, 1, {16}, 1, "word not wholly inside"},
		{7, 1, {0}, 2, "word not wholly inside 7 bytes"},
		{32, 2, {8, 8}, 0, "duplicate"},
		{32, 3, {0, 16, 0}, 1, "duplicate, apart"},
		{4096, 4, {4088, 0, 2048, 4088}, 2, "duplicate, last"},
		{20, 1, {0}, 0, "REPEAT of 20 bytes"},
		{44, 2, {8, 32}, 0, "REPEAT of 44 bytes"},
	};
	for (unsigned i = 0; i < ARRAY_LEN(bad); i++) {
		/* The message names the offending offset, or the size. */
		char why[48];
		size_t last = bad[i].offs[bad[i].n - 1];
		if (strstr(bad[i].what, "REPEAT"))
			snprintf(why, sizeof why, "size %zu", bad[i].size);
		else if (strstr(bad[i].what, "duplicate, apart"))
			snprintf(why, sizeof why, "offset 0 ");
		else
			snprintf(why, sizeof why, "offset %zu ", last);
		check_rejected_why(from_offs("bad", bad[i].size, bad[i].offs,
		                             bad[i].n, bad[i].flags),
		                   "bad", bad[i].what, why);
	}
}
END_TEST

/* ---- Acceptance --------------------------------------------------------- */

/* A map as the test knows it: its size, pointer words, tail rule. */
typedef struct model {
	size_t size;
	const uint64_t *bm;
	unsigned tail;
	size_t nptrs;
} model;

/* Is word w of an object laid out as m a pointer slot? */
static bool model_ptr(const model *m, size_t w)
{
	size_t nwords = m->size / 8;

	if (w < nwords)
		return bit(m->bm, w);
	switch (m->tail) {
	case GCHEAP_TAIL_REPEAT:
		return m->nptrs && bit(m->bm, w % nwords);
	case GCHEAP_TAIL_POINTERS:
		return w * 8 >= m->size;
	default:
		return false;
	}
}

/* t has the fields a map (size, bm, tail) must give. */
static void check_fields(const gc_type *t, const char *name, size_t size,
                         const uint64_t *bm, unsigned tail)
{
	size_t nwords = size / 8, nptrs = 0;

	ck_assert_ptr_nonnull(t);
	ck_assert(gctype_valid(t));
	ck_assert_uint_eq(t->magic, GCTYPE_MAGIC);
	ck_assert_uint_eq(t->size, size);
	ck_assert_uint_eq(t->nwords, nwords);
	ck_assert_uint_eq(t->tail, tail);
	for (size_t w = 0; w < nwords; w++) {
		REQUIRE(bit(t->bits, w) == bit(bm, w), "bit %zu differs", w);
		nptrs += bit(bm, w);
	}
	/* Bits past nwords in the last map word are clear. */
	if (nwords % 64)
		ck_assert_uint_eq(t->bits[nwords / 64] >> (nwords % 64), 0);
	if (nwords == 0)
		ck_assert_uint_eq(t->bits[0], 0);
	ck_assert_uint_eq(t->nptrs, nptrs);
	ck_assert_int_eq(t->noscan, nptrs == 0 &&
	                            tail != GCHEAP_TAIL_POINTERS);
	ck_assert_ptr_nonnull(t->name);
	ck_assert_str_eq(t->name, name ? name : "(anonymous)");
	ck_assert_ptr_ne(t->name, name);
}

START_TEST(test_accept)
{
	uint64_t bm[BM_WORDS] = {0};
	char name[32] = "point";

	/* No pointers, every tail, byte sizes. */
	for (unsigned f = 0; f < 3; f++) {
		for (size_t size = 1; size <= 130; size++) {
			gc_type *t = make(name, size, f ? NULL : bm, f);
			ck_assert_msg(t != NULL, "size %zu flags %u: %s", size,
			              f, err);
			ck_assert_int_eq(st, GCHEAP_OK);
			check_fields(t, name, size, bm, f);
			ck_assert_ptr_eq(gctype_all(), t);
		}
	}
	/* The name is copied. */
	gc_type *t = make(name, 24, NULL, GCHEAP_TAIL_NOSCAN);
	strcpy(name, "changed");
	ck_assert_str_eq(t->name, "point");
	t = make(NULL, 24, NULL, 0);
	check_fields(t, NULL, 24, bm, 0);
	/* Largest size, a pointer in the last whole word. */
	static const size_t offs[] = {GCHEAP_MAX_TYPE_SIZE - 8, 0};
	t = from_offs("max", GCHEAP_MAX_TYPE_SIZE, offs, 2,
	              GCHEAP_TAIL_REPEAT);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(t->nptrs, 2);
	ck_assert(gctype_word_is_ptr(t, GCHEAP_MAX_TYPE_SIZE / 8 - 1));
	ck_assert(gctype_word_is_ptr(t, GCHEAP_MAX_TYPE_SIZE / 8));
	ck_assert(!gctype_word_is_ptr(t, 1));
	/* Offsets at the last whole word of an odd size; REPEAT without
	 * pointers of an odd size. */
	static const size_t last[] = {16, 8};
	t = from_offs("odd", 31, last, 2, GCHEAP_TAIL_POINTERS);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(t->small_bits, ~(uint64_t)0 << 4 | 6);
	t = from_offs("odd", 31, NULL, 0, GCHEAP_TAIL_REPEAT);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert(t->noscan);
	ck_assert_uint_eq(t->small_bits, 0);
	/* POINTERS with an empty map is not noscan. */
	t = from_offs("tailptrs", 12, NULL, 0, GCHEAP_TAIL_POINTERS);
	ck_assert(!t->noscan);
	ck_assert_uint_eq(t->small_bits, ~(uint64_t)0 << 2);
}
END_TEST

/* The span class kept in each type (the allocation fast path's, for
 * requests of the type's own size) is the one its size maps to, scan or
 * noscan as the type is; 0 past the small sizes. */
START_TEST(test_span_class)
{
	static const size_t offs[] = {0};

	for (size_t size = 1; size <= MAX_SMALL_SIZE + 4096;
	     size += size < 1024 ? 1 : 61) {
		gc_type *t = from_offs("sc", size, size >= 8 ? offs : NULL,
		                       size >= 8, GCHEAP_TAIL_NOSCAN);
		ck_assert_msg(t != NULL, "size %zu: %s", size, err);
		ck_assert(t->noscan == (size < 8));
		spanclass want = size <= MAX_SMALL_SIZE ?
		                 make_spanclass(size_to_class(size),
		                                t->noscan) : 0;
		ck_assert_msg(t->spc == want, "size %zu: span class %u, "
		              "want %u", size, t->spc, want);
	}
}
END_TEST

/* Sizes of a whole number of 512-byte map words plus a partial word:
 * gctype_make reads (size + 511) / 512 map words (the documented bitmap
 * length), so gctype_from_offsets must build a map that long. */
START_TEST(test_offsets_partial_last_word)
{
	static const size_t zero[] = {0};

	for (size_t k = 1; k <= 24; k++) {
		for (size_t r = 1; r < 8; r++) {
			size_t size = 512 * k + r;
			for (unsigned f = 1; f < 3; f++) {
				gc_type *t = from_offs("tail", size, NULL, 0,
				                       f);
				ck_assert_msg(t != NULL, "size %zu, no offsets,"
				              " flags %u: %s", size, f, err);
				t = from_offs("tail", size, zero, 1, f);
				ck_assert_msg(t != NULL, "size %zu, offset 0, "
				              "flags %u: %s", size, f, err);
				ck_assert_uint_eq(t->nptrs, 1);
			}
		}
	}
}
END_TEST

/* A random map; REPEAT maps with pointers get a whole number of words. */
static size_t random_map(test_rng *r, uint64_t *bm, unsigned *tail,
                         size_t maxsize, size_t *offs, size_t *n)
{
	size_t size = 1 + rng_below(r, maxsize);
	static const unsigned dens[] = {0, 1, 8, 32, 60, 64};
	unsigned d = dens[rng_below(r, ARRAY_LEN(dens))];

	*tail = (unsigned)rng_below(r, 3);
	if (*tail == GCHEAP_TAIL_REPEAT && d && size >= 8)
		size &= ~(size_t)7;
	else if (*tail == GCHEAP_TAIL_REPEAT)
		d = 0;
	memset(bm, 0, BM_WORDS * sizeof(uint64_t));
	*n = 0;
	for (size_t w = 0; w < size / 8; w++)
		if (rng_below(r, 64) < d) {
			set_bit(bm, w);
			offs[(*n)++] = w * 8;
		}
	/* Offsets in any order. */
	for (size_t i = *n; i > 1; i--) {
		size_t j = rng_below(r, i), x = offs[i - 1];
		offs[i - 1] = offs[j];
		offs[j] = x;
	}
	return size;
}

START_TEST(test_random_maps)
{
	test_rng r = rng_make(40);
	static uint64_t bm[BM_WORDS];
	static size_t offs[MAX_WORDS];

	for (int iter = 0; iter < 3000; iter++) {
		unsigned tail;
		size_t n;
		size_t maxsize = iter % 2 ? 64 * 8 + 16 : MAX_WORDS * 8;
		size_t size = random_map(&r, bm, &tail, maxsize, offs, &n);
		gc_type *t = iter % 3 ? from_offs("rnd", size, offs, n, tail)
		                      : make("rnd", size, bm, tail);
		ck_assert_msg(t != NULL, "size %zu tail %u: %s", size, tail,
		              err);
		check_fields(t, "rnd", size, bm, tail);
		model m = {size, bm, tail, n};
		for (size_t w = 0; w < 128; w++)
			REQUIRE(((w < 64 ? t->small_bits : t->small_hi) >>
			       (w % 64) & 1) == model_ptr(&m, w),
			        "size %zu tail %u: small_bits/hi word %zu",
			        size, tail, w);
		for (size_t w = 0; w < 3 * t->nwords + 130; w++)
			REQUIRE(gctype_word_is_ptr(t, w) == model_ptr(&m, w),
			        "size %zu tail %u: word %zu", size, tail, w);
	}
}
END_TEST

/* ---- The typed iterator ------------------------------------------------- */

START_TEST(test_ptriter_typed)
{
	test_rng r = rng_make(41);
	static uint64_t bm[BM_WORDS];
	static size_t offs[MAX_WORDS];
	const uintptr_t obj = (uintptr_t)1 << 40;

	for (int iter = 0; iter < 4000; iter++) {
		unsigned tail;
		size_t n;
		size_t words = 1 + rng_below(&r, 2000);
		size_t nbytes = words * 8 + (rng_below(&r, 4) ? 0 :
		                              rng_below(&r, 8));
		/* Short types repeat or trail many times: maps of up to 25
		 * words, and of up to 70 (either side of the 64 words that
		 * typed_bits takes a repeated map's windows from). */
		size_t shortmax = rng_below(&r, 2) ? 200 : 560;
		size_t maxsize = rng_below(&r, 2) ? MIN(nbytes, shortmax)
		                                  : nbytes;
		size_t size = random_map(&r, bm, &tail, maxsize, offs, &n);
		gc_type *t = make("it", size, bm, tail);
		ck_assert_msg(t != NULL, "%s", err);
		model m = {size, bm, tail, n};

		ptriter it;
		uintptr_t *slot;
		size_t w = 0;
		ptriter_init_typed(&it, obj, nbytes, t);
		while ((slot = ptriter_next(&it)) != NULL) {
			uintptr_t a = (uintptr_t)slot;
			REQUIRE(a >= obj + w * 8 && a < obj + words * 8 &&
			        a % 8 == 0, "iter %d: slot %p out of order or "
			        "outside %zu words", iter, (void *)slot, words);
			size_t sw = (a - obj) / 8;
			for (; w < sw; w++)
				REQUIRE(!model_ptr(&m, w),
				        "iter %d (size %zu tail %u, %zu "
				        "words): pointer word %zu skipped",
				        iter, size, tail, words, w);
			REQUIRE(model_ptr(&m, sw),
			        "iter %d (size %zu tail %u, %zu words): word "
			        "%zu is no pointer", iter, size, tail, words,
			        sw);
			w = sw + 1;
		}
		for (; w < words; w++)
			REQUIRE(!model_ptr(&m, w),
			        "iter %d (size %zu tail %u, %zu words): "
			        "pointer word %zu missed at the end", iter,
			        size, tail, words, w);
		REQUIRE(ptriter_next(&it) == NULL, "iterator restarted");
	}
	/* No type, or no bytes: nothing. */
	ptriter it;
	ptriter_init_typed(&it, obj, 0, NULL);
	ck_assert_ptr_null(ptriter_next(&it));
	gc_type *t = from_offs("p", 8, (const size_t[]){0}, 1, 0);
	ptriter_init_typed(&it, obj, 7, t);
	ck_assert_ptr_null(ptriter_next(&it));
	ptriter_init_typed(&it, obj, 16, t);
	ck_assert_uint_eq((uintptr_t)ptriter_next(&it), obj);
	ck_assert_uint_eq((uintptr_t)ptriter_next(&it), obj + 8);
	ck_assert_ptr_null(ptriter_next(&it));
}
END_TEST

static Suite *gctype_suite(void)
{
	Suite *s = suite_create("gctype");
	TCase *tc = tcase_create("make");

	tcase_add_test(tc, test_reject_bitmap);
	tcase_add_test(tc, test_reject_offsets);
	tcase_add_test(tc, test_accept);
	tcase_add_test(tc, test_span_class);
	tcase_add_test(tc, test_offsets_partial_last_word);
	tcase_add_test(tc, test_random_maps);
	suite_add_tcase(s, tc);

	tc = tcase_create("iter");
	tcase_add_test(tc, test_ptriter_typed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_main(gctype_suite());
}
