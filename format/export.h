/* format/export.h: the layout of a live-export file (runtime/export.c
 * writes it, tools/gcstat/live.c reads it): a header, then a gc_stats.
 * One file per process, /tmp/gcheap-<uid>/<pid> (or
 * $GCHEAP_EXPORT_DIR/<pid>), mode 0600 in a directory of mode 0700 owned
 * by the user.
 *
 * Sequence lock: the writer makes `seq` odd (a full-barrier increment),
 * writes, makes it even again (a release store); a reader copies the
 * stats with acquire loads, word by word, between two equal, even reads
 * of seq, and retries otherwise. All fields are in the writer's native
 * byte order (the reader runs on the same host).
 * Stale files (a dead pid, or a pid whose start time differs from
 * start_ticks: the pid was reused) are removed by gcstat and by the next
 * process that exports.
 *
 * Like every format/ header it may include the C library and the public
 * header (here for gc_stats) only, so that the library and tools/ both
 * can (docs/design.md, Layers). So each side brings its own atomics for
 * the sequence lock, both libatomic_ops': the library through
 * alloc/sys/atomic.h, gcstat directly. */
#ifndef GCHEAP_FORMAT_EXPORT_H
#define GCHEAP_FORMAT_EXPORT_H

#include "gcheap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_MAGIC 0x3150584550414847ULL /* "GHAPEXP1" little-endian */
#define EXPORT_VERSION 1

typedef struct export_file {
	uint64_t magic;         /* EXPORT_MAGIC */
	uint32_t version;       /* EXPORT_VERSION */
	uint32_t header_size;   /* offsetof(export_file, stats) */
	volatile uint64_t seq;  /* odd while the writer writes */
	int64_t pid;
	uint32_t uid;
	uint32_t stats_size;    /* sizeof(gc_stats) of the writer */
	uint64_t start_ticks;   /* /proc/<pid>/stat field 22 */
	uint64_t updated_ns;    /* CLOCK_REALTIME of the last update */
	uint64_t interval_ns;   /* timer period */
	char comm[32];          /* program name (/proc/self/comm) */
	gc_stats stats;
} export_file;

/* Is path an export file of this user, which a cleaner may remove? A
 * regular file it owns whose header has the magic, or one of exactly
 * an export file's size whose magic is still 0 (its writer died while
 * creating it; the magic is written last). Anything else that merely has
 * a numeric name is left alone. */
static inline bool export_file_is_ours(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	uint64_t magic = 0;
	bool ours = false;

	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() &&
	    st.st_size >= (off_t)offsetof(export_file, stats) &&
	    pread(fd, &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic))
		ours = magic == EXPORT_MAGIC ||
		       (magic == 0 && st.st_size == (off_t)sizeof(export_file));
	close(fd);
	return ours;
}

/* The export directory's path may be at most this long (a longer one is
 * refused, not cut). */
#define EXPORT_DIR_MAX (PATH_MAX - 32)

/* Read a /proc stat file (`path`: /proc/<pid>/stat or a task's) into buf
 * (n bytes): where field 3, the state, starts, or NULL. The name (field
 * 2) may hold spaces and parentheses: fields are counted from its last
 * ')'. */
static inline char *proc_stat_state(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t got = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[got] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Field 22 of /proc/<pid>/stat (the start time in clock ticks), or 0. */
static inline uint64_t export_start_ticks(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	char *p = proc_stat_state(path, buf, sizeof(buf));
	if (!p)
		return 0;
	p -= 2; /* at the ')' that ends field 2 */
	unsigned long long v = 0;
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field == 22 && sscanf(p, "%llu", &v) != 1)
		v = 0;
	return v;
}

#endif
