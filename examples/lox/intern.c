/* examples/lox/intern.c: the string intern table, the one place that
 * knows how strings are made canonical.
 *
 * An open-addressing hash table (linear probing) whose entries are
 * {ref, hash, len}: ref (word 0, the entry's only pointer) is a gc_weak
 * reference to the string, so the table does not keep strings alive: a
 * string that nothing else reaches is collected, and its reference reads
 * NULL from then on. A probe compares hash and length first and only then
 * asks gc_weak_get for the string; a NULL answer turns the entry into a
 * tombstone (ref NULL, len TOMBSTONE). Growth rebuilds the table from the
 * entries whose strings are still alive, so dead entries are pruned.
 * count includes tombstones and keeps the load at most 3/4.
 *
 * gc_weak_new and gc_weak_get are safepoints (the first allocates), so
 * lox_gc_point runs before them (root sync, stress collections). The table's
 * array is a root registered with gc_add_roots: stores into it use gc_write.
 *
 * LOX_STRONG_STRINGS=1 makes ref the string itself (a strong table, as
 * clox's would be without its weak sweep); the tests use it to show that
 * without weak references string churn does not fit in a bounded heap. */
#include "lox.h"

#include <stdlib.h>

typedef struct ientry {
	void *ref; /* a gc_weak * (or the lstring); NULL: empty or dead */
	uint32_t hash;
	uint32_t len; /* TOMBSTONE: a dead entry */
} ientry;

#define TOMBSTONE UINT32_MAX

static struct {
	ientry *e; /* registered root */
	size_t count, cap;
	gc_type *type;
	bool strong;
} strings;

void intern_init(void)
{
	static const size_t ptrs[] = {offsetof(ientry, ref)};
	const char *s = getenv("LOX_STRONG_STRINGS");
	strings.strong = s && *s == '1';
	strings.type = gc_type_new("lox.intern", sizeof(ientry), ptrs, 1,
	                           GCHEAP_TAIL_REPEAT);
	if (!strings.type || gc_add_roots(&strings.e, 1) != GCHEAP_OK) {
		fprintf(stderr, "lox: cannot make the intern table\n");
		exit(70);
	}
}

/* The string of a non-empty entry, or NULL if it has died. */
static lstring *target(const ientry *e)
{
	if (strings.strong)
		return e->ref;
	return gc_weak_get(e->ref);
}

static void kill(ientry *e)
{
	gc_write(&e->ref, NULL);
	e->len = TOMBSTONE;
}

lstring *intern_find(const char *s, int len, uint32_t hash)
{
	if (!strings.cap)
		return NULL;
	lox_gc_point();
	size_t mask = strings.cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		ientry *e = &strings.e[i];
		if (!e->ref) {
			if (e->len != TOMBSTONE)
				return NULL;
			continue;
		}
		if (e->hash != hash || e->len != (uint32_t)len)
			continue;
		lstring *str = target(e);
		if (!str)
			kill(e);
		else if (!memcmp(str->chars, s, (size_t)len))
			return str;
	}
}

/* Put ref in the first empty or dead slot of its chain; true if it took
 * an empty one (count grows). */
static bool insert(ientry *tab, size_t cap, void *ref, uint32_t hash,
                   uint32_t len)
{
	size_t mask = cap - 1;
	size_t i = hash & mask;
	while (tab[i].ref)
		i = (i + 1) & mask;
	bool fresh = tab[i].len != TOMBSTONE;
	gc_write(&tab[i].ref, ref);
	tab[i].hash = hash;
	tab[i].len = len;
	return fresh;
}

/* Rebuild from the live entries, doubling only if they need it. */
static void rebuild(void)
{
	size_t live = 0;
	vm_sync_roots(); /* target() is a safepoint */
	for (size_t i = 0; i < strings.cap; i++) {
		ientry *e = &strings.e[i];
		if (e->ref && !target(e))
			kill(e);
		else if (e->ref)
			live++;
	}
	size_t cap = strings.cap ? strings.cap : 64;
	while ((live + 1) * 2 > cap)
		cap *= 2;
	ientry *tab = lox_alloc(cap * sizeof(ientry), strings.type);
	for (size_t i = 0; i < strings.cap; i++) {
		ientry *e = &strings.e[i];
		if (e->ref)
			insert(tab, cap, e->ref, e->hash, e->len);
	}
	gc_write(&strings.e, tab);
	strings.cap = cap;
	strings.count = live;
}

void intern_add(lstring *s)
{
	LOX_ROOT(f, s);
	if ((strings.count + 1) * 4 > strings.cap * 3)
		rebuild();
	void *ref = s;
	if (!strings.strong) {
		lox_gc_point();
		ref = gc_weak_new(s);
		if (!ref) {
			fprintf(stderr, "lox: out of memory\n");
			exit(70);
		}
	}
	if (insert(strings.e, strings.cap, ref, s->hash, s->len))
		strings.count++;
	LOX_UNROOT(f);
}

size_t intern_live(void)
{
	size_t n = 0;
	vm_sync_roots();
	for (size_t i = 0; i < strings.cap; i++)
		if (strings.e[i].ref && target(&strings.e[i]))
			n++;
	return n;
}
