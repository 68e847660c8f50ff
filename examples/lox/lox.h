/* examples/lox/lox.h: the Lox virtual machine's shared declarations:
 * values, heap objects, bytecode chunks, hash tables, the VM and the
 * compiler entry point.
 *
 * Values. A value is one 64-bit word that the collector can scan as a
 * pointer slot (docs/embedding.md, "Values"):
 *   - an object is its plain address (below 2^47, a multiple of 8);
 *   - nil, false and true are the small words 1, 2 and 3, which are never
 *     heap addresses;
 *   - a number is its IEEE bits plus 2^49 (NaNs made canonical first), so
 *     every number is at or above 2^49, outside the 48-bit address space
 *     that gcheap's arenas live in.
 * So every word of a value array, the value stack included, is either an
 * object pointer or a word the collector ignores, and pointer maps can
 * mark value words as pointers.
 *
 * Objects. Every object starts with an `obj` header (its kind) and is
 * allocated by lox_alloc with the gc_type of its kind (lox_types); every
 * pointer store into an object or a registered root goes through gc_write.
 * Nothing is freed by hand. */
#ifndef LOX_H
#define LOX_H

#include <gcheap.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Test-only sabotage builds (examples/lox/tests): 1 stores table values
 * without the write barrier, 2 leaves the value stack out of the roots.
 * The tests must fail with them. */
#ifndef LOX_SABOTAGE
#define LOX_SABOTAGE 0
#endif

/* ---- Values ------------------------------------------------------------ */

typedef uint64_t value;

#define NUMBER_OFFSET ((uint64_t)1 << 49)
#define NIL_VAL       ((value)1)
#define FALSE_VAL     ((value)2)
#define TRUE_VAL      ((value)3)

static inline bool is_number(value v)
{
	return v >= NUMBER_OFFSET;
}

static inline bool is_obj(value v)
{
	return v > TRUE_VAL && v < NUMBER_OFFSET;
}

static inline bool is_nil(value v)
{
	return v == NIL_VAL;
}

static inline bool is_bool(value v)
{
	return v == TRUE_VAL || v == FALSE_VAL;
}

static inline value bool_val(bool b)
{
	return b ? TRUE_VAL : FALSE_VAL;
}

static inline value number_val(double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	if (d != d) /* one NaN per sign: the offset must not overflow */
		bits = (bits & ((uint64_t)1 << 63)) | 0x7ff8000000000000u;
	return bits + NUMBER_OFFSET;
}

static inline double as_number(value v)
{
	uint64_t bits = v - NUMBER_OFFSET;
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static inline value obj_val(const void *o)
{
	return (value)(uintptr_t)o;
}

#define AS_OBJ(v) ((obj *)(uintptr_t)(v))

/* ---- Objects ----------------------------------------------------------- */

typedef enum obj_kind {
	OBJ_STRING,
	OBJ_FUNCTION,
	OBJ_NATIVE,
	OBJ_CLOSURE,
	OBJ_UPVALUE,
	OBJ_CLASS,
	OBJ_INSTANCE,
	OBJ_BOUND,
	OBJ_KINDS
} obj_kind;

typedef struct obj {
	uintptr_t kind; /* a whole word: objects stay 8-aligned after it */
} obj;

typedef struct lstring {
	obj h;
	uint32_t len;
	uint32_t hash;
	char chars[]; /* len bytes and a NUL */
} lstring;

/* A growable value array: its storage is a gc_alloc'd array of values. */
typedef struct varray {
	value *v;
	int count, cap;
} varray;

typedef struct chunk {
	uint8_t *code; /* noscan; sealed with a spare byte (chunk_seal) */
	int *lines;    /* noscan, one line per code byte */
	varray consts;
	int count, cap;
} chunk;

typedef struct lfunction {
	obj h;
	lstring *name; /* NULL for the top-level script */
	chunk ch;
	int arity;
	int nupvalues;
} lfunction;

typedef value (*native_fn)(int argc, value *args);

typedef struct lnative {
	obj h;
	native_fn fn;
} lnative;

typedef struct lupvalue {
	obj h;
	value closed;
	struct lupvalue *next; /* the VM's open list, by stack slot */
	value *loc; /* a VM stack slot, or &closed: not a heap pointer */
} lupvalue;

typedef struct lclosure {
	obj h;
	lfunction *fn;
	uintptr_t nupvalues;
	lupvalue *up[]; /* a pointer tail */
} lclosure;

typedef struct entry {
	lstring *key; /* NULL: empty (v 0) or a tombstone (v true) */
	value v;
} entry;

typedef struct table {
	entry *e;
	int count, cap; /* count includes tombstones */
} table;

typedef struct lclass {
	obj h;
	lstring *name;
	table methods;
} lclass;

typedef struct linstance {
	obj h;
	lclass *klass;
	table fields;
} linstance;

typedef struct lbound {
	obj h;
	value receiver;
	lclosure *method;
} lbound;

static inline obj_kind obj_kind_of(value v)
{
	return (obj_kind)AS_OBJ(v)->kind;
}

static inline bool is_kind(value v, obj_kind k)
{
	return is_obj(v) && obj_kind_of(v) == k;
}

#define AS_STRING(v)   ((lstring *)AS_OBJ(v))
#define AS_FUNCTION(v) ((lfunction *)AS_OBJ(v))
#define AS_NATIVE(v)   ((lnative *)AS_OBJ(v))
#define AS_CLOSURE(v)  ((lclosure *)AS_OBJ(v))
#define AS_CLASS(v)    ((lclass *)AS_OBJ(v))
#define AS_INSTANCE(v) ((linstance *)AS_OBJ(v))
#define AS_BOUND(v)    ((lbound *)AS_OBJ(v))

/* ---- Memory (memory.c) ------------------------------------------------- */

/* The pointer maps, made once by lox_memory_init. */
typedef struct lox_type_table {
	gc_type *kind[OBJ_KINDS]; /* NULL for noscan kinds */
	gc_type *values;          /* an array of values: every word */
	gc_type *entries;         /* an array of table entries */
} lox_type_table;

extern lox_type_table lox_types;

void lox_memory_init(void);
/* Before any call into gcheap that may be a safepoint: syncs the VM's
 * root frames and runs the script-level stress mode (LOX_GC_STRESS). */
void lox_gc_point(void);
/* Every VM allocation: a gc point, then gc_alloc; exits when out of
 * memory. */
void *lox_alloc(size_t size, const gc_type *type);
/* A new array of `ncap` elements of `esize` bytes holding the first
 * `ncount` elements of `old` (copied with the bulk barrier if `type` has
 * pointers). The old array becomes garbage. */
void *lox_grow(const void *old, size_t ncount, size_t ncap, size_t esize,
               const gc_type *type);
/* Run a full collection with the VM's roots in sync. */
void lox_collect(void);
/* Print the collector statistics on stderr (LOX_GC_STATS=1). */
void lox_print_stats(void);

/* Root a C local across allocations: LOX_ROOT(f, p) pushes a one-slot
 * precise frame over the pointer variable p; LOX_UNROOT pops it. */
#define LOX_ROOT(f, p)                                                         \
	gc_frame f;                                                            \
	gc_frame_push(&f, (void **)&(p), 1)
#define LOX_UNROOT(f) gc_frame_pop(&f)

/* ---- Objects (object.c) ------------------------------------------------ */

uint32_t hash_chars(const char *s, int len);
lstring *copy_string(const char *s, int len);
lstring *concat_strings(const lstring *a, const lstring *b);
lfunction *new_function(void);
lnative *new_native(native_fn fn);
lclosure *new_closure(lfunction *fn);
lupvalue *new_upvalue(value *slot);
lclass *new_class(lstring *name);
linstance *new_instance(lclass *klass);
lbound *new_bound(value receiver, lclosure *method);
void print_value(FILE *f, value v);
bool values_equal(value a, value b);

/* ---- Interned strings (intern.c) --------------------------------------- */

void intern_init(void);
/* The interned string with these bytes, or NULL. */
lstring *intern_find(const char *s, int len, uint32_t hash);
/* Intern a new string (not yet interned). */
void intern_add(lstring *s);
/* Prune dead entries and return how many interned strings are alive. */
size_t intern_live(void);

/* ---- Tables (table.c) -------------------------------------------------- */

bool table_get(const table *t, const lstring *key, value *out);
/* true if the key is new. key and v must be reachable (it allocates). */
bool table_set(table *t, lstring *key, value v);
bool table_delete(table *t, const lstring *key);
void table_add_all(const table *from, table *to);

/* ---- Chunks (chunk.c) -------------------------------------------------- */

typedef enum opcode {
	OP_CONSTANT,
	OP_NIL,
	OP_TRUE,
	OP_FALSE,
	OP_POP,
	OP_GET_LOCAL,
	OP_SET_LOCAL,
	OP_GET_GLOBAL,
	OP_DEFINE_GLOBAL,
	OP_SET_GLOBAL,
	OP_GET_UPVALUE,
	OP_SET_UPVALUE,
	OP_GET_PROPERTY,
	OP_SET_PROPERTY,
	OP_GET_SUPER,
	OP_EQUAL,
	OP_GREATER,
	OP_LESS,
	OP_ADD,
	OP_SUBTRACT,
	OP_MULTIPLY,
	OP_DIVIDE,
	OP_NOT,
	OP_NEGATE,
	OP_PRINT,
	OP_JUMP,
	OP_JUMP_IF_FALSE,
	OP_LOOP,
	OP_CALL,
	OP_INVOKE,
	OP_SUPER_INVOKE,
	OP_CLOSURE,
	OP_CLOSE_UPVALUE,
	OP_RETURN,
	OP_CLASS,
	OP_INHERIT,
	OP_METHOD
} opcode;

/* `owner` is the heap object that holds `c` (writes into c need it only
 * as the barrier's slot owner; c itself is inside it). */
void chunk_write(chunk *c, uint8_t byte, int line);
/* Add a constant; v must be reachable or on the caller's frames. */
int chunk_add_constant(chunk *c, value v);
/* Shrink the code to fit, plus one spare byte, so that a frame's ip,
 * which may point just past the last instruction, is always inside the
 * code object (frames are precise roots; docs/embedding.md). */
void chunk_seal(chunk *c);

/* ---- The compiler (compiler.c) ----------------------------------------- */

/* NULL after a compile error (reported on stderr). */
lfunction *compile(const char *source);

/* ---- The VM (vm.c) ----------------------------------------------------- */

#define FRAMES_MAX 1024
#define STACK_MAX  (FRAMES_MAX * 256)

typedef struct call_frame {
	lclosure *closure;
	uint8_t *ip;  /* an interior pointer into closure's code */
	value *slots; /* into vm.stack: not a heap pointer */
} call_frame;

typedef struct vm {
	/* The roots registered with gc_add_roots: stores need gc_write. */
	table globals;
	lstring *init_string;
	lupvalue *open_upvalues;
	/* The thread's precise frames over the stack and the call frames:
	 * lox_alloc keeps their lengths in sync (no barrier needed). */
	gc_frame stack_frame, frames_frame;
	value *sp;
	int nframes;
	call_frame frames[FRAMES_MAX];
	value stack[STACK_MAX];
} vm;

extern vm vm_;

typedef enum interpret_result {
	INTERPRET_OK,
	INTERPRET_COMPILE_ERROR,
	INTERPRET_RUNTIME_ERROR
} interpret_result;

void vm_init(void);
void vm_free(void);
interpret_result interpret(const char *source);
void vm_push(value v);
value vm_pop(void);
void vm_sync_roots(void);

#endif /* LOX_H */
