/* alloc/sys/osmem_linux.c: the Linux implementation of osmem.h with mmap,
 * mprotect-free commits (mmap MAP_FIXED over the reservation, so the kernel
 * charges and can refuse the commit) and madvise(MADV_DONTNEED) releases;
 * MADV_HUGEPAGE asks for transparent huge pages (os_hugepages). */
#include "alloc/sys/osmem.h"

#include "alloc/sys/atomic.h"
#include "alloc/sys/base.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_word fail_countdown;

void osmem_fail_in(unsigned n)
{
	astore(&fail_countdown, n);
}

bool osmem_fail_armed(void)
{
	return aload(&fail_countdown) != 0;
}

/* True if the failpoint fires for this request. */
static bool failpoint(void)
{
	for (;;) {
		uintptr_t n = aload(&fail_countdown);
		if (n == 0)
			return false;
		if (acas(&fail_countdown, n, n - 1))
			return n == 1;
	}
}

static void *map_reserved(void *hint, size_t size)
{
	void *p = mmap(hint, size, PROT_NONE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *os_reserve(size_t size, size_t align, void *hint)
{
	if (failpoint())
		return NULL;
	if (hint && ((uintptr_t)hint & (align - 1)) == 0) {
		void *p = map_reserved(hint, size);
		if (p == hint)
			return p;
		if (p)
			munmap(p, size);
	}
	/* Over-reserve and trim to the alignment. */
	if (size + align < size)
		return NULL;
	uint8_t *raw = map_reserved(NULL, size + align);
	if (!raw)
		return NULL;
	uint8_t *p = (uint8_t *)align_up((uintptr_t)raw, align);
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	size_t tail = (size_t)((raw + size + align) - (p + size));
	if (tail)
		munmap(p + size, tail);
	return p;
}

void os_unreserve(void *p, size_t size)
{
	munmap(p, size);
}

bool os_commit(void *p, size_t size)
{
	if (failpoint())
		return false;
	void *q = mmap(p, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (q == MAP_FAILED)
		return false;
	if (q != p)
		fatal("mmap MAP_FIXED moved %p to %p", p, q);
	return true;
}

void os_hugepages(void *p, size_t size)
{
	madvise(p, size, MADV_HUGEPAGE);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* One read per page, of memory a mutator may be writing: the value is
 * thrown away, only the access matters (hence no sanitizer). */
__attribute__((no_sanitize_address, no_sanitize_thread, noinline))
static void touch_pages(const char *p, size_t size)
{
	for (size_t off = 0; off < size; off += 4096)
		(void)*(const volatile char *)(p + off);
}

bool os_prefault(void *p, size_t size)
{
	if (failpoint() || madvise(p, size, MADV_POPULATE_WRITE) != 0)
		return false;
	touch_pages(p, size);
	return true;
}

void os_decommit(void *p, size_t size)
{
	void *q = mmap(p, size, PROT_NONE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
	               -1, 0);
	if (q != p)
		fatal("cannot decommit %zu bytes at %p", size, p);
}

bool os_map_readonly(void *p, size_t size)
{
	if (failpoint())
		return false;
	return mprotect(p, size, PROT_READ) == 0;
}

bool os_release(void *p, size_t size)
{
	if (failpoint())
		return false;
	return madvise(p, size, MADV_DONTNEED) == 0;
}

size_t os_page_size(void)
{
	long n = sysconf(_SC_PAGESIZE);
	return n > 0 ? (size_t)n : 4096;
}

void *os_alloc_meta(size_t size)
{
	if (failpoint())
		return NULL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void os_free_meta(void *p, size_t size)
{
	munmap(p, size);
}
