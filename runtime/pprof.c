/* runtime/pprof.c: the heap profile as this process sees it, gathered in
 * one place for its two writers: gc_write_heap_profile (below: the
 * profile encoded by format/pprof.c) and gc_heap_dump (its profile
 * records, runtime/heapdump.c).
 *
 * mprof_snapshot copies the profiler's buckets (runtime/mprof.c; their
 * counters are read one by one, so a bucket may show a free whose
 * allocation it does not yet: the encoder clamps it), every executable
 * mapping (dl_iterate_phdr: file, page-aligned start, limit and file
 * offset as /proc/self/maps has them, GNU build id) and the name of each
 * sampled pc's function by dladdr (the dynamic symbol table: a program
 * linked with -rdynamic, or a shared library's exports). pprof
 * symbolizes the addresses again from the binary when it can read it;
 * the names are for when it cannot (another machine, a deleted binary).
 *
 * dl_iterate_phdr and dladdr take the dynamic loader's lock: never call
 * mprof_snapshot with the world stopped (a stopped thread may hold it). */
#include "runtime/pprof.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Mappings (dl_iterate_phdr) ------------------------------------------ */

typedef struct maps {
	pprof_profile *p;
	size_t cap;
	bool oom;
} maps;

/* The GNU build id of a PT_NOTE segment as hex into id, if it has one. */
static void note_build_id(const struct dl_phdr_info *info,
                          const ElfW(Phdr) *ph, char id[2 * 64 + 1])
{
	const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
	const uint8_t *end = p + ph->p_memsz;

	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
		const uint8_t *name = p + sizeof(*nh);
		const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
		const uint8_t *next = desc + ((nh->n_descsz + 3) & ~3u);
		if (next > end)
			return;
		if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
		    !memcmp(name, "GNU", 4) && nh->n_descsz <= 64) {
			for (unsigned i = 0; i < nh->n_descsz; i++)
				snprintf(id + 2 * i, 3, "%02x", desc[i]);
			return;
		}
		p = next;
	}
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	maps *ms = arg;
	pprof_profile *p = ms->p;
	char file[512] = "", id[2 * 64 + 1] = "";
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);

	(void)size;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(file, sizeof(file), "%s", info->dlpi_name);
	} else if (p->nmappings == 0) {
		/* The first object is the program itself. */
		ssize_t k = readlink("/proc/self/exe", file, sizeof(file) - 1);
		file[k > 0 ? k : 0] = 0;
	} else {
		return 0; /* the vDSO and the like */
	}
	for (int i = 0; i < info->dlpi_phnum && !id[0]; i++)
		if (info->dlpi_phdr[i].p_type == PT_NOTE)
			note_build_id(info, &info->dlpi_phdr[i], id);
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (p->nmappings == ms->cap) {
			size_t c = ms->cap ? ms->cap * 2 : 16;
			pprof_mapping *nm = realloc(p->mappings,
			                            c * sizeof(*nm));
			if (!nm) {
				ms->oom = true;
				return 1;
			}
			p->mappings = nm;
			ms->cap = c;
		}
		pprof_mapping *m = &p->mappings[p->nmappings];
		/* pprof maps an address to a file offset as
		 * addr - start + offset: page-aligned, as /proc/maps. */
		m->start = (info->dlpi_addr + ph->p_vaddr) & ~(pg - 1);
		m->limit = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz +
		            pg - 1) & ~(pg - 1);
		m->offset = ph->p_offset & ~(pg - 1);
		m->file = strdup(file);
		m->build_id = strdup(id);
		if (!m->file || !m->build_id) {
			free(m->file);
			free(m->build_id);
			ms->oom = true;
			return 1;
		}
		p->nmappings++;
	}
	return 0;
}

/* ---- Buckets and names --------------------------------------------------- */

/* The buckets as samples, their stacks in p->pcs. */
static bool copy_buckets(pprof_profile *p)
{
	size_t nb = 0, npc = 0;
	mprof_bucket *all = mprof_buckets(&nb);

	/* The list only grows at its head: count what this walk sees. */
	nb = 0;
	for (mprof_bucket *b = all; b; b = b->all_next, nb++)
		npc += b->nstk;
	p->samples = malloc((nb ? nb : 1) * sizeof(*p->samples));
	p->pcs = malloc((npc ? npc : 1) * sizeof(*p->pcs));
	if (!p->samples || !p->pcs)
		return false;
	for (mprof_bucket *b = all; b; b = b->all_next) {
		pprof_sample *s = &p->samples[p->nsamples++];
		s->allocs = aload(&b->allocs);
		s->alloc_bytes = aload(&b->alloc_bytes);
		s->frees = aload(&b->frees);
		s->free_bytes = aload(&b->free_bytes);
		s->stk = p->npcs;
		s->nstk = b->nstk;
		for (unsigned i = 0; i < b->nstk; i++)
			p->pcs[p->npcs++] = b->stk[i];
	}
	return true;
}

/* The dladdr name of each distinct sampled pc that has one. */
static bool name_pcs(pprof_profile *p)
{
	size_t nu = 0;
	uint64_t *pcs = pprof_distinct_pcs(p, &nu);

	if (!pcs)
		return false;
	p->names = malloc((nu ? nu : 1) * sizeof(*p->names));
	bool ok = p->names != NULL;
	for (size_t i = 0; i < nu && ok; i++) {
		Dl_info info;
		if (!dladdr((void *)(uintptr_t)(pcs[i] - 1), &info) ||
		    !info.dli_sname || !info.dli_sname[0])
			continue;
		pprof_name *n = &p->names[p->nnames];
		n->pc = pcs[i];
		n->name = strdup(info.dli_sname);
		ok = n->name != NULL;
		p->nnames += ok;
	}
	free(pcs);
	return ok;
}

bool mprof_snapshot(pprof_profile *p)
{
	struct timespec ts;
	maps ms = {.p = p};

	memset(p, 0, sizeof(*p));
	clock_gettime(CLOCK_REALTIME, &ts);
	p->rate = mprof_rate();
	p->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	dl_iterate_phdr(each_object, &ms);
	if (ms.oom || !copy_buckets(p) || !name_pcs(p)) {
		pprof_free(p);
		return false;
	}
	return true;
}

gc_status gc_write_heap_profile(const char *path)
{
	pprof_profile p;
	/* The rate is read from the options, parsed at initialisation
	 * (before it, the profiler read 0 and stayed off for good). */
	gc_status st = gc_init();
	if (st != GCHEAP_OK)
		return st;

	if (!path) {
		runtime_error(GCHEAP_ERR_ARG, "gc_write_heap_profile: path is "
		              "NULL");
		return GCHEAP_ERR_ARG;
	}
	if (!mprof_snapshot(&p)) {
		runtime_error(GCHEAP_ERR_NOMEM, "gc_write_heap_profile: no "
		              "memory to build the profile");
		return GCHEAP_ERR_NOMEM;
	}
	int cs = cancel_off(); /* alloc/sys/lock.h */
	int e = pprof_write(&p, path);
	cancel_restore(cs);
	pprof_free(&p);
	if (e == ENOMEM) {
		runtime_error(GCHEAP_ERR_NOMEM, "gc_write_heap_profile: no "
		              "memory to build the profile");
		return GCHEAP_ERR_NOMEM;
	}
	if (e) {
		runtime_error(GCHEAP_ERR_ARG, "gc_write_heap_profile: cannot "
		              "write %s: %s", path, strerror(e));
		return GCHEAP_ERR_ARG;
	}
	runtime_ok();
	return GCHEAP_OK;
}
