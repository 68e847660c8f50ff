/* format/heapdump.h: the heap dump format's constants, shared by the
 * writer (runtime/heapdump.c) and the reader (tools/gcstat/dumpread.c).
 * docs/heapdump.md is the specification; keep the three in step. Like
 * every format/ header it may include the C library and the public header
 * only, so that the library and tools/ both can (docs/design.md, Layers).
 *
 * A dump is a 32-byte header, then records: a tag byte, a 32-bit payload
 * length, the payload. All integers are little-endian. The last record is
 * END, whose checksum (FNV-1a 64 of every byte before the END record)
 * lets the reader reject corrupt files. */
#ifndef GCHEAP_FORMAT_HEAPDUMP_H
#define GCHEAP_FORMAT_HEAPDUMP_H

#include <stddef.h>
#include <stdint.h>

#define HEAPDUMP_MAGIC "GCHEAPDM"  /* 8 bytes, no terminator */
#define HEAPDUMP_VERSION 1
#define HEAPDUMP_HEADER_SIZE 32
#define HEAPDUMP_MAX_RECORD (1u << 28) /* a payload over this is corrupt */

enum heapdump_tag {
	HD_TYPE = 1,   /* u32 id, u64 size, u32 flags, u16 len, name */
	HD_SPAN = 2,   /* u64 base, u64 npages, u64 elemsize, u32 class,
	                * u32 nelems, u32 nalloc, u8 flags */
	HD_OBJECT = 3, /* u64 addr, u64 size, u32 type, u8 flags,
	                * u32 nptrs, u64 ptr[nptrs] */
	HD_ROOT = 4,   /* u8 kind, u32 thread, u64 where, u64 target */
	HD_EPHEMERON = 5, /* u64 ephemeron, u64 key, u64 value (0: none) */
	HD_OFFSETS = 6, /* u64 addr, u32 n, u32 offset[n]: the offsets of
	                 * the slots of the OBJECT just before it, in the
	                 * order of its targets (0xffffffff: over 4 GiB) */
	/* The heap profile (format/pprof.h), after the ROOTs: one PROFILE,
	 * then its BUCKETs, MAPPINGs and SYMBOLs. A dump without PROFILE
	 * was written before dumps carried the profile. */
	HD_PROFILE = 7, /* u64 rate (bytes per sample; 0: profiling off) */
	HD_BUCKET = 8, /* u64 allocs, u64 alloc_bytes, u64 frees,
	                * u64 free_bytes, u32 n, u64 pc[n] (innermost
	                * first: return addresses) */
	HD_MAPPING = 9, /* u64 start, u64 limit, u64 offset, u16 len, file,
	                 * u16 len, build id (lower-case hex) */
	HD_SYMBOL = 10, /* u64 pc, u16 len, name: the function pc returns
	                 * into, as the process named it (dladdr) */
	HD_END = 255,  /* u64 records, u64 objects, u64 checksum */
};

/* Object and span flags. */
#define HD_F_NOSCAN 1u /* no pointers */
#define HD_F_TINY 2u   /* a 16-byte block of the tiny allocator */
#define HD_F_LARGE 4u  /* a large object (a span of its own) */

/* TYPE flags. */
#define HD_T_NOSCAN 1u

enum heapdump_root {
	HD_ROOT_GLOBAL = 1,    /* a slot registered with gc_add_roots */
	HD_ROOT_FRAME = 2,     /* a slot of a gc_frame (precise) */
	HD_ROOT_STACK = 3,     /* a native stack word (conservative) */
	HD_ROOT_REGISTER = 4,  /* a saved register (conservative) */
	HD_ROOT_FINALIZABLE = 5, /* a pointer slot of an object that has a
	                          * finalizer: its target is kept for it */
	HD_ROOT_RECORD = 6,    /* a finalizer's or cleanup's arg, a weak
	                        * reference's cell (the collector's records) */
	HD_ROOT_FINQ = 7,      /* an object queued for finalization, or its
	                        * finalizer's arg */
	HD_ROOT_NKINDS = 8,
};

/* FNV-1a, 64 bits. */
#define HEAPDUMP_FNV_OFFSET 0xcbf29ce484222325ULL
#define HEAPDUMP_FNV_PRIME 0x100000001b3ULL

static inline uint64_t heapdump_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * HEAPDUMP_FNV_PRIME;
	return h;
}

#endif
