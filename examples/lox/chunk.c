/* examples/lox/chunk.c: bytecode chunks: the code bytes, a line per
 * byte, and the constant pool.
 *
 * A chunk lives inside its lfunction (a heap object that the compiler
 * roots); its three arrays are heap objects of their own (code and lines
 * noscan, constants an array of values), grown by copying and replaced
 * with gc_write. Old arrays are garbage, never freed by hand. */
#include "lox.h"

void chunk_write(chunk *c, uint8_t byte, int line)
{
	if (c->count == c->cap) {
		int cap = c->cap < 8 ? 8 : c->cap * 2;
		uint8_t *code =
		    lox_grow(c->code, (size_t)c->count, (size_t)cap, 1, NULL);
		gc_write(&c->code, code);
		int *lines = lox_grow(c->lines, (size_t)c->count, (size_t)cap,
		                      sizeof(int), NULL);
		gc_write(&c->lines, lines);
		c->cap = cap;
	}
	c->code[c->count] = byte;
	c->lines[c->count] = line;
	c->count++;
}

int chunk_add_constant(chunk *c, value v)
{
	varray *a = &c->consts;
	if (a->count == a->cap) {
		int cap = a->cap < 8 ? 8 : a->cap * 2;
		void *slot = (void *)(uintptr_t)v;
		LOX_ROOT(f, slot);
		value *nv = lox_grow(a->v, (size_t)a->count, (size_t)cap,
		                     sizeof(value), lox_types.values);
		LOX_UNROOT(f);
		gc_write(&a->v, nv);
		a->cap = cap;
	}
	gc_write(&a->v[a->count], (void *)(uintptr_t)v);
	return a->count++;
}

void chunk_seal(chunk *c)
{
	uint8_t *code =
	    lox_grow(c->code, (size_t)c->count, (size_t)c->count + 1, 1, NULL);
	gc_write(&c->code, code);
	c->cap = c->count + 1;
}
