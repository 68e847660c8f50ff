/* tests/tools/profheap.c: a process whose allocation sites and heap are
 * known, for the heap profile and the dump analysis tests
 * (tests/tools/test_profile.sh):
 *   - big_site() allocates BIG objects of 4096 bytes and keeps them,
 *     small_site() SMALL of 64 bytes and keeps them, garbage_site()
 *     GARBAGE of 256 bytes and drops them (collected before the profile);
 *   - a weak map (a global root) maps each of KEYS keys ("wkey", held by
 *     the array "keyarr", a global root) to a value ("wval", 1000 bytes)
 *     that nothing else holds: only the ephemeron keeps it;
 *   - a chain root -> "holder" -> "holder" -> "target" for dump --path;
 *   - objects only the collector's records keep: a finalizer's arg
 *     ("finarg"), and what an object queued for finalization points to
 *     ("queuedval"; finalizers run by hand, so the queue waits).
 * It writes the heap profile to argv[1] and a heap dump to argv[2]; then
 * it allocates GROW more "growth" objects (48 bytes) on a global list and
 * one "bigblob" of 65536 bytes, and writes a second dump to argv[3].
 * Stacks are not scanned: every root is precise. */
#include <gcheap.h>

#include <stdio.h>
#include <stdlib.h>

#define BIG 2000
#define SMALL 2000
#define GARBAGE 20000
#define KEYS 100
#define GROW 300

typedef struct wkey {
	void *p;
	long n[3];
} wkey;

typedef struct holder {
	long pad;
	void *next;
} holder;

typedef struct growth {
	struct growth *next;
	long pad[5];
} growth;

static void **big_kept, **small_kept;
static wkey **keys;
static gc_weakmap *map;
static holder *chain;
static growth *grown;
static void *blob;
static holder *finowner;

static void fin(void *obj, void *arg)
{
	(void)obj, (void)arg;
}

__attribute__((noinline, visibility("default"))) void big_site(void);
__attribute__((noinline, visibility("default"))) void small_site(void);
__attribute__((noinline, visibility("default"))) void garbage_site(void);

__attribute__((noinline, visibility("default"))) void big_site(void)
{
	for (int i = 0; i < BIG; i++)
		gc_write(&big_kept[i], gc_alloc(4096, NULL));
}

__attribute__((noinline, visibility("default"))) void small_site(void)
{
	for (int i = 0; i < SMALL; i++)
		gc_write(&small_kept[i], gc_alloc(64, NULL));
}

__attribute__((noinline, visibility("default"))) void garbage_site(void)
{
	for (int i = 0; i < GARBAGE; i++)
		if (!gc_alloc(256, NULL))
			abort();
}

int main(int argc, char **argv)
{
	static const size_t wkey_ptrs[] = {0};
	static const size_t holder_ptrs[] = {offsetof(holder, next)};
	static const size_t growth_ptrs[] = {0};
	static const size_t arr_ptrs[] = {0};
	void *slot[1] = {0};
	gc_frame frame;

	if (argc != 4) {
		fprintf(stderr, "usage: profheap PROFILE DUMP1 DUMP2\n");
		return 2;
	}
	if (gc_thread_attach() != GCHEAP_OK)
		return 1;
	gc_set_conservative_stacks(0);
	gc_set_record_types(1);
	gc_type *arr_t = gc_type_new("keyarr", sizeof(void *), arr_ptrs, 1,
	                             GCHEAP_TAIL_REPEAT);
	gc_type *ptrs_t = gc_type_new("ptrarr", sizeof(void *), arr_ptrs, 1,
	                              GCHEAP_TAIL_REPEAT);
	gc_type *wkey_t = gc_type_new("wkey", sizeof(wkey), wkey_ptrs, 1,
	                              GCHEAP_TAIL_REPEAT);
	gc_type *wval_t = gc_type_new("wval", 1000, NULL, 0,
	                              GCHEAP_TAIL_NOSCAN);
	gc_type *holder_t = gc_type_new("holder", sizeof(holder), holder_ptrs,
	                                1, GCHEAP_TAIL_REPEAT);
	gc_type *target_t = gc_type_new("target", 24, NULL, 0,
	                                GCHEAP_TAIL_NOSCAN);
	gc_type *growth_t = gc_type_new("growth", sizeof(growth), growth_ptrs,
	                                1, GCHEAP_TAIL_REPEAT);
	gc_type *blob_t = gc_type_new("bigblob", 1, NULL, 0,
	                              GCHEAP_TAIL_NOSCAN);
	gc_type *finarg_t = gc_type_new("finarg", 1000, NULL, 0,
	                                GCHEAP_TAIL_NOSCAN);
	gc_type *queuedval_t = gc_type_new("queuedval", 500, NULL, 0,
	                                   GCHEAP_TAIL_NOSCAN);
	gc_add_roots((void **)&big_kept, 1);
	gc_add_roots((void **)&small_kept, 1);
	gc_add_roots((void **)&keys, 1);
	gc_add_roots((void **)&map, 1);
	gc_add_roots((void **)&chain, 1);
	gc_add_roots((void **)&grown, 1);
	gc_add_roots(&blob, 1);
	gc_add_roots((void **)&finowner, 1);
	gc_set_finalizer_thread(0);
	gc_frame_push(&frame, slot, 1);

	gc_write(&big_kept, gc_alloc_array(BIG, ptrs_t));
	gc_write(&small_kept, gc_alloc_array(SMALL, ptrs_t));
	big_site();
	small_site();
	garbage_site();

	gc_write(&keys, gc_alloc_array(KEYS, arr_t));
	gc_write(&map, gc_weakmap_new());
	for (int i = 0; i < KEYS; i++) {
		gc_write(&keys[i], gc_alloc(sizeof(wkey), wkey_t));
		/* Held by a frame slot until the map holds it (setting
		 * allocates: a safepoint), then by the map only. */
		slot[0] = gc_alloc(1000, wval_t);
		if (gc_weakmap_set(map, keys[i], slot[0]) != GCHEAP_OK)
			return 1;
		slot[0] = NULL;
	}
	gc_write(&chain, gc_alloc(sizeof(holder), holder_t));
	gc_write(&chain->next, gc_alloc(sizeof(holder), holder_t));
	gc_write(&((holder *)chain->next)->next, gc_alloc(24, target_t));
	gc_write(&finowner, gc_alloc(sizeof(holder), holder_t));
	slot[0] = gc_alloc(1000, finarg_t);
	if (gc_set_finalizer(finowner, fin, slot[0]) != GCHEAP_OK)
		return 1;
	holder *q = gc_alloc(sizeof(holder), holder_t);
	slot[0] = q;
	gc_write(&q->next, gc_alloc(500, queuedval_t));
	if (gc_set_finalizer(q, fin, NULL) != GCHEAP_OK)
		return 1;
	slot[0] = q = NULL;

	gc_collect();
	gc_collect(); /* the garbage is swept: its frees are counted */
	if (gc_write_heap_profile(argv[1]) != GCHEAP_OK ||
	    gc_heap_dump(argv[2]) != GCHEAP_OK)
		return 1;
	for (int i = 0; i < GROW; i++) {
		growth *g = gc_alloc(sizeof(growth), growth_t);
		gc_write(&g->next, grown);
		gc_write(&grown, g);
	}
	gc_write(&blob, gc_alloc(65536, blob_t));
	if (gc_heap_dump(argv[3]) != GCHEAP_OK)
		return 1;
	return 0;
}
