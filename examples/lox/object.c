/* examples/lox/object.c: making and printing Lox objects.
 *
 * Every constructor allocates through lox_alloc with its kind's pointer
 * map and initialises pointer fields with gc_write, fresh object or not.
 * A constructor's arguments must be reachable from the caller's roots
 * (the VM stack, a compiler frame, a LOX_ROOT): the allocation may
 * collect. Strings are interned (intern.c), so equal strings are one
 * object and compare by address. */
#include "lox.h"

#include <stdlib.h>

static void *alloc_obj(size_t size, obj_kind kind)
{
	obj *o = lox_alloc(size, lox_types.kind[kind]);
	o->kind = kind;
	return o;
}

/* FNV-1a */
uint32_t hash_chars(const char *s, int len)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static lstring *alloc_string(int len, uint32_t hash)
{
	lstring *s = alloc_obj(sizeof(lstring) + (size_t)len + 1, OBJ_STRING);
	s->len = (uint32_t)len;
	s->hash = hash;
	return s;
}

lstring *copy_string(const char *chars, int len)
{
	uint32_t hash = hash_chars(chars, len);
	lstring *s = intern_find(chars, len, hash);
	if (s)
		return s;
	s = alloc_string(len, hash);
	memcpy(s->chars, chars, (size_t)len);
	intern_add(s);
	return s;
}

lstring *concat_strings(const lstring *a, const lstring *b)
{
	int len = (int)(a->len + b->len);
	/* a and b are on the VM stack; the result is built in a fresh
	 * object and dropped (not freed) if an equal one is interned */
	lstring *s = alloc_string(len, 0);
	memcpy(s->chars, a->chars, a->len);
	memcpy(s->chars + a->len, b->chars, b->len);
	s->hash = hash_chars(s->chars, len);
	/* the lookup is a safepoint (weak references): root s across it */
	LOX_ROOT(f, s);
	lstring *old = intern_find(s->chars, len, s->hash);
	if (!old)
		intern_add(s);
	LOX_UNROOT(f);
	return old ? old : s;
}

lfunction *new_function(void)
{
	return alloc_obj(sizeof(lfunction), OBJ_FUNCTION);
}

lnative *new_native(native_fn fn)
{
	lnative *n = alloc_obj(sizeof(lnative), OBJ_NATIVE);
	n->fn = fn;
	return n;
}

lclosure *new_closure(lfunction *fn)
{
	size_t n = (size_t)fn->nupvalues;
	LOX_ROOT(f, fn);
	lclosure *c =
	    alloc_obj(sizeof(lclosure) + n * sizeof(lupvalue *), OBJ_CLOSURE);
	LOX_UNROOT(f);
	gc_write(&c->fn, fn);
	c->nupvalues = n;
	return c;
}

lupvalue *new_upvalue(value *slot)
{
	lupvalue *u = alloc_obj(sizeof(lupvalue), OBJ_UPVALUE);
	gc_write(&u->closed, (void *)NIL_VAL);
	u->loc = slot;
	return u;
}

lclass *new_class(lstring *name)
{
	LOX_ROOT(f, name);
	lclass *k = alloc_obj(sizeof(lclass), OBJ_CLASS);
	LOX_UNROOT(f);
	gc_write(&k->name, name);
	return k;
}

linstance *new_instance(lclass *klass)
{
	LOX_ROOT(f, klass);
	linstance *i = alloc_obj(sizeof(linstance), OBJ_INSTANCE);
	LOX_UNROOT(f);
	gc_write(&i->klass, klass);
	return i;
}

lbound *new_bound(value receiver, lclosure *method)
{
	gc_frame f;
	void *slots[2] = {(void *)(uintptr_t)receiver, method};
	gc_frame_push(&f, slots, 2);
	lbound *b = alloc_obj(sizeof(lbound), OBJ_BOUND);
	gc_frame_pop(&f);
	gc_write(&b->receiver, (void *)(uintptr_t)receiver);
	gc_write(&b->method, method);
	return b;
}

bool values_equal(value a, value b)
{
	if (is_number(a) && is_number(b))
		return as_number(a) == as_number(b);
	return a == b;
}

static void print_function(FILE *f, const lfunction *fn)
{
	if (!fn->name)
		fprintf(f, "<script>");
	else
		fprintf(f, "<fn %s>", fn->name->chars);
}

static void print_object(FILE *f, value v)
{
	switch (obj_kind_of(v)) {
	case OBJ_STRING:
		fwrite(AS_STRING(v)->chars, 1, AS_STRING(v)->len, f);
		break;
	case OBJ_FUNCTION:
		print_function(f, AS_FUNCTION(v));
		break;
	case OBJ_NATIVE:
		fprintf(f, "<native fn>");
		break;
	case OBJ_CLOSURE:
		print_function(f, AS_CLOSURE(v)->fn);
		break;
	case OBJ_UPVALUE:
		fprintf(f, "upvalue");
		break;
	case OBJ_CLASS:
		fprintf(f, "%s", AS_CLASS(v)->name->chars);
		break;
	case OBJ_INSTANCE:
		fprintf(f, "%s instance", AS_INSTANCE(v)->klass->name->chars);
		break;
	case OBJ_BOUND:
		print_function(f, AS_BOUND(v)->method->fn);
		break;
	default:
		abort();
	}
}

void print_value(FILE *f, value v)
{
	if (is_number(v))
		fprintf(f, "%g", as_number(v));
	else if (v == NIL_VAL)
		fprintf(f, "nil");
	else if (v == TRUE_VAL)
		fprintf(f, "true");
	else if (v == FALSE_VAL)
		fprintf(f, "false");
	else
		print_object(f, v);
}
