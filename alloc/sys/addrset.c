/* alloc/sys/addrset.c: the address hash set (alloc/sys/addrset.h). */
#include "alloc/sys/addrset.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uintptr_t key, size_t cap)
{
	return (size_t)((key >> 4) * 0x9E3779B97F4A7C15ULL >> 17) &
	       (cap - 1);
}

/* The index of key, or of the slot where it would go (the first
 * tombstone on its probe path, else the empty slot that ends it). */
static size_t probe(const addrset *s, uintptr_t key)
{
	size_t gone = SIZE_MAX;

	for (size_t i = slot_of(key, s->cap);; i = (i + 1) & (s->cap - 1)) {
		uintptr_t k = aload(&s->keys[i]);
		if (k == key)
			return i;
		if (k == ADDRSET_GONE && gone == SIZE_MAX)
			gone = i;
		if (!k)
			return gone != SIZE_MAX ? gone : i;
	}
}

size_t addrset_find(const addrset *s, uintptr_t key)
{
	if (!s->cap)
		return SIZE_MAX;
	size_t i = probe(s, key);
	return aload(&s->keys[i]) == key ? i : SIZE_MAX;
}

/* Rehash into a table sized for the live entries: a quarter full at
 * most, so that at least a quarter of it is added before the next
 * rehash. Tombstones do not count: a set whose entries come and go
 * (weak handles, objects freed and made again) keeps its size instead of
 * doubling at every rehash, and a set that emptied shrinks. */
static bool rehash(addrset *s)
{
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
	addrset old = *s;
	s->keys = keys;
	s->vals = vals;
	s->cap = cap;
	s->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		if (!addrset_live(&old, i))
			continue;
		size_t j = probe(s, aload(&old.keys[i]));
		astore(&s->keys[j], aload(&old.keys[i]));
		if (s->vsize)
			memcpy(addrset_val(s, j), addrset_val(&old, i),
			       s->vsize);
		s->used++;
	}
	free((void *)old.keys);
	free(old.vals);
	return true;
}

size_t addrset_add(addrset *s, uintptr_t key, bool *added)
{
	size_t i = addrset_find(s, key);

	*added = false;
	if (i != SIZE_MAX)
		return i;
	if ((s->used + 1) * 2 > s->cap && !rehash(s))
		return SIZE_MAX;
	i = probe(s, key);
	if (!aload(&s->keys[i]))
		s->used++;
	astore(&s->keys[i], key);
	if (s->vsize)
		memset(addrset_val(s, i), 0, s->vsize);
	s->n++;
	*added = true;
	return i;
}

void addrset_remove_at(addrset *s, size_t i)
{
	astore(&s->keys[i], ADDRSET_GONE);
	s->n--;
}
