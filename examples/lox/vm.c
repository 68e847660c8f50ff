/* examples/lox/vm.c: the bytecode interpreter: the value stack, call
 * frames, upvalues, classes and the dispatch loop.
 *
 * Roots. The value stack and the call frames are arrays in the VM struct
 * (not heap objects), each covered by a precise gc_frame that this thread
 * pushed at vm_init; vm_sync_roots sets their lengths to the live part
 * (stack: up to sp; frames: three words per frame: the closure, an ip
 * inside its code, and a stack address the collector ignores). Stores
 * into them need no barrier. The globals table, the "init" string and the
 * open-upvalue list are registered with gc_add_roots, and every store
 * into them, as into any heap object, goes through gc_write. Runtime
 * errors print the reference message and a "[line N] in f()" trace. */
#include "lox.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

/* Default visibility, and the executable linked with -rdynamic: a
 * dynamic symbol, so that GCHEAP_DEBUG=rootcheck bounds the value stack's
 * array by it (the words past the stack top are stale, no roots). */
__attribute__((visibility("default"))) vm vm_;

void vm_sync_roots(void)
{
	vm_.stack_frame.nslots =
	    LOX_SABOTAGE == 2 ? 0 : (size_t)(vm_.sp - vm_.stack);
	vm_.frames_frame.nslots =
	    (size_t)vm_.nframes * (sizeof(call_frame) / sizeof(void *));
}

void vm_push(value v)
{
	*vm_.sp++ = v;
}

value vm_pop(void)
{
	return *--vm_.sp;
}

static value peek(int distance)
{
	return vm_.sp[-1 - distance];
}

static void close_upvalues(const value *last);

/* After a runtime error (the REPL goes on): upvalues still open point
 * into the stack being dropped. Closed, they keep their values; only
 * unlinked, they pointed at slots above sp, no longer roots, and a
 * closure that escaped read a later line's (freed) objects. */
static void reset_stack(void)
{
	close_upvalues(vm_.stack);
	vm_.sp = vm_.stack;
	vm_.nframes = 0;
	gc_write(&vm_.open_upvalues, NULL);
}

static void runtime_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	for (int i = vm_.nframes - 1; i >= 0; i--) {
		call_frame *f = &vm_.frames[i];
		lfunction *fn = f->closure->fn;
		size_t at = (size_t)(f->ip - fn->ch.code - 1);
		fprintf(stderr, "[line %d] in ", fn->ch.lines[at]);
		if (!fn->name)
			fprintf(stderr, "script\n");
		else
			fprintf(stderr, "%s()\n", fn->name->chars);
	}
	reset_stack();
}

static value clock_native(int argc, value *args)
{
	return number_val((double)clock() / CLOCKS_PER_SEC);
}

static void define_native(const char *name, native_fn fn)
{
	vm_push(obj_val(copy_string(name, (int)strlen(name))));
	vm_push(obj_val(new_native(fn)));
	table_set(&vm_.globals, AS_STRING(vm_.stack[0]), vm_.stack[1]);
	vm_pop();
	vm_pop();
}

void vm_init(void)
{
	vm_.sp = vm_.stack;
	vm_.nframes = 0;
	gc_frame_push(&vm_.stack_frame, (void **)vm_.stack, 0);
	gc_frame_push(&vm_.frames_frame, (void **)vm_.frames, 0);
	if (gc_add_roots(&vm_.globals.e, 1) != GCHEAP_OK ||
	    gc_add_roots(&vm_.init_string, 1) != GCHEAP_OK ||
	    gc_add_roots(&vm_.open_upvalues, 1) != GCHEAP_OK) {
		fprintf(stderr, "lox: cannot register the VM's roots\n");
		exit(70);
	}
	lstring *init = copy_string("init", 4);
	gc_write(&vm_.init_string, init);
	define_native("clock", clock_native);
}

void vm_free(void)
{
	gc_frame_pop(&vm_.frames_frame);
	gc_frame_pop(&vm_.stack_frame);
	gc_remove_roots(&vm_.open_upvalues);
	gc_remove_roots(&vm_.init_string);
	gc_remove_roots(&vm_.globals.e);
}

/* ---- Calls ------------------------------------------------------------- */

static bool call(lclosure *c, int argc)
{
	if (argc != c->fn->arity) {
		runtime_error("Expected %d arguments but got %d.", c->fn->arity,
		              argc);
		return false;
	}
	if (vm_.nframes == FRAMES_MAX) {
		runtime_error("Stack overflow.");
		return false;
	}
	call_frame *f = &vm_.frames[vm_.nframes++];
	f->closure = c;
	f->ip = c->fn->ch.code;
	f->slots = vm_.sp - argc - 1;
	return true;
}

static bool call_value(value callee, int argc)
{
	if (is_obj(callee)) {
		switch (obj_kind_of(callee)) {
		case OBJ_BOUND: {
			lbound *b = AS_BOUND(callee);
			vm_.sp[-argc - 1] = b->receiver;
			return call(b->method, argc);
		}
		case OBJ_CLASS: {
			lclass *k = AS_CLASS(callee);
			/* k stays rooted in its stack slot until replaced */
			linstance *inst = new_instance(k);
			vm_.sp[-argc - 1] = obj_val(inst);
			value init;
			if (table_get(&k->methods, vm_.init_string, &init))
				return call(AS_CLOSURE(init), argc);
			if (argc != 0) {
				runtime_error(
				    "Expected 0 arguments but got %d.", argc);
				return false;
			}
			return true;
		}
		case OBJ_CLOSURE:
			return call(AS_CLOSURE(callee), argc);
		case OBJ_NATIVE: {
			value r = AS_NATIVE(callee)->fn(argc, vm_.sp - argc);
			vm_.sp -= argc + 1;
			vm_push(r);
			return true;
		}
		default:
			break;
		}
	}
	runtime_error("Can only call functions and classes.");
	return false;
}

static bool invoke_from_class(lclass *k, lstring *name, int argc)
{
	value m;
	if (!table_get(&k->methods, name, &m)) {
		runtime_error("Undefined property '%s'.", name->chars);
		return false;
	}
	return call(AS_CLOSURE(m), argc);
}

static bool invoke(lstring *name, int argc)
{
	value receiver = peek(argc);
	if (!is_kind(receiver, OBJ_INSTANCE)) {
		runtime_error("Only instances have methods.");
		return false;
	}
	linstance *inst = AS_INSTANCE(receiver);
	value v;
	if (table_get(&inst->fields, name, &v)) {
		vm_.sp[-argc - 1] = v;
		return call_value(v, argc);
	}
	return invoke_from_class(inst->klass, name, argc);
}

static bool bind_method(lclass *k, lstring *name)
{
	value m;
	if (!table_get(&k->methods, name, &m)) {
		runtime_error("Undefined property '%s'.", name->chars);
		return false;
	}
	lbound *b = new_bound(peek(0), AS_CLOSURE(m));
	vm_pop();
	vm_push(obj_val(b));
	return true;
}

/* ---- Upvalues ---------------------------------------------------------- */

static lupvalue *capture_upvalue(value *slot)
{
	lupvalue *prev = NULL, *up = vm_.open_upvalues;
	while (up && up->loc > slot) {
		prev = up;
		up = up->next;
	}
	if (up && up->loc == slot)
		return up;
	/* prev and up stay reachable from vm_.open_upvalues */
	lupvalue *fresh = new_upvalue(slot);
	gc_write(&fresh->next, up);
	if (!prev)
		gc_write(&vm_.open_upvalues, fresh);
	else
		gc_write(&prev->next, fresh);
	return fresh;
}

static void close_upvalues(const value *last)
{
	while (vm_.open_upvalues && vm_.open_upvalues->loc >= last) {
		lupvalue *up = vm_.open_upvalues;
		gc_write(&up->closed, (void *)(uintptr_t)*up->loc);
		up->loc = &up->closed;
		gc_write(&vm_.open_upvalues, up->next);
	}
}

static void define_method(lstring *name)
{
	lclass *k = AS_CLASS(peek(1));
	table_set(&k->methods, name, peek(0));
	vm_pop();
}

static bool is_falsey(value v)
{
	return v == NIL_VAL || v == FALSE_VAL;
}

static void concatenate(void)
{
	lstring *s = concat_strings(AS_STRING(peek(1)), AS_STRING(peek(0)));
	vm_pop();
	vm_pop();
	vm_push(obj_val(s));
}

/* ---- The dispatch loop ------------------------------------------------- */

static interpret_result run(void)
{
	call_frame *frame = &vm_.frames[vm_.nframes - 1];

#define READ_BYTE() (*frame->ip++)
#define READ_SHORT()                                                           \
	(frame->ip += 2, (uint16_t)((frame->ip[-2] << 8) | frame->ip[-1]))
#define READ_CONSTANT() (frame->closure->fn->ch.consts.v[READ_BYTE()])
#define READ_STRING()   AS_STRING(READ_CONSTANT())
/* A push that may grow the stack: a frame's temporaries are not bounded
 * by its 256 locals (nested expressions, argument lists), so the stack
 * can fill before the frames do; a push past its end wrote over the
 * globals that follow vm_.stack (the allocator's among them). */
#define PUSH(v)                                                                \
	do {                                                                   \
		if (vm_.sp == vm_.stack + STACK_MAX) {                         \
			runtime_error("Stack overflow.");                      \
			return INTERPRET_RUNTIME_ERROR;                        \
		}                                                              \
		vm_push(v);                                                    \
	} while (0)
#define BINARY_OP(wrap, op)                                                    \
	do {                                                                   \
		if (!is_number(peek(0)) || !is_number(peek(1))) {              \
			runtime_error("Operands must be numbers.");            \
			return INTERPRET_RUNTIME_ERROR;                        \
		}                                                              \
		double b = as_number(vm_pop());                                \
		double a = as_number(vm_pop());                                \
		vm_push(wrap(a op b));                                         \
	} while (0)

	for (;;) {
		uint8_t op = READ_BYTE();
		switch (op) {
		case OP_CONSTANT:
			PUSH(READ_CONSTANT());
			break;
		case OP_NIL:
			PUSH(NIL_VAL);
			break;
		case OP_TRUE:
			PUSH(TRUE_VAL);
			break;
		case OP_FALSE:
			PUSH(FALSE_VAL);
			break;
		case OP_POP:
			vm_pop();
			break;
		case OP_GET_LOCAL:
			PUSH(frame->slots[READ_BYTE()]);
			break;
		case OP_SET_LOCAL:
			frame->slots[READ_BYTE()] = peek(0);
			break;
		case OP_GET_GLOBAL: {
			lstring *name = READ_STRING();
			value v;
			if (!table_get(&vm_.globals, name, &v)) {
				runtime_error("Undefined variable '%s'.",
				              name->chars);
				return INTERPRET_RUNTIME_ERROR;
			}
			PUSH(v);
			break;
		}
		case OP_DEFINE_GLOBAL:
			table_set(&vm_.globals, READ_STRING(), peek(0));
			vm_pop();
			break;
		case OP_SET_GLOBAL: {
			lstring *name = READ_STRING();
			if (table_set(&vm_.globals, name, peek(0))) {
				table_delete(&vm_.globals, name);
				runtime_error("Undefined variable '%s'.",
				              name->chars);
				return INTERPRET_RUNTIME_ERROR;
			}
			break;
		}
		case OP_GET_UPVALUE:
			PUSH(*frame->closure->up[READ_BYTE()]->loc);
			break;
		case OP_SET_UPVALUE:
			/* loc is a stack slot or a closed upvalue's field */
			gc_write(frame->closure->up[READ_BYTE()]->loc,
			         (void *)(uintptr_t)peek(0));
			break;
		case OP_GET_PROPERTY: {
			if (!is_kind(peek(0), OBJ_INSTANCE)) {
				runtime_error(
				    "Only instances have properties.");
				return INTERPRET_RUNTIME_ERROR;
			}
			linstance *inst = AS_INSTANCE(peek(0));
			lstring *name = READ_STRING();
			value v;
			if (table_get(&inst->fields, name, &v)) {
				vm_pop();
				PUSH(v);
				break;
			}
			if (!bind_method(inst->klass, name))
				return INTERPRET_RUNTIME_ERROR;
			break;
		}
		case OP_SET_PROPERTY: {
			if (!is_kind(peek(1), OBJ_INSTANCE)) {
				runtime_error("Only instances have fields.");
				return INTERPRET_RUNTIME_ERROR;
			}
			linstance *inst = AS_INSTANCE(peek(1));
			table_set(&inst->fields, READ_STRING(), peek(0));
			value v = vm_pop();
			vm_pop();
			PUSH(v);
			break;
		}
		case OP_GET_SUPER: {
			lstring *name = READ_STRING();
			lclass *super = AS_CLASS(vm_pop());
			if (!bind_method(super, name))
				return INTERPRET_RUNTIME_ERROR;
			break;
		}
		case OP_EQUAL: {
			value b = vm_pop();
			value a = vm_pop();
			PUSH(bool_val(values_equal(a, b)));
			break;
		}
		case OP_GREATER:
			BINARY_OP(bool_val, >);
			break;
		case OP_LESS:
			BINARY_OP(bool_val, <);
			break;
		case OP_ADD:
			if (is_kind(peek(0), OBJ_STRING) &&
			    is_kind(peek(1), OBJ_STRING)) {
				concatenate();
			} else if (is_number(peek(0)) && is_number(peek(1))) {
				double b = as_number(vm_pop());
				double a = as_number(vm_pop());
				PUSH(number_val(a + b));
			} else {
				runtime_error("Operands must be two numbers or "
				              "two strings.");
				return INTERPRET_RUNTIME_ERROR;
			}
			break;
		case OP_SUBTRACT:
			BINARY_OP(number_val, -);
			break;
		case OP_MULTIPLY:
			BINARY_OP(number_val, *);
			break;
		case OP_DIVIDE:
			BINARY_OP(number_val, /);
			break;
		case OP_NOT:
			PUSH(bool_val(is_falsey(vm_pop())));
			break;
		case OP_NEGATE:
			if (!is_number(peek(0))) {
				runtime_error("Operand must be a number.");
				return INTERPRET_RUNTIME_ERROR;
			}
			PUSH(number_val(-as_number(vm_pop())));
			break;
		case OP_PRINT:
			print_value(stdout, vm_pop());
			fputc('\n', stdout);
			break;
		case OP_JUMP: {
			uint16_t off = READ_SHORT();
			frame->ip += off;
			break;
		}
		case OP_JUMP_IF_FALSE: {
			uint16_t off = READ_SHORT();
			if (is_falsey(peek(0)))
				frame->ip += off;
			break;
		}
		case OP_LOOP: {
			uint16_t off = READ_SHORT();
			frame->ip -= off;
			/* a loop that never allocates still answers the
			 * collector */
			lox_gc_point();
			gc_safepoint();
			break;
		}
		case OP_CALL: {
			int argc = READ_BYTE();
			if (!call_value(peek(argc), argc))
				return INTERPRET_RUNTIME_ERROR;
			frame = &vm_.frames[vm_.nframes - 1];
			break;
		}
		case OP_INVOKE: {
			lstring *name = READ_STRING();
			int argc = READ_BYTE();
			if (!invoke(name, argc))
				return INTERPRET_RUNTIME_ERROR;
			frame = &vm_.frames[vm_.nframes - 1];
			break;
		}
		case OP_SUPER_INVOKE: {
			lstring *name = READ_STRING();
			int argc = READ_BYTE();
			lclass *super = AS_CLASS(vm_pop());
			if (!invoke_from_class(super, name, argc))
				return INTERPRET_RUNTIME_ERROR;
			frame = &vm_.frames[vm_.nframes - 1];
			break;
		}
		case OP_CLOSURE: {
			lfunction *fn = AS_FUNCTION(READ_CONSTANT());
			lclosure *c = new_closure(fn);
			PUSH(obj_val(c));
			for (uintptr_t i = 0; i < c->nupvalues; i++) {
				uint8_t is_local = READ_BYTE();
				uint8_t index = READ_BYTE();
				lupvalue *u =
				    is_local
				        ? capture_upvalue(frame->slots + index)
				        : frame->closure->up[index];
				gc_write(&c->up[i], u);
			}
			break;
		}
		case OP_CLOSE_UPVALUE:
			close_upvalues(vm_.sp - 1);
			vm_pop();
			break;
		case OP_RETURN: {
			value result = vm_pop();
			close_upvalues(frame->slots);
			vm_.nframes--;
			if (vm_.nframes == 0) {
				vm_pop();
				return INTERPRET_OK;
			}
			vm_.sp = frame->slots;
			PUSH(result);
			frame = &vm_.frames[vm_.nframes - 1];
			break;
		}
		case OP_CLASS:
			PUSH(obj_val(new_class(READ_STRING())));
			break;
		case OP_INHERIT: {
			value super = peek(1);
			if (!is_kind(super, OBJ_CLASS)) {
				runtime_error("Superclass must be a class.");
				return INTERPRET_RUNTIME_ERROR;
			}
			lclass *sub = AS_CLASS(peek(0));
			table_add_all(&AS_CLASS(super)->methods, &sub->methods);
			vm_pop();
			break;
		}
		case OP_METHOD:
			define_method(READ_STRING());
			break;
		}
	}
#undef READ_BYTE
#undef READ_SHORT
#undef READ_CONSTANT
#undef READ_STRING
#undef BINARY_OP
#undef PUSH
}

interpret_result interpret(const char *source)
{
	lfunction *fn = compile(source);
	if (!fn)
		return INTERPRET_COMPILE_ERROR;
	vm_push(obj_val(fn));
	lclosure *c = new_closure(fn);
	vm_pop();
	vm_push(obj_val(c));
	call(c, 0);
	return run();
}
