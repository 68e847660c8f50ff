/* tests/abi/clash.c: a language runtime linked statically to libgcheap.a
 * that defines, for its own use, globals named like gcheap's internal ones
 * (runtime_error, mutex_init, os_commit, sweep_one, mgc_init, gcmark_drain,
 * thread_current). It links only if the archive keeps its internal symbols
 * local (tools/localize-objects.sh); otherwise the link fails with
 * "multiple definition". At run time it checks that each name resolves to
 * its own definition here and that gcheap, using its own, still allocates
 * and collects (test abi/static-link-clash). */
#include <gcheap.h>

#include <stdio.h>
#include <string.h>

/* The runtime's own functions and data, with the names gcheap uses inside. */
int runtime_error(const char *msg);
int mutex_init(int *m);
int os_commit(int n);
int sweep_one(int n);
int mgc_init(void);
int gcmark_drain(int n);
int thread_current;

static int errors;

int runtime_error(const char *msg)
{
	fprintf(stderr, "runtime error: %s\n", msg);
	return ++errors;
}

int mutex_init(int *m)
{
	*m = 7;
	return 1;
}

int os_commit(int n)
{
	return n + 1;
}

int sweep_one(int n)
{
	return n * 2;
}

int mgc_init(void)
{
	return 42;
}

int gcmark_drain(int n)
{
	return n - 1;
}

int main(void)
{
	int m = 0, i, fails = 0;
	void **keep;

	thread_current = 5;
	if (mutex_init(&m) != 1 || m != 7 || os_commit(1) != 2 ||
	    sweep_one(3) != 6 || mgc_init() != 42 || gcmark_drain(9) != 8 ||
	    thread_current != 5) {
		fprintf(stderr, "a name resolved to gcheap's definition\n");
		fails++;
	}

	if (gc_thread_attach() != GCHEAP_OK) {
		fprintf(stderr, "gc_thread_attach failed\n");
		return 1;
	}
	keep = gc_alloc(64 * sizeof(void *), NULL);
	for (i = 0; i < 10000 && keep != NULL; i++) {
		char *p = gc_alloc(100, NULL);

		if (p == NULL)
			break;
		memset(p, i & 0xff, 100);
	}
	if (keep == NULL || i != 10000) {
		fprintf(stderr, "allocation failed: %s\n",
			gc_strerror(gc_last_error()));
		fails++;
	}
	gc_collect();
	if (gc_thread_detach() != GCHEAP_OK)
		fails++;
	if (errors != 0 || thread_current != 5)
		fails++;
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails != 0;
}
