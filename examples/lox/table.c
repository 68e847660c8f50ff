/* examples/lox/table.c: hash tables keyed by interned strings (globals,
 * fields, methods).
 *
 * Open addressing with linear probing, load <= 3/4. An empty entry is
 * all zero (fresh arrays are zeroed); a tombstone has key NULL and value
 * true, so probes run past deleted keys. A table struct lives inside
 * a heap object or a registered root, and its entry array is a heap
 * object: every key, value and array store goes through gc_write. Keys
 * compare by address (strings are interned). */
#include "lox.h"

static entry *find_entry(entry *es, int cap, const lstring *key)
{
	uint32_t mask = (uint32_t)cap - 1;
	entry *tomb = NULL;
	for (uint32_t i = key->hash & mask;; i = (i + 1) & mask) {
		entry *e = &es[i];
		if (!e->key) {
			if (e->v != TRUE_VAL)
				return tomb ? tomb : e;
			if (!tomb)
				tomb = e;
		} else if (e->key == key) {
			return e;
		}
	}
}

bool table_get(const table *t, const lstring *key, value *out)
{
	if (!t->count)
		return false;
	entry *e = find_entry(t->e, t->cap, key);
	if (!e->key)
		return false;
	*out = e->v;
	return true;
}

static void put(entry *e, lstring *key, value v)
{
	gc_write(&e->key, key);
	if (LOX_SABOTAGE == 1)
		e->v = v; /* the missing barrier the tests must catch */
	else
		gc_write(&e->v, (void *)(uintptr_t)v);
}

static void adjust(table *t, int cap)
{
	entry *es = lox_alloc((size_t)cap * sizeof(entry), lox_types.entries);
	t->count = 0;
	for (int i = 0; i < t->cap; i++) {
		entry *from = &t->e[i];
		if (!from->key)
			continue;
		put(find_entry(es, cap, from->key), from->key, from->v);
		t->count++;
	}
	gc_write(&t->e, es);
	t->cap = cap;
}

bool table_set(table *t, lstring *key, value v)
{
	if ((t->count + 1) * 4 > t->cap * 3) {
		/* the table's owner, key and v are the caller's to root */
		adjust(t, t->cap < 8 ? 8 : t->cap * 2);
	}
	entry *e = find_entry(t->e, t->cap, key);
	bool fresh = !e->key;
	if (fresh && e->v != TRUE_VAL)
		t->count++;
	put(e, key, v);
	return fresh;
}

bool table_delete(table *t, const lstring *key)
{
	if (!t->count)
		return false;
	entry *e = find_entry(t->e, t->cap, key);
	if (!e->key)
		return false;
	put(e, NULL, TRUE_VAL);
	return true;
}

void table_add_all(const table *from, table *to)
{
	for (int i = 0; i < from->cap; i++) {
		entry *e = &from->e[i];
		if (e->key)
			table_set(to, e->key, e->v);
	}
}
