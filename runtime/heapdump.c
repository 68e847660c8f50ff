/* runtime/heapdump.c: gc_heap_dump, a snapshot of the heap in the format
 * of docs/heapdump.md (constants in format/heapdump.h).
 *
 * The dump runs a full collection (with automatic ones held off), then
 * stops the world and holds off the sweepers, so that no span, object or
 * pointer changes while it walks: every in-use span, every allocated
 * object in it (below freeindex or alloc bit set), each object's pointer
 * slots (mspan_ptriter) whose values point into an allocated object, and
 * the roots: registered globals, each thread's frames and held slots (as
 * frame roots), and (if stacks are scanned conservatively) each thread's
 * stack words and saved registers that point into an allocated object.
 * Each ephemeron (a weak-map entry too) gets an EPHEMERON record naming
 * its key and value objects, whose pointers the OBJECT records do not
 * show (the key is held through a weak cell, the value is hidden from
 * the scan); the span's specials are read with the world stopped.
 * Objects are named by the type id recorded per object
 * (gc_set_record_types), by the span's type array (scan objects over 512
 * bytes) or the large span's type; 0 otherwise.
 *
 * The heap profile follows the roots (PROFILE, BUCKET, MAPPING and SYMBOL
 * records, from mprof_snapshot: runtime/pprof.c), so that `gcstat profile
 * DUMP` can write the pprof profile without the process. It is gathered
 * after the world restarts (the loader's lock, which dl_iterate_phdr and
 * dladdr take, may be held by a stopped thread) but before collection
 * resumes: sweep is done and no cycle starts, so no free is counted
 * between the heap's walk and the profile (allocations by other threads
 * meanwhile may add samples). */
#include "format/heapdump.h"

#include "runtime/pprof.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct dumper {
	FILE *f;
	uint64_t sum;       /* FNV-1a of everything written */
	uint64_t records;
	uint64_t objects;
	bool err;
	uintptr_t too_big;  /* an object with too many pointers for a
	                     * record (the dump is refused), or 0 */
	size_t too_big_n;
	uint8_t buf[64];    /* the record being built */
	size_t n;
	uintptr_t *ptrs;    /* an object's outgoing pointers */
	uint32_t *offs;     /* and the offsets of their slots */
	size_t nptrs, cap;
} dumper;

static void out(dumper *d, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, d->f) != n)
		d->err = true;
	d->sum = heapdump_fnv(d->sum, p, n);
}

static void put(dumper *d, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		d->buf[d->n++] = (uint8_t)(v >> (8 * i));
}

/* Start a record of `len` payload bytes; its fixed part goes in buf. */
static void begin(dumper *d, unsigned tag, uint32_t len)
{
	d->n = 0;
	put(d, tag, 1);
	put(d, len, 4);
	d->records++;
}

static void flush_buf(dumper *d)
{
	out(d, d->buf, d->n);
	d->n = 0;
}

static void write_types(dumper *d)
{
	for (uint32_t id = 1;; id++) {
		const gc_type *t = gctype_by_id(id);
		if (!t)
			break;
		size_t len = strlen(t->name);
		if (len > 65535)
			len = 65535;
		begin(d, HD_TYPE, (uint32_t)(4 + 8 + 4 + 2 + len));
		put(d, id, 4);
		put(d, t->size, 8);
		put(d, t->noscan ? HD_T_NOSCAN : 0, 4);
		put(d, len, 2);
		flush_buf(d);
		out(d, t->name, len);
	}
}

static uint32_t object_type(const mspan *s, uintptr_t i)
{
	const gc_type *t = NULL;

	if (s->typeids)
		return s->typeids[i];
	if (s->types)
		t = s->types[i];
	else if (spanclass_sizeclass(s->spc) == 0)
		t = s->largetype;
	return t && t->id <= GCTYPE_MAX_ID ? t->id : 0;
}

static void add_ptr(dumper *d, uintptr_t target, uintptr_t off)
{
	if (d->nptrs == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		uintptr_t *p = realloc(d->ptrs, cap * sizeof(*p));
		if (p)
			d->ptrs = p;
		uint32_t *o = realloc(d->offs, cap * sizeof(*o));
		if (o)
			d->offs = o;
		if (!p || !o) {
			d->err = true;
			return;
		}
		d->cap = cap;
	}
	d->offs[d->nptrs] = off > UINT32_MAX ? UINT32_MAX : (uint32_t)off;
	d->ptrs[d->nptrs++] = target;
}

static void write_object(dumper *d, mspan *s, uintptr_t i)
{
	uintptr_t obj = s->base + i * s->elemsize;
	bool noscan = spanclass_noscan(s->spc);
	unsigned flags = (noscan ? HD_F_NOSCAN : 0) |
	                 (mspan_is_tiny_block(s, i) ? HD_F_TINY : 0) |
	                 (spanclass_sizeclass(s->spc) ? 0 : HD_F_LARGE);

	d->nptrs = 0;
	if (!noscan) {
		ptriter it;
		uintptr_t *slot;
		mspan_ptriter(s, obj, &it);
		while ((slot = ptriter_next(&it))) {
			uintptr_t v = *slot, base;
			if (v && (base = mheap_find_object(v, NULL)))
				add_ptr(d, base, (uintptr_t)slot - obj);
		}
	}
	uint64_t size = spanclass_sizeclass(s->spc) ? s->elemsize
	                                             : s->npages * PAGE_SIZE;
	/* A record's payload is at most HEAPDUMP_MAX_RECORD bytes (readers
	 * take more for corruption; past 4 GiB the length wraps): such an
	 * object (a pointer array over 256 MiB) cannot be written, and a
	 * dump without its edges would mislead. Refused, whole. */
	if (d->nptrs > (HEAPDUMP_MAX_RECORD - 25) / 8) {
		if (!d->too_big) {
			d->too_big = obj;
			d->too_big_n = d->nptrs;
		}
		d->err = true;
		d->nptrs = 0;
	}
	begin(d, HD_OBJECT, (uint32_t)(8 + 8 + 4 + 1 + 4 + 8 * d->nptrs));
	put(d, obj, 8);
	put(d, size, 8);
	put(d, object_type(s, i), 4);
	put(d, flags, 1);
	put(d, d->nptrs, 4);
	flush_buf(d);
	for (size_t k = 0; k < d->nptrs; k++) {
		put(d, d->ptrs[k], 8);
		flush_buf(d);
	}
	d->objects++;
	if (!d->nptrs)
		return;
	begin(d, HD_OFFSETS, (uint32_t)(8 + 4 + 4 * d->nptrs));
	put(d, obj, 8);
	put(d, d->nptrs, 4);
	flush_buf(d);
	for (size_t k = 0; k < d->nptrs; k++) {
		put(d, d->offs[k], 4);
		flush_buf(d);
	}
}

/* The object base that p points into, or 0. */
static uintptr_t object_base(uintptr_t p)
{
	return p ? mheap_find_object(p, NULL) : 0;
}

static void write_ephemerons(dumper *d, const mspan *s)
{
	for (const special *sp = s->specials; sp; sp = sp->next) {
		if (sp->kind != SPECIAL_EPHEMERON)
			continue;
		const ephemeron_obj *e = (const ephemeron_obj *)(s->base +
		                                                 sp->offset);
		const weak_cell *cell = (const weak_cell *)aload(&e->key);
		uintptr_t key = cell ? object_base(aload(&cell->target)) : 0;
		begin(d, HD_EPHEMERON, 24);
		put(d, (uintptr_t)e, 8);
		put(d, key, 8);
		put(d, object_base(aload(&e->value)), 8);
		flush_buf(d);
	}
}

static void write_span(mspan *s, void *arg)
{
	dumper *d = arg;
	uintptr_t nalloc = 0;

	for (uintptr_t i = 0; i < s->nelems; i++)
		nalloc += !mspan_is_free(s, i);
	begin(d, HD_SPAN, 8 + 8 + 8 + 4 + 4 + 4 + 1);
	put(d, s->base, 8);
	put(d, s->npages, 8);
	put(d, s->elemsize, 8);
	put(d, spanclass_sizeclass(s->spc), 4);
	put(d, s->nelems, 4);
	put(d, nalloc, 4);
	put(d, (spanclass_noscan(s->spc) ? HD_F_NOSCAN : 0) |
	       (s->spc == TINY_SPANCLASS ? HD_F_TINY : 0), 1);
	flush_buf(d);
	for (uintptr_t i = 0; i < s->nelems; i++)
		if (!mspan_is_free(s, i))
			write_object(d, s, i);
	write_ephemerons(d, s);
}

/* Every in-use span, by address. The world is stopped and sweepers are
 * held off: spans[] does not change. */
static void write_heap(dumper *d)
{
	mheap_each_span(write_span, d);
}

static void root(dumper *d, unsigned kind, uint32_t thread, uintptr_t where,
                 uintptr_t value)
{
	uintptr_t base;

	if (!value || !(base = mheap_find_object(value, NULL)))
		return;
	begin(d, HD_ROOT, 1 + 4 + 8 + 8);
	put(d, kind, 1);
	put(d, thread, 4);
	put(d, where, 8);
	put(d, base, 8);
	flush_buf(d);
}

static void global_root(void **slot, void *arg)
{
	root(arg, HD_ROOT_GLOBAL, 0, (uintptr_t)slot,
	     aload((atomic_word *)slot));
}

/* Reads stack words as gcmark_scan_conservative does: past the sanitizers
 * (ASan redzones, TSan), only to compare them with the heap. */
__attribute__((no_sanitize_address, no_sanitize_thread, noinline))
static void stack_roots(dumper *d, uint32_t tid, unsigned kind,
                        uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t p = align_up(lo, WORD_SIZE); p + WORD_SIZE <= hi;
	     p += WORD_SIZE)
		root(d, kind, tid, p, *(volatile const uintptr_t *)p);
}

static NOINLINE void write_thread_roots(dumper *d, const jmp_buf *regs)
{
	gc_thread *me = thread_current;
	uint32_t tid = 0;

	runtime_each_global(global_root, d);
	for (gc_thread *t = runtime_.threads; t; t = t->next, tid++) {
		for (gc_frame *f = t->frames; f; f = f->prev)
			for (size_t i = 0; i < f->nslots; i++)
				root(d, HD_ROOT_FRAME, tid,
				     (uintptr_t)&f->slots[i],
				     (uintptr_t)f->slots[i]);
		for (size_t i = 0; i < t->nheld; i++)
			root(d, HD_ROOT_FRAME, tid, (uintptr_t)&t->held[i],
			     (uintptr_t)t->held[i]);
		if (!aload(&options_.conservative) || !t->stack_base)
			continue;
		runtime_check_on_stack(t, t == me ? (uintptr_t)(regs + 1) :
		                                    t->saved_sp);
		if (t == me) {
			stack_roots(d, tid, HD_ROOT_REGISTER, (uintptr_t)regs,
			            (uintptr_t)(regs + 1));
			stack_roots(d, tid, HD_ROOT_STACK,
			            (uintptr_t)(regs + 1), t->stack_base);
		} else if (runtime_entry_frame(t)) {
			/* As the collector scans it (runtime/roots.c). */
			stack_roots(d, tid, HD_ROOT_STACK,
			            runtime_entry_frame(t), t->stack_base);
		} else {
			stack_roots(d, tid, HD_ROOT_STACK, t->saved_sp,
			            t->stack_base);
			stack_roots(d, tid, HD_ROOT_REGISTER,
			            (uintptr_t)t->saved_frame,
			            (uintptr_t)(t->saved_frame +
			                        t->saved_words));
		}
	}
}

/* The collector's own roots (gc/mfinal.h): what keeps a finalizable
 * object's targets, finalizer and cleanup args, weak cells and the
 * finalizer queue alive. Without them a finalizer backlog, a classic
 * leak, showed as unreachable garbage. */
static void special_root(void *ctx, int kind, uintptr_t where, uintptr_t v)
{
	dumper *d = ctx;

	if (kind == SPECIALS_ROOT_RECORD) {
		root(d, HD_ROOT_RECORD, 0, where, v);
	} else if (kind == SPECIALS_ROOT_QUEUED) {
		root(d, HD_ROOT_FINQ, 0, where, v);
	} else {
		mspan *s = NULL;
		if (!mheap_find_object(where, &s) ||
		    spanclass_noscan(s->spc))
			return;
		ptriter it;
		uintptr_t *slot;
		mspan_ptriter(s, where, &it);
		while ((slot = ptriter_next(&it)))
			root(d, HD_ROOT_FINALIZABLE, 0, (uintptr_t)slot,
			     *slot);
	}
}

/* The caller's registers are spilled into this frame, below the frames
 * that the stack walk covers. */
static NOINLINE void write_roots(dumper *d)
{
	jmp_buf regs;

	__builtin_unwind_init(); /* as scan_own_stack (runtime/roots.c) */
	setjmp(regs);
	write_thread_roots(d, (const jmp_buf *)&regs);
	specials_each_root(special_root, d);
}

/* A string field: u16 length, then the bytes (cut at 65535). */
static void put_str(dumper *d, const char *s)
{
	size_t len = strlen(s);
	if (len > 65535)
		len = 65535;
	put(d, len, 2);
	flush_buf(d);
	out(d, s, len);
}

static size_t str_len(const char *s)
{
	size_t len = strlen(s);
	return len > 65535 ? 65535 : len;
}

/* The heap profile's records. Not with the world stopped. */
static void write_profile(dumper *d)
{
	pprof_profile p;

	if (mprof_rate() <= 0) {
		begin(d, HD_PROFILE, 8);
		put(d, 0, 8);
		flush_buf(d);
		return;
	}
	if (!mprof_snapshot(&p)) {
		d->err = true;
		errno = ENOMEM;
		return;
	}
	begin(d, HD_PROFILE, 8);
	put(d, (uint64_t)p.rate, 8);
	flush_buf(d);
	for (size_t i = 0; i < p.nsamples; i++) {
		const pprof_sample *b = &p.samples[i];
		begin(d, HD_BUCKET, (uint32_t)(36 + 8 * (size_t)b->nstk));
		put(d, b->allocs, 8);
		put(d, b->alloc_bytes, 8);
		put(d, b->frees, 8);
		put(d, b->free_bytes, 8);
		put(d, b->nstk, 4);
		flush_buf(d);
		for (uint32_t k = 0; k < b->nstk; k++) {
			put(d, p.pcs[b->stk + k], 8);
			flush_buf(d);
		}
	}
	for (size_t i = 0; i < p.nmappings; i++) {
		const pprof_mapping *m = &p.mappings[i];
		begin(d, HD_MAPPING, (uint32_t)(28 + str_len(m->file) +
		                                str_len(m->build_id)));
		put(d, m->start, 8);
		put(d, m->limit, 8);
		put(d, m->offset, 8);
		put_str(d, m->file);
		put_str(d, m->build_id);
	}
	for (size_t i = 0; i < p.nnames; i++) {
		begin(d, HD_SYMBOL, (uint32_t)(10 + str_len(p.names[i].name)));
		put(d, p.names[i].pc, 8);
		put_str(d, p.names[i].name);
	}
	pprof_free(&p);
}

static void write_end(dumper *d)
{
	uint64_t sum = d->sum, records = d->records;
	begin(d, HD_END, 24);
	put(d, records, 8);
	put(d, d->objects, 8);
	put(d, sum, 8);
	flush_buf(d);
}

/* Everything up to the profile; the world is stopped. */
static void write_heap_dump(dumper *d)
{
	uint8_t h[HEAPDUMP_HEADER_SIZE] = {0};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memcpy(h, HEAPDUMP_MAGIC, 8);
	d->n = 0;
	put(d, HEAPDUMP_VERSION, 4);
	put(d, HEAPDUMP_HEADER_SIZE, 4);
	put(d, (uint64_t)getpid(), 8);
	put(d, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, 8);
	memcpy(h + 8, d->buf, d->n);
	d->n = 0;
	out(d, h, sizeof(h));
	write_types(d);
	write_heap(d);
	write_roots(d);
}

static gc_status heap_dump(const char *path)
{
	gc_thread *me = thread_current;

	if (!me) {
		runtime_not_attached("gc_heap_dump");
		return GCHEAP_ERR_NOT_ATTACHED;
	}
	if (!path) {
		runtime_error(GCHEAP_ERR_ARG, "gc_heap_dump: path is NULL");
		return GCHEAP_ERR_ARG;
	}
	dumper d = {.sum = HEAPDUMP_FNV_OFFSET};
	/* Opening may block (a FIFO with no reader yet): as a blocked
	 * thread, so that no stop of the world waits for it. */
	runtime_blocking_begin(me);
	d.f = fopen(path, "wb");
	runtime_blocking_end(me);
	if (!d.f) {
		runtime_error(GCHEAP_ERR_ARG, "gc_heap_dump: cannot write %s: "
		              "%s", path, strerror(errno));
		return GCHEAP_ERR_ARG;
	}
	gc_disable();
	/* A collection by another (unattached) thread may start between
	 * ours and the stop: then wait for it and try again. */
	uint64_t t0;
	for (;;) {
		gc_collect();
		t0 = gcstats_now_ns();
		mgc_.ops->stop_world();
		if (aload_acq(&mgc_.phase) == GCPHASE_OFF &&
		    mgc_sweep_done())
			break;
		mgc_.ops->start_world();
		runtime_safepoint(me);
	}
	sweep_block();
	write_heap_dump(&d);
	sweep_unblock();
	mgc_.ops->start_world();
	gcstats_pause_other(t0); /* in the pause figures: the others waited */
	write_profile(&d);
	write_end(&d);
	runtime_safepoint(me); /* answer what came meanwhile */
	gc_enable();
	free(d.ptrs);
	free(d.offs);
	int err = errno;
	runtime_blocking_begin(me);
	bool closed = !fclose(d.f);
	if (closed)
		errno = err;
	runtime_blocking_end(me);
	if (d.too_big) {
		runtime_error(GCHEAP_ERR_ARG, "gc_heap_dump: the object %p "
		              "holds %zu pointers, more than a dump record "
		              "can (%u); %s is incomplete", (void *)d.too_big,
		              d.too_big_n, (HEAPDUMP_MAX_RECORD - 25) / 8,
		              path);
		return GCHEAP_ERR_ARG;
	}
	if (!closed || d.err) {
		/* A buffer that could not grow (errno ENOMEM) is a
		 * shortage, as gc_write_heap_profile reports it. */
		gc_status code = errno == ENOMEM ? GCHEAP_ERR_NOMEM :
		                                   GCHEAP_ERR_ARG;
		runtime_error(code, "gc_heap_dump: error writing %s: %s",
		              path, strerror(errno));
		return code;
	}
	runtime_ok();
	return GCHEAP_OK;
}

/* Not a cancellation point (alloc/sys/lock.h: cancel_off): cancelled
 * inside a write, the thread would leave the world stopped. */
gc_status gc_heap_dump(const char *path)
{
	int cs = cancel_off();
	gc_status st = heap_dump(path);
	cancel_restore(cs);
	return st;
}
