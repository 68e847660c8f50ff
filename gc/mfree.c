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
 * The records are an open-addressing hash set keyed by address, in memory
 * from malloc (nothing the collector scans), under mfree_lock. Invariant:
 * a record's object is allocated (it is removed before the sweep that
 * frees it). */
#include "gc/mgc.h"

#include <stdlib.h>

typedef struct mfree_rec {
	uintptr_t obj;  /* 0: empty; MFREE_GONE: removed */
	uintptr_t size; /* bytes filled */
	uint8_t fill;
} mfree_rec;

#define MFREE_GONE ((uintptr_t)1)

static struct {
	gc_mutex lock;
	mfree_rec *t;
	size_t cap;   /* a power of two, or 0 */
	size_t used;  /* records, removed ones included */
	atomic_word n; /* live records */
} mfree_ = {.lock = {.m = PTHREAD_MUTEX_INITIALIZER}};

static size_t slot_of(uintptr_t obj, size_t cap)
{
	return (size_t)((obj >> 4) * 0x9E3779B97F4A7C15ULL >> 17) &
	       (cap - 1);
}

/* The record of obj, or of the empty slot where it would go. */
static mfree_rec *find(uintptr_t obj)
{
	mfree_rec *gone = NULL;

	for (size_t i = slot_of(obj, mfree_.cap);; i = (i + 1) &
	                                             (mfree_.cap - 1)) {
		mfree_rec *r = &mfree_.t[i];
		if (r->obj == obj)
			return r;
		if (r->obj == MFREE_GONE && !gone)
			gone = r;
		if (!r->obj)
			return gone ? gone : r;
	}
}

static bool grow(void)
{
	size_t cap = mfree_.cap ? mfree_.cap * 2 : 64;
	mfree_rec *old = mfree_.t, *t = calloc(cap, sizeof(*t));
	size_t oldcap = mfree_.cap;

	if (!t)
		return false;
	mfree_.t = t;
	mfree_.cap = cap;
	mfree_.used = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].obj > MFREE_GONE) {
			*find(old[i].obj) = old[i];
			mfree_.used++;
		}
	free(old);
	return true;
}

int mfree_track(uintptr_t obj, uintptr_t size, uint8_t fill)
{
	int ret = 1;

	mutex_lock(&mfree_.lock);
	if (mfree_.cap && find(obj)->obj == obj) {
		ret = 0;
	} else if ((mfree_.used + 1) * 2 > mfree_.cap && !grow()) {
		ret = -1;
	} else {
		mfree_rec *r = find(obj);
		if (!r->obj)
			mfree_.used++;
		*r = (mfree_rec){obj, size, fill};
		afetch_add(&mfree_.n, 1);
	}
	mutex_unlock(&mfree_.lock);
	return ret;
}

bool mfree_is_freed(uintptr_t obj)
{
	if (!aload(&mfree_.n))
		return false;
	mutex_lock(&mfree_.lock);
	bool found = find(obj)->obj == obj;
	mutex_unlock(&mfree_.lock);
	return found;
}

static NOINLINE void written_after_free(const mfree_rec *r, uintptr_t at)
{
	const uint8_t *b = (const uint8_t *)at;
	fatal("write after gc_free: byte %zu of object %p (%zu bytes, freed "
	      "with gc_free) is %#x, not the fill %#x", (size_t)(at - r->obj),
	      (void *)r->obj, (size_t)r->size, *b, r->fill);
}

void mfree_check(void)
{
	if (!aload(&mfree_.n))
		return;
	mutex_lock(&mfree_.lock);
	for (size_t i = 0; i < mfree_.cap; i++) {
		mfree_rec *r = &mfree_.t[i];
		if (r->obj <= MFREE_GONE || gcmark_is_marked(r->obj))
			continue;
		const uint8_t *b = (const uint8_t *)r->obj;
		for (uintptr_t k = 0; k < r->size; k++)
			if (b[k] != r->fill)
				written_after_free(r, r->obj + k);
		r->obj = MFREE_GONE;
		afetch_add(&mfree_.n, (uintptr_t)-1);
	}
	mutex_unlock(&mfree_.lock);
}
