/* examples/lox/main.c: the `lox` command: run a script (exit 65 on a
 * compile error, 70 on a runtime error, as the reference clox does) or,
 * with no argument, a REPL.
 *
 * It attaches the thread, switches conservative stack scanning off (every
 * root of the VM is precise: frames and registered ranges) and, with
 * LOX_GC_STATS=1, prints the collector's statistics on stderr at exit. */
#include "lox.h"

#include <stdlib.h>

static void repl(void)
{
	char line[1024];
	for (;;) {
		printf("> ");
		fflush(stdout);
		/* waiting for input: the collector need not wait for us,
		 * and scans our frames as they are now */
		vm_sync_roots();
		gc_blocking_begin();
		char *got = fgets(line, sizeof(line), stdin);
		gc_blocking_end();
		if (!got) {
			printf("\n");
			break;
		}
		interpret(line);
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "Could not open file \"%s\".\n", path);
		exit(74);
	}
	fseek(f, 0L, SEEK_END);
	size_t size = (size_t)ftell(f);
	rewind(f);
	/* the source lives outside the heap: tokens point into it */
	char *buf = malloc(size + 1);
	if (!buf) {
		fprintf(stderr, "Not enough memory to read \"%s\".\n", path);
		exit(74);
	}
	size_t n = fread(buf, 1, size, f);
	if (n < size) {
		fprintf(stderr, "Could not read file \"%s\".\n", path);
		exit(74);
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int run_file(const char *path)
{
	char *source = read_file(path);
	interpret_result r = interpret(source);
	free(source);
	if (r == INTERPRET_COMPILE_ERROR)
		return 65;
	if (r == INTERPRET_RUNTIME_ERROR)
		return 70;
	return 0;
}

int main(int argc, char **argv)
{
	int status = 0;

	if (argc > 2) {
		fprintf(stderr, "Usage: lox [path]\n");
		return 64;
	}
	if (gc_thread_attach() != GCHEAP_OK)
		return 70;
	gc_set_conservative_stacks(0);
	lox_memory_init();
	intern_init();
	vm_init();
	if (argc == 1)
		repl();
	else
		status = run_file(argv[1]);
	fflush(stdout);
	const char *st = getenv("LOX_GC_STATS");
	if (st && *st == '1')
		lox_print_stats();
	vm_free();
	gc_thread_detach();
	return status;
}
