/* runtime/rootcheck.c: GCHEAP_DEBUG=rootcheck=1|2, the globals an embedder
 * forgot to register.
 *
 * gcheap scans no global variables (docs/api.md, "What is scanned"): an
 * object whose only pointer sits in an unregistered global is freed. In
 * this mode, at each mark termination (world stopped, marking complete),
 * the writable PT_LOAD segments of every loaded object (dl_iterate_phdr)
 * are scanned conservatively: a word that points into an allocated object
 * the mark left unmarked is such a pointer. The object is reported with
 * the global's symbol and offset (dladdr1; the file and offset when the
 * symbol is not in the dynamic symbol table) and its type (rootcheck turns
 * type recording on). rootcheck=1 warns once per object and keeps it
 * alive (it is greyed, and the collector marks from it), so the program
 * goes on working; rootcheck=2 aborts at the first. A registered global
 * (gc_add_roots) is a root, so what it points to is marked: silent.
 *
 * Objects warned about at the last check are kept in `warned` (sorted,
 * malloc'd): an object still kept only by a global is not reported again.
 * A global array that a pushed gc_frame covers in part (a VM's value
 * stack) holds stale values past the frame's live slots: those words,
 * to the end of the global, are skipped (frame_tails). */
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct addrs {
	uintptr_t *v;
	size_t n, cap;
} addrs;

static addrs warned; /* sorted; the objects reported at the last check */

static bool push(addrs *a, uintptr_t x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		uintptr_t *v = realloc(a->v, cap * sizeof(*v));
		if (!v)
			return false;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return true;
}

static int cmp_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static bool contains(const addrs *a, uintptr_t x)
{
	return a->n && bsearch(&x, a->v, a->n, sizeof(x), cmp_addr);
}

/* dl_iterate_phdr: collect the writable loaded segments, as pairs of
 * bounds. */
static int add_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
	addrs *a = arg;
	(void)size;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (!push(a, lo) || !push(a, lo + ph->p_memsz))
			return 1;
	}
	return 0;
}

/* The loaded object `at` lies in (false: none), and in *end the end of
 * the dynamic symbol that holds it (0: no symbol holds it). */
static bool global_at(uintptr_t at, Dl_info *info, uintptr_t *end)
{
	const ElfW(Sym) *sym = NULL;

	*end = 0;
	if (!dladdr1((void *)at, info, (void **)&sym, RTLD_DL_SYMENT))
		return false;
	if (info->dli_sname && info->dli_saddr && sym &&
	    at < (uintptr_t)info->dli_saddr + sym->st_size)
		*end = (uintptr_t)info->dli_saddr + sym->st_size;
	return true;
}

/* "name+off", or "file+off" when the symbol is not known. */
static void describe_global(char *buf, size_t n, uintptr_t at)
{
	Dl_info info;
	uintptr_t end;

	if (!global_at(at, &info, &end)) {
		snprintf(buf, n, "%p (no loaded object)", (void *)at);
		return;
	}
	if (end)
		snprintf(buf, n, "%s+%zu", info.dli_sname,
		         (size_t)(at - (uintptr_t)info.dli_saddr));
	else
		snprintf(buf, n, "%s+%#zx (no dynamic symbol: link with "
		         "-rdynamic to name it)",
		         info.dli_fname ? info.dli_fname : "?",
		         (size_t)(at - (uintptr_t)info.dli_fbase));
}

static void report(uintptr_t obj, mspan *s, uintptr_t at, bool fatal_)
{
	char where[320];
	const gc_type *t = mspan_object_type(s, mspan_object_index(s, obj));
	const char *name = t ? t->name : spanclass_noscan(s->spc) ?
	                   "none: noscan" : "not recorded";

	describe_global(where, sizeof(where), at);
	if (fatal_)
		fatal("rootcheck: object %p (type %s, %zu bytes) is referenced "
		      "only from the unregistered global %s at %p and would be "
		      "freed: gcheap does not scan globals; register it with "
		      "gc_add_roots (and store into it with gc_write)",
		      (void *)obj, name, (size_t)s->elemsize, where,
		      (void *)at);
	int cs = cancel_off(); /* the world is stopped (alloc/sys/lock.h) */
	fprintf(stderr, "gcheap: rootcheck: object %p (type %s, %zu bytes) is "
	        "referenced only from the unregistered global %s at %p and "
	        "would be freed: gcheap does not scan globals; register it "
	        "with gc_add_roots (and store into it with gc_write). Kept "
	        "alive; not reported again while so kept\n", (void *)obj,
	        name, (size_t)s->elemsize, where, (void *)at);
	cancel_restore(cs);
}

/* The dead slots of the frames whose slot arrays are globals: from a
 * frame's last live slot to the end of the global that holds its array
 * (a VM's value stack, covered by a frame whose length follows the stack
 * top: the words above it are stale values, no roots; reported, each
 * looked like a forgotten global, and the Lox VM printed hundreds).
 * Pairs of bounds; world stopped, so the frames hold still. */
static void frame_tails(addrs *tails)
{
	for (gc_thread *t = runtime_.threads; t; t = t->next)
		for (gc_frame *f = t->frames; f; f = f->prev) {
			Dl_info info;
			uintptr_t end, lo = (uintptr_t)(f->slots + f->nslots);
			if (global_at((uintptr_t)f->slots, &info, &end) &&
			    lo < end && (!push(tails, lo) || !push(tails, end)))
				return;
		}
}

static bool in_tails(const addrs *tails, uintptr_t p)
{
	for (size_t i = 0; i + 1 < tails->n; i += 2)
		if (p >= tails->v[i] && p < tails->v[i + 1])
			return true;
	return false;
}

/* Reads words of other objects' data, redzones included (ASan), written
 * by threads that are not stopped (TSan); only compared with the heap. */
__attribute__((no_sanitize_address, no_sanitize_thread, noinline))
static void scan_range(gcw *w, uintptr_t lo, uintptr_t hi,
                       const addrs *tails, addrs *found, bool *greyed)
{
	/* The heap's own state holds heap addresses that are not roots
	 * (the range being faulted in ahead, which may start inside a dead
	 * object): in a static link it lies in the program's segment. */
	const uintptr_t own_lo = (uintptr_t)&mheap_,
	                own_hi = (uintptr_t)(&mheap_ + 1);
	for (uintptr_t p = align_up(lo, sizeof(uintptr_t));
	     p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
		if (p >= own_lo && p < own_hi) {
			p = align_up(own_hi, sizeof(uintptr_t)) -
			    sizeof(uintptr_t);
			continue;
		}
		uintptr_t v = *(volatile uintptr_t *)p;
		mspan *s = NULL;
		uintptr_t obj;
		/* A weak cell whose target lives is kept by sweep, marked
		 * or not: not freed, and not reported as if it were. */
		if (!v || !spanof(v) || !(obj = mheap_find_object(v, &s)) ||
		    gcmark_is_marked(obj) || in_tails(tails, p) ||
		    runtime_weak_cell_kept(obj, s))
			continue;
		if (options_.rootcheck >= 2)
			report(obj, s, p, true);
		if (!contains(&warned, obj))
			report(obj, s, p, false);
		push(found, obj);
		gcmark_value(w, obj, false, 0, 0);
		*greyed = true;
	}
}

bool runtime_rootcheck(gcw *w)
{
	addrs segs = {0}, found = {0}, tails = {0};
	bool greyed = false;

	if (dl_iterate_phdr(add_segments, &segs))
		fprintf(stderr, "gcheap: rootcheck: no memory for the list of "
		        "segments: some were not checked\n");
	frame_tails(&tails);
	for (size_t i = 0; i + 1 < segs.n; i += 2)
		scan_range(w, segs.v[i], segs.v[i + 1], &tails, &found,
		           &greyed);
	free(segs.v);
	free(tails.v);
	/* The objects still kept only by globals: not reported again. */
	if (found.n)
		qsort(found.v, found.n, sizeof(*found.v), cmp_addr);
	free(warned.v);
	warned = found;
	return greyed;
}
