/* alloc/sizeclasses.h: Go's size classes, the constants the generator
 * (alloc/mksizeclasses.c) is built from and the tables it writes into
 * alloc/sizeclasses.c. Class 0 is the dummy class of large objects. A
 * span class pairs a size class with scan or noscan (spanclass).
 *
 * size_to_class(n) is O(1): sizes up to SMALL_SIZE_MAX index size_to_class8
 * in 8-byte steps, larger ones size_to_class128 in 128-byte steps. An object
 * index inside a span is (offset * class_to_divmagic[c]) >> 32, exact for
 * every offset in the span (the generator checks it). */
#ifndef GCHEAP_SIZECLASSES_H
#define GCHEAP_SIZECLASSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT 13
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)
#define NUM_SIZE_CLASSES 68
#define MAX_SMALL_SIZE 32768
#define SMALL_SIZE_DIV 8
#define SMALL_SIZE_MAX 1024
#define LARGE_SIZE_DIV 128
#define TINY_SIZE 16       /* noscan objects below this are packed */
#define TINY_SIZE_CLASS 2  /* the 16-byte class the tiny blocks come from */
#define MIN_ALIGN 8
/* Spans of classes up to SMALL_SPAN_OBJ_MAX bytes hold at least
 * SMALL_SPAN_MIN bytes (Go's pages, doubled; see alloc/mksizeclasses.c). */
#define SMALL_SPAN_OBJ_MAX 1024
#define SMALL_SPAN_MIN 32768

extern const uint16_t class_to_size[NUM_SIZE_CLASSES];
extern const uint8_t class_to_npages[NUM_SIZE_CLASSES];
extern const uint32_t class_to_divmagic[NUM_SIZE_CLASSES];
extern const uint8_t size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1];
#define SIZE_TO_CLASS128_LEN \
	((MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1)
extern const uint8_t size_to_class128[SIZE_TO_CLASS128_LEN];

/* The class of an object of `size` bytes, 1 <= size <= MAX_SMALL_SIZE. */
static inline unsigned size_to_class(size_t size)
{
	if (size <= SMALL_SIZE_MAX - 8)
		return size_to_class8[(size + SMALL_SIZE_DIV - 1) /
		                      SMALL_SIZE_DIV];
	return size_to_class128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) /
	                        LARGE_SIZE_DIV];
}

/* A span class: a size class and whether its objects hold pointers
 * (noscan), Go's spanClass. */
typedef uint8_t spanclass;

#define NUM_SPANCLASSES (NUM_SIZE_CLASSES << 1)
/* A thread's cache (alloc/mcache.h) has a slot per span class, then its
 * typed slots: a scan type's slot is gc_type.cslot. */
#define MCACHE_TYPED_SLOTS 64
#define MCACHE_SLOTS (NUM_SPANCLASSES + MCACHE_TYPED_SLOTS)
#define TINY_SPANCLASS ((spanclass)(TINY_SIZE_CLASS << 1 | 1))

static inline spanclass make_spanclass(unsigned sizeclass, bool noscan)
{
	return (spanclass)(sizeclass << 1 | (noscan ? 1 : 0));
}

static inline unsigned spanclass_sizeclass(spanclass spc)
{
	return spc >> 1;
}

static inline bool spanclass_noscan(spanclass spc)
{
	return spc & 1;
}

#endif
