/* bench/wl-heapgrow.c: heap growth. A live set of --slots objects
 * (default 500,000) of mixed sizes, 16 to 512 bytes (16 << (r % 6), no
 * pointers: about 84 MB), then --churn replacements (default 20 M) of a
 * random slot by a new object of a new random size (the malloc twins free
 * the old one). Prints the live bytes at the end (the slot table
 * included); bench/run divides the peak RSS by it. Run at GOGC 50, 100
 * and 200 (GCHEAP_GC, GOGC): what the collector's headroom costs in
 * memory, next to malloc's fragmentation. */
#include "wl.h"

int main(int argc, char **argv)
{
	uint64_t rng = 0x853c49e6748fea9bull, h = WL_FOLD_INIT, live = 0;
	size_t nslots, churn;
	uint64_t **slots;
	uint32_t *sizes;

	wl_args(argc, argv);
	wl_init();
	nslots = (size_t)wl_arg("slots", wl_quick() ? 5000 : 500000);
	churn = (size_t)wl_arg("churn", wl_quick() ? 100000 : 20000000);
	if (nslots == 0)
		wl_die("bad --slots");
	slots = (uint64_t **)wl_alloc_slots(nslots);
	sizes = malloc(nslots * sizeof *sizes);
	if (!sizes)
		wl_die("no memory");
	for (size_t i = 0; i < nslots + churn; i++) {
		size_t k = i < nslots ? i : wl_rand(&rng) % nslots;
		size_t sz = (size_t)16 << (wl_rand(&rng) % 6);
		uint64_t *o = wl_alloc(sz, NULL);
		uint64_t *old = i < nslots ? NULL : slots[k];

		o[0] = i;
		wl_write(&slots[k], o);
		if (old) {
			live -= sizes[k];
			if (WL_HAS_FREE)
				wl_free(old);
		}
		sizes[k] = (uint32_t)sz;
		live += sz;
	}
	for (size_t k = 0; k < nslots; k++)
		h = wl_fold(h, slots[k][0] * 64 + sizes[k]);
	wl_figure("live_mb", (live + nslots * sizeof(void *)) / 1e6);
	wl_sink = slots;
	wl_checksum(h);
	wl_finish();
	return 0;
}
