/* alloc/sys/addrset.h: an open-addressing hash set of addresses, in
 * malloc'd memory (nothing the collector scans), each entry with an
 * optional fixed-size payload: the library's bookkeeping tables of
 * objects (gc/mfree.c's freed objects, runtime/uncollectable.c's roots,
 * gc/mfinal.c's groups of specials, runtime/roots.c's root ranges,
 * gc/mephemeron.c's watch).
 *
 * Linear probing from a multiplicative hash; a removed entry becomes
 * ADDRSET_GONE (a tombstone) so that probes past it still find later
 * keys; when live entries and tombstones pass half of it the table is
 * rehashed, without the tombstones, to at least four times the live
 * entries (a power of two, at least 64): it grows with the entries, not
 * with the adds and removes, and shrinks when they fall.
 *
 * The rehash is incremental: the old table stays beside the new one and
 * every call moves a few of its slots over (more when the new table is
 * much smaller), and a key found in the old table moves at once, so no
 * single call pays for the whole table (a set of two million entries
 * took ~1 s to rehash in one add, most of it faulting in the new
 * table's pages). Indices returned by find and add are always the new
 * table's, valid until the next add.
 *
 * Keys are atomic words written with atomic stores, so that a table of
 * objects can be read as root slots (the marker and heap dumps read
 * keys[i]); a walk over keys[0..cap) must first call addrset_settle,
 * which finishes the move. The owner's lock guards every call. */
#ifndef GCHEAP_SYS_ADDRSET_H
#define GCHEAP_SYS_ADDRSET_H

#include "alloc/sys/atomic.h"

#define ADDRSET_GONE ((uintptr_t)1) /* keys are > ADDRSET_GONE */

typedef struct addrset {
	atomic_word *keys;   /* 0: empty; ADDRSET_GONE: removed */
	unsigned char *vals; /* cap entries of vsize bytes, or NULL */
	size_t vsize;        /* payload bytes per entry (0: none) */
	size_t cap;          /* a power of two, or 0 before the first add */
	size_t used;         /* entries and tombstones (this table's) */
	size_t n;            /* entries (both tables') */
	/* The table being moved into this one, slots [opos, ocap) still
	 * to look at; okeys is NULL when there is none. */
	atomic_word *okeys;
	unsigned char *ovals;
	size_t ocap, opos;
} addrset;

/* The index of key, or SIZE_MAX if it is not in the set. */
size_t addrset_find(addrset *s, uintptr_t key);
/* Add key (if absent) and return its index; SIZE_MAX when the table
 * cannot grow (no memory). *added says whether it was new. */
size_t addrset_add(addrset *s, uintptr_t key, bool *added);
/* Remove the entry at index i. */
void addrset_remove_at(addrset *s, size_t i);
/* Finish moving the old table's entries (before a walk of keys[]). */
void addrset_settle(addrset *s);
/* Free the tables (the set is empty and reusable after). */
void addrset_free(addrset *s);
/* Entry i's payload (vsize bytes). */
static inline void *addrset_val(const addrset *s, size_t i)
{
	return s->vals + i * s->vsize;
}
/* Is index i an entry (not empty, not removed)? */
static inline bool addrset_live(const addrset *s, size_t i)
{
	return aload(&s->keys[i]) > ADDRSET_GONE;
}

#endif
