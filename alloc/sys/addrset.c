/* alloc/sys/addrset.c: the address hash set (alloc/sys/addrset.h). */
#include "alloc/sys/addrset.h"
#include "alloc/sys/base.h"

#include <stdlib.h>
#include <string.h>

/* Old slots each call moves at least (see move_some). */
#define MOVE_STEP 32

static size_t slot_of(uintptr_t key, size_t cap)
{
	return (size_t)((key >> 4) * 0x9E3779B97F4A7C15ULL >> 17) &
	       (cap - 1);
}

/* The index of key in keys[cap), or of the slot where it would go (the
 * first tombstone on its probe path, else the empty slot that ends it). */
static size_t probe(const atomic_word *keys, size_t cap, uintptr_t key)
{
	size_t gone = SIZE_MAX;

	for (size_t i = slot_of(key, cap);; i = (i + 1) & (cap - 1)) {
		uintptr_t k = aload(&keys[i]);
		if (k == key)
			return i;
		if (k == ADDRSET_GONE && gone == SIZE_MAX)
			gone = i;
		if (!k)
			return gone != SIZE_MAX ? gone : i;
	}
}

/* Put key (absent from the new table), with the payload at val, into
 * the new table; its index. */
static size_t put(addrset *s, uintptr_t key, const void *val)
{
	size_t i = probe(s->keys, s->cap, key);

	if (!aload(&s->keys[i]))
		s->used++;
	astore(&s->keys[i], key);
	if (s->vsize) {
		unsigned char *d = addrset_val(s, i);
		if (val)
			memcpy(d, val, s->vsize);
		else
			memset(d, 0, s->vsize);
	}
	return i;
}

/* Move old slot j (live) to the new table; its new index. */
static size_t move_one(addrset *s, size_t j)
{
	uintptr_t key = aload(&s->okeys[j]);
	size_t i = put(s, key, s->vsize ? s->ovals + j * s->vsize : NULL);

	astore(&s->okeys[j], ADDRSET_GONE);
	return i;
}

/* Move the old table's next `slots` slots (at least: enough that it is
 * empty before the new one is a quarter fuller, when that one is much
 * smaller, as after most entries were removed); free it once done. */
static void move_some(addrset *s, size_t slots)
{
	if (!s->okeys)
		return;
	size_t step = 8 * s->ocap / s->cap;
	size_t end = s->ocap - s->opos <= MAX(slots, step)
	                     ? s->ocap
	                     : s->opos + MAX(slots, step);
	for (; s->opos < end; s->opos++)
		if (aload(&s->okeys[s->opos]) > ADDRSET_GONE)
			move_one(s, s->opos);
	if (s->opos == s->ocap) {
		free((void *)s->okeys);
		free(s->ovals);
		s->okeys = NULL;
		s->ovals = NULL;
		s->ocap = s->opos = 0;
	}
}

void addrset_settle(addrset *s)
{
	move_some(s, SIZE_MAX);
}

/* Start a rehash into a table sized for the live entries: a quarter
 * full at most, so that at least a quarter of it is added before the
 * next. Tombstones do not count: a set whose entries come and go (weak
 * handles, objects freed and made again) keeps its size instead of
 * doubling at every rehash, and a set that emptied shrinks. A move in
 * progress is finished first. */
static bool rehash(addrset *s)
{
	addrset_settle(s);
	size_t cap = 64;
	while (cap / 4 < s->n + 1)
		cap *= 2;
	atomic_word *keys = calloc(cap, sizeof(*keys));
	unsigned char *vals = s->vsize ? calloc(cap, s->vsize) : NULL;

	if (!keys || (s->vsize && !vals)) {
		free((void *)keys);
		free(vals);
		return false;
	}
	s->okeys = s->keys;
	s->ovals = s->vals;
	s->ocap = s->cap;
	s->opos = 0;
	s->keys = keys;
	s->vals = vals;
	s->cap = cap;
	s->used = 0;
	if (!s->okeys)
		s->ocap = 0;
	return true;
}

/* Key's slot in the old table, or SIZE_MAX. */
static size_t find_old(const addrset *s, uintptr_t key)
{
	if (!s->okeys)
		return SIZE_MAX;
	size_t j = probe(s->okeys, s->ocap, key);
	return aload(&s->okeys[j]) == key ? j : SIZE_MAX;
}

size_t addrset_find(addrset *s, uintptr_t key)
{
	if (!s->cap)
		return SIZE_MAX;
	move_some(s, MOVE_STEP);
	size_t i = probe(s->keys, s->cap, key);
	if (aload(&s->keys[i]) == key)
		return i;
	size_t j = find_old(s, key);
	return j == SIZE_MAX ? SIZE_MAX : move_one(s, j);
}

size_t addrset_add(addrset *s, uintptr_t key, bool *added)
{
	size_t i = addrset_find(s, key);

	*added = false;
	if (i != SIZE_MAX)
		return i;
	/* (addrset_find has moved this call's share of the old table;
	 * a rehash starts with none moved.) */
	if ((s->used + 1) * 2 > s->cap && !rehash(s))
		return SIZE_MAX;
	i = put(s, key, NULL);
	s->n++;
	*added = true;
	return i;
}

void addrset_remove_at(addrset *s, size_t i)
{
	astore(&s->keys[i], ADDRSET_GONE);
	s->n--;
}

void addrset_free(addrset *s)
{
	free((void *)s->keys);
	free(s->vals);
	free((void *)s->okeys);
	free(s->ovals);
	size_t vsize = s->vsize;
	memset(s, 0, sizeof(*s));
	s->vsize = vsize;
}
