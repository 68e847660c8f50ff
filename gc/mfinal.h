/* gc/mfinal.h: specials (finalizers, cleanups, weak handles, ephemerons)
 * and the finalizer queue, as the collector keeps them (Go's mfinal.go
 * and the specials of mheap.go). gc/mfinal.c holds the invariants; the
 * public API around them lives in runtime/finalizer.c and runtime/weak.c.
 *
 * A special is a record attached to the span of the address it is about,
 * with the other records of its object (gc/mfinal.c). Kinds:
 *   FINALIZER   on an object base: run fn(obj, arg) once when the object
 *               is found unmarked at sweep; at most one per object;
 *   CLEANUP     on an object: run fn(arg) when the object is freed;
 *   WEAK        on an exact address: the weak handle cell for it (one per
 *               address), cleared when its object is found unmarked;
 *   EPHEMERON   on an ephemeron object: registers it for the ephemeron
 *               pass of marking;
 *   PROFILE     on an object the heap profiler sampled: its bucket, told
 *               through specials_profile_free when sweep frees the object
 *               (after the finalizer pass: a resurrected object lives).
 * While marking, specials are roots (the finalizer root job): the contents
 * (not the object) of every finalizable object, the args of finalizers and
 * cleanups (conservatively), and every weak handle cell. */
#ifndef GCHEAP_MFINAL_H
#define GCHEAP_MFINAL_H

#include "alloc/alloc.h"
#include "gc/mgcwork.h"
#include "gcheap.h"

enum special_kind {
	SPECIAL_FINALIZER = 1,
	SPECIAL_CLEANUP = 2,
	SPECIAL_WEAK = 3,
	SPECIAL_EPHEMERON = 4,
	SPECIAL_PROFILE = 5,
};

/* A weak handle cell: a noscan heap object holding the hidden address of
 * its target (0 once the target is dead). It is what gc_weak * points to.
 * 16 bytes, so that the tiny allocator never packs it: a cell in the same
 * tiny block as its target would keep the target alive forever. `tag`
 * (and an ephemeron's) is the runtime's proof that an address passed to
 * the API is such a handle (runtime/weak.c); the collector ignores it. */
typedef struct weak_cell {
	atomic_word target;
	uintptr_t tag;
} weak_cell;

/* An ephemeron object: a scan object whose only pointer slot is its key's
 * weak handle; the value word is hidden from the ordinary scan and marked
 * by the ephemeron pass once the key is marked. */
typedef struct ephemeron_obj {
	atomic_word key;   /* weak_cell *, a pointer slot */
	atomic_word value; /* not a pointer slot for scanning */
	uintptr_t tag;
} ephemeron_obj;

/* Set up the specials and register the sweep hook. */
void specials_init(void);

/* ---- Adding and removing (any attached thread; obj is alive) ------------- */

/* Set or replace the finalizer of the object at base `obj` of span s.
 * False if no memory for the record. */
bool specials_set_finalizer(mspan *s, uintptr_t obj, gc_finalizer_fn fn,
                            void *arg);
/* Remove the finalizer of obj; false if it had none. */
bool specials_clear_finalizer(mspan *s, uintptr_t obj);
/* Add a cleanup to the object at base `obj`; its id, or 0 if no memory. */
uint64_t specials_add_cleanup(mspan *s, uintptr_t obj, gc_cleanup_fn fn,
                              void *arg);
/* Remove the cleanup `id` of the object at base obj; false if absent. */
bool specials_cancel_cleanup(mspan *s, uintptr_t obj, uint64_t id);
/* The weak handle cell of address p, or 0. */
uintptr_t specials_find_weak(mspan *s, uintptr_t p);
/* Attach `cell` as the weak handle of p, unless p has one: returns the
 * handle p ends up with, or 0 if no memory for the record. */
uintptr_t specials_add_weak(mspan *s, uintptr_t p, uintptr_t cell);
/* Register the ephemeron object at e; false if no memory. */
bool specials_add_ephemeron(mspan *s, uintptr_t e);
/* Mark the object at p as sampled by the heap profiler: when sweep frees
 * it, specials_profile_free(bucket, size) is called (under the specials'
 * locks: it may only count). False if no memory. */
bool specials_add_profile(mspan *s, uintptr_t p, void *bucket, size_t size);
extern void (*specials_profile_free)(void *bucket, size_t size);

/* Tests: s's list and the table of groups checked against each other
 * (the invariants at the top of gc/mfinal.c): NULL if they hold, else
 * what broke. */
const char *specials_verify(mspan *s);
/* Tests: counters since the start: the records that finds, inserts and
 * cancels have stepped over; the spans whose specials sweep has looked
 * at (only spans where an object dies); the times specials_mark has
 * dropped the lock. */
typedef struct specials_counts {
	uintptr_t steps, sweeps, mark_drops;
} specials_counts;
specials_counts specials_counters(void);
/* Tests: a function the walks of specials_mark and
 * specials_each_ephemeron call each time they have dropped the lock
 * (NULL: none), threads to count as waiting for it (they drop the lock
 * only for them), and the span the walk will visit next (from the
 * hook). */
void specials_set_mark_hook(void (*hook)(void));
void specials_test_waiting(intptr_t delta);
mspan *specials_mark_cursor(void);

/* ---- Marking ------------------------------------------------------------- */

/* The finalizer root job: specials and the finalizer queue into w. It
 * drops the lock for a thread that waits once it has this many entries
 * to mark (two a finalizer, one a cleanup or weak handle). */
#define SPECIALS_ROOT_BATCH 4096
void specials_mark(gcw *w);
/* The roots specials_mark marks, for heap dumps (the world stopped,
 * sweeping blocked): fn(ctx, SPECIALS_ROOT_SCAN, obj, 0) for an object
 * with a finalizer (what it points to is kept for the finalizer, not the
 * object itself); fn(ctx, SPECIALS_ROOT_RECORD, where, v) for what a
 * finalizer's or cleanup's arg or a weak reference's cell holds (where:
 * the record's field); fn(ctx, SPECIALS_ROOT_QUEUED, where, v) for an
 * object queued for finalization and its arg. v may be no heap object. */
enum { SPECIALS_ROOT_SCAN, SPECIALS_ROOT_RECORD, SPECIALS_ROOT_QUEUED };
void specials_each_root(void (*fn)(void *ctx, int kind, uintptr_t where,
                                   uintptr_t v),
                        void *ctx);
/* Call fn(ctx, e, fin) for every registered ephemeron object e, with
 * whether e has a finalizer (which keeps it live unmarked), under the
 * specials' lock, which the walk drops as specials_mark does (fn must
 * not take it). Ephemerons registered meanwhile may be missed. */
void specials_each_ephemeron(void (*fn)(void *ctx, uintptr_t e, bool fin),
                             void *ctx);
/* Ephemerons registered (the pass is skipped when there are none). */
uintptr_t ephemeron_count(void);

/* ---- The finalizer queue ------------------------------------------------- */

typedef struct finq_entry {
	struct finq_entry *next;
	uint8_t kind;             /* SPECIAL_FINALIZER or SPECIAL_CLEANUP */
	uintptr_t obj;            /* the object (finalizers) */
	gc_finalizer_fn fin;
	gc_cleanup_fn cleanup;
	void *arg;
} finq_entry;

/* Take the oldest queued entry, or NULL. It stays a root (running) until
 * finq_done. */
finq_entry *finq_take(void);
/* The entry has run: forget it. While marking, what it held is shaded
 * into g (the caller's work; the deletion half of the barrier). */
void finq_done(finq_entry *e, gcw *g);
/* Entries queued or running. */
size_t finq_pending(void);
/* Wait until an entry is queued and `*run` is set (the finalizer thread,
 * inside a blocking region). */
void finq_wait(const atomic_word *run);
/* Wake finq_wait (and finq_wait_queued). */
void finq_wake(void);
/* Entries ever queued. */
uintptr_t finq_queued(void);
/* Wait until the count of entries ever queued is no longer `seen`, or
 * *gen changes (then finq_wake); returns the count. */
uintptr_t finq_wait_queued(uintptr_t seen, const atomic_word *gen);

#endif
