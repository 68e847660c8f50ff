/* tests/alloc/test_addrset.c: the address set (alloc/sys/addrset.h)
 * against a reference: 200,000 random adds, finds and removes over a
 * small key space (so that tombstones pile up and probe paths cross
 * them) with a payload per entry, checking membership, payloads, the
 * live count and that every live slot is exactly a member; then growth
 * from empty through many doublings keeps every key and payload; and a
 * set whose entries come and go keeps its size, and shrinks when most
 * of its entries are gone; and the rehash is spread over the calls that
 * follow it, every key found meanwhile. */
#include "alloc/sys/addrset.h"
#include "alloc/sys/base.h"
#include "tests/testing.h"

#include <stdlib.h>
#include <string.h>

#define NKEYS 3000

static uintptr_t key_of(size_t k)
{
	return 0x7f0000000000u + (uintptr_t)k * 48; /* object-like */
}

START_TEST(test_against_reference)
{
	test_rng r = rng_make(3);
	addrset s = {.vsize = sizeof(uint64_t)};
	static bool in[NKEYS];
	static uint64_t val[NKEYS];
	size_t n = 0;

	memset(in, 0, sizeof(in));
	for (int op = 0; op < 200000; op++) {
		size_t k = rng_below(&r, NKEYS);
		uintptr_t key = key_of(k);
		size_t i = addrset_find(&s, key);
		REQUIRE((i != SIZE_MAX) == in[k], "op %d: key %zu %s", op, k,
		        in[k] ? "lost" : "found, never added");
		REQUIRE(!in[k] || *(uint64_t *)addrset_val(&s, i) == val[k],
		        "op %d: key %zu's value changed", op, k);
		switch (rng_below(&r, 3)) {
		case 0: { /* add */
			bool added;
			i = addrset_add(&s, key, &added);
			REQUIRE(i != SIZE_MAX && added == !in[k],
			        "op %d: add of key %zu: %zu, added %d", op, k,
			        i, (int)added);
			if (added) {
				REQUIRE(*(uint64_t *)addrset_val(&s, i) == 0,
				        "op %d: key %zu's new value is not "
				        "zero", op, k);
				val[k] = rng_next(&r);
				*(uint64_t *)addrset_val(&s, i) = val[k];
				in[k] = true;
				n++;
			}
			break;
		}
		case 1: /* remove */
			if (in[k]) {
				addrset_remove_at(&s, i);
				in[k] = false;
				n--;
			}
			break;
		default:
			break;
		}
		REQUIRE(s.n == n, "op %d: %zu keys, the reference has %zu",
		        op, s.n, n);
		REQUIRE(s.used * 2 <= s.cap, "op %d: %zu of %zu slots used",
		        op, s.used, s.cap);
	}
	size_t live = 0;
	addrset_settle(&s); /* a walk of keys[] must */
	for (size_t i = 0; i < s.cap; i++) {
		if (!addrset_live(&s, i))
			continue;
		uintptr_t key = aload(&s.keys[i]);
		size_t k = (key - key_of(0)) / 48;
		ck_assert(k < NKEYS && key == key_of(k) && in[k]);
		live++;
	}
	ck_assert_uint_eq(live, n);
	addrset_free(&s);
}
END_TEST

START_TEST(test_growth_keeps_everything)
{
	addrset s = {.vsize = 0};
	bool added;

	ck_assert_uint_eq(addrset_find(&s, key_of(1)), SIZE_MAX);
	for (size_t k = 0; k < 100000; k++)
		ck_assert_uint_ne(addrset_add(&s, key_of(k), &added),
		                  SIZE_MAX);
	ck_assert_uint_eq(s.n, 100000);
	for (size_t k = 0; k < 100000; k++)
		ck_assert_uint_ne(addrset_find(&s, key_of(k)), SIZE_MAX);
	ck_assert_uint_eq(addrset_find(&s, key_of(100000)), SIZE_MAX);
	ck_assert_ptr_null(s.vals);
	addrset_free(&s);
}
END_TEST

/* Entries that come and go, a thousand live at a time, for 300,000
 * adds: the table stays sized for the live entries (it doubled at every
 * rehash when tombstones counted as entries: a leak as long as the
 * program ran). Then most of a large set removed: the next rehash
 * shrinks it. */
START_TEST(test_churn_keeps_size)
{
	addrset s = {.vsize = sizeof(uintptr_t)};
	bool added;
	size_t maxcap = 0;

	for (size_t k = 0; k < 300000; k++) {
		size_t i = addrset_add(&s, key_of(k), &added);
		REQUIRE(i != SIZE_MAX && added, "key %zu not added", k);
		*(uintptr_t *)addrset_val(&s, i) = k;
		if (k >= 1000) {
			size_t j = addrset_find(&s, key_of(k - 1000));
			REQUIRE(j != SIZE_MAX &&
			        *(uintptr_t *)addrset_val(&s, j) == k - 1000,
			        "key %zu lost or its value changed", k - 1000);
			addrset_remove_at(&s, j);
		}
		maxcap = MAX(maxcap, s.cap);
	}
	ck_assert_uint_eq(s.n, 1000);
	ck_assert_uint_le(maxcap, 8192);
	for (size_t k = 300000; k < 400000; k++)
		ck_assert_uint_ne(addrset_add(&s, key_of(k), &added),
		                  SIZE_MAX);
	ck_assert_uint_ge(s.cap, 4 * 101000);
	for (size_t k = 299000; k < 400000; k++)
		addrset_remove_at(&s, addrset_find(&s, key_of(k)));
	ck_assert_uint_eq(s.n, 0);
	for (size_t k = 0; k < 1000000 && s.cap > 8192; k++) {
		ck_assert_uint_ne(addrset_add(&s, key_of(k), &added),
		                  SIZE_MAX);
		addrset_remove_at(&s, addrset_find(&s, key_of(k)));
	}
	ck_assert_uint_le(s.cap, 8192);
	addrset_free(&s);
}
END_TEST

/* A rehash moves the old table a few slots a call: after the add that
 * starts one, the old table stays for many calls, no call looks at more
 * than MOVE_STEP (32) of its slots when the new table is larger, every
 * key and payload is found meanwhile (a key found in the old table
 * moves at once), removes of moved keys work, and addrset_settle ends
 * it. Then a set emptied by removes shrinks, its large old table moved
 * out within a quarter of the new one's adds. */
START_TEST(test_rehash_is_incremental)
{
	enum { N = 100000 };
	addrset s = {.vsize = sizeof(uintptr_t)};
	bool added;
	size_t rehashes = 0, calls_during = 0;

	for (size_t k = 0; k < N; k++) {
		bool moving = s.okeys != NULL;
		size_t before = s.opos, cap = s.cap;
		size_t i = addrset_add(&s, key_of(k), &added);
		ck_assert(i != SIZE_MAX && added);
		*(uintptr_t *)addrset_val(&s, i) = k;
		if (!moving && s.okeys) {
			rehashes++;
			ck_assert_uint_le(s.opos, 32);
		} else if (moving) {
			/* no rehash starts while one moves */
			ck_assert_uint_eq(s.cap, cap);
		}
		if (moving && s.okeys) {
			calls_during++;
			ck_assert_uint_le(s.opos - before, 32);
		}
		if (s.okeys && k % 7 == 0) {
			/* an early key, maybe still in the old table */
			size_t j = addrset_find(&s, key_of(k / 2));
			ck_assert_uint_ne(j, SIZE_MAX);
			ck_assert_uint_eq(*(uintptr_t *)addrset_val(&s, j),
			                  k / 2);
		}
	}
	ck_assert_uint_ge(rehashes, 5);
	ck_assert_uint_ge(calls_during, 1000);
	for (size_t k = 0; k < N; k += 2)
		addrset_remove_at(&s, addrset_find(&s, key_of(k)));
	addrset_settle(&s);
	ck_assert(s.okeys == NULL);
	size_t live = 0;
	for (size_t i = 0; i < s.cap; i++)
		live += addrset_live(&s, i);
	ck_assert_uint_eq(live, N / 2);
	ck_assert_uint_eq(s.n, N / 2);
	for (size_t k = 1; k < N; k += 2) {
		size_t j = addrset_find(&s, key_of(k));
		REQUIRE(j != SIZE_MAX && *(uintptr_t *)addrset_val(&s, j) == k,
		        "key %zu lost or its value changed", k);
		addrset_remove_at(&s, j);
	}
	/* Empty: adds and removes until it shrinks; the old table is gone
	 * before the small one is half full. */
	size_t big = s.cap;
	for (size_t k = N; s.cap == big; k++) {
		addrset_remove_at(&s, addrset_add(&s, key_of(k), &added));
		ck_assert(added);
	}
	ck_assert_uint_lt(s.cap, big);
	for (size_t k = 0; k < s.cap / 4 && s.okeys; k++)
		ck_assert_uint_ne(addrset_add(&s, key_of(2 * N + k), &added),
		                  SIZE_MAX);
	ck_assert(s.okeys == NULL);
	addrset_free(&s);
}
END_TEST

static Suite *addrset_suite(void)
{
	Suite *su = suite_create("addrset");
	TCase *tc = tcase_create("addrset");
	tcase_add_test(tc, test_against_reference);
	tcase_add_test(tc, test_growth_keeps_everything);
	tcase_add_test(tc, test_churn_keeps_size);
	tcase_add_test(tc, test_rehash_is_incremental);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	return test_main(addrset_suite());
}
