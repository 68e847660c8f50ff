/* examples/lox/intern.c: the string intern table, the one place that
 * knows how strings are made canonical.
 *
 * An open-addressing hash table (linear probing, load <= 3/4) whose
 * entries hold a reference to the string plus its hash and length, so a
 * probe compares those before it looks at the string. Entries are
 * {ref, hash, len}; ref is word 0 of the entry and the only pointer.
 *
 * This version holds the strings strongly (ref is the lstring itself):
 * the fallback until gcheap's weak references land. The table's root is
 * vm-independent: it is registered with gc_add_roots, so stores into it
 * go through gc_write. */
#include "lox.h"

#include <stdlib.h>

typedef struct ientry {
	void *ref; /* the lstring; NULL: empty or tombstone */
	uint32_t hash;
	uint32_t len; /* TOMBSTONE: a dead entry */
} ientry;

#define TOMBSTONE UINT32_MAX

static struct {
	ientry *e;         /* registered root */
	size_t count, cap; /* count includes tombstones */
	gc_type *type;
} strings;

void intern_init(void)
{
	static const size_t ptrs[] = {offsetof(ientry, ref)};
	strings.type = gc_type_new("lox.intern", sizeof(ientry), ptrs, 1,
	                           GCHEAP_TAIL_REPEAT);
	if (!strings.type || gc_add_roots(&strings.e, 1) != GCHEAP_OK) {
		fprintf(stderr, "lox: cannot make the intern table\n");
		exit(70);
	}
}

static lstring *target(const ientry *e)
{
	return e->ref;
}

lstring *intern_find(const char *s, int len, uint32_t hash)
{
	if (!strings.cap)
		return NULL;
	size_t mask = strings.cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		ientry *e = &strings.e[i];
		if (!e->ref && e->len != TOMBSTONE)
			return NULL;
		if (e->ref && e->hash == hash && e->len == (uint32_t)len) {
			lstring *str = target(e);
			if (str && !memcmp(str->chars, s, (size_t)len))
				return str;
		}
	}
}

static void insert(ientry *tab, size_t cap, void *ref, uint32_t hash,
                   uint32_t len)
{
	size_t mask = cap - 1;
	size_t i = hash & mask;
	while (tab[i].ref)
		i = (i + 1) & mask;
	gc_write(&tab[i].ref, ref);
	tab[i].hash = hash;
	tab[i].len = len;
}

static void grow(void)
{
	size_t cap = strings.cap ? strings.cap * 2 : 64;
	ientry *tab = lox_alloc(cap * sizeof(ientry), strings.type);
	size_t n = 0;
	for (size_t i = 0; i < strings.cap; i++) {
		ientry *e = &strings.e[i];
		if (e->ref && target(e)) {
			insert(tab, cap, e->ref, e->hash, e->len);
			n++;
		}
	}
	gc_write(&strings.e, tab);
	strings.cap = cap;
	strings.count = n;
}

void intern_add(lstring *s)
{
	LOX_ROOT(f, s);
	if ((strings.count + 1) * 4 > strings.cap * 3)
		grow();
	void *ref = s;
	insert(strings.e, strings.cap, ref, s->hash, s->len);
	strings.count++;
	LOX_UNROOT(f);
}

size_t intern_live(void)
{
	size_t n = 0;
	for (size_t i = 0; i < strings.cap; i++)
		if (strings.e[i].ref && target(&strings.e[i]))
			n++;
	return n;
}
