/* examples/lox/compiler.c: the single-pass compiler: a Pratt parser
 * that emits bytecode straight into the function being compiled.
 *
 * Rooting: each function under construction is reachable only from its
 * compiler struct, which lives on the C stack; so every compiler pushes a
 * one-slot precise frame (gc_frame) over its `fn` field when it starts
 * and pops it when the function is done. Compilers nest like the frames
 * do (LIFO). A string made for a constant is reachable only from a C
 * local until chunk_add_constant stores it, and that function roots it
 * across the growth of the pool. Errors are reported in the reference
 * format ("[line N] Error at 'x': message") and do not unwind: the parser
 * resynchronises at the next statement, so frames are always popped. */
#include "lox.h"
#include "scanner.h"

#include <stdlib.h>

#define UINT8_COUNT 256

typedef enum prec {
	P_NONE,
	P_ASSIGNMENT,
	P_OR,
	P_AND,
	P_EQUALITY,
	P_COMPARISON,
	P_TERM,
	P_FACTOR,
	P_UNARY,
	P_CALL,
	P_PRIMARY
} prec;

typedef void (*parse_fn)(bool can_assign);

typedef struct rule {
	parse_fn prefix, infix;
	prec precedence;
} rule;

typedef struct local {
	token name;
	int depth; /* -1: declared, not yet initialised */
	bool captured;
} local;

typedef struct upref {
	uint8_t index;
	bool is_local;
} upref;

typedef enum fn_kind {
	FN_FUNCTION,
	FN_INITIALIZER,
	FN_METHOD,
	FN_SCRIPT
} fn_kind;

typedef struct compiler {
	struct compiler *enclosing;
	lfunction *fn; /* rooted by `frame` */
	gc_frame frame;
	fn_kind kind;
	int nlocals;
	int depth;
	local locals[UINT8_COUNT];
	upref upvalues[UINT8_COUNT];
} compiler;

typedef struct class_compiler {
	struct class_compiler *enclosing;
	bool has_super;
} class_compiler;

static struct {
	token cur, prev;
	bool had_error, panic;
	bool gave_up; /* too deep: the rest is skipped, errors unreported */
} ps;

static compiler *current;
static class_compiler *current_class;

static chunk *cur_chunk(void)
{
	return &current->fn->ch;
}

/* ---- Errors ------------------------------------------------------------ */

static void error_at(const token *t, const char *msg)
{
	if (ps.panic || ps.gave_up)
		return;
	ps.panic = true;
	fprintf(stderr, "[line %d] Error", t->line);
	if (t->kind == T_EOF)
		fprintf(stderr, " at end");
	else if (t->kind != T_ERROR)
		fprintf(stderr, " at '%.*s'", t->len, t->start);
	fprintf(stderr, ": %s\n", msg);
	ps.had_error = true;
}

static void error(const char *msg)
{
	error_at(&ps.prev, msg);
}

static void error_at_current(const char *msg)
{
	error_at(&ps.cur, msg);
}

/* ---- Tokens ------------------------------------------------------------ */

static void advance(void)
{
	ps.prev = ps.cur;
	for (;;) {
		ps.cur = scan_token();
		if (ps.cur.kind != T_ERROR)
			break;
		error_at_current(ps.cur.start);
	}
}

static void consume(token_kind k, const char *msg)
{
	if (ps.cur.kind == k)
		advance();
	else
		error_at_current(msg);
}

static bool check(token_kind k)
{
	return ps.cur.kind == k;
}

static bool match(token_kind k)
{
	if (!check(k))
		return false;
	advance();
	return true;
}

/* ---- Emitting ---------------------------------------------------------- */

static void emit(uint8_t b)
{
	chunk_write(cur_chunk(), b, ps.prev.line);
}

static void emit2(uint8_t a, uint8_t b)
{
	emit(a);
	emit(b);
}

static void emit_loop(int start)
{
	emit(OP_LOOP);
	int off = cur_chunk()->count - start + 2;
	if (off > UINT16_MAX)
		error("Loop body too large.");
	emit2((off >> 8) & 0xff, off & 0xff);
}

static int emit_jump(uint8_t op)
{
	emit(op);
	emit2(0xff, 0xff);
	return cur_chunk()->count - 2;
}

static void patch_jump(int at)
{
	int jump = cur_chunk()->count - at - 2;
	if (jump > UINT16_MAX)
		error("Too much code to jump over.");
	cur_chunk()->code[at] = (jump >> 8) & 0xff;
	cur_chunk()->code[at + 1] = jump & 0xff;
}

static void emit_return(void)
{
	if (current->kind == FN_INITIALIZER)
		emit2(OP_GET_LOCAL, 0);
	else
		emit(OP_NIL);
	emit(OP_RETURN);
}

static uint8_t make_constant(value v)
{
	int i = chunk_add_constant(cur_chunk(), v);
	if (i > UINT8_MAX) {
		error("Too many constants in one chunk.");
		return 0;
	}
	return (uint8_t)i;
}

static void emit_constant(value v)
{
	emit2(OP_CONSTANT, make_constant(v));
}

/* ---- Compilers --------------------------------------------------------- */

static void compiler_begin(compiler *c, fn_kind kind)
{
	c->enclosing = current;
	c->fn = NULL;
	c->kind = kind;
	c->nlocals = 0;
	c->depth = 0;
	gc_frame_push(&c->frame, (void **)&c->fn, 1);
	c->fn = new_function();
	current = c;
	if (kind != FN_SCRIPT) {
		lstring *name = copy_string(ps.prev.start, ps.prev.len);
		gc_write(&c->fn->name, name);
	}
	local *l = &c->locals[c->nlocals++];
	l->depth = 0;
	l->captured = false;
	l->name.start = kind != FN_FUNCTION ? "this" : "";
	l->name.len = kind != FN_FUNCTION ? 4 : 0;
}

static lfunction *compiler_end(void)
{
	emit_return();
	chunk_seal(cur_chunk());
	compiler *c = current;
	lfunction *fn = c->fn;
	gc_frame_pop(&c->frame);
	current = c->enclosing;
	/* fn is unrooted now: the caller stores it before allocating */
	return fn;
}

static void begin_scope(void)
{
	current->depth++;
}

static void end_scope(void)
{
	compiler *c = current;
	c->depth--;
	while (c->nlocals > 0 && c->locals[c->nlocals - 1].depth > c->depth) {
		emit(c->locals[c->nlocals - 1].captured ? OP_CLOSE_UPVALUE
		                                        : OP_POP);
		c->nlocals--;
	}
}

/* ---- Variables --------------------------------------------------------- */

static void expression(void);
static void statement(void);
static void declaration(void);
static const rule *get_rule(token_kind k);
static void parse_precedence(prec p);

static uint8_t identifier_constant(const token *name)
{
	return make_constant(obj_val(copy_string(name->start, name->len)));
}

static bool same_name(const token *a, const token *b)
{
	return a->len == b->len && !memcmp(a->start, b->start, (size_t)a->len);
}

static int resolve_local(compiler *c, const token *name)
{
	for (int i = c->nlocals - 1; i >= 0; i--) {
		local *l = &c->locals[i];
		if (same_name(name, &l->name)) {
			if (l->depth == -1)
				error("Can't read local variable in its own "
				      "initializer.");
			return i;
		}
	}
	return -1;
}

static int add_upvalue(compiler *c, uint8_t index, bool is_local)
{
	int n = c->fn->nupvalues;
	for (int i = 0; i < n; i++)
		if (c->upvalues[i].index == index &&
		    c->upvalues[i].is_local == is_local)
			return i;
	if (n == UINT8_COUNT) {
		error("Too many closure variables in function.");
		return 0;
	}
	c->upvalues[n].is_local = is_local;
	c->upvalues[n].index = index;
	return c->fn->nupvalues++;
}

static int resolve_upvalue(compiler *c, const token *name)
{
	if (!c->enclosing)
		return -1;
	int l = resolve_local(c->enclosing, name);
	if (l != -1) {
		c->enclosing->locals[l].captured = true;
		return add_upvalue(c, (uint8_t)l, true);
	}
	int u = resolve_upvalue(c->enclosing, name);
	if (u != -1)
		return add_upvalue(c, (uint8_t)u, false);
	return -1;
}

static void add_local(token name)
{
	if (current->nlocals == UINT8_COUNT) {
		error("Too many local variables in function.");
		return;
	}
	local *l = &current->locals[current->nlocals++];
	l->name = name;
	l->depth = -1;
	l->captured = false;
}

static void declare_variable(void)
{
	if (current->depth == 0)
		return;
	const token *name = &ps.prev;
	for (int i = current->nlocals - 1; i >= 0; i--) {
		local *l = &current->locals[i];
		if (l->depth != -1 && l->depth < current->depth)
			break;
		if (same_name(name, &l->name))
			error("Already a variable with this name in this "
			      "scope.");
	}
	add_local(*name);
}

static uint8_t parse_variable(const char *msg)
{
	consume(T_IDENTIFIER, msg);
	declare_variable();
	if (current->depth > 0)
		return 0;
	return identifier_constant(&ps.prev);
}

static void mark_initialized(void)
{
	if (current->depth == 0)
		return;
	current->locals[current->nlocals - 1].depth = current->depth;
}

static void define_variable(uint8_t global)
{
	if (current->depth > 0) {
		mark_initialized();
		return;
	}
	emit2(OP_DEFINE_GLOBAL, global);
}

static void named_variable(token name, bool can_assign)
{
	uint8_t get, set;
	int arg = resolve_local(current, &name);
	if (arg != -1) {
		get = OP_GET_LOCAL;
		set = OP_SET_LOCAL;
	} else if ((arg = resolve_upvalue(current, &name)) != -1) {
		get = OP_GET_UPVALUE;
		set = OP_SET_UPVALUE;
	} else {
		arg = identifier_constant(&name);
		get = OP_GET_GLOBAL;
		set = OP_SET_GLOBAL;
	}
	if (can_assign && match(T_EQUAL)) {
		expression();
		emit2(set, (uint8_t)arg);
	} else {
		emit2(get, (uint8_t)arg);
	}
}

static token synthetic(const char *text)
{
	return (token){T_IDENTIFIER, text, (int)strlen(text), 0};
}

/* ---- Expressions ------------------------------------------------------- */

static uint8_t argument_list(void)
{
	int n = 0;
	if (!check(T_RIGHT_PAREN)) {
		do {
			expression();
			if (n == 255)
				error("Can't have more than 255 arguments.");
			n++;
		} while (match(T_COMMA));
	}
	consume(T_RIGHT_PAREN, "Expect ')' after arguments.");
	return (uint8_t)n;
}

static void and_(bool can_assign)
{
	int end = emit_jump(OP_JUMP_IF_FALSE);
	emit(OP_POP);
	parse_precedence(P_AND);
	patch_jump(end);
}

static void or_(bool can_assign)
{
	int else_jump = emit_jump(OP_JUMP_IF_FALSE);
	int end = emit_jump(OP_JUMP);
	patch_jump(else_jump);
	emit(OP_POP);
	parse_precedence(P_OR);
	patch_jump(end);
}

static void binary(bool can_assign)
{
	token_kind op = ps.prev.kind;
	parse_precedence((prec)(get_rule(op)->precedence + 1));
	switch (op) {
	case T_BANG_EQUAL:
		emit2(OP_EQUAL, OP_NOT);
		break;
	case T_EQUAL_EQUAL:
		emit(OP_EQUAL);
		break;
	case T_GREATER:
		emit(OP_GREATER);
		break;
	case T_GREATER_EQUAL:
		emit2(OP_LESS, OP_NOT);
		break;
	case T_LESS:
		emit(OP_LESS);
		break;
	case T_LESS_EQUAL:
		emit2(OP_GREATER, OP_NOT);
		break;
	case T_PLUS:
		emit(OP_ADD);
		break;
	case T_MINUS:
		emit(OP_SUBTRACT);
		break;
	case T_STAR:
		emit(OP_MULTIPLY);
		break;
	case T_SLASH:
		emit(OP_DIVIDE);
		break;
	default:
		abort();
	}
}

static void call(bool can_assign)
{
	emit2(OP_CALL, argument_list());
}

static void dot(bool can_assign)
{
	consume(T_IDENTIFIER, "Expect property name after '.'.");
	uint8_t name = identifier_constant(&ps.prev);
	if (can_assign && match(T_EQUAL)) {
		expression();
		emit2(OP_SET_PROPERTY, name);
	} else if (match(T_LEFT_PAREN)) {
		uint8_t argc = argument_list();
		emit2(OP_INVOKE, name);
		emit(argc);
	} else {
		emit2(OP_GET_PROPERTY, name);
	}
}

static void literal(bool can_assign)
{
	switch (ps.prev.kind) {
	case T_FALSE:
		emit(OP_FALSE);
		break;
	case T_NIL:
		emit(OP_NIL);
		break;
	case T_TRUE:
		emit(OP_TRUE);
		break;
	default:
		abort();
	}
}

static void grouping(bool can_assign)
{
	expression();
	consume(T_RIGHT_PAREN, "Expect ')' after expression.");
}

static void number(bool can_assign)
{
	emit_constant(number_val(strtod(ps.prev.start, NULL)));
}

static void string(bool can_assign)
{
	emit_constant(obj_val(copy_string(ps.prev.start + 1, ps.prev.len - 2)));
}

static void variable(bool can_assign)
{
	named_variable(ps.prev, can_assign);
}

static void super_(bool can_assign)
{
	if (!current_class)
		error("Can't use 'super' outside of a class.");
	else if (!current_class->has_super)
		error("Can't use 'super' in a class with no superclass.");
	consume(T_DOT, "Expect '.' after 'super'.");
	consume(T_IDENTIFIER, "Expect superclass method name.");
	uint8_t name = identifier_constant(&ps.prev);
	named_variable(synthetic("this"), false);
	if (match(T_LEFT_PAREN)) {
		uint8_t argc = argument_list();
		named_variable(synthetic("super"), false);
		emit2(OP_SUPER_INVOKE, name);
		emit(argc);
	} else {
		named_variable(synthetic("super"), false);
		emit2(OP_GET_SUPER, name);
	}
}

static void this_(bool can_assign)
{
	if (!current_class) {
		error("Can't use 'this' outside of a class.");
		return;
	}
	variable(false);
}

static void unary(bool can_assign)
{
	token_kind op = ps.prev.kind;
	parse_precedence(P_UNARY);
	emit(op == T_BANG ? OP_NOT : OP_NEGATE);
}

static const rule rules[T_KINDS] = {
    [T_LEFT_PAREN] = {grouping, call, P_CALL},
    [T_DOT] = {NULL, dot, P_CALL},
    [T_MINUS] = {unary, binary, P_TERM},
    [T_PLUS] = {NULL, binary, P_TERM},
    [T_SLASH] = {NULL, binary, P_FACTOR},
    [T_STAR] = {NULL, binary, P_FACTOR},
    [T_BANG] = {unary, NULL, P_NONE},
    [T_BANG_EQUAL] = {NULL, binary, P_EQUALITY},
    [T_EQUAL_EQUAL] = {NULL, binary, P_EQUALITY},
    [T_GREATER] = {NULL, binary, P_COMPARISON},
    [T_GREATER_EQUAL] = {NULL, binary, P_COMPARISON},
    [T_LESS] = {NULL, binary, P_COMPARISON},
    [T_LESS_EQUAL] = {NULL, binary, P_COMPARISON},
    [T_IDENTIFIER] = {variable, NULL, P_NONE},
    [T_STRING] = {string, NULL, P_NONE},
    [T_NUMBER] = {number, NULL, P_NONE},
    [T_AND] = {NULL, and_, P_AND},
    [T_OR] = {NULL, or_, P_OR},
    [T_FALSE] = {literal, NULL, P_NONE},
    [T_NIL] = {literal, NULL, P_NONE},
    [T_TRUE] = {literal, NULL, P_NONE},
    [T_SUPER] = {super_, NULL, P_NONE},
    [T_THIS] = {this_, NULL, P_NONE},
};

static const rule *get_rule(token_kind k)
{
	return &rules[k];
}

/* Nesting of statements, expressions and functions: each level is a C
 * call (a function's holds a compiler of ~9 KB), so a deep enough source
 * overflowed the compiler's C stack. NEST_MAX counts those calls (a
 * nested block is two: its declaration and its statement, so about 1000
 * blocks). Past these limits: one error, and the rest of the source is
 * skipped (every parsing loop ends at EOF). */
#define NEST_MAX 2000
#define FUN_NEST_MAX 128
static int nest, fun_nest;

static bool nest_ok(int *n, int max)
{
	if (*n < max) {
		++*n;
		return true;
	}
	error_at_current("Too much nesting.");
	ps.gave_up = true;
	while (ps.cur.kind != T_EOF)
		advance();
	return false;
}

static void parse_precedence_in(prec p);

static void parse_precedence(prec p)
{
	if (!nest_ok(&nest, NEST_MAX))
		return;
	parse_precedence_in(p);
	nest--;
}

static void parse_precedence_in(prec p)
{
	advance();
	parse_fn prefix = get_rule(ps.prev.kind)->prefix;
	if (!prefix) {
		error("Expect expression.");
		return;
	}
	bool can_assign = p <= P_ASSIGNMENT;
	prefix(can_assign);
	while (p <= get_rule(ps.cur.kind)->precedence) {
		advance();
		get_rule(ps.prev.kind)->infix(can_assign);
	}
	if (can_assign && match(T_EQUAL))
		error("Invalid assignment target.");
}

static void expression(void)
{
	parse_precedence(P_ASSIGNMENT);
}

/* ---- Declarations and statements --------------------------------------- */

static void block(void)
{
	while (!check(T_RIGHT_BRACE) && !check(T_EOF))
		declaration();
	consume(T_RIGHT_BRACE, "Expect '}' after block.");
}

static void function_in(fn_kind kind);

static void function(fn_kind kind)
{
	if (!nest_ok(&fun_nest, FUN_NEST_MAX))
		return;
	function_in(kind);
	fun_nest--;
}

static void function_in(fn_kind kind)
{
	compiler c;
	compiler_begin(&c, kind);
	begin_scope();
	consume(T_LEFT_PAREN, "Expect '(' after function name.");
	if (!check(T_RIGHT_PAREN)) {
		do {
			current->fn->arity++;
			if (current->fn->arity > 255)
				error_at_current("Can't have more than 255 "
				                 "parameters.");
			define_variable(
			    parse_variable("Expect parameter name."));
		} while (match(T_COMMA));
	}
	consume(T_RIGHT_PAREN, "Expect ')' after parameters.");
	consume(T_LEFT_BRACE, "Expect '{' before function body.");
	block();
	lfunction *fn = compiler_end();
	emit2(OP_CLOSURE, make_constant(obj_val(fn)));
	for (int i = 0; i < fn->nupvalues; i++)
		emit2(c.upvalues[i].is_local ? 1 : 0, c.upvalues[i].index);
}

static void method(void)
{
	consume(T_IDENTIFIER, "Expect method name.");
	uint8_t name = identifier_constant(&ps.prev);
	fn_kind kind = FN_METHOD;
	if (ps.prev.len == 4 && !memcmp(ps.prev.start, "init", 4))
		kind = FN_INITIALIZER;
	function(kind);
	emit2(OP_METHOD, name);
}

static void class_declaration(void)
{
	consume(T_IDENTIFIER, "Expect class name.");
	token class_name = ps.prev;
	uint8_t name = identifier_constant(&ps.prev);
	declare_variable();
	emit2(OP_CLASS, name);
	define_variable(name);

	class_compiler cc = {current_class, false};
	current_class = &cc;
	if (match(T_LESS)) {
		consume(T_IDENTIFIER, "Expect superclass name.");
		variable(false);
		if (same_name(&class_name, &ps.prev))
			error("A class can't inherit from itself.");
		begin_scope();
		add_local(synthetic("super"));
		define_variable(0);
		named_variable(class_name, false);
		emit(OP_INHERIT);
		cc.has_super = true;
	}
	named_variable(class_name, false);
	consume(T_LEFT_BRACE, "Expect '{' before class body.");
	while (!check(T_RIGHT_BRACE) && !check(T_EOF))
		method();
	consume(T_RIGHT_BRACE, "Expect '}' after class body.");
	emit(OP_POP);
	if (cc.has_super)
		end_scope();
	current_class = cc.enclosing;
}

static void fun_declaration(void)
{
	uint8_t global = parse_variable("Expect function name.");
	mark_initialized();
	function(FN_FUNCTION);
	define_variable(global);
}

static void var_declaration(void)
{
	uint8_t global = parse_variable("Expect variable name.");
	if (match(T_EQUAL))
		expression();
	else
		emit(OP_NIL);
	consume(T_SEMICOLON, "Expect ';' after variable declaration.");
	define_variable(global);
}

static void expression_statement(void)
{
	expression();
	consume(T_SEMICOLON, "Expect ';' after expression.");
	emit(OP_POP);
}

static void for_statement(void)
{
	begin_scope();
	consume(T_LEFT_PAREN, "Expect '(' after 'for'.");
	if (match(T_VAR))
		var_declaration();
	else if (!match(T_SEMICOLON))
		expression_statement();

	int loop_start = cur_chunk()->count;
	int exit_jump = -1;
	if (!match(T_SEMICOLON)) {
		expression();
		consume(T_SEMICOLON, "Expect ';' after loop condition.");
		exit_jump = emit_jump(OP_JUMP_IF_FALSE);
		emit(OP_POP);
	}
	if (!match(T_RIGHT_PAREN)) {
		int body_jump = emit_jump(OP_JUMP);
		int inc_start = cur_chunk()->count;
		expression();
		emit(OP_POP);
		consume(T_RIGHT_PAREN, "Expect ')' after for clauses.");
		emit_loop(loop_start);
		loop_start = inc_start;
		patch_jump(body_jump);
	}
	statement();
	emit_loop(loop_start);
	if (exit_jump != -1) {
		patch_jump(exit_jump);
		emit(OP_POP);
	}
	end_scope();
}

static void if_statement(void)
{
	consume(T_LEFT_PAREN, "Expect '(' after 'if'.");
	expression();
	consume(T_RIGHT_PAREN, "Expect ')' after condition.");
	int then_jump = emit_jump(OP_JUMP_IF_FALSE);
	emit(OP_POP);
	statement();
	int else_jump = emit_jump(OP_JUMP);
	patch_jump(then_jump);
	emit(OP_POP);
	if (match(T_ELSE))
		statement();
	patch_jump(else_jump);
}

static void print_statement(void)
{
	expression();
	consume(T_SEMICOLON, "Expect ';' after value.");
	emit(OP_PRINT);
}

static void return_statement(void)
{
	if (current->kind == FN_SCRIPT)
		error("Can't return from top-level code.");
	if (match(T_SEMICOLON)) {
		emit_return();
		return;
	}
	if (current->kind == FN_INITIALIZER)
		error("Can't return a value from an initializer.");
	expression();
	consume(T_SEMICOLON, "Expect ';' after return value.");
	emit(OP_RETURN);
}

static void while_statement(void)
{
	int loop_start = cur_chunk()->count;
	consume(T_LEFT_PAREN, "Expect '(' after 'while'.");
	expression();
	consume(T_RIGHT_PAREN, "Expect ')' after condition.");
	int exit_jump = emit_jump(OP_JUMP_IF_FALSE);
	emit(OP_POP);
	statement();
	emit_loop(loop_start);
	patch_jump(exit_jump);
	emit(OP_POP);
}

static void synchronize(void)
{
	ps.panic = false;
	while (ps.cur.kind != T_EOF) {
		if (ps.prev.kind == T_SEMICOLON)
			return;
		switch (ps.cur.kind) {
		case T_CLASS:
		case T_FUN:
		case T_VAR:
		case T_FOR:
		case T_IF:
		case T_WHILE:
		case T_PRINT:
		case T_RETURN:
			return;
		default:
			advance();
		}
	}
}

static void declaration_in(void);

static void declaration(void)
{
	if (!nest_ok(&nest, NEST_MAX))
		return;
	declaration_in();
	nest--;
}

static void declaration_in(void)
{
	if (match(T_CLASS))
		class_declaration();
	else if (match(T_FUN))
		fun_declaration();
	else if (match(T_VAR))
		var_declaration();
	else
		statement();
	if (ps.panic)
		synchronize();
}

static void statement_in(void);

static void statement(void)
{
	if (!nest_ok(&nest, NEST_MAX))
		return;
	statement_in();
	nest--;
}

static void statement_in(void)
{
	if (match(T_PRINT)) {
		print_statement();
	} else if (match(T_FOR)) {
		for_statement();
	} else if (match(T_IF)) {
		if_statement();
	} else if (match(T_RETURN)) {
		return_statement();
	} else if (match(T_WHILE)) {
		while_statement();
	} else if (match(T_LEFT_BRACE)) {
		begin_scope();
		block();
		end_scope();
	} else {
		expression_statement();
	}
}

lfunction *compile(const char *source)
{
	compiler c;
	scanner_init(source);
	current = NULL;
	current_class = NULL;
	compiler_begin(&c, FN_SCRIPT);
	ps.had_error = false;
	ps.panic = false;
	ps.gave_up = false;
	nest = fun_nest = 0;
	advance();
	while (!match(T_EOF))
		declaration();
	lfunction *fn = compiler_end();
	return ps.had_error ? NULL : fn;
}
