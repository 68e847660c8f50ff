/* alloc/fixalloc.c: fixed-size and size-class metadata allocators. See
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

size_t metaalloc_class_size(unsigned cls)
{
	if (cls < 4)
		return 16 * ((size_t)cls + 1);
	size_t pow = (size_t)64 << ((cls - 4) / 4);
	return pow + pow / 4 * ((cls - 4) % 4 + 1);
}

unsigned metaalloc_class(size_t bytes)
{
	if (bytes <= 64)
		return bytes ? (unsigned)(bytes - 1) / 16 : 0;
	/* pow < bytes <= 2 * pow, pow >= 64: the step is pow / 4. */
	unsigned k = 63 - clz64((uint64_t)bytes - 1);
	size_t pow = (size_t)1 << k, step = pow / 4;
	return 4 + 4 * (k - 6) + (unsigned)((bytes - pow + step - 1) / step)
	       - 1;
}

void metaalloc_init(metaalloc *m, size_t *sys)
{
	for (unsigned i = 0; i < ARRAY_LEN(m->cls); i++)
		fixalloc_init(&m->cls[i], metaalloc_class_size(i), sys);
}

void *metaalloc_alloc(metaalloc *m, size_t bytes)
{
	if (bytes > METAALLOC_MAX)
		fatal("metaalloc: %zu bytes is over the %zu limit", bytes,
		      METAALLOC_MAX);
	return fixalloc_alloc(&m->cls[metaalloc_class(bytes)]);
}

void metaalloc_free(metaalloc *m, void *p, size_t bytes)
{
	fixalloc_free(&m->cls[metaalloc_class(bytes)], p);
}

size_t metaalloc_inuse(const metaalloc *m)
{
	size_t n = 0;

	for (unsigned i = 0; i < ARRAY_LEN(m->cls); i++)
		n += m->cls[i].inuse;
	return n;
}
