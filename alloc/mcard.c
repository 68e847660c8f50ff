/* alloc/mcard.c: the card table's range and test calls (alloc/mcard.h). */
#include "alloc/mcard.h"

void mcard_dirty_range(uintptr_t p, size_t n)
{
	if (!n)
		return;
	uintptr_t end = p + n - 1 < p ? UINTPTR_MAX : p + n - 1;
	for (uintptr_t c = p & ~(CARD_BYTES - 1);; c += CARD_BYTES) {
		mcard_dirty(c);
		if (end - c < CARD_BYTES)
			break;
	}
}

bool mcard_is_dirty(uintptr_t p)
{
	volatile unsigned char *c = mcard_of(p);
	return c && aload8_acq(c);
}
