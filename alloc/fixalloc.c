/* alloc/fixalloc.c: fixed-size and power-of-two metadata allocators. See
 * fixalloc.h. Invariant: every object on a free list lies in a chunk taken
 * by the same allocator, and inuse counts exactly the bytes handed out. */
#include "alloc/fixalloc.h"

#include "alloc/sys/base.h"
#include "alloc/sys/osmem.h"

#include <string.h>

void fixalloc_init(fixalloc *f, size_t size, size_t *sys)
{
	memset(f, 0, sizeof(*f));
	f->size = align_up(MAX(size, sizeof(fixlink)), 16);
	f->sys = sys;
	f->nextchunk = FIXALLOC_CHUNK;
}

void *fixalloc_alloc(fixalloc *f)
{
	void *p;

	if (f->free) {
		p = f->free;
		f->free = f->free->next;
		memset(p, 0, f->size);
	} else {
		if (f->nchunk < f->size) {
			size_t n = MAX(f->nextchunk, f->size);
			uint8_t *c = os_alloc_meta(n);
			if (!c)
				return NULL;
			f->nextchunk = MIN(2 * f->nextchunk,
			                   FIXALLOC_CHUNK_MAX);
			*f->sys += n;
			f->chunk = c;
			f->nchunk = n;
		}
		p = f->chunk; /* fresh from the OS: already zero */
		f->chunk += f->size;
		f->nchunk -= f->size;
	}
	f->inuse += f->size;
	return p;
}

void fixalloc_free(fixalloc *f, void *p)
{
	fixlink *l = p;

	gc_assert(f->inuse >= f->size);
	l->next = f->free;
	f->free = l;
	f->inuse -= f->size;
}

void metaalloc_init(metaalloc *m, size_t *sys)
{
	for (unsigned i = 0; i < ARRAY_LEN(m->cls); i++)
		fixalloc_init(&m->cls[i],
		              (size_t)1 << (i + METAALLOC_MIN_SHIFT), sys);
}

static unsigned meta_class(size_t bytes)
{
	unsigned shift = METAALLOC_MIN_SHIFT;

	while (((size_t)1 << shift) < bytes)
		shift++;
	return shift - METAALLOC_MIN_SHIFT;
}

void *metaalloc_alloc(metaalloc *m, size_t bytes)
{
	if (bytes > METAALLOC_MAX)
		fatal("metaalloc: %zu bytes is over the %zu limit", bytes,
		      METAALLOC_MAX);
	return fixalloc_alloc(&m->cls[meta_class(bytes)]);
}

void metaalloc_free(metaalloc *m, void *p, size_t bytes)
{
	fixalloc_free(&m->cls[meta_class(bytes)], p);
}

size_t metaalloc_inuse(const metaalloc *m)
{
	size_t n = 0;

	for (unsigned i = 0; i < ARRAY_LEN(m->cls); i++)
		n += m->cls[i].inuse;
	return n;
}
