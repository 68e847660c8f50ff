/* alloc/gctype.c: making and validating pointer maps, the region the
 * types live in, and the pointer-slot iterator (see gctype.h). Types are
 * checked once, here, so that the allocation fast path and the marker
 * never re-check them. */
#include "alloc/gctype.h"

#include "alloc/sizeclasses.h"
#include "alloc/sys/base.h"
#include "alloc/sys/lock.h"
#include "alloc/sys/osmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* The names and large maps are reachable only from the region: tell
 * LeakSanitizer to scan it. */
#define REGION_IS_ROOT(p, n) __lsan_register_root_region(p, n)
#else
#define REGION_IS_ROOT(p, n) ((void)(p), (void)(n))
#endif

_Static_assert(sizeof(gc_type) <= GCTYPE_SLOT, "a gc_type fits its slot");
_Static_assert(MCACHE_SLOTS <= 256, "an mcache slot fits gc_type.cslot");

uintptr_t gctype_region = GCTYPE_SLOT;

/* Slots are made writable this many bytes at a time. */
#define GCTYPE_COMMIT ((uintptr_t)65536)

static struct {
	gc_mutex lock;
	gc_type *all;
	gc_type **byid; /* byid[id - 1]; grows by doubling */
	uint32_t n, cap;
	uintptr_t base;      /* the region, 0 until the first type */
	uintptr_t nslots;    /* slots handed out */
	uintptr_t committed; /* bytes of the region made writable */
} registry = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

/* A fresh, zeroed slot, or NULL (registry.lock held). */
static gc_type *slot_take(bool *full)
{
	*full = false;
	if (!registry.base) {
		void *p = os_reserve(GCTYPE_REGION, GCTYPE_REGION, NULL);
		if (!p)
			return NULL;
		if (!os_map_readonly(p, GCTYPE_REGION)) {
			os_unreserve(p, GCTYPE_REGION);
			return NULL;
		}
		REGION_IS_ROOT(p, GCTYPE_REGION);
		registry.base = (uintptr_t)p;
		__atomic_store_n(&gctype_region, registry.base,
		                 __ATOMIC_RELEASE);
	}
	if (registry.nslots == GCTYPE_MAX_TYPES) {
		*full = true;
		return NULL;
	}
	uintptr_t off = registry.nslots * GCTYPE_SLOT;
	if (off == registry.committed) {
		if (!os_commit((void *)(registry.base + off), GCTYPE_COMMIT))
			return NULL;
		registry.committed += GCTYPE_COMMIT;
	}
	registry.nslots++;
	return (gc_type *)(registry.base + off);
}

gc_type *gctype_all(void)
{
	mutex_lock(&registry.lock);
	gc_type *t = registry.all;
	mutex_unlock(&registry.lock);
	return t;
}

const gc_type *gctype_by_id(uint32_t id)
{
	const gc_type *t = NULL;

	mutex_lock(&registry.lock);
	if (id >= 1 && id <= registry.n)
		t = registry.byid[id - 1];
	mutex_unlock(&registry.lock);
	return t;
}

static bool bit_at(const uint64_t *bits, size_t i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

bool gctype_word_is_ptr(const gc_type *t, size_t w)
{
	if (w < t->nwords)
		return bit_at(t->bits, w);
	switch (t->tail) {
	case GCHEAP_TAIL_REPEAT:
		return t->nptrs && bit_at(t->bits, w % t->nwords);
	case GCHEAP_TAIL_POINTERS:
		return w >= (t->size + WORD_SIZE - 1) / WORD_SIZE;
	default:
		return false;
	}
}

#define fail(code, ...)                                                   \
	do {                                                               \
		*status = (code);                                          \
		snprintf(err, errlen, __VA_ARGS__);                        \
		return NULL;                                               \
	} while (0)

gc_type *gctype_make(const char *name, size_t size, const uint64_t *bitmap,
                     unsigned flags, gc_status *status, char *err,
                     size_t errlen)
{
	const char *nm = name ? name : "(anonymous)";

	if (size == 0)
		fail(GCHEAP_ERR_TYPE, "type %s: size 0", nm);
	if (size > GCHEAP_MAX_TYPE_SIZE)
		fail(GCHEAP_ERR_TYPE, "type %s: size %zu over the %zu limit",
		     nm, size, GCHEAP_MAX_TYPE_SIZE);
	if (flags > GCHEAP_TAIL_POINTERS)
		fail(GCHEAP_ERR_TYPE, "type %s: unknown flags %#x", nm, flags);

	size_t nwords = size / WORD_SIZE;
	size_t nmap = (nwords + 63) / 64;
	size_t nptrs = 0;
	if (bitmap) {
		/* Every set bit must name a word wholly inside size. */
		size_t nin = (size + WORD_SIZE - 1) / WORD_SIZE;
		size_t nbitwords = (nin + 63) / 64;
		for (size_t i = 0; i < nbitwords; i++) {
			uint64_t b = bitmap[i];
			uint64_t ok = i < nmap ? low_mask((unsigned)MIN(
			                  64, nwords - i * 64)) : 0;
			if (b & ~ok)
				fail(GCHEAP_ERR_TYPE,
				     "type %s: pointer bit for word %zu lies "
				     "outside its %zu bytes", nm,
				     i * 64 + ctz64(b & ~ok), size);
			nptrs += popcount64(b);
		}
	}
	if (nptrs && flags == GCHEAP_TAIL_REPEAT && size % WORD_SIZE)
		fail(GCHEAP_ERR_TYPE,
		     "type %s: size %zu is not a multiple of %d, so the map "
		     "cannot repeat", nm, size, WORD_SIZE);

	/* Made whole in a local, then copied into its slot: a slot is
	 * never seen half made. */
	gc_type tmp = {0};
	char *copy = strdup(nm);
	uint64_t *bits = tmp.inline_bits;
	if (nmap > GCTYPE_INLINE_BITS)
		bits = calloc(nmap, sizeof(uint64_t));
	if (!copy || !bits) {
		free(copy);
		if (bits != tmp.inline_bits)
			free(bits);
		fail(GCHEAP_ERR_NOMEM, "type %s: out of memory", nm);
	}
	tmp.magic = GCTYPE_MAGIC;
	tmp.size = size;
	tmp.nfast = size <= MAX_SMALL_SIZE ?
	             (uint32_t)(MAX_SMALL_SIZE - size + 1) : 0;
	tmp.nwords = nwords;
	tmp.nptrs = nptrs;
	tmp.tail = flags;
	tmp.noscan = nptrs == 0 && flags != GCHEAP_TAIL_POINTERS;
	tmp.spc = size <= MAX_SMALL_SIZE ?
	          make_spanclass(size_to_class(size), tmp.noscan) : 0;
	tmp.cslot = tmp.spc;
	tmp.name = copy;
	tmp.bits = bits;
	if (bitmap)
		memcpy(bits, bitmap, nmap * sizeof(uint64_t));
	for (size_t w = 0; w < 128; w++)
		if (gctype_word_is_ptr(&tmp, w))
			*(w < 64 ? &tmp.small_bits : &tmp.small_hi) |=
				(uint64_t)1 << (w % 64);

	mutex_lock(&registry.lock);
	bool full;
	gc_type *t = slot_take(&full);
	if (!t) {
		mutex_unlock(&registry.lock);
		free(copy);
		if (bits != tmp.inline_bits)
			free(bits);
		if (full)
			fail(GCHEAP_ERR_NOMEM, "type %s: the type region is "
			     "full (%zu types)", nm, (size_t)GCTYPE_MAX_TYPES);
		fail(GCHEAP_ERR_NOMEM, "type %s: the OS refused memory for "
		     "the type region", nm);
	}
	if (size <= MAX_SMALL_SIZE && !tmp.noscan)
		tmp.cslot = (uint8_t)(NUM_SPANCLASSES +
		                      ((uintptr_t)t - gctype_region) /
		                      GCTYPE_SLOT % MCACHE_TYPED_SLOTS);
	/* The own-size path (runtime/malloc.c) takes small objects that
	 * are not tiny: the tiny allocator packs those. */
	tmp.key = size > MAX_SMALL_SIZE ||
	          (tmp.noscan && size < TINY_SIZE) ? GCTYPE_KEY_NONE :
	          tmp.noscan ? GCTYPE_KEY_NOSCAN : (uintptr_t)t;
	*t = tmp;
	if (bits == tmp.inline_bits)
		t->bits = t->inline_bits;
	if (registry.n == registry.cap && registry.n < GCTYPE_MAX_ID) {
		uint32_t cap = registry.cap ? registry.cap * 2 : 64;
		gc_type **b = realloc(registry.byid, cap * sizeof(*b));
		if (b) {
			registry.byid = b;
			registry.cap = cap;
		}
	}
	if (registry.n < registry.cap && registry.n < GCTYPE_MAX_ID) {
		registry.byid[registry.n++] = t;
		t->id = registry.n;
	}
	t->next = registry.all;
	registry.all = t;
	mutex_unlock(&registry.lock);
	*status = GCHEAP_OK;
	return t;
}

gc_type *gctype_from_offsets(const char *name, size_t size,
                             const size_t *offs, size_t n, unsigned flags,
                             gc_status *status, char *err, size_t errlen)
{
	const char *nm = name ? name : "(anonymous)";

	if (size == 0 || size > GCHEAP_MAX_TYPE_SIZE)
		return gctype_make(name, size, NULL, flags, status, err,
		                   errlen);
	if (n && !offs)
		fail(GCHEAP_ERR_TYPE, "type %s: %zu offsets but NULL array", nm,
		     n);
	/* Distinct aligned offsets cannot outnumber the words: say so
	 * before reading past the end of the caller's array (a count up
	 * to the words the size touches gets the loop's exact message). */
	size_t ntouched = (size + WORD_SIZE - 1) / WORD_SIZE;
	if (n > ntouched)
		fail(GCHEAP_ERR_TYPE, "type %s: %zu pointer offsets, but %zu "
		     "bytes hold only %zu words", nm, n, size, ntouched);
	/* The documented bitmap length, (size + 511) / 512 words: it also
	 * covers a last, partial word, which gctype_make checks is clear. */
	size_t nmap = (size + 511) / 512;
	uint64_t *bm = calloc(MAX(nmap, 1), sizeof(uint64_t));
	if (!bm)
		fail(GCHEAP_ERR_NOMEM, "type %s: out of memory", nm);
	for (size_t i = 0; i < n; i++) {
		size_t o = offs[i];
		if (o % WORD_SIZE || o > size || size - o < WORD_SIZE) {
			free(bm);
			fail(GCHEAP_ERR_TYPE,
			     "type %s: pointer offset %zu is not an aligned "
			     "word inside %zu bytes", nm, o, size);
		}
		size_t w = o / WORD_SIZE;
		if (bit_at(bm, w)) {
			free(bm);
			fail(GCHEAP_ERR_TYPE,
			     "type %s: pointer offset %zu given twice", nm, o);
		}
		bm[w / 64] |= (uint64_t)1 << (w % 64);
	}
	gc_type *t = gctype_make(name, size, bm, flags, status, err, errlen);
	free(bm);
	return t;
}

/* ---- Iterator ------------------------------------------------------------ */

/* Bits [pos, pos + k) of a bitmap of nbits bits, k <= 64; bits at or past
 * nbits read as zero. */
static uint64_t extract(const uint64_t *bm, size_t nbits, size_t pos,
                        unsigned k)
{
	if (pos >= nbits || k == 0)
		return 0;
	size_t i = pos / 64;
	unsigned sh = pos % 64;
	uint64_t v = bm[i] >> sh;
	if (sh && (i + 1) * 64 < nbits)
		v |= bm[i + 1] << (64 - sh);
	if (nbits - pos < k)
		k = (unsigned)(nbits - pos);
	return v & low_mask(k);
}

/* The pointer bits of words [w, w + k) of an object of type t. */
static uint64_t typed_bits(const gc_type *t, size_t w, unsigned k)
{
	uint64_t out = 0;
	unsigned got = 0;

	if (w < t->nwords) {
		got = (unsigned)MIN(k, t->nwords - w);
		out = extract(t->bits, t->nwords, w, got);
	}
	if (got == k)
		return out;
	w += got;
	switch (t->tail) {
	case GCHEAP_TAIL_REPEAT:
		if (!t->nptrs)
			return out;
		if (t->nwords <= 64) {
			/* Words [pos, pos + 64) of the repetition lie within
			 * its first 128: small_bits and small_hi. */
			unsigned pos = (unsigned)(w % t->nwords);
			uint64_t win = t->small_bits >> pos;
			if (pos)
				win |= t->small_hi << (64 - pos);
			return out | (win & low_mask(k - got)) << got;
		}
		while (got < k) {
			size_t pos = w % t->nwords;
			unsigned n = (unsigned)MIN(k - got, t->nwords - pos);
			out |= extract(t->bits, t->nwords, pos, n) << got;
			got += n;
			w += n;
		}
		return out;
	case GCHEAP_TAIL_POINTERS: {
		size_t first = (t->size + WORD_SIZE - 1) / WORD_SIZE;
		for (; got < k; got++, w++)
			if (w >= first)
				out |= (uint64_t)1 << got;
		return out;
	}
	default:
		return out;
	}
}

void ptriter_init_typed(ptriter *it, uintptr_t obj, size_t nbytes,
                        const gc_type *t)
{
	memset(it, 0, sizeof(*it));
	it->obj = obj;
	it->nwords = nbytes / WORD_SIZE;
	it->t = t;
}

void ptriter_init_heapbits(ptriter *it, uintptr_t obj, size_t nbytes,
                           const uint64_t *hb, size_t hbw)
{
	memset(it, 0, sizeof(*it));
	it->obj = obj;
	it->nwords = nbytes / WORD_SIZE;
	it->hb = hb;
	it->hbw = hbw;
}

/* Make it->cur the pointer bits of the next chunk that has any; false
 * when the object is done. */
static bool ptriter_load(ptriter *it)
{
	while (it->cur == 0) {
		if (it->w >= it->nwords)
			return false;
		unsigned k = (unsigned)MIN(64, it->nwords - it->w);
		if (it->t)
			it->cur = typed_bits(it->t, it->w, k);
		else
			it->cur = extract(it->hb, it->hbw + it->nwords,
			                  it->hbw + it->w, k);
		it->curw = it->w;
		it->w += k;
	}
	return true;
}

uint64_t ptriter_next_chunk(ptriter *it, uintptr_t **first)
{
	if (!ptriter_load(it))
		return 0;
	uint64_t bits = it->cur;
	it->cur = 0;
	*first = (uintptr_t *)(it->obj + it->curw * WORD_SIZE);
	return bits;
}

uintptr_t *ptriter_next(ptriter *it)
{
	if (!ptriter_load(it))
		return NULL;
	unsigned b = ctz64(it->cur);
	it->cur &= it->cur - 1;
	return (uintptr_t *)(it->obj + (it->curw + b) * WORD_SIZE);
}
