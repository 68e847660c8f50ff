/* alloc/fixalloc.h: off-heap metadata memory, as Go's fixalloc and
 * persistentalloc. Object memory never holds metadata: mspan structs,
 * span bitmaps and type arrays come from here.
 *
 * fixalloc hands out objects of one size from chunks with a free list
 * (64 KiB first, each next one twice the last up to 1 MiB: a heap that
 * grows to gigabytes maps its metadata in a few hundred calls, not
 * thousands, each of which takes the address space's lock); metaalloc
 * hands out zeroed blocks in classes from 16 bytes to METAALLOC_MAX:
 * 16, 32, 48, 64, then four steps to each power of two (80, 96, 112,
 * 128, 160, ...), so that a block wastes under a fifth of itself (with
 * power-of-two classes a span's bitmaps wasted 37-68% of theirs: 1,280
 * bytes for a span of 16-byte objects took 2,048). Neither is
 * thread-safe: callers hold mheap_.lock. Chunks are never returned to
 * the OS (they are reused). */
#ifndef GCHEAP_FIXALLOC_H
#define GCHEAP_FIXALLOC_H

#include <stddef.h>
#include <stdint.h>

#define FIXALLOC_CHUNK ((size_t)64 << 10)
#define FIXALLOC_CHUNK_MAX ((size_t)1 << 20)
#define METAALLOC_MAX_SHIFT 14
#define METAALLOC_MAX ((size_t)1 << METAALLOC_MAX_SHIFT)
/* 16..64 by 16, then 4 classes per power of two up to METAALLOC_MAX. */
#define METAALLOC_CLASSES (4 + 4 * (METAALLOC_MAX_SHIFT - 6))

typedef struct fixlink {
	struct fixlink *next;
} fixlink;

typedef struct fixalloc {
	size_t size;      /* object size, a multiple of 16 */
	fixlink *free;    /* freed objects */
	uint8_t *chunk;   /* the chunk being carved */
	size_t nchunk;    /* bytes left in it */
	size_t nextchunk; /* the size of the next chunk to map */
	size_t inuse;     /* bytes handed out and not freed */
	size_t *sys;      /* counter of OS bytes taken, shared */
} fixalloc;

void fixalloc_init(fixalloc *f, size_t size, size_t *sys);
/* A zeroed object, or NULL if the OS refuses memory. */
void *fixalloc_alloc(fixalloc *f);
void fixalloc_free(fixalloc *f, void *p);

typedef struct metaalloc {
	fixalloc cls[METAALLOC_CLASSES];
} metaalloc;

void metaalloc_init(metaalloc *m, size_t *sys);
/* A zeroed block of at least `bytes` (<= METAALLOC_MAX), or NULL. */
void *metaalloc_alloc(metaalloc *m, size_t bytes);
void metaalloc_free(metaalloc *m, void *p, size_t bytes);
/* Bytes handed out and not freed. */
size_t metaalloc_inuse(const metaalloc *m);
/* The class of a block of `bytes` (1..METAALLOC_MAX), and a class's
 * block size: the smallest class size that holds `bytes`. */
unsigned metaalloc_class(size_t bytes);
size_t metaalloc_class_size(unsigned cls);

#endif
