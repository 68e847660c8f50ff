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

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXPORT_MAGIC 0x3150584550414847ULL /* "GHPAEXP1" little-endian */
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

/* Field 22 of /proc/<pid>/stat (the start time in clock ticks), or 0. */
static inline uint64_t export_start_ticks(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The name (field 2) may hold spaces: count from its ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
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
