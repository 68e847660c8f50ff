/* gc/mfree.c: the objects gc_free declared dead, tracked in the debug modes
 * (GCHEAP_DEBUG=poison=1 or checkmark=1) so that a later use is reported.
 *
 * gc_free (runtime/free.c) fills the object with a byte (the poison, or
 * zero) and records it here. Each mark termination, with the world
 * stopped and marking complete, looks at every record: an object the mark
 * found unreachable must still hold its fill byte (else something wrote
 * to it after gc_free: fatal) and its record goes, as the sweep is about
 * to free it; an object still marked stays recorded. Checkmark's re-mark
 * asks mfree_is_freed for every object it reaches through a precise slot:
 * a freed object that is reachable is a use after gc_free (fatal, naming
 * the holder). A second gc_free of a recorded object is refused.
 *
 * The records are an address set (alloc/sys/addrset.h: malloc'd memory,
 * nothing the collector scans), under mfree_.lock. Invariant:
 * a record's object is allocated (it is removed before the sweep that
 * frees it). */
#include "gc/mgc.h"

#include "alloc/sys/addrset.h"

typedef struct mfree_rec {
	uintptr_t size; /* bytes filled */
	uint8_t fill;
} mfree_rec;

static struct {
	gc_mutex lock;
	addrset set;   /* freed object -> mfree_rec */
	atomic_word n; /* records, for a look without the lock */
} mfree_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER},
            .set = {.vsize = sizeof(mfree_rec)}};

int mfree_track(uintptr_t obj, uintptr_t size, uint8_t fill)
{
	bool added;

	mutex_lock(&mfree_.lock);
	size_t i = addrset_add(&mfree_.set, obj, &added);
	if (added) {
		*(mfree_rec *)addrset_val(&mfree_.set, i) =
			(mfree_rec){size, fill};
		afetch_add(&mfree_.n, 1);
	}
	mutex_unlock(&mfree_.lock);
	return i == SIZE_MAX ? -1 : added;
}

bool mfree_is_freed(uintptr_t obj)
{
	if (!aload(&mfree_.n))
		return false;
	mutex_lock(&mfree_.lock);
	bool found = addrset_find(&mfree_.set, obj) != SIZE_MAX;
	mutex_unlock(&mfree_.lock);
	return found;
}

static NOINLINE void written_after_free(uintptr_t obj, const mfree_rec *r,
                                        uintptr_t at)
{
	const uint8_t *b = (const uint8_t *)at;
	fatal("write after gc_free: byte %zu of object %p (%zu bytes, freed "
	      "with gc_free) is %#x, not the fill %#x", (size_t)(at - obj),
	      (void *)obj, (size_t)r->size, *b, r->fill);
}

void mfree_check(void)
{
	addrset *set = &mfree_.set;

	if (!aload(&mfree_.n))
		return;
	mutex_lock(&mfree_.lock);
	addrset_settle(set);
	for (size_t i = 0; i < set->cap; i++) {
		if (!addrset_live(set, i))
			continue;
		uintptr_t obj = aload(&set->keys[i]);
		if (gcmark_is_marked(obj))
			continue;
		const mfree_rec *r = addrset_val(set, i);
		const uint8_t *b = (const uint8_t *)obj;
		for (uintptr_t k = 0; k < r->size; k++)
			if (b[k] != r->fill)
				written_after_free(obj, r, obj + k);
		addrset_remove_at(set, i);
		afetch_add(&mfree_.n, (uintptr_t)-1);
	}
	mutex_unlock(&mfree_.lock);
}
