/* gc/mfinal.c: specials and the finalizer queue (Go's mfinal.go and the
 * specials of mheap.go; weak handles as in Go 1.24's internal/weak).
 *
 * Locks. specials_.lock guards every span's special list, the table of
 * groups, the list of spans that have specials (sp_next/sp_prev), and the
 * record allocator.
 * finq_.lock guards the queue; sweep queues while it holds the specials
 * (the order of every lock: alloc/sys/lock.h). Neither is held while
 * calling out of the collector.
 *
 * Invariants.
 *  - A span's specials form a doubly linked list in which each object's
 *    records are adjacent (its group), in offset order and, at one
 *    offset, in the order they were added; the groups are in no order.
 *    specials_.groups maps the base address of every object that has
 *    records to the first record of its group, so that finding, adding
 *    and removing a record take the object's group, not the span's list
 *    (a span of 32-byte objects each with a weak handle has 256 records:
 *    a walk from the head made each gc_weak_new cost microseconds). The
 *    first record's group_last is the group's last, so that adding at
 *    the group's end (the common case: a record at the object's base)
 *    takes no walk (40,000 cleanups on one object took 1.1 s to add when
 *    each walked the group). It lives in the record, which has room for
 *    it, not in the table: a second word in every slot of a table sized
 *    four times its groups made a million cleanups 20% slower to add.
 *  - A span is on the specials list exactly when its list is not empty,
 *    and is never freed then.
 *  - A special refers to an allocated object: sweep runs a span's
 *    specials before it frees the span's unmarked objects, and removes
 *    every special of an object it frees.
 *  - A weak cell's target is non-zero only while its object has not been
 *    freed: sweep clears it (release store) before the object's slot can
 *    be reused, and before that object's finalizer is queued.
 *  - Weak cells stay alive while their special exists, so sweep never
 *    writes to a freed cell: a cell's target is non-zero exactly while
 *    its special exists (set when it is added, cleared when it is
 *    removed), and the sweep of a span that has held cells keeps every
 *    cell whose target is set (alloc_hooks.keep_weak_cells, runtime/
 *    weak.c), marked or not. Nothing walks the weak records to mark
 *    their cells, so the root job visits only the spans that have a
 *    finalizer or cleanup (mspan.sp_roots).
 *  - finq_.spare holds one queue entry for every finalizer and cleanup
 *    record, so that the sweep that queues one never allocates.
 *  - Queue entries (queued and running) are roots: a finalizer's object
 *    and everything it reaches stay alive until the finalizer returned.
 *
 * Ordering (Go's rule). The root job scans the contents of every
 * finalizable object but does not mark the object, so an unreachable
 * finalizable object is found unmarked while what it reaches is kept: in
 * a chain A -> B of finalizable objects, A is queued first and B becomes
 * unreachable once A's finalizer has run and A is freed. Objects in a
 * cycle mark each other and are never finalized. */
#include "gc/mgc.h"

#include "alloc/sys/addrset.h"

#include <stdlib.h>

typedef struct special_fin {
	special h;
	gc_finalizer_fn fn;
	void *arg;
} special_fin;

typedef struct special_cleanup {
	special h;
	gc_cleanup_fn fn;
	void *arg;
	uint64_t id;
} special_cleanup;

typedef struct special_weak {
	special h;
	uintptr_t cell;
} special_weak;

typedef struct special_profile {
	special h;
	void *bucket;
	size_t size;
} special_profile;

/* One record size for every kind keeps a single fixalloc. */
typedef union special_any {
	special h;
	special_fin fin;
	special_cleanup cleanup;
	special_weak weak;
	special_profile prof;
} special_any;
/* group_last (alloc/mspan.h) fit in the padding: a record is still 64
 * bytes. */
_Static_assert(sizeof(special_any) <= 64, "special records grew");

static struct {
	gc_mutex lock;
	mspan *spans;            /* spans with specials */
	addrset groups;          /* object base -> first record (special *) */
	fixalloc alloc;          /* special_any records */
	size_t sys;              /* OS bytes taken for records */
	uint64_t next_id;        /* cleanup ids */
	atomic_word nephemerons; /* EPHEMERON specials */
	uintptr_t steps;         /* records walked over (specials_counters) */
	/* specials_mark's place while it has dropped the lock: the next
	 * span it will visit (span_list_remove moves it on), and whether
	 * one is in use. */
	mspan *cursor;
	bool cursor_busy;
	void (*mark_hook)(void); /* tests: called at each drop */
	uintptr_t mark_drops;    /* times specials_mark dropped the lock */
	atomic_word waiting;     /* threads waiting for the lock (but the
	                          * root job) */
	uintptr_t sweeps;        /* spans sweep_specials has run on */
} specials_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

static struct {
	gc_mutex lock;
	pthread_cond_t cond;
	finq_entry *head, *tail;  /* queued, oldest first */
	finq_entry *running;      /* taken, not yet done */
	atomic_word pending;      /* queued + running */
	atomic_word queued;       /* entries ever queued */
	/* One entry kept for every finalizer and cleanup record, taken
	 * when the record is made (where a call can still report that
	 * memory is short): the sweep that queues it allocates nothing. */
	finq_entry *spare;
	fixalloc alloc;
	size_t sys;
} finq_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
           .cond = PTHREAD_COND_INITIALIZER};

static void sweep_specials(mspan *s);

/* Keep a queue entry for a new finalizer or cleanup record (false: no
 * memory), or give one back with the record. */
static bool finq_reserve(void)
{
	mutex_lock(&finq_.lock);
	finq_entry *e = fixalloc_alloc(&finq_.alloc);
	if (e) {
		e->next = finq_.spare;
		finq_.spare = e;
	}
	mutex_unlock(&finq_.lock);
	return e != NULL;
}

/* A reserved entry stays with a new record: counted for the pacer
 * (mgc_.special_bytes) only then, not when it is given back at once (a
 * finalizer replaced makes nothing). */
static void finq_charge(void)
{
	afetch_add(&mgc_.special_bytes, sizeof(finq_entry));
}

static void finq_unreserve(void)
{
	mutex_lock(&finq_.lock);
	finq_entry *e = finq_.spare;
	gc_assert(e != NULL);
	finq_.spare = e->next;
	fixalloc_free(&finq_.alloc, e);
	mutex_unlock(&finq_.lock);
}

/* Take specials_.lock, counted in `waiting` while it waits: the root job
 * (specials_mark) lets it go at its next span when anyone waits. */
static void specials_lock(void)
{
	mutex_lock_counted(&specials_.lock, &specials_.waiting);
}

void specials_init(void)
{
	fixalloc_init(&specials_.alloc, align_up(sizeof(special_any), 16),
	              &specials_.sys);
	fixalloc_init(&finq_.alloc, align_up(sizeof(finq_entry), 16),
	              &finq_.sys);
	specials_.next_id = 1;
	specials_.groups.vsize = sizeof(special *);
	mspan_hooks.sweep_specials = sweep_specials;
}

/* ---- Span lists (specials_.lock held) ------------------------------------ */

static uintptr_t object_index_of(const mspan *s, const special *sp)
{
	return mspan_object_index(s, s->base + sp->offset);
}

/* The base address of the object that the address base + off is in. */
static uintptr_t object_at(const mspan *s, uintptr_t off)
{
	return s->base + mspan_object_index(s, s->base + off) * s->elemsize;
}

static uintptr_t object_base_of(const mspan *s, const special *sp)
{
	return object_at(s, sp->offset);
}

static void span_list_add(mspan *s)
{
	mutex_assert_held(&specials_.lock);
	s->sp_prev = NULL;
	s->sp_next = specials_.spans;
	if (specials_.spans)
		specials_.spans->sp_prev = s;
	specials_.spans = s;
}

static void span_list_remove(mspan *s)
{
	mutex_assert_held(&specials_.lock);
	if (specials_.cursor == s)
		specials_.cursor = s->sp_next;
	if (s->sp_prev)
		s->sp_prev->sp_next = s->sp_next;
	else
		specials_.spans = s->sp_next;
	if (s->sp_next)
		s->sp_next->sp_prev = s->sp_prev;
	s->sp_next = s->sp_prev = NULL;
}

/* Does the root job mark what a record of this kind holds (counted in
 * its span's sp_roots)? Weak records hold nothing to mark: their cells
 * live on through sweep (alloc_hooks.keep_weak_cells), and profile and
 * ephemeron records mark nothing. */
static bool is_root_kind(unsigned kind)
{
	return kind == SPECIAL_FINALIZER || kind == SPECIAL_CLEANUP;
}

/* Is sp one of the records of the object at `obj`? */
static bool in_group(const mspan *s, const special *sp, uintptr_t obj)
{
	return sp->offset - (obj - s->base) < s->elemsize;
}

/* The first record of obj's group, or NULL. */
static special *group_first(uintptr_t obj)
{
	size_t i = addrset_find(&specials_.groups, obj);
	return i == SIZE_MAX ? NULL
	                     : *(special **)addrset_val(&specials_.groups, i);
}

/* Link sp into s's list after `at` (NULL: at the head). */
static void link_after(mspan *s, special *at, special *sp)
{
	bool was_empty = !s->specials;
	special *next = at ? at->next : s->specials;

	sp->prev = at;
	sp->next = next;
	if (next)
		next->prev = sp;
	astore_rel((atomic_word *)(at ? &at->next : &s->specials),
	           (uintptr_t)sp);
	if (was_empty)
		span_list_add(s);
}

/* Add sp to its object's group: after the records at or below its
 * offset, or as a new group at the head of the list. False (nothing
 * added) if the table of groups cannot grow. If dup is not NULL and the
 * group holds a record of sp's kind at sp's offset already, that record
 * goes to *dup and sp is not added (true): one look-up of the group
 * where special_find then special_insert took two (a cache miss each in
 * a table of many groups). */
static bool special_insert(mspan *s, special *sp, special **dup)
{
	uintptr_t obj = object_base_of(s, sp);
	bool added;

	mutex_assert_held(&specials_.lock);
	size_t i = addrset_add(&specials_.groups, obj, &added);
	if (i == SIZE_MAX)
		return false;
	special **first = addrset_val(&specials_.groups, i), *f = *first;
	for (special *g = dup && !added ? f : NULL;
	     g && in_group(s, g, obj) && g->offset <= sp->offset;
	     g = g->next) {
		if (g->offset == sp->offset && g->kind == sp->kind) {
			*dup = g;
			return true;
		}
		specials_.steps++;
	}
	if (is_root_kind(sp->kind))
		s->sp_roots++;
	if (sp->kind == SPECIAL_EPHEMERON)
		s->sp_ephs++;
	if (added) {
		link_after(s, NULL, sp);
		*first = sp->group_last = sp;
		return true;
	}
	if (sp->offset < f->offset) {
		link_after(s, f->prev, sp);
		sp->group_last = f->group_last;
		*first = sp;
		return true;
	}
	/* After the records at or below its offset: walk back from the
	 * last, over those above it (first's offset is not, so the walk
	 * stays in the group). Usually none: a record at the object's
	 * base, with no interior one, goes at the end without a step. */
	special *at = f->group_last;
	while (at->offset > sp->offset) {
		at = at->prev;
		specials_.steps++;
	}
	if (at == f->group_last)
		f->group_last = sp;
	link_after(s, at, sp);
	return true;
}

/* Unlink sp and free the record. */
static void special_remove(mspan *s, special *sp)
{
	uintptr_t obj = object_base_of(s, sp);
	size_t i = addrset_find(&specials_.groups, obj);

	mutex_assert_held(&specials_.lock);
	gc_assert(i != SIZE_MAX);
	special **first = addrset_val(&specials_.groups, i), *f = *first;
	if (f == sp && f->group_last == sp) {
		addrset_remove_at(&specials_.groups, i);
	} else if (f == sp) {
		*first = sp->next;
		sp->next->group_last = sp->group_last;
	} else if (f->group_last == sp) {
		f->group_last = sp->prev;
	}
	if (sp->next)
		sp->next->prev = sp->prev;
	astore_rel((atomic_word *)(sp->prev ? &sp->prev->next : &s->specials),
	           (uintptr_t)sp->next);
	if (sp->kind == SPECIAL_EPHEMERON)
		afetch_add(&specials_.nephemerons, (uintptr_t)-1);
	if (is_root_kind(sp->kind))
		s->sp_roots--;
	if (sp->kind == SPECIAL_EPHEMERON)
		s->sp_ephs--;
	fixalloc_free(&specials_.alloc, sp);
	if (!s->specials)
		span_list_remove(s);
}

static special *special_new(unsigned kind, mspan *s, uintptr_t p)
{
	special *sp = fixalloc_alloc(&specials_.alloc);
	if (!sp)
		return NULL;
	sp->kind = (uint8_t)kind;
	sp->offset = p - s->base;
	return sp;
}

/* special_new, then special_insert: NULL (nothing kept) if either finds
 * no memory, or (dup not NULL) if the object has a record of this kind
 * at p already, which goes to *dup. The caller fills the record in
 * before it drops the lock. */
static special *special_add(unsigned kind, mspan *s, uintptr_t p,
                            special **dup)
{
	special *sp = special_new(kind, s, p);
	if (sp && (!special_insert(s, sp, dup) || (dup && *dup))) {
		fixalloc_free(&specials_.alloc, sp);
		return NULL;
	}
	/* For the pacer: the record and its group's slot in the table
	 * (a key and a value, at a load of at most a half). */
	if (sp)
		afetch_add(&mgc_.special_bytes,
		           sizeof(special_any) + 4 * sizeof(uintptr_t));
	return sp;
}

/* The first special of `kind` at exactly offset off. */
static special *special_find(mspan *s, unsigned kind, uintptr_t off)
{
	uintptr_t obj = object_at(s, off);

	for (special *sp = group_first(obj);
	     sp && in_group(s, sp, obj) && sp->offset <= off; sp = sp->next) {
		if (sp->offset == off && sp->kind == kind)
			return sp;
		specials_.steps++;
	}
	return NULL;
}

/* ---- Adding and removing ------------------------------------------------- */

bool specials_set_finalizer(mspan *s, uintptr_t obj, gc_finalizer_fn fn,
                            void *arg)
{
	bool added = false;

	specials_lock();
	/* One look-up of the object's group, finding or adding (a cache
	 * miss each in a table of many groups); the queue entry a new
	 * record needs is taken first, and given back if it has one. With
	 * no memory for the entry, a finalizer it has is still replaced. */
	special *dup = NULL;
	special_fin *f = NULL;
	if (finq_reserve()) {
		f = (special_fin *)special_add(SPECIAL_FINALIZER, s, obj, &dup);
		added = f != NULL;
		if (added)
			finq_charge();
		else
			finq_unreserve();
	}
	if (dup)
		f = (special_fin *)dup;
	else if (!f) /* no memory for a new record: replace one */
		f = (special_fin *)special_find(s, SPECIAL_FINALIZER,
		                                obj - s->base);
	if (f) {
		f->fn = fn;
		f->arg = arg;
	}
	/* An ephemeron waiting for itself in this mark lives now. Only an
	 * ephemeron: told of every finalizer set while marking, the table
	 * took one set on another object during its first walk for one it
	 * could not note, and every later pass of the mark walked all
	 * ephemerons again (a weak map beside finalizers set in a loop: 8
	 * walks a mark, 3x bdwgc's CPU). */
	bool eph = added && aload(&ephemeron_gen) && s->sp_ephs &&
	           special_find(s, SPECIAL_EPHEMERON, obj - s->base);
	mutex_unlock(&specials_.lock);
	if (eph)
		ephemeron_finalizer_added(obj);
	return f != NULL;
}

bool specials_clear_finalizer(mspan *s, uintptr_t obj)
{
	specials_lock();
	special *sp = special_find(s, SPECIAL_FINALIZER, obj - s->base);
	if (sp) {
		special_remove(s, sp);
		finq_unreserve();
	}
	mutex_unlock(&specials_.lock);
	return sp != NULL;
}

uint64_t specials_add_cleanup(mspan *s, uintptr_t obj, gc_cleanup_fn fn,
                              void *arg)
{
	uint64_t id = 0;

	specials_lock();
	special_cleanup *c = NULL;
	if (finq_reserve()) {
		c = (special_cleanup *)special_add(SPECIAL_CLEANUP, s, obj,
		                                   NULL);
		if (!c)
			finq_unreserve();
		else
			finq_charge();
	}
	if (c) {
		c->fn = fn;
		c->arg = arg;
		c->id = id = specials_.next_id++;
	}
	mutex_unlock(&specials_.lock);
	return id;
}

static bool is_cleanup(const special *sp, uint64_t id)
{
	return sp->kind == SPECIAL_CLEANUP &&
	       ((const special_cleanup *)sp)->id == id;
}

/* The group is searched from both ends at once, a step from each in
 * turn: cancelling the oldest or the newest cleanup of an object with
 * thousands costs a step or two (a walk from the first made cancels
 * newest-first quadratic). */
bool specials_cancel_cleanup(mspan *s, uintptr_t obj, uint64_t id)
{
	uintptr_t base = object_at(s, obj - s->base);
	special *found = NULL;

	specials_lock();
	special *a = group_first(base), *b = a ? a->group_last : NULL;
	while (a && !found) {
		if (is_cleanup(a, id))
			found = a;
		else if (is_cleanup(b, id))
			found = b;
		else if (a == b || a->next == b)
			break; /* met: every record looked at */
		else {
			a = a->next;
			b = b->prev;
			specials_.steps += 2;
		}
	}
	if (found) {
		special_remove(s, found);
		finq_unreserve();
	}
	mutex_unlock(&specials_.lock);
	return found != NULL;
}

uintptr_t specials_find_weak(mspan *s, uintptr_t p)
{
	uintptr_t cell = 0;

	if (!aload_acq((const atomic_word *)&s->specials))
		return 0;
	specials_lock();
	special *sp = special_find(s, SPECIAL_WEAK, p - s->base);
	if (sp)
		cell = ((special_weak *)sp)->cell;
	mutex_unlock(&specials_.lock);
	return cell;
}

uintptr_t specials_add_weak(mspan *s, uintptr_t p, uintptr_t cell)
{
	special *dup = NULL;

	specials_lock();
	special_weak *w = (special_weak *)special_add(SPECIAL_WEAK, s, p,
	                                              &dup);
	if (dup) {
		cell = ((special_weak *)dup)->cell;
	} else if (w) {
		w->cell = cell;
		astore_rel(&((weak_cell *)cell)->target, p);
	} else {
		cell = 0;
	}
	mutex_unlock(&specials_.lock);
	return cell;
}

bool specials_add_ephemeron(mspan *s, uintptr_t e)
{
	specials_lock();
	special *sp = special_add(SPECIAL_EPHEMERON, s, e, NULL);
	if (sp)
		afetch_add(&specials_.nephemerons, 1);
	mutex_unlock(&specials_.lock);
	return sp != NULL;
}

void (*specials_profile_free)(void *bucket, size_t size);

bool specials_add_profile(mspan *s, uintptr_t p, void *bucket, size_t size)
{
	specials_lock();
	special_profile *sp = (special_profile *)special_add(SPECIAL_PROFILE,
	                                                     s, p, NULL);
	if (sp) {
		sp->bucket = bucket;
		sp->size = size;
	}
	mutex_unlock(&specials_.lock);
	return sp != NULL;
}

/* ---- Checking (tests) ---------------------------------------------------- */

const char *specials_verify(mspan *s)
{
	uint64_t seen[MSPAN_MAX_NELEMS / 64] = {0};
	const char *bad = NULL;
	size_t groups = 0, in_table = 0;
	special *prev = NULL;

	specials_lock();
	for (special *sp = s->specials; sp && !bad; prev = sp, sp = sp->next) {
		uintptr_t i = object_index_of(s, sp);
		uintptr_t obj = s->base + i * s->elemsize;
		if (sp->prev != prev)
			bad = "a record's prev is not the one before it";
		else if (sp->offset >= s->limit - s->base)
			bad = "a record past the span's objects";
		else if (prev && in_group(s, prev, obj)) {
			if (prev->offset > sp->offset)
				bad = "a group out of offset order";
		} else if (bitmap_get(seen, i)) {
			bad = "an object's records are not adjacent";
		} else {
			seen[i / 64] |= (uint64_t)1 << (i % 64);
			groups++;
			if (group_first(obj) != sp)
				bad = "a group's first record is not in the "
				      "table";
		}
		if (!bad && !(sp->next && in_group(s, sp->next, obj)) &&
		    group_first(obj)->group_last != sp)
			bad = "a group's first record does not name its last";
	}
	addrset_settle(&specials_.groups);
	for (size_t i = 0; !bad && i < specials_.groups.cap; i++) {
		uintptr_t k = aload(&specials_.groups.keys[i]);
		if (addrset_live(&specials_.groups, i) && k >= s->base &&
		    k < s->limit)
			in_table++;
	}
	if (!bad && in_table != groups)
		bad = "the table has groups the list has not";
	if (!bad && !s->specials != !(s->sp_prev || specials_.spans == s))
		bad = "the span is on the specials list iff it has records";
	mutex_unlock(&specials_.lock);
	return bad;
}

void specials_set_mark_hook(void (*hook)(void))
{
	specials_lock();
	specials_.mark_hook = hook;
	mutex_unlock(&specials_.lock);
}

void specials_test_waiting(intptr_t delta)
{
	afetch_add(&specials_.waiting, (uintptr_t)delta);
}

mspan *specials_mark_cursor(void)
{
	specials_lock();
	mspan *s = specials_.cursor;
	mutex_unlock(&specials_.lock);
	return s;
}

specials_counts specials_counters(void)
{
	specials_lock();
	specials_counts c = {specials_.steps, specials_.sweeps,
	                     specials_.mark_drops};
	mutex_unlock(&specials_.lock);
	return c;
}

/* ---- Marking ------------------------------------------------------------- */

static void mark_arg(gcw *w, void *arg)
{
	if (arg)
		gcmark_value(w, (uintptr_t)arg, false, 0, 0);
}

/* What the root job found in the records of the spans it visited since
 * it last marked: objects whose contents to scan (finalizers), finalizer
 * and cleanup args (conservative), weak cells. Chains of workbufs (a
 * span may have any number of records). */
#define ROOT_BATCH SPECIALS_ROOT_BATCH
/* How long the pass, having dropped the lock and marked its batch, waits
 * for the waiters to have had it (the lock is not fair). */
#define ROOT_YIELD_NS 200000

enum { ROOT_SCAN, ROOT_ARG, ROOT_KINDS };

typedef struct root_batch {
	workbuf *buf[ROOT_KINDS];
	uintptr_t n;
} root_batch;

static void batch_add(root_batch *b, int kind, uintptr_t x)
{
	workbuf *w = b->buf[kind];
	if (!w || w->n == WORKBUF_LEN) {
		workbuf *nw = gcwork_getempty();
		nw->next = w;
		b->buf[kind] = w = nw;
	}
	w->obj[w->n++] = x;
	b->n++;
}

static void batch_mark(gcw *w, root_batch *b)
{
	for (int k = 0; k < ROOT_KINDS; k++) {
		for (workbuf *wb = b->buf[k], *next; wb; wb = next) {
			next = wb->next;
			for (uintptr_t i = 0; i < wb->n; i++) {
				uintptr_t x = wb->obj[i];
				if (k == ROOT_SCAN)
					gcmark_scan_object(w, x);
				else
					mark_arg(w, (void *)x);
			}
			gcwork_putempty(wb);
		}
		b->buf[k] = NULL;
	}
	b->n = 0;
}

/* A pass over the spans that have specials (specials_walk): `span`
 * visits one span's records with the lock held and counts what it takes
 * in n; once n reaches `batch`, `flush` runs (and sets n to 0), with the
 * lock dropped if a thread waits for it, else with it held; and once more
 * at the end, with it dropped. */
typedef struct specials_walker {
	void (*span)(struct specials_walker *k, mspan *s);
	void (*flush)(struct specials_walker *k);
	uintptr_t n, batch;
} specials_walker;

/* Walk the spans with specials for k, so that a thread adding or
 * removing a special (gc_weak_new, gc_set_finalizer) waits for one batch,
 * not for the whole pass (a million finalizers kept the lock 6-20 ms).
 * Having flushed with the lock dropped, it lets the waiters have the lock
 * before it takes it again (the lock is not fair), and resumes at the
 * next span to visit, which span_list_remove moves on if that span leaves
 * the list. While the lock is dropped: records are removed (nothing to
 * do for them then), spans leave the list (the cursor steps over them)
 * or join it at its head, behind the cursor, so are not visited: what
 * they hold was added during the mark, which a pass need not see (the
 * object is the caller's, so marked this cycle, or allocated black, its
 * arg or cell likewise, and a new ephemeron shades its value). A span
 * that had records when the pass began and keeps one stays where it was,
 * and is visited. Nothing is freed during a mark, so addresses taken
 * from the records stay valid. One pass uses the cursor at a time;
 * another (the root job and an ephemeron pass at once) keeps the lock
 * throughout. */
static void specials_walk(specials_walker *k)
{
	mutex_lock(&specials_.lock);
	bool drop = !specials_.cursor_busy;
	void (*hook)(void) = specials_.mark_hook;
	specials_.cursor_busy = true;
	for (mspan *s = specials_.spans; s;) {
		k->span(k, s);
		s = s->sp_next;
		bool full = k->n >= k->batch;
		if (!drop || !full || !aload(&specials_.waiting)) {
			/* Nobody waits: flush with the lock kept. */
			if (full)
				k->flush(k);
			continue;
		}
		specials_.cursor = s;
		specials_.mark_drops++;
		mutex_unlock(&specials_.lock);
		k->flush(k);
		if (hook)
			hook();
		mutex_let_waiters_in(&specials_.waiting, ROOT_YIELD_NS);
		mutex_lock(&specials_.lock);
		s = specials_.cursor;
	}
	if (drop) {
		specials_.cursor = NULL;
		specials_.cursor_busy = false;
	}
	mutex_unlock(&specials_.lock);
	k->flush(k);
}

/* The root job's walker: it copies the records of a span at a time into
 * its batch and marks the batch once it holds ROOT_BATCH entries. */
typedef struct root_walker {
	specials_walker k;
	gcw *w;
	root_batch b;
} root_walker;

static void root_span(specials_walker *k, mspan *s)
{
	root_batch *b = &((root_walker *)k)->b;

	/* Spans of weak records only (an interning table's strings): not
	 * one record walked (a cache miss each, 5-10 ms a mark for ~70,000
	 * of them). */
	if (!s->sp_roots)
		return;
	for (special *sp = s->specials; sp; sp = sp->next) {
		switch (sp->kind) {
		case SPECIAL_FINALIZER:
			batch_add(b, ROOT_SCAN, object_base_of(s, sp));
			batch_add(b, ROOT_ARG,
			          (uintptr_t)((special_fin *)sp)->arg);
			break;
		case SPECIAL_CLEANUP:
			batch_add(b, ROOT_ARG,
			          (uintptr_t)((special_cleanup *)sp)->arg);
			break;
		default:
			break;
		}
	}
	k->n = b->n;
}

static void root_flush(specials_walker *k)
{
	root_walker *r = (root_walker *)k;

	batch_mark(r->w, &r->b);
	k->n = 0;
}

void specials_mark(gcw *w)
{
	root_walker r = {{root_span, root_flush, 0, ROOT_BATCH}, w,
	                 {{NULL}, 0}};

	specials_walk(&r.k);

	mutex_lock(&finq_.lock);
	finq_entry *lists[2] = {finq_.head, finq_.running};
	for (int l = 0; l < 2; l++) {
		for (finq_entry *e = lists[l]; e; e = e->next) {
			if (e->obj)
				gcmark_value(w, e->obj, true, 0, 0);
			mark_arg(w, e->arg);
		}
	}
	mutex_unlock(&finq_.lock);
}

void specials_each_root(void (*fn)(void *ctx, int kind, uintptr_t where,
                                   uintptr_t v),
                        void *ctx)
{
	mutex_lock(&specials_.lock);
	for (mspan *s = specials_.spans; s; s = s->sp_next) {
		for (special *sp = s->specials; sp; sp = sp->next) {
			switch (sp->kind) {
			case SPECIAL_FINALIZER: {
				special_fin *f = (special_fin *)sp;
				fn(ctx, SPECIALS_ROOT_SCAN,
				   object_base_of(s, sp), 0);
				fn(ctx, SPECIALS_ROOT_RECORD,
				   (uintptr_t)&f->arg, (uintptr_t)f->arg);
				break;
			}
			case SPECIAL_CLEANUP: {
				special_cleanup *c = (special_cleanup *)sp;
				fn(ctx, SPECIALS_ROOT_RECORD,
				   (uintptr_t)&c->arg, (uintptr_t)c->arg);
				break;
			}
			case SPECIAL_WEAK: {
				special_weak *w = (special_weak *)sp;
				fn(ctx, SPECIALS_ROOT_RECORD,
				   (uintptr_t)&w->cell, w->cell);
				break;
			}
			default:
				break;
			}
		}
	}
	mutex_unlock(&specials_.lock);
	mutex_lock(&finq_.lock);
	finq_entry *lists[2] = {finq_.head, finq_.running};
	for (int l = 0; l < 2; l++)
		for (finq_entry *e = lists[l]; e; e = e->next) {
			fn(ctx, SPECIALS_ROOT_QUEUED, (uintptr_t)&e->obj,
			   e->obj);
			fn(ctx, SPECIALS_ROOT_QUEUED, (uintptr_t)&e->arg,
			   (uintptr_t)e->arg);
		}
	mutex_unlock(&finq_.lock);
}

uintptr_t ephemeron_count(void)
{
	return aload(&specials_.nephemerons);
}

/* The ephemeron walker: it calls fn for every ephemeron record, with
 * whether its object has a finalizer, and counts the records it steps
 * over as its batch (fn does its work at once: nothing to flush). */
typedef struct eph_walker {
	specials_walker k;
	void (*fn)(void *ctx, uintptr_t e, bool fin);
	void *ctx;
} eph_walker;

static void eph_span(specials_walker *k, mspan *s)
{
	eph_walker *x = (eph_walker *)k;

	/* A weak map's keys' spans hold their weak records only: not one
	 * walked (a cache miss each, every mark). */
	if (!s->sp_ephs)
		return;
	/* The specials of one object are adjacent (its group). */
	for (special *g = s->specials, *end; g; g = end) {
		uintptr_t idx = object_index_of(s, g);
		bool fin = false;
		for (end = g; end && object_index_of(s, end) == idx;
		     end = end->next) {
			fin |= end->kind == SPECIAL_FINALIZER;
			k->n++;
		}
		for (special *sp = g; sp != end; sp = sp->next) {
			if (sp->kind == SPECIAL_EPHEMERON)
				x->fn(x->ctx, s->base + sp->offset, fin);
		}
	}
}

static void eph_flush(specials_walker *k)
{
	k->n = 0;
}

void specials_each_ephemeron(void (*fn)(void *ctx, uintptr_t e, bool fin),
                             void *ctx)
{
	eph_walker x = {{eph_span, eph_flush, 0, SPECIALS_ROOT_BATCH}, fn,
	                ctx};

	if (aload(&specials_.nephemerons))
		specials_walk(&x.k);
}

/* ---- Sweeping ------------------------------------------------------------ */

/* Append e to the queue (finq_.lock held). */
static void finq_push(finq_entry *e)
{
	mutex_assert_held(&finq_.lock);
	e->next = NULL;
	if (finq_.tail)
		finq_.tail->next = e;
	else
		finq_.head = e;
	finq_.tail = e;
	afetch_add(&finq_.pending, 1);
	afetch_add(&finq_.queued, 1);
}

/* Queue an entry (finq_.lock held), the one its record kept. */
static void finq_add(unsigned kind, uintptr_t obj, gc_finalizer_fn fin,
                     gc_cleanup_fn cleanup, void *arg)
{
	finq_entry *e = finq_.spare;
	gc_assert(e != NULL);
	finq_.spare = e->next;
	e->kind = (uint8_t)kind;
	e->obj = obj;
	e->fin = fin;
	e->cleanup = cleanup;
	e->arg = arg;
	finq_push(e);
}

static bool unmarked(const mspan *s, const special *sp)
{
	return !bitmap_get(s->gcmark_bits, object_index_of(s, sp));
}

/* Drop the ephemeron or profile record sp of a dead object (specials'
 * lock held), telling the profiler of the latter. */
static void drop_dead(mspan *s, special *sp)
{
	if (sp->kind == SPECIAL_PROFILE && specials_profile_free) {
		special_profile *pr = (special_profile *)sp;
		specials_profile_free(pr->bucket, pr->size);
	}
	special_remove(s, sp);
}

/* Sweep the records of the unmarked object whose group runs from first
 * to the record before `end` (specials' lock held, and finq_'s if the
 * span has finalizers or cleanups), in Go's order: its weak handles are
 * cleared; then, if it has a finalizer, the finalizers are queued and the
 * object marked (kept until they have run, so it and what it reaches
 * survive this sweep; its other records stay); else it dies now: its
 * cleanups are queued and its ephemeron and profile records dropped.
 * before is the record before the group (NULL: the list's head); it is
 * not removed here, so the group's first record is found again after the
 * first walk. True if anything was queued. */
static bool sweep_group(mspan *s, special *before, special *first,
                        special *end)
{
	/* Before the walks: they may free the first record. */
	uintptr_t i = object_index_of(s, first);
	bool fin = false, queued = false;

	for (special *sp = first, *next; sp != end; sp = next) {
		next = sp->next;
		if (sp->kind == SPECIAL_WEAK) {
			weak_cell *c = (weak_cell *)((special_weak *)sp)->cell;
			astore_rel(&c->target, 0);
			special_remove(s, sp);
		} else {
			fin |= sp->kind == SPECIAL_FINALIZER;
		}
	}
	for (special *sp = before ? before->next : s->specials, *next;
	     sp != end; sp = next) {
		next = sp->next;
		if (fin && sp->kind == SPECIAL_FINALIZER) {
			special_fin *f = (special_fin *)sp;
			finq_add(SPECIAL_FINALIZER, s->base + sp->offset,
			         f->fn, NULL, f->arg);
			special_remove(s, sp);
			queued = true;
		} else if (!fin && sp->kind == SPECIAL_CLEANUP) {
			special_cleanup *c = (special_cleanup *)sp;
			finq_add(SPECIAL_CLEANUP, 0, NULL, c->fn, c->arg);
			special_remove(s, sp);
			queued = true;
		} else if (!fin) {
			drop_dead(s, sp);
		}
	}
	if (fin)
		s->gcmark_bits[i / 64] |= (uint64_t)1 << (i % 64);
	return queued;
}

/* alloc_hooks.sweep_specials: s is owned by its sweeper, and its mark
 * bits are final. One walk of the list, an object's group at a time
 * (sweep_group): a marked object's group is stepped over whole (its first
 * record names its last). The records of one object are its slot's (two
 * tiny objects in one block share a group: both finalizers run, and the
 * block is kept). A span without finalizers or cleanups (sp_roots) queues
 * nothing: it does not take the queue's lock. */
static void sweep_specials(mspan *s)
{
	bool queued = false;

	specials_lock();
	specials_.sweeps++;
	bool roots = s->sp_roots != 0;
	if (roots)
		mutex_lock(&finq_.lock);
	special *before = NULL;
	for (special *g = s->specials, *end; g; g = end) {
		special *last = g->group_last;
		end = last->next;
		if (!unmarked(s, g)) {
			before = last;
			continue;
		}
		queued |= sweep_group(s, before, g, end);
		/* What is left of the group (a finalized object's other
		 * records) ends before end. */
		before = end ? end->prev : NULL;
	}
	if (roots) {
		if (queued)
			pthread_cond_broadcast(&finq_.cond);
		mutex_unlock(&finq_.lock);
	}
	mutex_unlock(&specials_.lock);
}

/* ---- The finalizer queue ------------------------------------------------- */

finq_entry *finq_take(void)
{
	mutex_lock(&finq_.lock);
	finq_entry *e = finq_.head;
	if (e) {
		finq_.head = e->next;
		if (!finq_.head)
			finq_.tail = NULL;
		e->next = finq_.running;
		finq_.running = e;
	}
	mutex_unlock(&finq_.lock);
	return e;
}

void finq_done(finq_entry *e, gcw *g)
{
	mutex_lock(&finq_.lock);
	finq_entry **pp = &finq_.running;
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	if (wbbuf_barrier_on()) {
		/* The finalizer may have moved what it was given onto a
		 * stack that has been scanned: shade it (Yuasa). */
		if (e->obj)
			gcmark_value(g, e->obj, true, 0, 0);
		mark_arg(g, e->arg);
	}
	fixalloc_free(&finq_.alloc, e);
	afetch_add(&finq_.pending, (uintptr_t)-1);
	pthread_cond_broadcast(&finq_.cond);
	mutex_unlock(&finq_.lock);
}

size_t finq_pending(void)
{
	return aload(&finq_.pending);
}

void finq_wait(const atomic_word *run)
{
	mutex_lock(&finq_.lock);
	while (!finq_.head || !aload(run))
		mutex_cond_wait(&finq_.cond, &finq_.lock);
	mutex_unlock(&finq_.lock);
}

void finq_wake(void)
{
	mutex_lock(&finq_.lock);
	pthread_cond_broadcast(&finq_.cond);
	mutex_unlock(&finq_.lock);
}

uintptr_t finq_wait_queued(uintptr_t seen, const atomic_word *gen)
{
	mutex_lock(&finq_.lock);
	uintptr_t g = aload(gen);
	while (aload(&finq_.queued) == seen && aload(gen) == g)
		mutex_cond_wait(&finq_.cond, &finq_.lock);
	uintptr_t n = aload(&finq_.queued);
	mutex_unlock(&finq_.lock);
	return n;
}

uintptr_t finq_queued(void)
{
	return aload(&finq_.queued);
}
