/* alloc/sys/osmem.h: address space and memory from the OS (Linux mmap).
 *
 * Three states, as in Go's mem.go: Reserved (PROT_NONE, not charged),
 * Committed (read-write, charged to the process; pages fault in on touch)
 * and Released (committed but madvise'd away: reads see zeros, RSS freed).
 * Every call that can fail can be made to by the test failpoint
 * (osmem_fail_in). */
#ifndef GCHEAP_SYS_OSMEM_H
#define GCHEAP_SYS_OSMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Reserve `size` bytes aligned to `align` (a power of two), at `hint` if the
 * OS agrees and hint is aligned. NULL if the OS refuses. */
void *os_reserve(size_t size, size_t align, void *hint);
/* Give reserved address space back. */
void os_unreserve(void *p, size_t size);
/* Make reserved pages read-write. False if the OS refuses. */
bool os_commit(void *p, size_t size);
/* Ask the OS to back committed pages with transparent huge pages (2 MiB
 * on x86-64; Linux MADV_HUGEPAGE): fewer TLB misses when marking and
 * sweeping a large heap, one page fault per 2 MiB instead of 512. A hint:
 * ignored where the kernel has THP off. */
void os_hugepages(void *p, size_t size);
/* Fault committed pages in without changing what they hold (Linux 5.14's
 * MADV_POPULATE_WRITE, then one read per page, which under a hypervisor
 * that maps guest pages lazily is a second fault of its own), so that the
 * program's first touch costs nothing. A thread other than the mutators
 * calls it, ahead of their use; they may be writing to the pages
 * meanwhile. False if the OS cannot (a kernel older than 5.14): the pages
 * may then be partly faulted in. */
bool os_prefault(void *p, size_t size);
/* Return committed pages to Reserved. */
void os_decommit(void *p, size_t size);
/* Drop the contents and RSS of committed pages; they read as zero. p and
 * size are multiples of os_page_size(). False if the OS refuses (pages
 * the program locked with mlock or mlockall): Linux goes one mapping at a
 * time, so the pages before the first locked mapping may be dropped all
 * the same; the others keep what they hold. */
bool os_release(void *p, size_t size);
/* The OS's page size (sysconf), the unit os_release works in. */
size_t os_page_size(void);
/* Make reserved pages readable: they read as zeros and are not charged
 * (os_commit makes them writable). False if the OS refuses. */
bool os_map_readonly(void *p, size_t size);
/* Zeroed read-write memory for metadata, page aligned. NULL on failure. */
void *os_alloc_meta(size_t size);
void os_free_meta(void *p, size_t size);

/* Test failpoint: the n-th OS request from now (1 = the next) fails, once.
 * 0 disarms it. */
void osmem_fail_in(unsigned n);
/* Is the failpoint still armed (no OS request has used it up)? */
bool osmem_fail_armed(void);

#endif
