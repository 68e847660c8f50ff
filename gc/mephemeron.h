/* gc/mephemeron.h: the ephemeron fixpoint (gc/mephemeron.c). */
#ifndef GCHEAP_MEPHEMERON_H
#define GCHEAP_MEPHEMERON_H

#include "gc/mgcwork.h"

/* One ephemeron pass: mark the value of every live ephemeron whose key is
 * marked; if that leads to more, follow the chain in w's drain. True if
 * it marked anything: marking is complete only after a pass that marks
 * nothing (gc/mgc.c's mark_done). */
bool ephemeron_pass(gcw *w);

/* greyobject, for a gcw with a watch (w->watch): obj (an object's base)
 * was just marked by w. */
void ephemeron_watch_hit(gcw *w, uintptr_t obj);

/* Tests: counters since the start: the passes; of them, those that
 * followed chains through a watch; and the ephemerons that watches
 * released (their awaited object greyed by the pass's own drain) to be
 * looked at again. */
typedef struct ephemeron_counts {
	uintptr_t passes, watched, released;
} ephemeron_counts;
ephemeron_counts ephemeron_counters(void);

#endif
