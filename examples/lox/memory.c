/* examples/lox/memory.c: the Lox VM's side of the heap: the pointer maps
 * of its object kinds, the one allocation entry point, array growth, the
 * script-level stress mode and the statistics report.
 *
 * Invariants: every VM object comes from lox_alloc, which first brings the
 * VM's precise root frames up to date (the stack and call-frame lengths),
 * because any allocation may be a safepoint at which this thread scans its
 * own roots; so does every other call into gcheap that is a safepoint
 * (lox_gc_point). LOX_GC_STRESS=N runs a full collection at every N-th
 * such point (N=1: every allocation, weak-reference read and loop back
 * edge), so a cycle can start anywhere gcheap could start one.
 * LOX_GC_LIMIT=N[k|m] caps the heap (gc_set_memory_limit): a program whose
 * garbage were not collected runs out of memory and exits
 * 70. Nothing is freed here or anywhere else. */
#include "lox.h"

#include <stddef.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

lox_type_table lox_types;

static struct {
	unsigned long every; /* LOX_GC_STRESS */
	unsigned long count;
	uint64_t allocs;
} stress;

static gc_type *make_type(const char *name, size_t size, const size_t *offs,
                          size_t n, unsigned tail)
{
	gc_type *t = gc_type_new(name, size, offs, n, tail);
	if (!t) {
		fprintf(stderr, "lox: cannot make type %s\n", name);
		exit(70);
	}
	return t;
}

void lox_memory_init(void)
{
	static const size_t fn_ptrs[] = {
	    offsetof(lfunction, name), offsetof(lfunction, ch.code),
	    offsetof(lfunction, ch.lines), offsetof(lfunction, ch.consts.v)};
	static const size_t closure_ptrs[] = {offsetof(lclosure, fn)};
	static const size_t up_ptrs[] = {offsetof(lupvalue, closed),
	                                 offsetof(lupvalue, next)};
	static const size_t class_ptrs[] = {offsetof(lclass, name),
	                                    offsetof(lclass, methods.e)};
	static const size_t inst_ptrs[] = {offsetof(linstance, klass),
	                                   offsetof(linstance, fields.e)};
	static const size_t bound_ptrs[] = {offsetof(lbound, receiver),
	                                    offsetof(lbound, method)};
	static const size_t entry_ptrs[] = {offsetof(entry, key),
	                                    offsetof(entry, v)};
	static const size_t value_ptrs[] = {0};
	lox_type_table *t = &lox_types;

	/* strings and natives hold no heap pointers: noscan (NULL) */
	t->kind[OBJ_FUNCTION] = make_type("lox.function", sizeof(lfunction),
	                                  fn_ptrs, 4, GCHEAP_TAIL_NOSCAN);
	t->kind[OBJ_CLOSURE] = make_type("lox.closure", sizeof(lclosure),
	                                 closure_ptrs, 1, GCHEAP_TAIL_POINTERS);
	t->kind[OBJ_UPVALUE] = make_type("lox.upvalue", sizeof(lupvalue),
	                                 up_ptrs, 2, GCHEAP_TAIL_NOSCAN);
	t->kind[OBJ_CLASS] = make_type("lox.class", sizeof(lclass), class_ptrs,
	                               2, GCHEAP_TAIL_NOSCAN);
	t->kind[OBJ_INSTANCE] = make_type("lox.instance", sizeof(linstance),
	                                  inst_ptrs, 2, GCHEAP_TAIL_NOSCAN);
	t->kind[OBJ_BOUND] = make_type("lox.bound", sizeof(lbound), bound_ptrs,
	                               2, GCHEAP_TAIL_NOSCAN);
	t->entries = make_type("lox.entry", sizeof(entry), entry_ptrs, 2,
	                       GCHEAP_TAIL_REPEAT);
	t->values = make_type("lox.value", sizeof(value), value_ptrs, 1,
	                      GCHEAP_TAIL_REPEAT);

	const char *s = getenv("LOX_GC_STRESS");
	if (s && *s)
		stress.every = strtoul(s, NULL, 0);
	s = getenv("LOX_GC_LIMIT");
	if (s && *s) {
		char *end;
		size_t n = strtoull(s, &end, 0);
		if (*end == 'k' || *end == 'K')
			n <<= 10;
		else if (*end == 'm' || *end == 'M')
			n <<= 20;
		gc_set_memory_limit(n);
	}
}

void lox_gc_point(void)
{
	vm_sync_roots();
	if (stress.every && ++stress.count >= stress.every) {
		stress.count = 0;
		gc_collect();
	}
}

void *lox_alloc(size_t size, const gc_type *type)
{
	stress.allocs++;
	lox_gc_point();
	void *p = gc_alloc(size, type);
	if (!p) {
		/* gcheap's error handler has printed why */
		fprintf(stderr, "lox: out of memory\n");
		exit(70);
	}
	return p;
}

void *lox_grow(const void *old, size_t ncount, size_t ncap, size_t esize,
               const gc_type *type)
{
	void *p = lox_alloc(ncap * esize, type);
	if (ncount) {
		if (type)
			gc_copy(p, old, ncount * esize);
		else
			memcpy(p, old, ncount * esize);
	}
	return p;
}

void lox_collect(void)
{
	vm_sync_roots();
	gc_collect();
}

void lox_print_stats(void)
{
	gc_stats st;
	struct rusage ru;

	gc_read_stats(&st, sizeof(st));
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
	        "gc: cycles %llu, pause max %.3f ms, pause total %.3f ms, "
	        "peak rss %ld KiB, allocated %llu MiB in %llu objects, "
	        "heap live %llu KiB, vm allocations %llu\n",
	        (unsigned long long)st.gc_cycles, st.pause_max_ns / 1e6,
	        st.pause_total_ns / 1e6, ru.ru_maxrss,
	        (unsigned long long)(st.alloc_bytes >> 20),
	        (unsigned long long)st.alloc_objects,
	        (unsigned long long)(st.heap_live >> 10),
	        (unsigned long long)stress.allocs);
}
