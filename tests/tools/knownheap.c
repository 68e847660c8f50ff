/* tests/tools/knownheap.c: a process that builds a heap whose numbers are
 * known, for the gcstat tests (tests/tools/test_gcstat.sh):
 *   - a global root holding a list of CELLS cells (24 bytes, type "cell");
 *   - a frame slot holding one "bigvec" (40000 bytes, a large scan object)
 *     that points at LEAVES leaves (48 bytes, type "leaf");
 *   - one more leaf, shared by the first cell and the bigvec (so that no
 *     root retains it alone);
 *   - a frame slot holding a "blob" (50000 bytes, a large noscan object
 *     with a type: 7 pages);
 *   - JUNK 64-byte garbage objects, freed by the collection.
 * Stacks are not scanned (every root is precise), types are recorded.
 * It exports its stats, collects, writes a heap dump to argv[1], writes
 * "pid" to argv[2] when ready, and exits (removing its stats file) once
 * argv[2].stop exists, or after 60 s. */
#include <gcheap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CELLS 1000
#define LEAVES 100
#define JUNK 2000

typedef struct cell {
	struct cell *next;
	void *leaf;
	long n;
} cell;

typedef struct leaf {
	void *p;
	char pad[40];
} leaf;

static cell *list_head;

static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	gc_blocking_begin();
	nanosleep(&ts, NULL);
	gc_blocking_end();
}

int main(int argc, char **argv)
{
	static const size_t cell_ptrs[] = {offsetof(cell, next),
	                                   offsetof(cell, leaf)};
	static const size_t leaf_ptrs[] = {offsetof(leaf, p)};
	static const size_t vec_ptrs[] = {0};
	void *slots[2] = {0};
	gc_frame frame;
	char stop[4096];

	if (argc != 3) {
		fprintf(stderr, "usage: knownheap DUMP READY\n");
		return 2;
	}
	snprintf(stop, sizeof(stop), "%s.stop", argv[2]);
	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(0);
	gc_set_record_types(1);
	if (!getenv("KNOWNHEAP_NOEXPORT") && gc_export_start(50) != GCHEAP_OK)
		return 1;
	gc_type *cell_t = gc_type_new("cell", sizeof(cell), cell_ptrs, 2,
	                              GCHEAP_TAIL_REPEAT);
	gc_type *leaf_t = gc_type_new("leaf", sizeof(leaf), leaf_ptrs, 1,
	                              GCHEAP_TAIL_REPEAT);
	gc_type *vec_t = gc_type_new("bigvec", sizeof(void *), vec_ptrs, 1,
	                             GCHEAP_TAIL_REPEAT);
	gc_type *blob_t = gc_type_new("blob", 1, NULL, 0, GCHEAP_TAIL_NOSCAN);
	gc_add_roots(&list_head, 1);
	gc_frame_push(&frame, slots, 2);

	for (int i = 0; i < JUNK; i++)
		gc_alloc(64, NULL);
	leaf *shared = gc_alloc(sizeof(leaf), leaf_t);
	for (int i = 0; i < CELLS; i++) {
		cell *c = gc_alloc(sizeof(cell), cell_t);
		c->n = i;
		gc_write(&c->next, list_head);
		gc_write(&list_head, c);
	}
	gc_write(&list_head->leaf, shared);
	void **vec = gc_alloc(40000, vec_t);
	slots[0] = vec;
	for (int i = 0; i < LEAVES; i++)
		gc_write(&vec[i], gc_alloc(sizeof(leaf), leaf_t));
	gc_write(&vec[LEAVES], shared);
	shared = NULL;
	slots[1] = gc_alloc(50000, blob_t);

	gc_collect();
	gc_safepoint(); /* release the cache: exact per-class counts */
	if (gc_heap_dump(argv[1]) != GCHEAP_OK)
		return 1;
	gc_safepoint();
	nap(300); /* several export updates */

	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 1;
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	for (int i = 0; i < 3000 && access(stop, F_OK); i++)
		nap(20);
	gc_frame_pop(&frame);
	gc_thread_detach();
	return 0;
}
