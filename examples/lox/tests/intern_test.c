/* examples/lox/tests/intern_test.c: unused interned strings are
 * collected. Runs Lox code that makes thousands of distinct strings and
 * keeps them in a global list, checks they are all interned and alive,
 * drops the list, collects, and checks that the intern table's live
 * entries fell back while a string still referenced survives and is
 * still the canonical copy. With LOX_STRONG_STRINGS=1 (a strong table)
 * the drop check must fail: meson runs that as a should_fail test. */
#include "lox.h"

#include <stdlib.h>

static int failures;

static void expect(bool ok, const char *what, size_t got)
{
	printf("%s %s (%zu)\n", ok ? "ok" : "FAIL", what, got);
	if (!ok)
		failures++;
}

static void run(const char *source)
{
	if (interpret(source) != INTERPRET_OK) {
		printf("FAIL running: %s\n", source);
		exit(1);
	}
}

int main(void)
{
	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(0);
	lox_memory_init();
	intern_init();
	vm_init();

	lox_collect();
	size_t base = intern_live();
	run("class Cell { init(s, next) { this.s = s; this.next = next; } }\n"
	    "var list = nil;\n"
	    "var s = \"k\";\n"
	    "for (var i = 0; i < 5000; i = i + 1) {\n"
	    "  s = s + \"x\";\n"
	    "  list = Cell(s, list);\n"
	    "}\n"
	    "var kept = \"keep\" + \"me\";\n");
	lox_collect();
	size_t full = intern_live();
	expect(full >= base + 5000, "5000 new strings are interned", full);

	run("list = nil; s = nil;");
	lox_collect();
	lox_collect();
	size_t after = intern_live();
	expect(after < base + 100, "the dropped strings were collected", after);

	lstring *k = intern_find("keepme", 6, hash_chars("keepme", 6));
	value v = NIL_VAL;
	lstring *name = copy_string("kept", 4);
	bool found = table_get(&vm_.globals, name, &v);
	expect(k && found && AS_STRING(v) == k,
	       "a referenced string stays canonical", k ? k->len : 0);

	vm_free();
	gc_thread_detach();
	return failures ? 1 : 0;
}
