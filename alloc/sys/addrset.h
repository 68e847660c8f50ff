/* alloc/sys/addrset.h: an open-addressing hash set of addresses, in
 * malloc'd memory (nothing the collector scans), each entry with an
 * optional fixed-size payload: the library's bookkeeping tables of
 * objects (gc/mfree.c's freed objects, runtime/uncollectable.c's roots,
 * gc/mfinal.c's groups of specials).
 *
 * Linear probing from a multiplicative hash; a removed entry becomes
 * ADDRSET_GONE (a tombstone) so that probes past it still find later
 * keys; when live entries and tombstones pass half of it the table is
 * rehashed, without the tombstones, to at least four times the live
 * entries (a power of two, at least 64): it grows with the entries, not
 * with the adds and removes, and shrinks when they fall. Keys are atomic
 * words written with atomic stores, so that a table of objects can be
 * read as root slots (the marker and heap dumps read keys[i]). The
 * owner's lock guards every call. */
#ifndef GCHEAP_SYS_ADDRSET_H
#define GCHEAP_SYS_ADDRSET_H

#include "alloc/sys/atomic.h"

#define ADDRSET_GONE ((uintptr_t)1) /* keys are > ADDRSET_GONE */

typedef struct addrset {
	atomic_word *keys;   /* 0: empty; ADDRSET_GONE: removed */
	unsigned char *vals; /* cap entries of vsize bytes, or NULL */
	size_t vsize;        /* payload bytes per entry (0: none) */
	size_t cap;          /* a power of two, or 0 before the first add */
	size_t used;         /* entries and tombstones */
	size_t n;            /* entries */
} addrset;

/* The index of key, or SIZE_MAX if it is not in the set. */
size_t addrset_find(const addrset *s, uintptr_t key);
/* Add key (if absent) and return its index; SIZE_MAX when the table
 * cannot grow (no memory). *added says whether it was new. */
size_t addrset_add(addrset *s, uintptr_t key, bool *added);
/* Remove the entry at index i. */
void addrset_remove_at(addrset *s, size_t i);
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
