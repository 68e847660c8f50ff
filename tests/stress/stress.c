/* tests/stress/stress.c: concurrency stress. N mutator threads (2, 4 or 8:
 * more than the cores, so they are preempted at any point) each build and
 * rewire their own graph of self-checking nodes through gc_write while
 * cycles run, and pass frozen subgraphs ("parcels") to one another through
 * a shared registered table of 1024 slots swapped with CAS; meanwhile
 * short-lived threads attach (often while the collector marks), allocate,
 * publish a parcel into the table and detach, and some mutators wait in
 * gc_blocking_begin/end around sleeps. Run with checkmark and verify on.
 *
 * A node is self-describing, so any thread can check any node it reaches
 * without a shared model:
 *     word 0  MAGIC ^ id
 *     word 1  child a (pointer)       word 3  id of a, or 0
 *     word 2  child b (pointer)       word 4  id of b, or 0
 *     word 5  owner (thread + 1, or 0 when frozen) | size << 16
 *     word 6  H(id, words 3..5)
 *     words 7.. H(id, word) (a NOSCAN tail: 56 bytes to 70 KiB)
 * Only a node's owner writes it; frozen nodes (parcels) never change and
 * point only to frozen nodes. Each thread checks everything it reaches
 * from its roots (its frame and its part of the global table) after
 * every cycle it sees and every CHECK_EVERY operations: magic, ids, the
 * children's ids, hashes, payloads, ownership. Every parcel taken out of
 * the shared table is checked too. At the end every root is dropped and,
 * after two gc_collect calls, the heap must be empty (precise mode).
 *
 * The shared table and CAS. A raw CAS is a pointer store without the
 * barrier, so before it the thread passes both the old and the new value
 * through gc_write into a registered scratch slot, which shades both while
 * the collector marks. That is the barrier's work for the CAS: the
 * barrier is switched on and off only with the world stopped, and the
 * thread reaches no safepoint between those gc_writes and the CAS.
 *
 * Usage: stress [--threads N] [--ops N] [--churn N] [--conservative]
 *               [--sabotage]
 * The seed (GCHEAP_SEED, else the clock) is printed; a failure prints it
 * with the thread and its operation index. --sabotage: a library fatal()
 * exits 86, a failed node check 87, a crash 99. */
#include "runtime/runtime.h"
#include "tests/stress/harness.h"

#define MAGIC 0x5354524553536e64ULL
#define NSHARED 1024
#define NG 64                /* global root slots per mutator */
#define NF 48                /* frame slots per mutator */
#define NSCR 4               /* the last frame slots are scratch */
#define NROOTS (NG + NF - NSCR)
#define SCR_NEW (NF - 1)
#define SCR_BUILD (NF - 2)
#define SCR_GOT (NF - 3)
#define SCR_PEEK (NF - 4)
#define NSHADE 64
#define HDR 56
#define MAX_NODE (70 << 10)
#define CHECK_EVERY 2000
#define OWNED_MAX ((size_t)768 << 10) /* bytes of owned nodes, soft */

/* ---- Shared state -------------------------------------------------------- */

static long churn = 200; /* --churn; the others are tests/stress/harness.h's */

static gc_type *node_type;
static void *shared[NSHARED];
static void *gslots[MAXT][NG];
static void *shade[NSHADE];
static atomic_word mutators_running;
static atomic_word churn_done, churn_in_mark, cas_fail, parcels_checked;

typedef struct visited {
	uintptr_t *key;
	size_t cap, n;
} visited;

typedef struct thr {
	int tid;                  /* 0.. mutators; 100.. churn threads */
	int shade_slot;           /* this thread's slot in shade[], or -1 */
	test_rng r;
	pthread_t thread;
	void **g;                 /* global slots (NULL for churn threads) */
	void **f;                 /* frame slots */
	int nf;
	uint64_t next_id;
	volatile uint64_t op;
	uintptr_t seen_cycles;
	size_t owned_bytes, nodes_seen;
	visited vis;
	uintptr_t *stack;
	size_t nstack, capstack;
	/* counters */
	uint64_t nchecks, nnodes_checked, npublish, ntake, npeek, nblock;
	uint64_t ncollect;
} thr;

static thr *mutators[MAXT];

static PRINTF_LIKE(2, 3) NORETURN void fail(thr *t, const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	va_start(ap, fmt);
	harness_vreport(t ? t->tid : -1, t ? t->op : 0, fmt, ap);
	va_end(ap);
	funlockfile(stderr);
	harness_die();
}

/* ---- Nodes --------------------------------------------------------------- */

static uint64_t node_hash(const uint64_t *w)
{
	return mix((w[0] ^ MAGIC) * 0x9E3779B97F4A7C15ULL ^ mix(w[3]) ^
	           mix(w[4] + 1) ^ mix(w[5] + 2));
}

static uint64_t payload_word(uint64_t id, size_t i)
{
	return mix(id ^ (i * 0xD6E8FEB86659FD93ULL));
}

static uint64_t node_id(const uint64_t *w)
{
	return w[0] ^ MAGIC;
}

static size_t node_size(const uint64_t *w)
{
	return (size_t)(w[5] >> 16);
}

static unsigned node_owner(const uint64_t *w)
{
	return (unsigned)(w[5] & 0xffff);
}

static size_t pick_size(thr *t)
{
	unsigned x = (unsigned)rng_below(&t->r, 100);
	if (x < 70)
		return rng_range(&t->r, HDR, 512);
	if (x < 97)
		return rng_range(&t->r, 513, 4096);
	if (x < 99)
		return rng_range(&t->r, 4097, MAX_SMALL_SIZE);
	return rng_range(&t->r, MAX_SMALL_SIZE + 1, MAX_NODE);
}

/* A new node in frame slot `scr`: owned by t, or frozen (owner 0). */
static uint64_t *new_node(thr *t, int scr, bool frozen)
{
	size_t size = pick_size(t);
	uint64_t *w = gc_alloc(size, node_type);

	if (!w)
		fail(t, "gc_alloc(%zu) failed: %s", size,
		     gc_strerror(gc_last_error()));
	t->f[scr] = w;
	const unsigned char *b = (const unsigned char *)w;
	for (size_t i = 0; i < size; i++)
		if (b[i])
			fail(t, "new node %p (%zu bytes) is not zeroed at "
			     "byte %zu", (void *)w, size, i);
	uint64_t id = ((uint64_t)(t->tid + 1) << 40) | ++t->next_id;
	w[0] = MAGIC ^ id;
	w[5] = (frozen ? 0 : (uint64_t)(t->tid + 1)) | (uint64_t)size << 16;
	w[6] = node_hash(w);
	for (size_t i = 7; i * 8 < size; i++) {
		uint64_t v = payload_word(id, i);
		memcpy(&w[i], &v, MIN(8, size - i * 8));
	}
	return w;
}

/* Set child `which` (0: a, 1: b) of a node the caller owns (or is
 * building). */
static void set_child(uint64_t *w, int which, uint64_t *c)
{
	gc_write(&w[1 + which], c);
	w[3 + which] = c ? node_id(c) : 0;
	w[6] = node_hash(w);
}

static bool vis_add(thr *t, uintptr_t p)
{
	visited *v = &t->vis;
	if (v->n * 2 >= v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4096;
		uintptr_t *k = calloc(cap, sizeof(*k));
		if (!k)
			fail(t, "out of memory");
		for (size_t i = 0; i < v->cap; i++) {
			if (!v->key[i])
				continue;
			size_t j = mix(v->key[i]) & (cap - 1);
			while (k[j])
				j = (j + 1) & (cap - 1);
			k[j] = v->key[i];
		}
		free(v->key);
		v->key = k;
		v->cap = cap;
	}
	size_t j = mix(p) & (v->cap - 1);
	while (v->key[j]) {
		if (v->key[j] == p)
			return false;
		j = (j + 1) & (v->cap - 1);
	}
	v->key[j] = p;
	v->n++;
	return true;
}

static void vis_clear(thr *t)
{
	if (t->vis.n)
		memset(t->vis.key, 0, t->vis.cap * sizeof(uintptr_t));
	t->vis.n = 0;
}

static void spush(thr *t, uintptr_t p)
{
	if (t->nstack == t->capstack) {
		t->capstack = t->capstack ? t->capstack * 2 : 1024;
		t->stack = realloc(t->stack, t->capstack * sizeof(uintptr_t));
		if (!t->stack)
			fail(t, "out of memory");
	}
	t->stack[t->nstack++] = p;
}

/* Check one node; `frozen_only`: it was reached from a frozen node. */
static void check_node(thr *t, const uint64_t *w, bool frozen_only)
{
	uint64_t id = node_id(w);
	size_t size = node_size(w);
	unsigned owner = node_owner(w);

	if (size < HDR || size > MAX_NODE || (id >> 40) == 0)
		fail(t, "node %p: bad header (word 0 %#" PRIx64 ", word 5 %#"
		     PRIx64 ")", (const void *)w, w[0], w[5]);
	if (owner && (owner != (unsigned)t->tid + 1 || frozen_only))
		fail(t, "node %p (id %#" PRIx64 "): owned by %u, reached by "
		     "thread %d%s", (const void *)w, id, owner - 1, t->tid,
		     frozen_only ? " through a frozen node" : "");
	if (w[6] != node_hash(w))
		fail(t, "node %p (id %#" PRIx64 "): header hash %#" PRIx64
		     ", expected %#" PRIx64, (const void *)w, id, w[6],
		     node_hash(w));
	for (int c = 0; c < 2; c++) {
		const uint64_t *ch = (const uint64_t *)w[1 + c];
		uint64_t want = w[3 + c];
		uint64_t got = ch ? node_id(ch) : 0;
		if (got != want)
			fail(t, "node %p (id %#" PRIx64 "): child %c %p has id "
			     "%#" PRIx64 ", expected %#" PRIx64,
			     (const void *)w, id, "ab"[c], (const void *)ch,
			     got, want);
	}
	for (size_t i = 7; i * 8 < size; i++) {
		uint64_t v = 0, want = payload_word(id, i);
		size_t n = MIN(8, size - i * 8);
		memcpy(&v, &w[i], n);
		if (n < 8)
			want &= ((uint64_t)1 << (n * 8)) - 1;
		if (v != want)
			fail(t, "node %p (id %#" PRIx64 ", %zu bytes): payload "
			     "word %zu is %#" PRIx64 ", expected %#" PRIx64,
			     (const void *)w, id, size, i, v, want);
	}
	t->nnodes_checked++;
	if (owner)
		t->owned_bytes += size;
}

/* Check everything reachable from `roots` (n slots). Nodes are marked
 * frozen-only by tagging bit 0 of the stack entry. */
static void check_from(thr *t, void *const *roots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (roots[i] && vis_add(t, (uintptr_t)roots[i]))
			spush(t, (uintptr_t)roots[i]);
	while (t->nstack) {
		uintptr_t e = t->stack[--t->nstack];
		const uint64_t *w = (const uint64_t *)(e & ~(uintptr_t)1);
		bool frozen = e & 1;
		check_node(t, w, frozen);
		frozen |= node_owner(w) == 0;
		for (int c = 0; c < 2; c++) {
			uintptr_t ch = (uintptr_t)w[1 + c];
			if (ch && vis_add(t, ch))
				spush(t, ch | frozen);
		}
		t->nodes_seen++;
		/* Everything on the stack is reachable from our roots, which
		 * do not change meanwhile: a safepoint is safe here. */
		if ((t->nodes_seen & 255) == 0)
			gc_safepoint();
	}
}

/* Check the thread's whole graph. */
static void check_all(thr *t)
{
	vis_clear(t);
	t->owned_bytes = 0;
	t->nodes_seen = 0;
	if (t->g)
		check_from(t, t->g, NG);
	check_from(t, t->f, (size_t)t->nf);
	t->nchecks++;
}

/* Check a parcel (a frozen subgraph) taken from the shared table. */
static void check_parcel(thr *t, void *p)
{
	if (!p)
		return;
	if (node_owner(p))
		fail(t, "shared slot held an owned node %p (owner %u)", p,
		     node_owner(p) - 1);
	vis_clear(t);
	size_t owned = t->owned_bytes;
	check_from(t, &p, 1);
	t->owned_bytes = owned;
	afetch_add(&parcels_checked, 1);
}

/* ---- The shared table ---------------------------------------------------- */

/* Each live thread owns one registered scratch slot (claimed on first use,
 * released at exit), so no two threads ever store into the same slot. */
static atomic_word shade_used[NSHADE];

static int shade_slot(thr *t)
{
	if (t->shade_slot >= 0)
		return t->shade_slot;
	for (;;)
		for (int i = 0; i < NSHADE; i++)
			if (acas(&shade_used[i], 0, 1))
				return t->shade_slot = i;
}

static void shade_release(thr *t)
{
	if (t->shade_slot >= 0)
		astore_rel(&shade_used[t->shade_slot], 0);
	t->shade_slot = -1;
}

/* Replace shared[i] with nv; returns the old value, which the caller
 * must hold in a frame slot (`hold`) from here on. */
static void *swap_shared(thr *t, size_t i, void *nv, int hold)
{
	void **sh = &shade[shade_slot(t)];

	for (;;) {
		void *old = __atomic_load_n(&shared[i], __ATOMIC_ACQUIRE);
		t->f[hold] = old;
		/* The barrier's work for the CAS below (see the top). */
		gc_write(sh, old);
		gc_write(sh, nv);
		if (__atomic_compare_exchange_n(&shared[i], &old, nv, false,
		                                __ATOMIC_ACQ_REL,
		                                __ATOMIC_RELAXED)) {
			gc_write(sh, NULL);
			return old;
		}
		afetch_add(&cas_fail, 1);
	}
}

/* Build a frozen parcel of 1..6 nodes in frame slot SCR_BUILD. */
static void *build_parcel(thr *t, bool link_frozen)
{
	int n = (int)rng_range(&t->r, 1, 6);

	t->f[SCR_BUILD] = NULL;
	for (int i = 0; i < n; i++) {
		uint64_t *w = new_node(t, SCR_NEW, true);
		set_child(w, 0, t->f[SCR_BUILD]);
		if (link_frozen && rng_below(&t->r, 3) == 0 && t->f[SCR_GOT]) {
			uint64_t *o = t->f[SCR_GOT];
			if (!node_owner(o))
				set_child(w, 1, o);
		}
		t->f[SCR_BUILD] = w;
		t->f[SCR_NEW] = NULL;
	}
	return t->f[SCR_BUILD];
}

/* ---- Mutator operations -------------------------------------------------- */

static void **root_slot(thr *t, unsigned r)
{
	return r < NG ? &t->g[r] : &t->f[r - NG];
}

static void root_set(thr *t, unsigned r, void *p)
{
	if (r < NG)
		gc_write(&t->g[r], p);
	else
		t->f[r - NG] = p;
}

/* A node reachable from the roots, by a random walk; `owned`: one the
 * thread owns. NULL if none was found. */
static uint64_t *walk(thr *t, bool owned)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t *w = *root_slot(t, (unsigned)rng_below(&t->r, NROOTS));
		if (!w)
			continue;
		for (int s = (int)rng_below(&t->r, 8); s > 0; s--) {
			uint64_t *c = (uint64_t *)w[1 + rng_below(&t->r, 2)];
			if (!c || (owned && node_owner(c) == 0))
				break;
			w = c;
		}
		if (!owned || node_owner(w))
			return w;
	}
	return NULL;
}

static void op_alloc(thr *t)
{
	uint64_t *w = new_node(t, SCR_NEW, false);
	for (int c = 0; c < 2; c++)
		if (rng_below(&t->r, 2))
			set_child(w, c, walk(t, false));
	uint64_t *d = rng_below(&t->r, 2) ? walk(t, true) : NULL;
	if (d)
		set_child(d, (int)rng_below(&t->r, 2), w);
	else
		root_set(t, (unsigned)rng_below(&t->r, NROOTS), w);
	t->f[SCR_NEW] = NULL;
}

static void op_rewire(thr *t)
{
	uint64_t *w = walk(t, true);
	if (w)
		set_child(w, (int)rng_below(&t->r, 2),
		          rng_below(&t->r, 4) ? walk(t, false) : NULL);
}

/* Move a child into a frame slot and clear it in the heap, or back. */
static void op_move(thr *t)
{
	uint64_t *w = walk(t, true);
	if (!w)
		return;
	int c = (int)rng_below(&t->r, 2);
	unsigned fr = NG + (unsigned)rng_below(&t->r, NF - NSCR);
	if (rng_below(&t->r, 3)) {
		root_set(t, fr, (void *)w[1 + c]);
		set_child(w, c, NULL);
	} else {
		set_child(w, c, *root_slot(t, fr));
		root_set(t, fr, NULL);
	}
}

/* Adopt (or drop) the parcel held in SCR_GOT. */
static void adopt(thr *t)
{
	void *p = t->f[SCR_GOT];
	if (!p || rng_below(&t->r, 2))
		return;
	uint64_t *d = rng_below(&t->r, 2) ? walk(t, true) : NULL;
	if (d)
		set_child(d, (int)rng_below(&t->r, 2), p);
	else
		root_set(t, (unsigned)rng_below(&t->r, NROOTS), p);
}

/* A shared slot; a few hot ones get most of the traffic, so that CAS
 * races happen. */
static size_t pick_shared(thr *t)
{
	if (rng_below(&t->r, 3) == 0)
		return (size_t)rng_below(&t->r, 8);
	return (size_t)rng_below(&t->r, NSHARED);
}

static void op_publish(thr *t)
{
	void *p = build_parcel(t, false);
	void *old = swap_shared(t, pick_shared(t), p, SCR_GOT);
	t->f[SCR_BUILD] = NULL;
	check_parcel(t, old);
	adopt(t);
	t->f[SCR_GOT] = NULL;
	t->npublish++;
}

static void op_take(thr *t)
{
	void *old = swap_shared(t, pick_shared(t), NULL, SCR_GOT);
	check_parcel(t, old);
	adopt(t);
	t->f[SCR_GOT] = NULL;
	t->ntake++;
}

/* Read a shared slot without taking it (no barrier on reads): another
 * thread may swap it out meanwhile, shading it. */
static void op_peek(thr *t)
{
	size_t i = pick_shared(t);
	t->f[SCR_PEEK] = __atomic_load_n(&shared[i], __ATOMIC_ACQUIRE);
	check_parcel(t, t->f[SCR_PEEK]);
	t->f[SCR_PEEK] = NULL;
	t->npeek++;
}

static void op_garbage(thr *t)
{
	for (int i = (int)rng_range(&t->r, 5, 40); i > 0; i--)
		new_node(t, SCR_NEW, false);
	t->f[SCR_NEW] = NULL;
}

static void op_block(thr *t)
{
	struct timespec ts = {0, (long)rng_range(&t->r, 20000, 300000)};
	gc_blocking_begin();
	nanosleep(&ts, NULL);
	gc_blocking_end();
	t->nblock++;
}

static void one_op(thr *t)
{
	unsigned x = (unsigned)rng_below(&t->r, 1000);
	bool sleeper = t->tid % 2 == 1;

	if (t->owned_bytes > OWNED_MAX && x < 300 && rng_below(&t->r, 2)) {
		root_set(t, (unsigned)rng_below(&t->r, NROOTS), NULL);
		return;
	}
	if (x < 300)
		op_alloc(t);
	else if (x < 450)
		op_rewire(t);
	else if (x < 600)
		op_move(t);
	else if (x < 680)
		op_publish(t);
	else if (x < 730)
		op_take(t);
	else if (x < 800)
		op_peek(t);
	else if (x < 860)
		op_garbage(t);
	else if (x < 940)
		root_set(t, (unsigned)rng_below(&t->r, NROOTS), NULL);
	else if (x < (sleeper ? 990u : 945u))
		op_block(t);
	else if (x == 999 && rng_below(&t->r, 4) == 0) {
		gc_collect();
		t->ncollect++;
	}
}

static void *mutator(void *arg)
{
	thr *t = arg;
	void *fslots[NF] = {0};
	gc_frame frame;

	if (gc_thread_attach() != GCHEAP_OK)
		fail(t, "gc_thread_attach failed");
	t->f = fslots;
	t->nf = NF;
	gc_frame_push(&frame, fslots, NF);
	t->seen_cycles = aload(&mgc_.cycles);
	for (long i = 0; i < cfg.ops; i++) {
		t->op++;
		one_op(t);
		uintptr_t c = aload(&mgc_.cycles);
		if (c != t->seen_cycles || t->op % CHECK_EVERY == 0) {
			t->seen_cycles = c;
			check_all(t);
		}
	}
	check_all(t);
	for (unsigned r = 0; r < NROOTS; r++)
		root_set(t, r, NULL);
	gc_frame_pop(&frame);
	t->f = NULL;
	gc_thread_detach();
	afetch_add(&mutators_running, (uintptr_t)-1);
	return NULL;
}

/* ---- Short-lived threads ------------------------------------------------- */

static void *churn_thread(void *arg)
{
	thr *t = arg;
	void *fslots[NF] = {0};
	gc_frame frame;

	if (gc_thread_attach() != GCHEAP_OK)
		fail(t, "gc_thread_attach failed");
	if (aload(&mgc_.phase) != GCPHASE_OFF)
		afetch_add(&churn_in_mark, 1);
	t->f = fslots;
	t->nf = NF;
	gc_frame_push(&frame, fslots, NF);
	for (int i = (int)rng_range(&t->r, 1, 4); i > 0; i--) {
		op_garbage(t);
		void *p = build_parcel(t, true);
		void *old = swap_shared(t, pick_shared(t), p, SCR_GOT);
		t->f[SCR_BUILD] = NULL;
		check_parcel(t, old);
		if (rng_below(&t->r, 4) == 0)
			op_block(t);
		t->op++;
	}
	gc_frame_pop(&frame);
	gc_thread_detach();
	afetch_add(&churn_done, 1);
	shade_release(t);
	free(t->vis.key);
	free(t->stack);
	free(t);
	return NULL;
}

/* Start short-lived threads, two at a time, until `churn` have run
 * and the mutators are done. */
static void *spawner(void *arg)
{
	(void)arg;
	int n = 0;
	struct timespec ts = {0, 2000000};

	while (n < churn || aload(&mutators_running)) {
		pthread_t th[2];
		for (int k = 0; k < 2; k++) {
			thr *t = calloc(1, sizeof(*t));
			if (!t)
				fail(NULL, "out of memory");
			t->tid = 100 + n % 1000;
			t->shade_slot = -1;
			t->r.s = mix(cfg.seed ^ (uint64_t)(n + 1) * 7919u) | 1;
			t->next_id = (uint64_t)n << 20;
			n++;
			if (pthread_create(&th[k], NULL, churn_thread, t))
				fail(NULL, "pthread_create failed");
		}
		for (int k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		if (n >= churn)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- Main ---------------------------------------------------------------- */

static size_t recount_heap(void)
{
	return mheap_recount_allocated(NULL);
}

int main(int argc, char **argv)
{
	static const harness_opt own[] = {{"--churn", &churn, NULL}, {0}};

	cfg.prog = "stress";
	cfg.nthreads = 4;
	cfg.ops = 20000;
	harness_start(argc, argv, own);
	printf("stress: seed=%" PRIu64 " (replay with GCHEAP_SEED=%" PRIu64
	       "), %d mutators x %ld operations, %ld short-lived threads, "
	       "%s roots\n", cfg.seed, cfg.seed, cfg.nthreads, cfg.ops,
	       churn, cfg.conservative ? "conservative" : "precise");
	fflush(stdout);

	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(cfg.conservative);
	size_t offs[2] = {8, 16};
	node_type = gc_type_new("node", HDR, offs, 2, GCHEAP_TAIL_NOSCAN);
	if (!node_type || gc_add_roots(shared, NSHARED) != GCHEAP_OK ||
	    gc_add_roots(gslots, MAXT * NG) != GCHEAP_OK ||
	    gc_add_roots(shade, NSHADE) != GCHEAP_OK)
		return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	astore(&mutators_running, (uintptr_t)cfg.nthreads);
	for (int i = 0; i < cfg.nthreads; i++) {
		thr *t = calloc(1, sizeof(*t));
		if (!t)
			return 1;
		t->tid = i;
		t->shade_slot = -1;
		t->r = harness_rng(i);
		t->g = gslots[i];
		mutators[i] = t;
		harness_op[i] = &t->op;
	}
	/* The main thread waits in a blocking region so that it never
	 * holds up the collector. */
	gc_blocking_begin();
	pthread_t sp;
	for (int i = 0; i < cfg.nthreads; i++)
		if (pthread_create(&mutators[i]->thread, NULL, mutator,
		                   mutators[i]))
			return 1;
	if (pthread_create(&sp, NULL, spawner, NULL))
		return 1;
	for (int i = 0; i < cfg.nthreads; i++)
		pthread_join(mutators[i]->thread, NULL);
	pthread_join(sp, NULL);
	gc_blocking_end();

	/* Check and drop what is left in the shared table. */
	thr *me = calloc(1, sizeof(*me));
	void *fslots[NF] = {0};
	gc_frame frame;
	if (!me)
		return 1;
	me->tid = 99;
	me->shade_slot = -1;
	me->f = fslots;
	me->nf = NF;
	gc_frame_push(&frame, fslots, NF);
	for (size_t i = 0; i < NSHARED; i++) {
		void *old = swap_shared(me, i, NULL, SCR_GOT);
		check_parcel(me, old);
		me->f[SCR_GOT] = NULL;
	}
	gc_frame_pop(&frame);
	free(me->vis.key);
	free(me->stack);
	free(me);
	gc_collect();
	gc_collect();
	size_t left = recount_heap();
	size_t marked = mgc_.heap_marked;
	if (!cfg.conservative && !cfg.sabotage && (left || marked))
		fail(NULL, "every root is dropped, yet after two collections "
		     "the heap's spans hold %zu bytes and the last mark found "
		     "%zu bytes live", left, marked);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	uint64_t checks = 0, nodes = 0, pub = 0, take = 0, peek = 0;
	uint64_t blk = 0, coll = 0;
	for (int i = 0; i < cfg.nthreads; i++) {
		thr *t = mutators[i];
		checks += t->nchecks;
		nodes += t->nnodes_checked;
		pub += t->npublish;
		take += t->ntake;
		peek += t->npeek;
		blk += t->nblock;
		coll += t->ncollect;
	}
	printf("stress: ok: %zu cycles, %" PRIu64 " graph checks (%" PRIu64
	       " nodes), %zu parcels checked, %" PRIu64 " published, %"
	       PRIu64 " taken, %" PRIu64 " peeked, %zu CAS retries, %"
	       PRIu64 " blocking sleeps, %" PRIu64 " gc_collect, %zu "
	       "short-lived threads (%zu attached while marking), %zu bytes "
	       "left, %.2f s\n", (size_t)aload(&mgc_.cycles), checks, nodes,
	       (size_t)aload(&parcels_checked), pub, take, peek,
	       (size_t)aload(&cas_fail), blk, coll,
	       (size_t)aload(&churn_done), (size_t)aload(&churn_in_mark),
	       left, harness_seconds(&t0, &t1));
	for (int i = 0; i < cfg.nthreads; i++) {
		free(mutators[i]->vis.key);
		free(mutators[i]->stack);
		free(mutators[i]);
	}
	return 0;
}
