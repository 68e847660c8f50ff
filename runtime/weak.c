/* runtime/weak.c: weak references, ephemerons and the weak-key map (the
 * public side; the collector's side is gc/mfinal.c).
 *
 * A gc_weak is a weak_cell, a noscan heap object holding its target's
 * address out of the collector's sight; the target's span carries a WEAK
 * special that lets sweep clear it, and while that special exists the
 * cell's sweeps keep it (keep_weak_cells: nothing marks it). Reading one
 * (Go's makeStrongFromWeak) must
 *  - make sure the target's span has been swept this cycle, or a dead
 *    target whose cell is not yet cleared would be handed out: sweep the
 *    span, or wait for whoever is sweeping it;
 *  - shade the target while marking, because the reader may keep it on a
 *    stack that has already been scanned (the hybrid barrier does not see
 *    a load).
 * gc_weak_get is a safepoint, before it reads the cell: between the read
 * and the return no cycle can advance.
 *
 * An ephemeron is {weak cell of the key, value}; the value word is not in
 * the object's pointer map and is marked by the collector's ephemeron pass
 * once the key is marked. Writes and reads of the value shade it while
 * marking (the pass may be over for this cycle).
 *
 * The weak map is open addressing over an array of ephemerons; an entry
 * whose key died reads as empty and is reused or dropped when the table
 * grows.
 *
 * Every object made here comes from runtime_new and stays held until it
 * is stored where it is rooted or returned (the rule in runtime.h): the
 * probes between making an entry and storing it are safepoints, and so is
 * each allocation after the first.
 *
 * Each of the three handles carries a tag word made from its own address
 * and kind: the API (check level >= 1) accepts an address only once it is
 * known to be the start of an allocated heap object, and then only if
 * its tag matches, so stack garbage or any other heap object is an error,
 * never a read of unknown memory or an endless wait in weak_target. */
#include "runtime/runtime.h"

#include <sched.h>
#include <stddef.h>

/* Shade p (a heap address) if the collector is marking. */
static void shade(gc_thread *t, uintptr_t p)
{
	if (p && wbbuf_barrier_on())
		wbbuf_put(&t->gc, p);
}

static gc_thread *attached(const char *fn)
{
	gc_thread *t = thread_current;
	if (!t)
		runtime_not_attached(fn);
	return t;
}

/* The map's table is rebuilt a little at a time, never in one call (see
 * "The weak-key map" below): `counting` while the live entries are
 * counted to size the new table, then `oslots` != NULL while entries
 * move from the old table to the new one. */
/* A slot of the map's table: the entry, and its key's address
 * complemented (not a pointer to anything, and outside the slot's pointer
 * map), so that a probe passes other keys' entries without reading their
 * ephemerons and cells: a cache miss each. */
typedef struct map_slot {
	ephemeron_obj *e; /* NULL, TOMB or an ephemeron */
	uintptr_t hint;   /* ~key when e is an ephemeron */
} map_slot;

struct gc_weakmap {
	map_slot *slots;        /* cap entries */
	map_slot *oslots;       /* moving: the old table (ocap entries) */
	size_t cap;             /* a power of two */
	size_t used;            /* slots of `slots` that are not NULL */
	size_t ocap;            /* moving: the old table's size */
	size_t opos;            /* moving: old slots below it are moved */
	size_t cpos;            /* counting: slots below it are counted */
	size_t clive;           /* counting: live entries seen, and added */
	bool counting;
	unsigned retry;         /* counted, no memory for the new table:
	                         * sets before the next try */
	uintptr_t tag;
};

enum handle_kind { H_WEAK = 1, H_EPHEMERON = 2, H_MAP = 3 };

static uintptr_t handle_tag(const void *p, enum handle_kind k)
{
	return ((uintptr_t)p ^ 0x9e3779b97f4a7c15ULL * k) *
	       0xff51afd7ed558ccdULL;
}

/* Each kind's name, object size and tag offset. */
static const struct {
	const char *name;
	size_t size, tag_off;
} kinds[] = {
	[H_WEAK] = {"gc_weak", sizeof(weak_cell), offsetof(weak_cell, tag)},
	[H_EPHEMERON] = {"gc_ephemeron", sizeof(ephemeron_obj),
	                 offsetof(ephemeron_obj, tag)},
	[H_MAP] = {"gc_weakmap", sizeof(gc_weakmap),
	           offsetof(gc_weakmap, tag)},
};

/* Is p, the start of an allocated object of span s, a handle of kind k?
 * Handles are allocated at their own size: the tag is read only in a slot
 * of that size's class (gc_free and gc_realloc ask about every object,
 * and the read missed on a cold object: 14% of a malloc-style program's
 * time). */
static bool is_handle(const void *p, const mspan *s, enum handle_kind k)
{
	return s->elemsize == class_to_size[size_to_class(kinds[k].size)] &&
	       aload((const atomic_word *)((uintptr_t)p +
	                                   kinds[k].tag_off)) ==
	       handle_tag(p, k);
}

/* True if p is a handle of kind k; else reports GCHEAP_ERR_ARG. At every
 * check level: the API promises it (a non-handle read as one crashed, hung
 * in weak_target or came back as a strong pointer at level 0), for one
 * span lookup, as gc_free makes. */
static bool check_handle(const char *fn, const void *p, enum handle_kind k)
{
	mspan *s = NULL;

	if (p && mheap_find_object((uintptr_t)p, &s) == (uintptr_t)p &&
	    is_handle(p, s, k))
		return true;
	runtime_error(GCHEAP_ERR_ARG, "%s(%p): not a %s", fn, p,
	              kinds[k].name);
	return false;
}

/* The size of a cell's slot (its size class), set at start-up. */
static uintptr_t cell_slot;

/* Does the object at c carry a weak cell's tag? */
static bool cell_tagged(uintptr_t c)
{
	return aload((const atomic_word *)&((const weak_cell *)c)->tag) ==
	       handle_tag((void *)c, H_WEAK);
}

/* alloc_hooks.keep_weak_cells: s is being swept by its owner, its mark
 * bits final. A cell lives while its target is set (its WEAK special
 * exists: gc/mfinal.c), held by the program or not, so that the same
 * cell answers every gc_weak_new of the target: keep each allocated,
 * unmarked cell whose target is set. The cell's tag tells it from the
 * other objects of its size class; one that only looks like a cell stays
 * one more cycle, which is all a wrong guess can cost (cells are noscan).
 * A target cleared meanwhile by the sweep of its own span keeps the cell
 * one more cycle too. */
static void keep_weak_cells(mspan *s, uintptr_t fi)
{
	if (s->elemsize != cell_slot)
		return;
	for (size_t w = 0; w < mspan_bitmap_words(s->nelems); w++) {
		/* Allocated: below freeindex, or in alloc_bits. */
		uint64_t low = fi > w * 64 ? low_mask((unsigned)MIN(fi - w * 64,
		                                                    64))
		                           : 0;
		uint64_t dead = (s->alloc_bits[w] | low) & ~s->gcmark_bits[w];
		for (; dead; dead &= dead - 1) {
			uintptr_t i = w * 64 + ctz64(dead);
			uintptr_t c = s->base + i * s->elemsize;
			if (!cell_tagged(c))
				continue;
			if (aload_acq(&((weak_cell *)c)->target))
				s->gcmark_bits[w] |= (uint64_t)1 << (i % 64);
			else /* it dies: no stale handle passes is_live_cell */
				astore((atomic_word *)&((weak_cell *)c)->tag,
				       0);
		}
	}
}

void runtime_weak_init(void)
{
	cell_slot = class_to_size[size_to_class(sizeof(weak_cell))];
	mspan_hooks.keep_weak_cells = keep_weak_cells;
}

bool runtime_weak_cell_kept(uintptr_t obj, const mspan *s)
{
	return s->elemsize == cell_slot && cell_tagged(obj) &&
	       aload_acq(&((const weak_cell *)obj)->target);
}

/* gc_weak_get's check, for the common case, without mheap_find_object's
 * sequence lock and allocation bit (a cache miss each call): a cell's tag
 * is cleared by the sweep that frees it (keep_weak_cells), so a matching
 * tag at the start of a slot of an in-use span of the cells' class is a
 * live cell. Anything else (a stale handle, garbage, another object)
 * fails here and goes to check_handle, which reports it. The span's
 * fields are read racily: for a live cell they cannot change; for any
 * other address the tag decides, and it lies in a heap arena, which
 * stays mapped (spanof found the page). */
NO_SANITIZE_THREAD static bool is_live_cell(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	mspan *s = a ? spanof(a) : NULL;

	if (!s || RACY_LOAD(s->state) != MSPAN_INUSE ||
	    RACY_LOAD(s->elemsize) != cell_slot)
		return false;
	uintptr_t base = RACY_LOAD(s->base), limit = RACY_LOAD(s->limit);
	return a >= base && a < limit && (a - base) % cell_slot == 0 &&
	       RACY_LOAD(((const weak_cell *)p)->tag) == handle_tag(p, H_WEAK);
}

bool runtime_is_handle(const void *p, const mspan *s)
{
	return is_handle(p, s, H_WEAK) || is_handle(p, s, H_EPHEMERON) ||
	       is_handle(p, s, H_MAP);
}

#define IS_WEAK(fn, w) check_handle(fn, w, H_WEAK)
#define IS_EPHEMERON(fn, e) check_handle(fn, e, H_EPHEMERON)
#define IS_MAP(fn, m) check_handle(fn, m, H_MAP)

/* The immortal types of this file's objects: named so that heap dumps
 * tell them apart (the cell is noscan: its target is hidden). Made by
 * the first call that needs them, each published with a compare-and-
 * swap (a thread that loses keeps its copy unused: types are immortal);
 * one that fails (no memory) stops the making, reported once by
 * gc_type_new, and a later call tries again (pthread_once would have
 * left them missing for good, and the calls failing silently). */
static struct {
	atomic_word done;
	atomic_word cell, ephemeron, map, slots; /* gc_type * */
} types_;

static bool make_type(atomic_word *slot, const char *name, size_t size,
                      const size_t *offs, size_t n, unsigned tail)
{
	if (aload_acq(slot))
		return true;
	gc_type *t = gc_type_new(name, size, offs, n, tail);
	if (t)
		(void)acas(slot, 0, (uintptr_t)t);
	return t != NULL;
}

/* False (the error reported) if the types could not be made. */
static bool have_types(void)
{
	static const size_t eoff[] = {offsetof(ephemeron_obj, key)};
	static const size_t moff[] = {offsetof(gc_weakmap, slots),
	                              offsetof(gc_weakmap, oslots)};
	static const size_t soff[] = {0};

	if (aload_acq(&types_.done))
		return true;
	if (!make_type(&types_.cell, "gc_weak", sizeof(weak_cell), NULL, 0,
	               GCHEAP_TAIL_NOSCAN) ||
	    !make_type(&types_.ephemeron, "gc_ephemeron",
	               sizeof(ephemeron_obj), eoff, 1, GCHEAP_TAIL_NOSCAN) ||
	    !make_type(&types_.map, "gc_weakmap", sizeof(gc_weakmap), moff, 2,
	               GCHEAP_TAIL_NOSCAN) ||
	    !make_type(&types_.slots, "gc_weakmap slots", sizeof(map_slot),
	               soff, 1, GCHEAP_TAIL_REPEAT))
		return false;
	astore_rel(&types_.done, 1);
	return true;
}

#define WEAK_TYPE(which) ((const gc_type *)aload_acq(&types_.which))

/* ---- Weak references ---------------------------------------------------- */

/* The weak cell of obj for the attached thread t, new or the one obj has;
 * errors name fn, the call the program made. */
static gc_weak *weak_new(const char *fn, gc_thread *t, void *obj)
{
	mspan *s = NULL;

	if (!obj || !mheap_find_object((uintptr_t)obj, &s)) {
		runtime_error(GCHEAP_ERR_ARG, "%s(%p): not an address inside "
		              "an allocated heap object", fn, obj);
		return NULL;
	}
	/* An existing cell is kept by its target's record, not marked: the
	 * caller may keep it where the mark has looked already, so it is
	 * shaded as it is handed out (as gc_weak_get shades the target).
	 * So is a cell another thread added first (specials_add_weak). */
	uintptr_t cell = specials_find_weak(s, (uintptr_t)obj);
	if (cell) {
		shade(t, cell);
		return (gc_weak *)cell;
	}
	if (!have_types())
		return NULL;
	/* A safepoint: obj is the caller's, so it and its span stay. */
	size_t mark = runtime_held_mark(t);
	weak_cell *c = runtime_new(t, sizeof(weak_cell), WEAK_TYPE(cell));
	if (!c) {
		runtime_unhold(t, mark);
		return NULL;
	}
	c->tag = handle_tag(c, H_WEAK);
	/* Before the cell can be left to its special: its span's sweeps
	 * keep it from then on (keep_weak_cells). */
	mspan *cs = spanof((uintptr_t)c);
	if (!aload(&cs->weak_cells))
		astore_rel(&cs->weak_cells, 1);
	cell = specials_add_weak(s, (uintptr_t)obj, (uintptr_t)c);
	runtime_unhold(t, mark); /* the special keeps the cell now */
	if (!cell)
		runtime_error(GCHEAP_ERR_NOMEM, "%s: no memory for the record",
		              fn);
	else if (cell != (uintptr_t)c)
		shade(t, cell);
	return (gc_weak *)cell;
}

gc_weak *gc_weak_new(void *obj)
{
	gc_thread *t = attached("gc_weak_new");

	return t ? weak_new("gc_weak_new", t, obj) : NULL;
}

/* The target of a cell for the attached thread t: strong (shaded while
 * marking, since the caller may keep it where the barrier cannot see)
 * if `strong`; else only to compare or test, never to be kept: then it
 * is not shaded, so that probing a table keeps no dead key for another
 * cycle. */
static uintptr_t weak_target(gc_thread *t, const weak_cell *c, bool strong)
{
	uintptr_t p;

	for (;;) {
		runtime_safepoint(t);
		p = aload_acq(&c->target);
		if (!p)
			return 0;
		mspan *s = spanof(p);
		if (!s)
			continue; /* freed meanwhile: the cell is clear now */
		uintptr_t sg = aload_acq(&mheap_.sweepgen);
		uintptr_t ssg = aload_acq(&s->sweepgen);
		if (ssg == sg || ssg == sg + 3) {
			/* Swept this cycle: a dead target was cleared
			 * first (and a reused span struct implies that). */
			if (aload_acq(&c->target) == p)
				break;
			continue;
		}
		if (ssg == sg - 2 && mspan_try_acquire(s, sg))
			mcentral_sweep(s);
		else
			sched_yield(); /* being swept, or cached unswept */
	}
	if (strong && GCHEAP_SABOTAGE != 4)
		shade(t, p);
	return p;
}

void *gc_weak_get(const gc_weak *w)
{
	gc_thread *t = attached("gc_weak_get");

	if (!t)
		return NULL;
	if (!is_live_cell(w) && !IS_WEAK("gc_weak_get", w))
		return NULL;
	return (void *)weak_target(t, (const weak_cell *)w, true);
}

/* ---- Ephemerons --------------------------------------------------------- */


/* A new ephemeron, left held (the caller unholds it once it is stored);
 * NULL after reporting the error. */
static ephemeron_obj *eph_new(const char *fn, gc_thread *t, void *key,
                              void *value)
{
	if (!have_types())
		return NULL;
	/* The cell is kept by key's special; key and value by the caller. */
	gc_weak *k = weak_new(fn, t, key);
	if (!k)
		return NULL;
	ephemeron_obj *e = runtime_new(t, sizeof(*e), WEAK_TYPE(ephemeron));
	if (!e)
		return NULL;
	e->tag = handle_tag(e, H_EPHEMERON);
	gc_write((void *)&e->key, k);
	shade(t, (uintptr_t)value);
	astore(&e->value, (uintptr_t)value);
	if (!specials_add_ephemeron(spanof((uintptr_t)e), (uintptr_t)e)) {
		runtime_error(GCHEAP_ERR_NOMEM, "%s: no memory for the record",
		              fn);
		return NULL;
	}
	return e;
}

gc_ephemeron *gc_ephemeron_new(void *key, void *value)
{
	gc_thread *t = attached("gc_ephemeron_new");

	if (!t)
		return NULL;
	size_t mark = runtime_held_mark(t);
	ephemeron_obj *e = eph_new("gc_ephemeron_new", t, key, value);
	runtime_unhold(t, mark); /* returned: the caller's to root */
	return (gc_ephemeron *)e;
}

/* The key (strong: shaded while marking, for a caller that keeps it). */
static uintptr_t eph_key(gc_thread *t, const ephemeron_obj *e)
{
	return weak_target(t, (const weak_cell *)aload(&e->key), true);
}

/* The key, only to test or compare: not shaded (weak_target). */
static uintptr_t eph_key_peek(gc_thread *t, const ephemeron_obj *e)
{
	return weak_target(t, (const weak_cell *)aload(&e->key), false);
}

void *gc_ephemeron_key(const gc_ephemeron *e)
{
	gc_thread *t = attached("gc_ephemeron_key");
	if (!t || !IS_EPHEMERON("gc_ephemeron_key", e))
		return NULL;
	return (void *)eph_key(t, (const ephemeron_obj *)e);
}

static uintptr_t eph_value(gc_thread *t, const ephemeron_obj *e)
{
	if (!eph_key_peek(t, e))
		return 0;
	uintptr_t v = aload(&e->value);
	shade(t, v);
	return v;
}

void *gc_ephemeron_value(const gc_ephemeron *e)
{
	gc_thread *t = attached("gc_ephemeron_value");
	if (!t || !IS_EPHEMERON("gc_ephemeron_value", e))
		return NULL;
	return (void *)eph_value(t, (const ephemeron_obj *)e);
}

void gc_ephemeron_set_value(gc_ephemeron *e, void *value)
{
	gc_thread *t = attached("gc_ephemeron_set_value");
	ephemeron_obj *eo = (ephemeron_obj *)e;

	if (!t || !IS_EPHEMERON("gc_ephemeron_set_value", e) ||
	    !eph_key_peek(t, eo))
		return;
	/* Both halves of the barrier: old and new value. */
	gc_write((void *)&eo->value, value);
}

/* ---- The weak-key map --------------------------------------------------- */

/* Open addressing with linear probing over an array of ephemerons. A
 * delete leaves TOMB; an entry whose key died reads as empty and is
 * reused by a set, or dropped when the table is rebuilt.
 *
 * The table is rebuilt once it is three-quarters used, and never in one
 * call: a map of a million entries would take a hundred milliseconds or
 * more without a safepoint. First the live entries are counted, MAP_STEP
 * slots a call, to size the new table (twice as big, or as big if most
 * entries are dead); then the next set of a new key makes the new
 * table (lookups never allocate; without memory for it, a set inserts
 * while the old table has room and tries again MAP_RETRY sets later),
 * and each call moves MAP_STEP of the old table's slots into it.
 * Counting and moving read a key's cell without sweeping its span
 * (eph_key_raw): a dead key not yet cleared counts as live and moves, to
 * be dropped next time; sweeping the spans of 32 keys in one call cost
 * milliseconds.
 *
 * While moving, an entry is in exactly one table: a lookup tries the new
 * table and then the old, and moves what it finds in the old at once; new
 * entries go to the new table; a moved slot of the old table becomes
 * TOMB, so that the probe chains through it stay whole. The new table is
 * at most about half used when the move starts and the move ends after
 * ocap / MAP_STEP calls, so it never fills first (map_room finishes the
 * move if it ever would). */

#define MAP_STEP 32
#define MAP_RETRY 256

/* Deleted: not a heap address, so the collector ignores it. */
static const uintptr_t tomb_word;
#define TOMB ((ephemeron_obj *)&tomb_word)


static size_t hash_addr(const void *p, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

/* Fill slot s with entry e for key k: the hint first, so that a probe
 * (only this map's calls probe, under the program's lock) never pairs the
 * entry with another key's hint. No safepoint. */
static void set_slot(map_slot *s, ephemeron_obj *e, uintptr_t k)
{
	s->hint = ~k;
	gc_write((void *)&s->e, e);
}

gc_weakmap *gc_weakmap_new(void)
{
	gc_thread *t = attached("gc_weakmap_new");

	if (!t || !have_types())
		return NULL;
	size_t mark = runtime_held_mark(t);
	gc_weakmap *m = runtime_new(t, sizeof(*m), WEAK_TYPE(map));
	/* A safepoint: m is held across it. */
	void *slots = m ? runtime_new_array(t, 8, WEAK_TYPE(slots)) : NULL;
	if (m)
		m->tag = handle_tag(m, H_MAP);
	if (slots) {
		gc_write(&m->slots, slots);
		m->cap = 8;
	}
	runtime_unhold(t, mark);
	return slots ? m : NULL;
}

/* The key an entry was set with, or 0 if its cell is cleared: read
 * without making sure the key's span is swept (weak_target), so a dead
 * key not yet cleared reads as live. For moving and counting, where that
 * costs a slot for a while, and for a lookup's compare with a live key
 * (probe); never to tell whether an entry is live. No safepoint. */
static uintptr_t eph_key_raw(const ephemeron_obj *e)
{
	return aload_acq(&((const weak_cell *)aload(&e->key))->target);
}

/* The slot of tab (cap entries) holding key k's live entry, or NULL.
 *
 * Keys are compared as their cells hold them, without making sure their
 * spans are swept (eph_key_raw): k is live (the caller holds it), and a
 * cell whose target is k's address is k's own. A dead object's cell is
 * cleared by the sweep that frees its slot, before anything new can be
 * put there (a tiny block's slots are never handed out twice while the
 * block lives), so no stale cell can name the address of a live object.
 * Making sure of the sweep for every probed entry (weak_target: a
 * safepoint, the span's sweepgen) was 10-20% of a churning weak map's
 * CPU. A safepoint every 256 entries bounds a long probe. */
static map_slot *probe(gc_thread *t, map_slot *tab, size_t cap,
                       const void *k)
{
	size_t mask = cap - 1;
	for (size_t i = hash_addr(k, cap), n = 0; n < cap;
	     i = (i + 1) & mask, n++) {
		ephemeron_obj *e = tab[i].e;
		if (!e)
			return NULL;
		if (e != TOMB && tab[i].hint == ~(uintptr_t)k &&
		    eph_key_raw(e) == (uintptr_t)k)
			return &tab[i];
		if (n % 256 == 255)
			runtime_safepoint(t);
	}
	return NULL;
}

/* Put e, whose key k is not in the new table, into its first empty or
 * deleted slot; no safepoint. */
static map_slot *put_new(gc_weakmap *m, ephemeron_obj *e, uintptr_t k)
{
	size_t mask = m->cap - 1, i = hash_addr((void *)k, m->cap);
	while (m->slots[i].e && m->slots[i].e != TOMB)
		i = (i + 1) & mask;
	if (!m->slots[i].e)
		m->used++;
	set_slot(&m->slots[i], e, k);
	return &m->slots[i];
}

/* Move the old table's slot *o, holding a live entry for key k, into the
 * new table; no safepoint (a collection never sees the entry in neither
 * table). Returns its new slot. */
static map_slot *move_one(gc_weakmap *m, map_slot *o, uintptr_t k)
{
	map_slot *n = put_new(m, o->e, k);
	gc_write((void *)&o->e, TOMB);
	return n;
}

/* The slot holding key's live entry, or NULL; an entry found in the old
 * table is moved first. */
static map_slot *map_find(gc_thread *t, gc_weakmap *m, const void *k)
{
	map_slot *e = probe(t, m->slots, m->cap, k);
	if (e || !m->oslots)
		return e;
	e = probe(t, m->oslots, m->ocap, k);
	return e ? move_one(m, e, (uintptr_t)k) : NULL;
}

/* Move up to n old slots; the old table is dropped once all are moved. */
static void move_step(gc_weakmap *m, size_t n)
{
	while (m->oslots && n-- > 0) {
		map_slot *o = &m->oslots[m->opos];
		uintptr_t k;
		if (o->e && o->e != TOMB && (k = eph_key_raw(o->e)) != 0)
			move_one(m, o, k);
		if (++m->opos == m->ocap) {
			gc_write(&m->oslots, NULL);
			m->ocap = 0;
		}
	}
}

/* Count up to n slots; no allocation. */
static void count_step(gc_weakmap *m, size_t n)
{
	for (; m->cpos < m->cap && n > 0; m->cpos++, n--) {
		ephemeron_obj *e = m->slots[m->cpos].e;
		if (e && e != TOMB && eph_key_raw(e))
			m->clive++;
	}
}

/* Once all are counted, make the new table (twice as big unless at most
 * half would be live) and start moving. False, the error reported, if
 * there is no memory for it. */
static bool make_table(gc_thread *t, gc_weakmap *m)
{
	size_t cap = m->cap;
	while (m->clive * 2 >= cap)
		cap *= 2;
	size_t mark = runtime_held_mark(t);
	map_slot *ns = runtime_new_array(t, cap, WEAK_TYPE(slots));
	if (!ns) {
		m->retry = MAP_RETRY;
		return false;
	}
	/* No safepoint from here on (ns is held all the same). */
	gc_write(&m->oslots, m->slots);
	gc_write(&m->slots, ns);
	m->ocap = m->cap;
	m->opos = 0;
	m->cap = cap;
	m->used = 0;
	m->counting = false;
	runtime_unhold(t, mark);
	return true;
}

/* A call's share of the rebuilding, if one is under way; it never
 * allocates (map_room makes the new table). */
static void map_step(gc_weakmap *m)
{
	if (m->counting)
		count_step(m, MAP_STEP);
	else
		move_step(m, MAP_STEP);
}

void *gc_weakmap_get(gc_weakmap *m, const void *key)
{
	gc_thread *t = attached("gc_weakmap_get");
	if (!t || !IS_MAP("gc_weakmap_get", m) || !key)
		return NULL;
	map_step(m);
	map_slot *e = map_find(t, m, key);
	return e ? (void *)eph_value(t, e->e) : NULL;
}

/* Make room for one more entry in m->slots, for a set: start rebuilding
 * at three quarters; once counted, make the new table (after a failure
 * to, again only MAP_RETRY sets later or once the table is seven eighths
 * used: not an allocation and an error at every call while memory is
 * short); finish a move if the table would fill. False (no memory) only
 * if there is no room. */
static bool map_room(gc_thread *t, gc_weakmap *m)
{
	if (!m->counting && !m->oslots && (m->used + 1) * 4 > m->cap * 3) {
		m->counting = true;
		m->cpos = 0;
		m->clive = 0;
		m->retry = 0;
		count_step(m, MAP_STEP);
	}
	if (m->counting) {
		bool full = (m->used + 1) * 8 > m->cap * 7;
		if (full)
			count_step(m, SIZE_MAX);
		if (m->cpos == m->cap && (full || !m->retry)) {
			if (!make_table(t, m) && full)
				return false;
		} else if (m->retry) {
			m->retry--;
		}
	}
	if (m->oslots && (m->used + 1) * 4 > m->cap * 3)
		move_step(m, SIZE_MAX);
	return true;
}

gc_status gc_weakmap_set(gc_weakmap *m, void *key, void *value)
{
	gc_thread *t = attached("gc_weakmap_set");
	if (!t)
		return GCHEAP_ERR_NOT_ATTACHED;
	if (!IS_MAP("gc_weakmap_set", m))
		return GCHEAP_ERR_ARG;
	if (!m || !key || !mheap_find_object((uintptr_t)key, NULL)) {
		runtime_error(GCHEAP_ERR_ARG, "gc_weakmap_set(%p, %p): the key "
		              "must be an address inside a heap object",
		              (void *)m, key);
		return GCHEAP_ERR_ARG;
	}
	map_step(m);
	map_slot *e = map_find(t, m, key);
	if (e) {
		gc_write((void *)&e->e->value, value);
		return GCHEAP_OK;
	}
	if (!map_room(t, m))
		return gc_last_error();
	size_t mark = runtime_held_mark(t);
	ephemeron_obj *ne = eph_new("gc_weakmap_set", t, key, value);
	if (!ne) {
		runtime_unhold(t, mark);
		return gc_last_error();
	}
	if (m->counting)
		m->clive++;
	/* The first reusable slot: empty, deleted, or a dead entry. Each
	 * live entry probed is a safepoint (eph_key): ne stays held. */
	size_t mask = m->cap - 1;
	for (size_t i = hash_addr(key, m->cap);; i = (i + 1) & mask) {
		ephemeron_obj *o = m->slots[i].e;
		if (!o || o == TOMB || !eph_key_peek(t, o)) {
			if (!o)
				m->used++;
			set_slot(&m->slots[i], ne, (uintptr_t)key);
			runtime_unhold(t, mark);
			return GCHEAP_OK;
		}
	}
}

int gc_weakmap_delete(gc_weakmap *m, const void *key)
{
	gc_thread *t = attached("gc_weakmap_delete");
	if (!t || !IS_MAP("gc_weakmap_delete", m) || !key)
		return 0;
	map_step(m);
	map_slot *e = map_find(t, m, key);
	if (!e)
		return 0;
	gc_write((void *)&e->e, TOMB);
	return 1;
}

static size_t count_live(gc_thread *t, map_slot *tab, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < cap; i++)
		if (tab[i].e && tab[i].e != TOMB && eph_key_peek(t, tab[i].e))
			n++;
	return n;
}

size_t gc_weakmap_count(gc_weakmap *m)
{
	gc_thread *t = attached("gc_weakmap_count");
	if (!t || !IS_MAP("gc_weakmap_count", m))
		return 0;
	/* Both tables are looked at in full; no safepoint in between can
	 * move an entry (only this map's calls move them). */
	return count_live(t, m->slots, m->cap) +
	       (m->oslots ? count_live(t, m->oslots, m->ocap) : 0);
}

size_t weakmap_rebuild_state(const gc_weakmap *m, size_t *cap, size_t *ocap)
{
	*cap = m->cap;
	*ocap = m->ocap;
	if (m->counting)
		return m->cap - m->cpos + 1;
	return m->oslots ? m->ocap - m->opos : 0;
}
