/* runtime/pprof.c: gc_write_heap_profile, the heap profiler's samples in
 * pprof's format (github.com/google/pprof, proto/profile.proto): a
 * gzipped Profile message, hand-encoded, with the four sample types of a
 * Go heap profile (alloc_objects, alloc_space, inuse_objects, inuse_space;
 * inuse_space the default) and period = the sampling rate.
 *
 * Values are scaled as Go scales them: a bucket whose samples average
 * `avg` bytes stands for 1 / (1 - exp(-avg / rate)) times as many objects
 * and bytes (the chance that an object of that size is sampled). In use
 * is allocated minus freed by sweep: objects dead but not yet swept count
 * as in use until their span is swept.
 *
 * Locations are the sampled return addresses minus 1 (inside the call),
 * named in process by dladdr (the dynamic symbol table: a program linked
 * with -rdynamic, or a shared library's exports). Each executable
 * mapping (dl_iterate_phdr) is written with its file, offsets and GNU
 * build id, and without has_functions, so that pprof symbolizes the
 * addresses again from the binary (addr2line or llvm-symbolizer: every
 * function, with file and line) when it can read it.
 *
 * gzip: stored (uncompressed) deflate blocks and a CRC-32, so that no
 * compression library is needed; profiles are small. */
#include "runtime/pprof.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- A growing byte buffer and protobuf's wire format -------------------- */

typedef struct pbuf {
	uint8_t *b;
	size_t n, cap;
	bool oom;
} pbuf;

static void pb_bytes(pbuf *p, const void *v, size_t n)
{
	if (p->oom)
		return;
	if (p->n + n > p->cap) {
		size_t c = p->cap ? p->cap * 2 : 4096;
		while (c < p->n + n)
			c *= 2;
		uint8_t *nb = realloc(p->b, c);
		if (!nb) {
			p->oom = true;
			return;
		}
		p->b = nb;
		p->cap = c;
	}
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

static void pb_varint(pbuf *p, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_bytes(p, b, n);
}

/* A varint field (wire type 0). */
static void pb_uint(pbuf *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3);
	pb_varint(p, v);
}

/* A length-delimited field (wire type 2). */
static void pb_len(pbuf *p, unsigned field, const void *v, size_t n)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, n);
	pb_bytes(p, v, n);
}

/* A nested message from a scratch buffer, which is emptied. */
static void pb_msg(pbuf *p, unsigned field, pbuf *m)
{
	if (m->oom)
		p->oom = true;
	pb_len(p, field, m->b, m->n);
	m->n = 0;
}

/* ---- The string table ---------------------------------------------------- */

typedef struct strtab {
	char **s;
	size_t n, cap;
	bool oom;
} strtab;

/* The index of s (copied if new); 0 ("") if out of memory. */
static uint64_t str_id(strtab *t, const char *s)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->s[i], s))
			return i;
	if (t->n == t->cap) {
		size_t c = t->cap ? t->cap * 2 : 64;
		char **ns = realloc(t->s, c * sizeof(*ns));
		if (!ns) {
			t->oom = true;
			return 0;
		}
		t->s = ns;
		t->cap = c;
	}
	char *d = strdup(s);
	if (!d) {
		t->oom = true;
		return 0;
	}
	t->s[t->n] = d;
	return t->n++;
}

/* ---- Mappings (dl_iterate_phdr) ------------------------------------------ */

typedef struct mapping {
	uintptr_t start, limit, offset;
	char file[512];
	char build_id[2 * 64 + 1];
} mapping;

typedef struct maps {
	mapping *m;
	size_t n, cap;
} maps;

static void note_build_id(const struct dl_phdr_info *info,
                          const ElfW(Phdr) *ph, mapping *m)
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
				snprintf(m->build_id + 2 * i, 3, "%02x",
				         desc[i]);
			return;
		}
		p = next;
	}
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	maps *ms = arg;
	char file[512] = "";

	(void)size;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(file, sizeof(file), "%s", info->dlpi_name);
	} else if (ms->n == 0) {
		/* The first object is the program itself. */
		ssize_t k = readlink("/proc/self/exe", file, sizeof(file) - 1);
		file[k > 0 ? k : 0] = 0;
	} else {
		return 0; /* the vDSO and the like */
	}
	size_t first = ms->n;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (ms->n == ms->cap) {
			size_t c = ms->cap ? ms->cap * 2 : 16;
			mapping *nm = realloc(ms->m, c * sizeof(*nm));
			if (!nm)
				return 1;
			ms->m = nm;
			ms->cap = c;
		}
		mapping *m = &ms->m[ms->n++];
		memset(m, 0, sizeof(*m));
		/* pprof maps an address to a file offset as
		 * addr - start + offset: page-aligned, as /proc/maps. */
		uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
		m->start = (info->dlpi_addr + ph->p_vaddr) & ~(pg - 1);
		m->limit = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz +
		            pg - 1) & ~(pg - 1);
		m->offset = ph->p_offset & ~(pg - 1);
		snprintf(m->file, sizeof(m->file), "%s", file);
	}
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_NOTE)
			for (size_t k = first; k < ms->n; k++)
				if (!ms->m[k].build_id[0])
					note_build_id(info,
					              &info->dlpi_phdr[i],
					              &ms->m[k]);
	return 0;
}

/* The index + 1 of the mapping holding pc, or 0. */
static uint64_t mapping_of(const maps *ms, uintptr_t pc)
{
	for (size_t i = 0; i < ms->n; i++)
		if (pc >= ms->m[i].start && pc < ms->m[i].limit)
			return i + 1;
	return 0;
}

/* ---- gzip ---------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	pthread_once(&crc_once, crc_init);
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* Write data as a gzip member of stored deflate blocks. */
static bool write_gzip(FILE *f, const uint8_t *data, size_t n)
{
	static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
	                                 3 /* Unix */};
	bool ok = fwrite(head, 1, sizeof(head), f) == sizeof(head);
	size_t off = 0;

	do {
		size_t len = n - off > 65535 ? 65535 : n - off;
		uint8_t bh[5] = {off + len == n ? 1 : 0, (uint8_t)len,
		                 (uint8_t)(len >> 8), (uint8_t)~len,
		                 (uint8_t)(~len >> 8)};
		ok = ok && fwrite(bh, 1, 5, f) == 5;
		ok = ok && (!len || fwrite(data + off, 1, len, f) == len);
		off += len;
	} while (off < n);
	uint32_t crc = crc32(data, n), isize = (uint32_t)n;
	uint8_t tail[8] = {(uint8_t)crc, (uint8_t)(crc >> 8),
	                   (uint8_t)(crc >> 16), (uint8_t)(crc >> 24),
	                   (uint8_t)isize, (uint8_t)(isize >> 8),
	                   (uint8_t)(isize >> 16), (uint8_t)(isize >> 24)};
	return ok && fwrite(tail, 1, 8, f) == 8;
}

/* ---- The profile --------------------------------------------------------- */

static int cmp_pc(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* The index of pc in the sorted unique array. */
static size_t pc_index(const uintptr_t *pcs, size_t n, uintptr_t pc)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pcs[mid] < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Encode the profile into out; false on no memory. */
static bool encode(pbuf *out)
{
	strtab st = {0};
	maps ms = {0};
	pbuf m = {0}, sub = {0};
	size_t nb = 0, npc = 0;
	mprof_bucket *all = mprof_buckets(&nb);
	intptr_t rate = mprof_rate();
	bool ok = false;

	str_id(&st, "");
	dl_iterate_phdr(each_object, &ms);
	for (mprof_bucket *b = all; b; b = b->all_next)
		npc += b->nstk;
	uintptr_t *pcs = malloc((npc ? npc : 1) * sizeof(*pcs));
	uint64_t *fn = calloc(npc ? npc : 1, sizeof(*fn));
	if (!pcs || !fn)
		goto out;
	npc = 0;
	for (mprof_bucket *b = all; b; b = b->all_next)
		for (unsigned i = 0; i < b->nstk; i++)
			pcs[npc++] = b->stk[i];
	qsort(pcs, npc, sizeof(*pcs), cmp_pc);
	size_t nu = 0;
	for (size_t i = 0; i < npc; i++)
		if (!nu || pcs[i] != pcs[nu - 1])
			pcs[nu++] = pcs[i];

	/* sample_type, in Go's order. */
	static const char *const types[4][2] = {
		{"alloc_objects", "count"}, {"alloc_space", "bytes"},
		{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
	for (int i = 0; i < 4; i++) {
		pb_uint(&m, 1, str_id(&st, types[i][0]));
		pb_uint(&m, 2, str_id(&st, types[i][1]));
		pb_msg(out, 1, &m);
	}
	/* Samples: one per bucket. */
	for (mprof_bucket *b = all; b; b = b->all_next) {
		uint64_t a = aload(&b->allocs), ab = aload(&b->alloc_bytes);
		uint64_t f = aload(&b->frees), fb = aload(&b->free_bytes);
		if (f > a || fb > ab) /* a free counted before its alloc */
			f = a, fb = ab;
		double scale = 1;
		if (a && rate > 1) {
			double q = 1 - mprof_exp_neg((double)ab / a / rate);
			scale = q > 0 ? 1 / q : 1;
		}
		for (unsigned i = 0; i < b->nstk; i++)
			pb_varint(&sub, pc_index(pcs, nu, b->stk[i]) + 1);
		pb_msg(&m, 1, &sub);
		pb_varint(&sub, (uint64_t)(a * scale + 0.5));
		pb_varint(&sub, (uint64_t)(ab * scale + 0.5));
		pb_varint(&sub, (uint64_t)((a - f) * scale + 0.5));
		pb_varint(&sub, (uint64_t)((ab - fb) * scale + 0.5));
		pb_msg(&m, 2, &sub);
		pb_msg(out, 2, &m);
	}
	/* Mappings. */
	for (size_t i = 0; i < ms.n; i++) {
		pb_uint(&m, 1, i + 1);
		pb_uint(&m, 2, ms.m[i].start);
		pb_uint(&m, 3, ms.m[i].limit);
		pb_uint(&m, 4, ms.m[i].offset);
		pb_uint(&m, 5, str_id(&st, ms.m[i].file));
		pb_uint(&m, 6, str_id(&st, ms.m[i].build_id));
		pb_msg(out, 3, &m);
	}
	/* Locations, each with the dladdr name as its line when there is
	 * one (function ids: the location's own, deduplicated below). */
	size_t nfn = 0;
	for (size_t i = 0; i < nu; i++) {
		uintptr_t addr = pcs[i] - 1;
		Dl_info info;
		pb_uint(&m, 1, i + 1);
		uint64_t mid = mapping_of(&ms, addr);
		if (mid)
			pb_uint(&m, 2, mid);
		pb_uint(&m, 3, addr);
		if (dladdr((void *)addr, &info) && info.dli_sname) {
			uint64_t name = str_id(&st, info.dli_sname);
			size_t k;
			for (k = 0; k < nfn; k++)
				if (fn[k] == name)
					break;
			if (k == nfn)
				fn[nfn++] = name;
			pb_uint(&sub, 1, k + 1);
			pb_msg(&m, 4, &sub);
		}
		pb_msg(out, 4, &m);
	}
	for (size_t k = 0; k < nfn; k++) {
		pb_uint(&m, 1, k + 1);
		pb_uint(&m, 2, fn[k]);
		pb_uint(&m, 3, fn[k]);
		pb_msg(out, 5, &m);
	}
	/* The rest refer to strings: ids before the table is written. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t space = str_id(&st, "space"), bytes = str_id(&st, "bytes");
	uint64_t deflt = str_id(&st, "inuse_space");
	uint64_t note = str_id(&st, "gcheap heap profile: sampled once per "
	                            "GCHEAP_MEMPROFILERATE bytes on average");
	for (size_t i = 0; i < st.n; i++)
		pb_len(out, 6, st.s[i], strlen(st.s[i]));
	pb_uint(out, 9, (uint64_t)ts.tv_sec * 1000000000u +
	                (uint64_t)ts.tv_nsec);
	pb_uint(&m, 1, space);
	pb_uint(&m, 2, bytes);
	pb_msg(out, 11, &m);
	pb_uint(out, 12, (uint64_t)rate);
	pb_uint(out, 13, note);
	pb_uint(out, 14, deflt);
	ok = !out->oom && !m.oom && !sub.oom && !st.oom;
out:
	for (size_t i = 0; i < st.n; i++)
		free(st.s[i]);
	free(st.s);
	free(ms.m);
	free(m.b);
	free(sub.b);
	free(pcs);
	free(fn);
	return ok;
}

gc_status gc_write_heap_profile(const char *path)
{
	pbuf p = {0};

	if (!path) {
		runtime_error(GCHEAP_ERR_ARG, "gc_write_heap_profile: path is "
		              "NULL");
		return GCHEAP_ERR_ARG;
	}
	if (!encode(&p)) {
		free(p.b);
		runtime_error(GCHEAP_ERR_NOMEM, "gc_write_heap_profile: no "
		              "memory to build the profile");
		return GCHEAP_ERR_NOMEM;
	}
	FILE *f = fopen(path, "wb");
	if (!f) {
		free(p.b);
		runtime_error(GCHEAP_ERR_ARG, "gc_write_heap_profile: cannot "
		              "write %s: %s", path, strerror(errno));
		return GCHEAP_ERR_ARG;
	}
	bool ok = write_gzip(f, p.b, p.n);
	free(p.b);
	if (fclose(f) || !ok) {
		runtime_error(GCHEAP_ERR_ARG, "gc_write_heap_profile: error "
		              "writing %s: %s", path, strerror(errno));
		return GCHEAP_ERR_ARG;
	}
	runtime_ok();
	return GCHEAP_OK;
}
