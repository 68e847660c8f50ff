/* alloc/gctype.h: the pointer map of an object (struct gc_type, opaque in
 * gcheap.h) and the one iterator through which the collector reads the
 * pointer slots of any heap object.
 *
 * A type covers `size` bytes; bit w of bits[] says the word at byte offset
 * 8w holds a pointer. Bytes of an object past `size` follow the tail rule:
 * REPEAT (arrays: the map repeats every `size` bytes; size is then a
 * multiple of 8 if the type has pointers), NOSCAN, or POINTERS (every whole
 * word from align_up(size, 8) on). small_bits holds the map of the first 64
 * words with the tail rule applied, which is all an object of <= 512 bytes
 * needs: the allocator copies it into the span's heap bits (mspan.h).
 *
 * Every type lives in one region of GCTYPE_REGION bytes, aligned to its
 * size and cut into GCTYPE_SLOT-byte slots. The whole region is mapped
 * readable from the first type on (pages not yet used read as zeros and
 * cost nothing), so gctype_in_region() is a mask test that never faults
 * and the fields of any slot it accepts can be read: a slot not yet used
 * has magic 0 and nfast 0. An address that is not a type is thus rejected
 * without dereferencing it (gc_alloc(64, (gc_type *)1)).
 *
 * Invariants (checked by gctype_make): bits past nwords are clear; noscan
 * is true exactly when no word of any object of this type can hold a
 * pointer; types are immortal and never change once made. */
#ifndef GCHEAP_GCTYPE_H
#define GCHEAP_GCTYPE_H

#include "gcheap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GCTYPE_MAGIC 0x6763747970652121ULL /* "gctype!!" */
#define WORD_SIZE 8
#define SMALL_SCAN_MAX 512 /* objects up to this size use span heap bits */

#define GCTYPE_REGION ((uintptr_t)1 << 25) /* 32 MiB of address space */
#define GCTYPE_SLOT ((uintptr_t)128)
#define GCTYPE_MAX_TYPES (GCTYPE_REGION / GCTYPE_SLOT) /* 262144 */
/* A slot's address has the region's base in these bits and zeros in the
 * low ones (a sign-extended 32-bit immediate on x86-64). */
#define GCTYPE_MASK (~(GCTYPE_REGION - 1) | (GCTYPE_SLOT - 1))
#define GCTYPE_INLINE_BITS 4 /* maps of up to 256 words live in the slot */

/* Layout keys (gc_type.key, mspan.freekey): an allocation of a type's own
 * size may take a slot from its cached span with no other test when the
 * two keys are equal. A scan type's key is its address, a noscan type's
 * GCTYPE_KEY_NOSCAN; a type the own-size path must not take (tiny, large,
 * and a slot not yet used, which reads as zeros) has GCTYPE_KEY_NONE, which
 * no span carries, and a span whose free slots fit no such shortcut
 * MSPAN_KEY_NONE, which no type has. */
#define GCTYPE_KEY_NONE ((uintptr_t)0)
#define GCTYPE_KEY_NOSCAN ((uintptr_t)1)
#define MSPAN_KEY_NONE (~(uintptr_t)0)

struct gc_type {
	uint64_t magic;      /* GCTYPE_MAGIC */
	size_t size;         /* bytes the map covers */
	uintptr_t key;       /* layout key of an object of size bytes */
	/* The allocation fast path takes sizes [size, size + nfast): up to
	 * the largest small size; 0 when size is over it (and in a slot not
	 * yet used, so that the fast path sends it to the checks). */
	uint32_t nfast;
	uint32_t id;         /* 1, 2, ... in order of creation (heap dumps);
	                      * ids over GCTYPE_MAX_ID are not recorded */
	size_t nwords;       /* whole words inside size: size / 8 */
	size_t nptrs;        /* pointer words inside size */
	unsigned tail;       /* GCHEAP_TAIL_* */
	bool noscan;         /* no object of this type holds a pointer */
	uint8_t spc;         /* the span class (alloc/sizeclasses.h) of one
	                      * object of exactly size bytes; 0 over the
	                      * largest small size */
	uint8_t cslot;       /* the mcache slot of such an object: spc for
	                      * a noscan type, else its typed slot
	                      * (alloc/mcache.h) */
	uint64_t small_bits; /* map of words 0..63 with the tail applied */
	uint64_t small_hi;   /* and of words 64..127: with small_bits, any
	                      * 64 words of a repeated map of <= 64 words */
	char *name;          /* owned copy, never NULL */
	struct gc_type *next; /* registry of all types */
	const uint64_t *bits; /* (nwords + 63) / 64 words: inline_bits, or
	                       * malloc'd for larger maps */
	uint64_t inline_bits[GCTYPE_INLINE_BITS];
};

/* The region's base; before the first type a value no slot address can
 * have (bit 7 lies between the mask's two parts). */
extern uintptr_t gctype_region __attribute__((visibility("hidden")));

/* Build a type from a bitmap. On error returns NULL and writes a one-line
 * reason to err (status GCHEAP_ERR_TYPE or GCHEAP_ERR_NOMEM in *status). */
gc_type *gctype_make(const char *name, size_t size, const uint64_t *bitmap,
                     unsigned flags, gc_status *status, char *err,
                     size_t errlen);

/* Build a type from pointer offsets, validating them. */
gc_type *gctype_from_offsets(const char *name, size_t size,
                             const size_t *offs, size_t n, unsigned flags,
                             gc_status *status, char *err, size_t errlen);

/* True if t is the address of a slot of the type region: then its fields
 * may be read (an unused slot reads as zeros). Never dereferences t. The
 * plain read of gctype_region (written once, before the first type is
 * returned) lets the compare take it from memory: a caller holding a real
 * type has seen the write; a bogus t reads the sentinel or the base, and
 * either rejects it. */
static inline bool gctype_in_region(const gc_type *t)
{
	return ((uintptr_t)t & GCTYPE_MASK) == gctype_region;
}

/* True if t is a gc_type made by gctype_make (API-level check): any
 * pointer may be passed, only a region slot is read. */
static inline bool gctype_valid(const gc_type *t)
{
	return gctype_in_region(t) && t->magic == GCTYPE_MAGIC;
}

/* Is word w of an object laid out as t (w >= 0) a pointer slot? The slow,
 * obviously right definition that tests and the verifier compare with. */
bool gctype_word_is_ptr(const gc_type *t, size_t w);

/* The first type in the registry (newest first); walk with ->next. */
gc_type *gctype_all(void);

/* Per-object type ids (mspan.h typeids) are 16 bits; 0 means none. */
#define GCTYPE_MAX_ID 65535u

/* The type with id `id`, or NULL. */
const gc_type *gctype_by_id(uint32_t id);

/* ---- The pointer-slot iterator ----------------------------------------- */

/* Walks the pointer slots of an object of `nbytes` bytes at `obj` laid out
 * as `t`, or as the span heap bits `hb` (word-indexed from the span base)
 * when t is NULL. Yields slot addresses in increasing order. */
typedef struct ptriter {
	uintptr_t obj;        /* object start */
	size_t nwords;        /* words of the object to visit */
	const gc_type *t;     /* typed objects; NULL for heap-bits objects */
	const uint64_t *hb;   /* heap bits of the span, word 0 = span base */
	size_t hbw;           /* heap-bits word index of the object start */
	size_t w;             /* next word to look at */
	uint64_t cur;         /* pending pointer bits, bit 0 = word `curw` */
	size_t curw;          /* object word that bit 0 of cur stands for */
} ptriter;

void ptriter_init_typed(ptriter *it, uintptr_t obj, size_t nbytes,
                        const gc_type *t);
void ptriter_init_heapbits(ptriter *it, uintptr_t obj, size_t nbytes,
                           const uint64_t *hb, size_t hbw);
/* The next pointer slot, or NULL when done. */
uintptr_t *ptriter_next(ptriter *it);
/* The pointer slots still pending among the next (up to) 64 words, as a
 * mask: bit b set means word (*first)[b] is a pointer slot; 0 when done.
 * Words without pointers are skipped. Mixes with ptriter_next. */
uint64_t ptriter_next_chunk(ptriter *it, uintptr_t **first);

#endif
