/* tests/abi/dlclose.c: a plugin host dlopens libgcheap.so, uses it (the
 * collector's threads and its SIGURG handler start), dlcloses it and goes
 * on. The library is linked with -z nodelete, so the close leaves it
 * mapped: without that, its threads ran on in unmapped code (SIGSEGV
 * within milliseconds).
 *
 *   abi_dlclose PATH-TO-libgcheap.so     exit 0: the host survived */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	int (*attach)(void), (*detach)(void);
	void *(*alloc)(size_t, const void *);
	void (*collect)(void);
	/* POSIX's way from dlsym's object pointer to a function pointer. */
	*(void **)&attach = dlsym(h, "gc_thread_attach");
	*(void **)&detach = dlsym(h, "gc_thread_detach");
	*(void **)&alloc = dlsym(h, "gc_alloc");
	*(void **)&collect = dlsym(h, "gc_collect");
	if (!attach || !detach || !alloc || !collect || attach() != 0)
		return 1;
	for (int i = 0; i < 200000; i++)
		if (!alloc(64, NULL))
			return 1;
	collect();
	if (detach() != 0 || dlclose(h) != 0)
		return 1;
	usleep(200000); /* the collector's threads run meanwhile */
	raise(SIGURG);  /* gcstat's request signal reaches its handler */
	usleep(50000);
	puts("the host survived dlclose");
	return 0;
}
