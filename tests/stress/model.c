/* tests/stress/model.c: a model-based randomized mutator test. Threads
 * build and rewire random object graphs of 15 pointer-map shapes (tiny,
 * noscan, small with heap bits, small typed, large, arrays, NOSCAN and
 * POINTERS tails, an odd size, a bitmap type) through gc_write and
 * gc_copy, rooted in a registered global table and in gc_frame slots,
 * while cycles run (GCHEAP_DEBUG stress=N, gc_collect). Each thread keeps
 * a shadow graph in malloc'd memory (ids, kinds, sizes, payload seeds and
 * the target of every pointer slot) and checks:
 *
 *  - after every cycle it sees (mgc_.cycles) and every CHECK_EVERY
 *    operations: every object reachable in the model has word 0 ==
 *    MAGIC ^ id, every other non-pointer word == H(id, seed, word), every
 *    pointer slot == the model's target, gc_base/gc_size agree with the
 *    request (gc_size == the size class, or whole pages for large), and
 *    every root slot holds the model's object; new objects are zeroed;
 *  - at every checkpoint (all threads quiet, then two gc_collect calls),
 *    in precise mode (gc_set_conservative_stacks(0), every reference in
 *    roots and frames): the heap holds exactly the model's reachable
 *    bytes. Expected = sum over reachable non-tiny objects of their size
 *    class (large: whole pages) + 16 for each distinct 16-byte tiny block
 *    that holds a reachable tiny object. It is compared with two
 *    observables: the sweep side (sum over in-use spans of
 *    alloc_count * elemsize, recounted from the arenas) and the mark side
 *    (mgc_.heap_marked, the bytes the last mark found live). In
 *    conservative mode (--conservative) only expected <= recount holds;
 *  - under steady churn (when it sees a cycle end, and every 64
 *    operations): heap_inuse (gc_read_stats) <= goal * 1.25 + 4 MiB,
 *    where goal is the larger of the pacer's last two goals (the old
 *    one governs until the sweep has freed the last cycle's garbage).
 *
 * Usage: model [--threads N] [--ops N] [--rounds N] [--conservative]
 *              [--sabotage]
 * The seed comes from GCHEAP_SEED (else the clock) and is printed; each
 * thread's operations depend only on it (thread interleaving does not
 * replay). A failure prints the seed, the thread, the operation index and
 * the last 50 operations. --sabotage (for the sabotage builds): a library
 * fatal() exits 86, a model check failure 87, a crash 99, so that only a
 * clean detection counts as the expected failure; the exact byte counts
 * are skipped there (only checkmark and the graph checks count). */
#include "runtime/runtime.h"
#include "tests/stress/harness.h"

#define MAGIC 0x6d6f64656c6f626aULL
#define NGROOT 256           /* registered global slots per thread */
#define NFROOT 64            /* frame slots per thread */
#define NSCRATCH 2           /* the last frame slots: scratch */
#define NROOTS (NGROOT + NFROOT - NSCRATCH)
#define CHECK_EVERY 1000     /* operations between full checks */
#define LIVE_MAX ((size_t)3 << 20) /* per thread, soft */
#define HIST 50
#define MiB ((size_t)1 << 20)

/* ---- Object kinds -------------------------------------------------------- */

enum {
	K_TINY,        /* noscan, 1..15 bytes: the tiny allocator */
	K_NOSCAN,      /* noscan, 16..2048 */
	K_PAIR,        /* 32 bytes, pointers at words 1, 2 (heap bits) */
	K_ODD,         /* 60 bytes, NOSCAN tail, pointers at words 1, 6 */
	K_SMALL,       /* 128 bytes, pointers at words 2, 5, 9, 15 */
	K_BITMAP,      /* 200 bytes from a bitmap: words 1, 3, 4, 24 */
	K_SMALL512,    /* 512 bytes, every third word from 1 */
	K_TYPED,       /* 1032 bytes (typed small span), w % 7 == 3 */
	K_TYPED_BIG,   /* 20000 bytes, w % 61 == 1 */
	K_LARGE,       /* 40968 bytes, w % 97 == 5 and the last word */
	K_LARGE_NOSCAN, /* noscan, 32769..100000 */
	K_ARRAY,       /* gc_alloc_array of 1..60 {word, ptr, word} */
	K_ARRAY_LARGE, /* the same, 1366..2500 elements (large) */
	K_TAIL_NOSCAN, /* 24-byte header (pointers 1, 2) + bytes */
	K_TAIL_PTRS,   /* 16-byte header + a pointer array */
	NKINDS
};

static const char *const kind_name[NKINDS] = {
	"tiny", "noscan", "pair", "odd", "small", "bitmap", "small512",
	"typed", "typed_big", "large", "large_noscan", "array",
	"array_large", "tail_noscan", "tail_ptrs",
};

static const unsigned kind_weight[NKINDS] = {
	12, 10, 12, 6, 8, 6, 5, 5, 2, 1, 1, 8, 1, 6, 8,
};

static gc_type *kind_type[NKINDS];

#define ELEM_SIZE 24

/* The model's own definition of the pointer words (never the library's). */
static bool kind_ptr(int k, size_t size, size_t w)
{
	switch (k) {
	case K_PAIR:
		return w == 1 || w == 2;
	case K_ODD:
		return w == 1 || w == 6;
	case K_SMALL:
		return w == 2 || w == 5 || w == 9 || w == 15;
	case K_BITMAP:
		return w == 1 || w == 3 || w == 4 || w == 24;
	case K_SMALL512:
		return w % 3 == 1;
	case K_TYPED:
		return w % 7 == 3;
	case K_TYPED_BIG:
		return w % 61 == 1;
	case K_LARGE:
		return w % 97 == 5 || w == 40968 / 8 - 1;
	case K_ARRAY:
	case K_ARRAY_LARGE:
		return w % 3 == 1;
	case K_TAIL_NOSCAN:
		return w == 1 || w == 2;
	case K_TAIL_PTRS:
		return w >= 2 && (w + 1) * 8 <= size;
	default:
		return false;
	}
}

static size_t fixed_size(int k)
{
	static const size_t sz[NKINDS] = {
		[K_PAIR] = 32, [K_ODD] = 60, [K_SMALL] = 128,
		[K_BITMAP] = 200, [K_SMALL512] = 512, [K_TYPED] = 1032,
		[K_TYPED_BIG] = 20000, [K_LARGE] = 40968,
		[K_ARRAY] = ELEM_SIZE, [K_ARRAY_LARGE] = ELEM_SIZE,
		[K_TAIL_NOSCAN] = 24, [K_TAIL_PTRS] = 16,
	};
	return sz[k];
}

static gc_type *make_type(int k, unsigned flags)
{
	size_t size = fixed_size(k), offs[6000], n = 0;

	for (size_t w = 0; (w + 1) * 8 <= size; w++)
		if (kind_ptr(k, size, w))
			offs[n++] = w * 8;
	gc_type *t = gc_type_new(kind_name[k], size, offs, n, flags);
	if (!t) {
		fprintf(stderr, "model: gc_type_new(%s) failed: %s\n",
		        kind_name[k], gc_strerror(gc_last_error()));
		exit(1);
	}
	return t;
}

static void make_types(void)
{
	for (int k = K_PAIR; k < NKINDS; k++) {
		if (k == K_LARGE_NOSCAN || k == K_BITMAP)
			continue;
		unsigned fl = GCHEAP_TAIL_REPEAT;
		if (k == K_ODD || k == K_TAIL_NOSCAN)
			fl = GCHEAP_TAIL_NOSCAN;
		else if (k == K_TAIL_PTRS)
			fl = GCHEAP_TAIL_POINTERS;
		if (k == K_ARRAY_LARGE) {
			kind_type[k] = kind_type[K_ARRAY];
			continue;
		}
		kind_type[k] = make_type(k, fl);
	}
	uint64_t bm = 1u << 1 | 1u << 3 | 1u << 4 | 1u << 24;
	kind_type[K_BITMAP] = gc_type_new_bitmap("bitmap", 200, &bm,
	                                         GCHEAP_TAIL_REPEAT);
	if (!kind_type[K_BITMAP]) {
		fprintf(stderr, "model: gc_type_new_bitmap failed\n");
		exit(1);
	}
}

/* ---- The model ----------------------------------------------------------- */

typedef struct mobj {
	struct mobj *next;   /* every model object of the thread */
	void *addr;
	uint64_t id, seed;
	size_t size;
	uint64_t mark;       /* traversal epoch */
	uint32_t kind, nptr;
	uint32_t *pw;        /* word index of each pointer slot */
	struct mobj **tgt;   /* the object each slot points to, or NULL */
} mobj;

typedef struct model {
	int tid;
	test_rng r;
	pthread_t thread;
	void **g;                 /* the thread's registered global slots */
	void **f;                 /* the thread's frame slots */
	mobj *groot[NGROOT];
	mobj *froot[NFROOT];
	mobj *all;
	uint64_t epoch, next_id;
	volatile uint64_t op;     /* the operation being run */
	size_t live_bytes, live_objs;
	uintptr_t seen_cycles;
	uintptr_t goal_prev, goal_cur; /* pacer goals, see track_goal */
	char hist[HIST][80];
	unsigned nhist;
	/* counters */
	uint64_t nchecks, nobjs_checked, ncycles_seen, nallocs, ncopies;
	size_t max_inuse;
	/* traversal stack */
	mobj **stack;
	size_t nstack, capstack;
} model;

static long rounds = 8; /* --rounds; the others are tests/stress/harness.h's */

static void *groots[MAXT * NGROOT];
static model *models[MAXT];
static pthread_barrier_t barrier;
static uint64_t exact_checks, marked_mismatches;
static size_t max_slack;

static void dump_history(const model *m)
{
	unsigned n = m->nhist < HIST ? m->nhist : HIST;
	fprintf(stderr, "model: last %u operations of thread %d:\n", n,
	        m->tid);
	for (unsigned i = m->nhist - n; i < m->nhist; i++)
		fprintf(stderr, "  %s\n", m->hist[i % HIST]);
}

static PRINTF_LIKE(2, 3) NORETURN void fail(model *m, const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	va_start(ap, fmt);
	harness_vreport(m ? m->tid : -1, m ? m->op : 0, fmt, ap);
	va_end(ap);
	if (m)
		dump_history(m);
	funlockfile(stderr);
	harness_die();
}

static PRINTF_LIKE(2, 3) void note(model *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int len = snprintf(m->hist[m->nhist % HIST], 80, "#%" PRIu64 " ",
	                   m->op);
	vsnprintf(m->hist[m->nhist % HIST] + len, (size_t)(80 - len), fmt,
	          ap);
	va_end(ap);
	m->nhist++;
}

/* The expected value of a non-pointer word. */
static uint64_t expect_word(const mobj *o, size_t w)
{
	if (w == 0)
		return MAGIC ^ o->id;
	return mix(o->id * 0x9E3779B97F4A7C15ULL ^ o->seed ^
	           mix(w + 0x1234567));
}

static size_t nwords(const mobj *o)
{
	return (o->size + 7) / 8;
}

/* The size the heap gives an object of `size` bytes (the model's own
 * arithmetic from the size-class tables). */
static size_t rounded_size(size_t size)
{
	if (size > MAX_SMALL_SIZE)
		return align_up(size, PAGE_SIZE);
	return class_to_size[size_to_class(size)];
}

static void write_payload(mobj *o)
{
	uint32_t p = 0;
	for (size_t w = 0; w < nwords(o); w++) {
		if (p < o->nptr && o->pw[p] == w) {
			p++;
			continue;
		}
		uint64_t v = expect_word(o, w);
		size_t n = MIN(8, o->size - w * 8);
		memcpy((char *)o->addr + w * 8, &v, n);
	}
}

static void *slot_addr(const mobj *o, uint32_t s)
{
	return (char *)o->addr + (size_t)o->pw[s] * 8;
}

static void verify_obj(model *m, const mobj *o)
{
	const char *a = o->addr;
	uintptr_t base = (uintptr_t)gc_base(a);
	size_t gsize = gc_size(a);

	if (o->kind == K_TINY) {
		if (!base || base > (uintptr_t)a ||
		    (uintptr_t)a + o->size > base + TINY_SIZE ||
		    gsize != TINY_SIZE)
			fail(m, "tiny object %" PRIu64 " at %p (%zu bytes): "
			     "gc_base %p, gc_size %zu", o->id, o->addr,
			     o->size, (void *)base, gsize);
	} else if (base != (uintptr_t)a || gsize != rounded_size(o->size)) {
		fail(m, "%s object %" PRIu64 " at %p (%zu bytes): gc_base "
		     "%p, gc_size %zu (expected %zu)", kind_name[o->kind],
		     o->id, o->addr, o->size, (void *)base, gsize,
		     rounded_size(o->size));
	}
	uint32_t p = 0;
	for (size_t w = 0; w < nwords(o); w++) {
		uint64_t got = 0, want;
		size_t n = MIN(8, o->size - w * 8);
		memcpy(&got, a + w * 8, n);
		bool ptr = p < o->nptr && o->pw[p] == w;
		if (ptr) {
			const mobj *t = o->tgt[p++];
			want = t ? (uint64_t)(uintptr_t)t->addr : 0;
		} else {
			want = expect_word(o, w);
			if (n < 8)
				want &= ((uint64_t)1 << (n * 8)) - 1;
		}
		if (got != want)
			fail(m, "%s object %" PRIu64 " at %p (%zu bytes, "
			     "gc_size %zu): word %zu (%s) is %#" PRIx64
			     ", expected %#" PRIx64, kind_name[o->kind],
			     o->id, o->addr, o->size, gsize, w,
			     ptr ? "pointer" : "payload", got, want);
	}
	m->nobjs_checked++;
}

static void push(model *m, mobj *o)
{
	if (!o || o->mark == m->epoch)
		return;
	o->mark = m->epoch;
	if (m->nstack == m->capstack) {
		m->capstack = m->capstack ? m->capstack * 2 : 1024;
		m->stack = realloc(m->stack, m->capstack * sizeof(mobj *));
		if (!m->stack)
			fail(m, "out of memory for the traversal stack");
	}
	m->stack[m->nstack++] = o;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Traverse the model from its roots, verify every reachable object
 * against the heap (if `verify`), and return the reachable bytes as the
 * heap rounds them; tiny objects are collected by block into *tiny. */
static size_t traverse(model *m, bool verify, uintptr_t **tiny,
                       size_t *ntiny, size_t *captiny)
{
	size_t bytes = 0, objs = 0;

	m->epoch++;
	m->nstack = 0;
	for (int i = 0; i < NGROOT; i++) {
		void *want = m->groot[i] ? m->groot[i]->addr : NULL;
		if (m->g[i] != want)
			fail(m, "global root %d holds %p, expected %p", i,
			     m->g[i], want);
		push(m, m->groot[i]);
	}
	for (int i = 0; i < NFROOT; i++) {
		void *want = m->froot[i] ? m->froot[i]->addr : NULL;
		if (m->f[i] != want)
			fail(m, "frame slot %d holds %p, expected %p", i,
			     m->f[i], want);
		push(m, m->froot[i]);
	}
	while (m->nstack) {
		mobj *o = m->stack[--m->nstack];
		if (verify)
			verify_obj(m, o);
		objs++;
		if (o->kind == K_TINY) {
			if (*ntiny == *captiny) {
				*captiny = *captiny ? *captiny * 2 : 1024;
				*tiny = realloc(*tiny, *captiny *
				                sizeof(uintptr_t));
				if (!*tiny)
					fail(m, "out of memory");
			}
			(*tiny)[(*ntiny)++] = (uintptr_t)gc_base(o->addr);
		} else {
			bytes += rounded_size(o->size);
		}
		for (uint32_t s = 0; s < o->nptr; s++)
			push(m, o->tgt[s]);
	}
	m->live_objs = objs;
	return bytes;
}

/* Bytes of distinct tiny blocks in tiny[0..n) (sorted in place). */
static size_t tiny_bytes(uintptr_t *tiny, size_t n)
{
	size_t blocks = 0;

	if (n)
		qsort(tiny, n, sizeof(*tiny), cmp_uptr);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || tiny[i] != tiny[i - 1])
			blocks++;
	return blocks * TINY_SIZE;
}

/* Free the model objects the last traversal did not reach. */
static void sweep_model(model *m)
{
	mobj **pp = &m->all;
	while (*pp) {
		mobj *o = *pp;
		if (o->mark == m->epoch) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		free(o->pw);
		free(o->tgt);
		free(o);
	}
}

/* A full check of the thread's own graph; frees dead model objects. */
static void full_check(model *m)
{
	uintptr_t *tiny = NULL;
	size_t ntiny = 0, cap = 0;

	size_t b = traverse(m, true, &tiny, &ntiny, &cap);
	m->live_bytes = b + tiny_bytes(tiny, ntiny);
	free(tiny);
	sweep_model(m);
	m->nchecks++;
}

/* ---- Heap observables ---------------------------------------------------- */

/* Sum of alloc_count * elemsize over every in-use span (world quiet). */
static size_t recount_heap(size_t *nobjs)
{
	return mheap_recount_allocated(nobjs);
}

static uintptr_t read_goal(void)
{
	return __atomic_load_n(&mgc_.goal, __ATOMIC_RELAXED);
}

/* A cycle ended (mgc_.cycles is now c). Until its sweep has freed the
 * garbage, the heap is still the one paced by the previous goal, so both
 * bound it. Goal and cycle count change together with the world stopped,
 * so a running thread reads them consistently; if it missed a cycle, the
 * goal in between is unknown and the check waits for the next one. */
static void track_goal(model *m, uintptr_t c)
{
	bool one = c == m->seen_cycles + 1;
	m->goal_prev = one ? m->goal_cur : UINTPTR_MAX / 8;
	m->goal_cur = read_goal();
	m->seen_cycles = c;
}

static void check_goal(model *m)
{
	gc_stats st;

	gc_read_stats(&st, sizeof(st));
	uintptr_t goal = MAX(m->goal_prev, m->goal_cur);
	if (st.heap_inuse > m->max_inuse)
		m->max_inuse = st.heap_inuse;
	if (st.heap_inuse > goal / 4 * 5 + 4 * MiB)
		fail(m, "heap_inuse %" PRIu64 " KiB is over the pacer's goal "
		     "%zu KiB * 1.25 + 4 MiB (goals of the last two cycles: "
		     "%zu and %zu KiB)", st.heap_inuse >> 10,
		     (size_t)(goal >> 10), (size_t)(m->goal_prev >> 10),
		     (size_t)(m->goal_cur >> 10));
}

/* ---- Operations ---------------------------------------------------------- */

static mobj *root_get(model *m, unsigned r)
{
	return r < NGROOT ? m->groot[r] : m->froot[r - NGROOT];
}

/* Point root r at o: global slots through gc_write, frame slots plainly
 * (the thread's own frame needs no barrier). */
static void root_set(model *m, unsigned r, mobj *o)
{
	void *p = o ? o->addr : NULL;
	if (r < NGROOT) {
		gc_write(&m->g[r], p);
		m->groot[r] = o;
	} else {
		m->f[r - NGROOT] = p;
		m->froot[r - NGROOT] = o;
	}
}

/* A reachable object, by a random walk from a random root; with
 * `ptrs`, one that has pointer slots. NULL if none was found. */
static mobj *walk(model *m, bool ptrs)
{
	for (int tries = 0; tries < 16; tries++) {
		mobj *o = root_get(m, (unsigned)rng_below(&m->r, NROOTS));
		if (!o)
			continue;
		int steps = (int)rng_below(&m->r, 10);
		for (; steps > 0; steps--) {
			if (!o->nptr)
				break;
			mobj *n = o->tgt[rng_below(&m->r, o->nptr)];
			if (!n)
				break;
			o = n;
		}
		if (!ptrs || o->nptr)
			return o;
	}
	return NULL;
}

/* A slot of o: for objects with many slots, mostly the first ones, so
 * that big pointer arrays are not all NULL. */
static uint32_t pick_slot(model *m, const mobj *o)
{
	if (o->nptr > 16 && rng_below(&m->r, 2))
		return (uint32_t)rng_below(&m->r, 16);
	return (uint32_t)rng_below(&m->r, o->nptr);
}

static void set_slot(mobj *o, uint32_t s, mobj *t)
{
	gc_write(slot_addr(o, s), t ? t->addr : NULL);
	o->tgt[s] = t;
}

static int pick_kind(model *m)
{
	unsigned total = 0;
	for (int k = 0; k < NKINDS; k++)
		total += kind_weight[k];
	unsigned x = (unsigned)rng_below(&m->r, total);
	for (int k = 0; k < NKINDS; k++) {
		if (x < kind_weight[k])
			return k;
		x -= kind_weight[k];
	}
	return K_PAIR;
}

static size_t pick_size(model *m, int k)
{
	test_rng *r = &m->r;

	switch (k) {
	case K_TINY:
		return rng_range(r, 1, 15);
	case K_NOSCAN:
		return rng_range(r, 16, 2048);
	case K_LARGE_NOSCAN:
		return rng_range(r, MAX_SMALL_SIZE + 1, 100000);
	case K_ARRAY:
		return ELEM_SIZE * rng_range(r, 1, 60);
	case K_ARRAY_LARGE:
		return ELEM_SIZE * rng_range(r, 1366, 2500);
	case K_TAIL_NOSCAN:
		if (rng_below(r, 20) == 0)
			return rng_range(r, 24, 50000);
		return rng_range(r, 24, 3000);
	case K_TAIL_PTRS:
		if (rng_below(r, 30) == 0)
			return 16 + 8 * rng_range(r, 0, 5000);
		return 16 + 8 * rng_range(r, 0, 100);
	default:
		return fixed_size(k);
	}
}

/* Allocate an object of kind k into frame scratch slot `scr`, check that
 * it is zeroed, and write its payload. */
static mobj *new_obj(model *m, int k, int scr)
{
	size_t size = pick_size(m, k);
	void *p;

	if (k == K_ARRAY || k == K_ARRAY_LARGE)
		p = gc_alloc_array(size / ELEM_SIZE, kind_type[k]);
	else
		p = gc_alloc(size, kind_type[k]);
	if (!p)
		fail(m, "gc_alloc(%zu, %s) failed: %s", size, kind_name[k],
		     gc_strerror(gc_last_error()));
	m->f[NFROOT - 1 - scr] = p;
	mobj *o = calloc(1, sizeof(*o));
	if (!o)
		fail(m, "out of memory for the model");
	m->froot[NFROOT - 1 - scr] = o;
	o->addr = p;
	o->size = size;
	o->kind = (uint32_t)k;
	o->id = ((uint64_t)m->tid << 48) | ++m->next_id;
	o->seed = rng_next(&m->r);
	o->mark = m->epoch;
	for (size_t w = 0; w < nwords(o); w++)
		o->nptr += kind_ptr(k, size, w);
	if (o->nptr) {
		o->pw = malloc(o->nptr * sizeof(*o->pw));
		o->tgt = calloc(o->nptr, sizeof(*o->tgt));
		if (!o->pw || !o->tgt)
			fail(m, "out of memory for the model");
		uint32_t n = 0;
		for (size_t w = 0; w < nwords(o); w++)
			if (kind_ptr(k, size, w))
				o->pw[n++] = (uint32_t)w;
	}
	const unsigned char *b = p;
	for (size_t i = 0; i < size; i++)
		if (b[i])
			fail(m, "new %s object at %p (%zu bytes) is not zeroed "
			     "at byte %zu (%#x)", kind_name[k], p, size, i,
			     b[i]);
	write_payload(o);
	o->next = m->all;
	m->all = o;
	m->nallocs++;
	return o;
}

static void clear_scratch(model *m)
{
	for (int i = 0; i < NSCRATCH; i++) {
		m->f[NFROOT - 1 - i] = NULL;
		m->froot[NFROOT - 1 - i] = NULL;
	}
}

/* Allocate, fill some pointer slots, and link it somewhere reachable. */
static void op_alloc(model *m)
{
	int k = pick_kind(m);
	mobj *o = new_obj(m, k, 0);
	uint32_t fill = o->nptr < 16 ? o->nptr : 16;

	for (uint32_t i = 0; i < fill; i++)
		if (rng_below(&m->r, 2))
			set_slot(o, i, walk(m, false));
	unsigned where = (unsigned)rng_below(&m->r, 4);
	mobj *d = where >= 2 ? walk(m, true) : NULL;
	if (d) {
		uint32_t s = pick_slot(m, d);
		set_slot(d, s, o);
		note(m, "alloc %s %" PRIu64 " (%zu B) into %" PRIu64
		     "[%u]", kind_name[k], o->id, o->size, d->id, s);
	} else {
		unsigned r = where == 0 ? (unsigned)rng_below(&m->r, NGROOT) :
		             NGROOT + (unsigned)rng_below(&m->r,
		                                       NFROOT - NSCRATCH);
		root_set(m, r, o);
		note(m, "alloc %s %" PRIu64 " (%zu B) into root %u",
		     kind_name[k], o->id, o->size, r);
	}
	clear_scratch(m);
}

static void op_store(model *m)
{
	mobj *o = walk(m, true);
	if (!o)
		return;
	uint32_t s = pick_slot(m, o);
	mobj *t = rng_below(&m->r, 5) ? walk(m, false) : NULL;
	set_slot(o, s, t);
	note(m, "store %" PRIu64 "[%u] = %" PRIu64, o->id, s,
	     t ? t->id : 0);
}

/* Move a pointer from the heap into a frame slot and clear the heap copy
 * (what the deletion half of the barrier is for), or back. */
static void op_move(model *m)
{
	mobj *o = walk(m, true);
	if (!o)
		return;
	uint32_t s = pick_slot(m, o);
	unsigned fr = NGROOT + (unsigned)rng_below(&m->r, NFROOT - NSCRATCH);
	if (rng_below(&m->r, 3)) {
		mobj *t = o->tgt[s];
		root_set(m, fr, t);
		set_slot(o, s, NULL);
		note(m, "move %" PRIu64 "[%u] -> frame %u", o->id, s, fr);
	} else {
		mobj *t = root_get(m, fr);
		set_slot(o, s, t);
		root_set(m, fr, NULL);
		note(m, "move frame %u -> %" PRIu64 "[%u]", fr, o->id, s);
	}
}

/* Move between a global root and a frame slot. */
static void op_move_root(model *m)
{
	unsigned g = (unsigned)rng_below(&m->r, NGROOT);
	unsigned fr = NGROOT + (unsigned)rng_below(&m->r, NFROOT - NSCRATCH);
	if (rng_below(&m->r, 2)) {
		root_set(m, fr, root_get(m, g));
		root_set(m, g, NULL);
	} else {
		root_set(m, g, root_get(m, fr));
		root_set(m, fr, NULL);
	}
	note(m, "move root %u <-> %u", g, fr);
}

/* Drop a root (when `used`, one that holds something, if found). */
static void op_drop(model *m, bool used)
{
	unsigned r = (unsigned)rng_below(&m->r, NROOTS);
	for (int i = 0; used && !root_get(m, r) && i < 32; i++)
		r = (unsigned)rng_below(&m->r, NROOTS);
	root_set(m, r, NULL);
	note(m, "drop root %u", r);
}

static void op_payload(model *m)
{
	mobj *o = walk(m, false);
	if (!o)
		return;
	o->seed = rng_next(&m->r);
	write_payload(o);
	note(m, "payload %" PRIu64, o->id);
}

/* Garbage: objects that are dropped at once (kept in a scratch slot). */
static void op_garbage(model *m)
{
	unsigned n = (unsigned)rng_range(&m->r, 10, 100);
	for (unsigned i = 0; i < n; i++)
		new_obj(m, pick_kind(m), 1);
	clear_scratch(m);
	note(m, "garbage x%u", n);
}

/* gc_copy a run of slots between two pointer arrays. */
static void op_copy(model *m)
{
	mobj *d = NULL, *s = NULL;
	for (int i = 0; i < 8 && !(d && s); i++) {
		mobj *o = walk(m, true);
		if (o && o->kind == K_TAIL_PTRS) {
			if (!d)
				d = o;
			else
				s = o;
		}
	}
	if (!d || !s || d == s)
		return;
	uint32_t n = MIN(d->nptr, s->nptr);
	uint32_t k = (uint32_t)rng_below(&m->r, MIN(n, 24) + 1);
	if (!k)
		return;
	gc_copy(slot_addr(d, 0), slot_addr(s, 0), (size_t)k * 8);
	memmove(d->tgt, s->tgt, k * sizeof(mobj *));
	m->ncopies++;
	note(m, "gc_copy %u slots %" PRIu64 " <- %" PRIu64, k, d->id, s->id);
}

static void op_block(model *m)
{
	struct timespec ts = {0, (long)rng_range(&m->r, 10000, 200000)};
	gc_blocking_begin();
	nanosleep(&ts, NULL);
	gc_blocking_end();
	note(m, "blocking sleep");
}

static void one_op(model *m)
{
	unsigned x = (unsigned)rng_below(&m->r, 1000);

	if (m->live_bytes > LIVE_MAX && x < 400) {
		op_drop(m, true);
		return;
	}
	if (x < 300)
		op_alloc(m);
	else if (x < 500)
		op_store(m);
	else if (x < 650)
		op_move(m);
	else if (x < 700)
		op_move_root(m);
	else if (x < 760)
		op_drop(m, false);
	else if (x < 820)
		op_payload(m);
	else if (x < 880)
		op_garbage(m);
	else if (x < 940)
		op_copy(m);
	else if (x < 990)
		op_block(m);
	else if (x < 993) {
		note(m, "gc_collect");
		gc_collect();
	}
}

/* ---- Checkpoints --------------------------------------------------------- */

static void barrier_wait(void)
{
	gc_blocking_begin();
	pthread_barrier_wait(&barrier);
	gc_blocking_end();
}

/* All threads are quiet (waiting in the barrier): two full collections,
 * then the heap must hold exactly what the models reach. */
static void exact_check(model *m)
{
	gc_collect();
	gc_collect();
	uintptr_t *tiny = NULL;
	size_t ntiny = 0, cap = 0, expected = 0, objs = 0;
	for (int t = 0; t < cfg.nthreads; t++) {
		expected += traverse(models[t], true, &tiny, &ntiny, &cap);
		objs += models[t]->live_objs;
	}
	size_t tb = tiny_bytes(tiny, ntiny);
	expected += tb;
	free(tiny);
	size_t nspan_objs;
	size_t recount = recount_heap(&nspan_objs);
	size_t marked = mgc_.heap_marked;
	if (cfg.sabotage) {
		/* Only the checkmark and the payload checks count as
		 * catching a sabotage. */
	} else if (cfg.conservative) {
		if (recount < expected)
			fail(m, "checkpoint: the heap holds %zu bytes, less "
			     "than the %zu the model reaches", recount,
			     expected);
	} else if (recount != expected) {
		fail(m, "checkpoint: the model reaches %zu bytes (%zu "
		     "objects, %zu of them tiny in %zu bytes of blocks); "
		     "the heap's spans hold %zu bytes (%zu objects) and the "
		     "last mark found %zu bytes live", expected, objs,
		     ntiny, tb, recount, nspan_objs, marked);
	} else if (marked != expected) {
		/* Reported now, failed at the end: the rest of the run
		 * still checks the graph and the sweep side. */
		fprintf(stderr, "model: FAILED (seed %" PRIu64 ") checkpoint "
		        "%" PRIu64 ": the model reaches %zu bytes and the "
		        "heap's spans hold %zu, but the last mark found %zu "
		        "bytes live (mgc_.heap_marked)\n", cfg.seed,
		        exact_checks, expected, recount, marked);
		marked_mismatches++;
	}
	if (cfg.conservative && recount - expected > max_slack)
		max_slack = recount - expected;
	exact_checks++;
}

static void checkpoint(model *m)
{
	full_check(m);
	barrier_wait();
	if (m->tid == 0)
		exact_check(m);
	barrier_wait();
	m->seen_cycles = aload(&mgc_.cycles);
	m->goal_prev = m->goal_cur = read_goal();
}

/* ---- Threads ------------------------------------------------------------- */

static void *mutator(void *arg)
{
	model *m = arg;
	void *fslots[NFROOT] = {0};
	gc_frame frame;

	if (gc_thread_attach() != GCHEAP_OK)
		fail(m, "gc_thread_attach failed");
	m->f = fslots;
	gc_frame_push(&frame, fslots, NFROOT);
	m->seen_cycles = aload(&mgc_.cycles);
	m->goal_prev = m->goal_cur = read_goal();
	for (long round = 0; round < rounds; round++) {
		for (long i = 0; i < cfg.ops; i++) {
			m->op++;
			one_op(m);
			uintptr_t c = aload(&mgc_.cycles);
			if (c != m->seen_cycles) {
				track_goal(m, c);
				m->ncycles_seen++;
				full_check(m);
				check_goal(m);
			} else if (m->op % CHECK_EVERY == 0) {
				full_check(m);
			}
			if (m->op % 64 == 0)
				check_goal(m);
		}
		checkpoint(m);
	}
	/* Drop everything: the heap must then hold nothing of ours. */
	for (unsigned r = 0; r < NROOTS; r++)
		root_set(m, r, NULL);
	checkpoint(m);
	gc_frame_pop(&frame);
	m->f = NULL;
	gc_thread_detach();
	return NULL;
}

int main(int argc, char **argv)
{
	static const harness_opt own[] = {{"--rounds", &rounds, NULL}, {0}};

	cfg.prog = "model";
	cfg.nthreads = 2;
	cfg.ops = 3000;
	harness_start(argc, argv, own);
	printf("model: seed=%" PRIu64 " (replay with GCHEAP_SEED=%" PRIu64
	       "), %d threads, %ld rounds of %ld operations, %s roots\n",
	       cfg.seed, cfg.seed, cfg.nthreads, rounds, cfg.ops,
	       cfg.conservative ? "conservative" : "precise");
	fflush(stdout);

	if (gc_init() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(cfg.conservative);
	make_types();
	if (gc_add_roots(groots, ARRAY_LEN(groots)) != GCHEAP_OK)
		return 1;
	pthread_barrier_init(&barrier, NULL, (unsigned)cfg.nthreads);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int t = 0; t < cfg.nthreads; t++) {
		model *m = calloc(1, sizeof(*m));
		if (!m)
			return 1;
		m->tid = t;
		m->r = harness_rng(t);
		m->g = &groots[t * NGROOT];
		models[t] = m;
		harness_op[t] = &m->op;
	}
	for (int t = 0; t < cfg.nthreads; t++)
		if (pthread_create(&models[t]->thread, NULL, mutator,
		                   models[t]))
			return 1;
	uint64_t checks = 0, objs = 0, allocs = 0, seen = 0, copies = 0;
	size_t inuse = 0;
	for (int t = 0; t < cfg.nthreads; t++) {
		model *m = models[t];
		pthread_join(m->thread, NULL);
		checks += m->nchecks;
		objs += m->nobjs_checked;
		allocs += m->nallocs;
		seen += m->ncycles_seen;
		copies += m->ncopies;
		inuse = MAX(inuse, m->max_inuse);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("model: %zu cycles, %" PRIu64 " allocations, %" PRIu64
	       " graph checks (%" PRIu64 " objects), %" PRIu64 " exact "
	       "checks, %" PRIu64 " gc_copy, cycles seen by threads %"
	       PRIu64 ", max heap_inuse %zu KiB, %.2f s\n",
	       (size_t)aload(&mgc_.cycles), allocs, checks, objs, exact_checks,
	       copies, seen, inuse >> 10, harness_seconds(&t0, &t1));
	if (cfg.conservative)
		printf("model: conservative roots kept at most %zu bytes "
		       "more than the model reaches\n", max_slack);
	if (marked_mismatches) {
		fprintf(stderr, "model: FAILED (seed %" PRIu64 "): at %" PRIu64
		        " of %" PRIu64 " checkpoints the mark's live bytes "
		        "differed from the model\n", cfg.seed,
		        marked_mismatches, exact_checks);
		return 1;
	}
	printf("model: ok\n");
	return 0;
}
