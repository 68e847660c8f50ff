/* gcheap.h: the public interface of gcheap, a Go-style garbage-collected heap
 * for language runtimes written in C.
 *
 * This is the only installed header. Every function starts with gc_, every
 * macro and constant with GCHEAP_, and every handle is opaque, so it compiles
 * beside bdwgc's <gc.h>. See docs/api.md for the full contract.
 *
 * Rules in brief:
 *  - A thread calls gc_thread_attach() before it touches the heap and
 *    gc_thread_detach() when it is done. Calls from an unattached thread fail
 *    with GCHEAP_ERR_NOT_ATTACHED, and so do heap calls inside
 *    gc_blocking_begin/end.
 *  - An object's pointer layout is given by a gc_type made once with
 *    gc_type_new() and kept for the life of the program (types are immortal).
 *    type == NULL means "no pointers" (noscan).
 *  - Memory returned by gc_alloc is zeroed. Objects of 16 bytes or more, and
 *    all objects with pointers, are aligned to 8 bytes, to 16 when the size is
 *    a multiple of 16, and to the size for powers of two up to 8 KiB. Noscan
 *    objects under 16 bytes are packed (the tiny allocator) and aligned to 8,
 *    4 or 2 bytes when their size is a multiple of it, as C requires.
 *    gc_alloc(0, t) returns the one shared zero-size address, a PROT_NONE
 *    page: any access through it faults at once.
 *  - Errors return NULL or a gc_status, set the thread's gc_last_error(), and
 *    call the error handler (default: print one line on stderr).
 */
#ifndef GCHEAP_H
#define GCHEAP_H

#include <stddef.h>
#include <stdint.h>

#define GCHEAP_VERSION_MAJOR 0
#define GCHEAP_VERSION_MINOR 1
#define GCHEAP_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define GCHEAP_API __attribute__((visibility("default")))
#define GCHEAP_ALLOC_ATTR(n) __attribute__((malloc, alloc_size(n)))
#else
#define GCHEAP_API
#define GCHEAP_ALLOC_ATTR(n)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The largest single allocation; larger requests fail with GCHEAP_ERR_SIZE. */
#define GCHEAP_MAX_ALLOC ((size_t)1 << 40)

/* Status codes. gc_strerror() names each one. */
typedef enum gc_status {
	GCHEAP_OK = 0,
	GCHEAP_ERR_SIZE,         /* over GCHEAP_MAX_ALLOC or under the type */
	GCHEAP_ERR_OVERFLOW,     /* count * element size overflows size_t */
	GCHEAP_ERR_TYPE,         /* malformed pointer map, or not a gc_type */
	GCHEAP_ERR_NOMEM,        /* the OS refused memory, or the limit hit */
	GCHEAP_ERR_NOT_ATTACHED, /* the calling thread is not attached */
	GCHEAP_ERR_DUPLICATE,    /* the calling thread is already attached */
	GCHEAP_ERR_ARG,          /* an invalid argument (a NULL, ...) */
	GCHEAP_STATUS_COUNT
} gc_status;

/* ---- Threads ----------------------------------------------------------- */

/* Initialise the heap. Optional: the first gc_thread_attach() does it too.
 * Idempotent and thread-safe. A failure (no memory for the heap's tables
 * or threads) is final: later calls return the same error. */
GCHEAP_API gc_status gc_init(void);

/* Attach the calling thread: it gets its own allocation cache. A second
 * attach returns GCHEAP_ERR_DUPLICATE and changes nothing. */
GCHEAP_API gc_status gc_thread_attach(void);

/* Detach the calling thread: its cache is flushed back to the heap. Returns
 * GCHEAP_ERR_NOT_ATTACHED if it was not attached or is inside
 * gc_blocking_begin/end (where every heap call is refused; end the region
 * first), GCHEAP_ERR_ARG from a finalizer, a cleanup or an error or OOM
 * handler (their thread goes on being used) or with a gc_frame still
 * pushed (pop it first: a detached thread's frames are no roots). */
GCHEAP_API gc_status gc_thread_detach(void);

/* 1 if the calling thread is attached, else 0. */
GCHEAP_API int gc_thread_is_attached(void);

/* ---- Types (pointer maps) ------------------------------------------------ */

typedef struct gc_type gc_type;

/* What the pointer map says about the bytes of an object past the type's
 * size (arrays and variable-length objects):
 *   REPEAT    the map repeats: an array of the type (the usual choice);
 *   NOSCAN    no pointers past the type's size (a header, then bytes);
 *   POINTERS  every whole word past it is a pointer (a header, then a
 *             pointer array). */
#define GCHEAP_TAIL_REPEAT 0u
#define GCHEAP_TAIL_NOSCAN 1u
#define GCHEAP_TAIL_POINTERS 2u

/* The largest size a type may describe (arrays of it may be larger). */
#define GCHEAP_MAX_TYPE_SIZE ((size_t)1 << 30)

/* Make a type of `size` bytes whose pointer words sit at the byte offsets
 * `ptr_offsets[0..nptrs)`. Offsets must be multiples of sizeof(void *), lie
 * wholly inside `size`, and be distinct (any order). `flags` is one of the
 * GCHEAP_TAIL_* values. `name` (may be NULL) is copied; it names the type in
 * heap dumps. Returns NULL with GCHEAP_ERR_TYPE on a malformed map (more
 * offsets than the words `size` touches is refused before any is read),
 * and GCHEAP_ERR_NOMEM if the descriptor cannot be allocated or 262144
 * types exist already. A type with no pointers is noscan. Types are never
 * freed. Every call that takes a gc_type * checks the address before it
 * reads it: anything else is GCHEAP_ERR_TYPE. */
GCHEAP_API gc_type *gc_type_new(const char *name, size_t size,
                                const size_t *ptr_offsets, size_t nptrs,
                                unsigned flags);

/* The same from a bitmap of (size + 511) / 512 words: bit i (word i/64,
 * bit i%64) set means the word at byte offset i*sizeof(void *) holds a
 * pointer. Bits for words that do not lie wholly inside `size` must be
 * clear. ptr_bitmap may be NULL for a type without pointers. */
GCHEAP_API gc_type *gc_type_new_bitmap(const char *name, size_t size,
                                       const uint64_t *ptr_bitmap,
                                       unsigned flags);

GCHEAP_API const char *gc_type_name(const gc_type *type);
GCHEAP_API size_t gc_type_size(const gc_type *type);

/* ---- Allocation -------------------------------------------------------- */

/* Allocate `size` zeroed bytes laid out as `type` (NULL: no pointers). With
 * a type, `size` must be at least the type's size; bytes past it follow the
 * type's tail rule. Returns NULL on error: GCHEAP_ERR_SIZE,
 * GCHEAP_ERR_NOMEM (after calling the OOM handler), GCHEAP_ERR_TYPE (not
 * a gc_type: the message shows the address), GCHEAP_ERR_NOT_ATTACHED (also
 * inside gc_blocking_begin/end). */
GCHEAP_API void *gc_alloc(size_t size, const gc_type *type)
	GCHEAP_ALLOC_ATTR(1);

/* A noscan object of `size` bytes whose contents are not cleared, as
 * malloc's (bdwgc's GC_MALLOC_ATOMIC): for a buffer the program fills at
 * once. Objects over 32 KiB skip the clearing that gc_alloc(size, NULL)
 * does on reused pages (a memset of the whole object); smaller ones come
 * cleared anyway. Errors as gc_alloc's. */
GCHEAP_API void *gc_alloc_uninit(size_t size) GCHEAP_ALLOC_ATTR(1);

/* Allocate count * gc_type_size(elem) bytes of type `elem`, as gc_alloc:
 * the bytes past the first element follow elem's tail rule, so only a
 * GCHEAP_TAIL_REPEAT type lays every element out as the first (with
 * GCHEAP_TAIL_NOSCAN the later elements' pointers are not scanned).
 * GCHEAP_ERR_OVERFLOW if the product does not fit in size_t. */
GCHEAP_API void *gc_alloc_array(size_t count, const gc_type *elem);

/* The size of the slot of the heap object that contains `p` (interior
 * pointers included), or 0 if `p` is not inside an allocated object. The
 * object is the size it was allocated (or last reallocated) with: the
 * slot past it is for gc_realloc to grow into, not for data or pointers
 * (docs/api.md). */
GCHEAP_API size_t gc_size(const void *p);

/* The start of the heap object that contains `p`, or NULL. */
GCHEAP_API void *gc_base(const void *p);

/* Resize the object at p (from gc_alloc, of `type`: NULL or a noscan type
 * for noscan objects) to `size` bytes, as C's realloc: the object stays
 * where it is when its slot holds the new size and its pointer layout does
 * not change, else a new object of the type gets the common prefix and p
 * is left to the collector. Growth is zeroed. p NULL (or the zero-size
 * address): gc_alloc(size, type); size 0: the zero-size address. Errors
 * return NULL and leave p alone: GCHEAP_ERR_ARG (p not the start of a
 * heap object, uncollectable, or a weak handle), GCHEAP_ERR_TYPE (not a
 * gc_type, or not p's type), GCHEAP_ERR_SIZE, GCHEAP_ERR_NOMEM,
 * GCHEAP_ERR_NOT_ATTACHED. */
GCHEAP_API void *gc_realloc(void *p, size_t size, const gc_type *type)
	GCHEAP_ALLOC_ATTR(2);

/* A noscan heap copy of the C string str (at most n bytes of it, plus the
 * terminating NUL, for strndup). GCHEAP_ERR_ARG for a NULL string (with
 * n > 0 for strndup). */
GCHEAP_API char *gc_strdup(const char *str);
GCHEAP_API char *gc_strndup(const char *str, size_t n);

/* Tell the collector that the object at p is dead (a hint: its slot is
 * reused once a collection finds it unreachable). A scan object's contents
 * are cleared at once (a noscan one's are left). In the debug modes
 * (GCHEAP_DEBUG=poison=1 or checkmark=1) it is filled and remembered: a
 * second gc_free, a write after it, and (with checkmark) a reachable object
 * still pointing to it are reported. NULL does nothing, and so does an
 * object the tiny allocator packed. GCHEAP_ERR_ARG for anything but the
 * start of a heap object, an uncollectable one, or a weak handle (gc_weak,
 * gc_ephemeron, gc_weakmap: drop those). */
GCHEAP_API void gc_free(void *p);

/* An object that is a root itself: never collected, scanned by its type,
 * until gc_free_uncollectable(p) makes it an ordinary object again (NULL
 * is accepted; anything not from gc_alloc_uncollectable, or freed
 * already, is GCHEAP_ERR_ARG). Stores into it need gc_write. */
GCHEAP_API void *gc_alloc_uncollectable(size_t size, const gc_type *type)
	GCHEAP_ALLOC_ATTR(1);
GCHEAP_API gc_status gc_free_uncollectable(void *p);

/* Go's runtime.KeepAlive: p stays visible to the conservative stack scan
 * up to this call (say, while a finalizer of p would close a resource
 * still in use). Any value is accepted. It is no root in precise mode. */
GCHEAP_API void gc_keep_alive(const void *p);

/* ---- Roots ------------------------------------------------------------ */

/* Register `nslots` pointer slots at `start` (globals, static tables) as
 * roots. Stores into them need gc_write, as heap stores do. GCHEAP_ERR_ARG
 * for a NULL or misaligned start, or slots that run past the end of the
 * address space. */
GCHEAP_API gc_status gc_add_roots(void *start, size_t nslots);
GCHEAP_API gc_status gc_remove_roots(void *start);

/* A precise shadow-stack frame: `nslots` pointer slots at `slots` that the
 * collector scans as roots of the thread that pushed it. The interpreter
 * may change `slots`, `nslots` and the slots' contents freely (no barrier:
 * the thread's own roots are scanned at its safepoints). Frames are pushed
 * and popped in LIFO order. GCHEAP_ERR_ARG (and no change) for a NULL
 * frame, NULL slots with nslots > 0, slots past the end of the address
 * space, the innermost frame pushed again (any pushed frame at check level
 * >= 2), or a pop of anything but the innermost frame. Frames left pushed
 * when the thread exits are dropped; pop them before exiting inside a
 * blocking region (docs/api.md). */
typedef struct gc_frame {
	struct gc_frame *prev;
	void **slots;
	size_t nslots;
} gc_frame;

GCHEAP_API void gc_frame_push(gc_frame *frame, void **slots, size_t nslots);
GCHEAP_API void gc_frame_pop(gc_frame *frame);
/* For errors raised with longjmp past functions that pushed frames: save
 * gc_frame_top() beside the setjmp, and where the longjmp lands, before
 * any other gc_ call, gc_frame_unwind(saved) makes it the innermost frame
 * again, dropping the frames pushed since without reading them (their
 * memory is dead). NULL from an unattached thread (and no change). */
GCHEAP_API gc_frame *gc_frame_top(void);
GCHEAP_API void gc_frame_unwind(gc_frame *top);

/* Scan each attached thread's native stack and registers conservatively
 * (on by default): any word that points into an allocated object keeps it
 * alive. Switch it off when every root is in frames or registered, and
 * when threads run on stacks of their own making (coroutines): a
 * safepoint on a stack the thread did not attach on is fatal while on. */
GCHEAP_API void gc_set_conservative_stacks(int on);

/* ---- Collection -------------------------------------------------------- */

/* Run a full collection and return when its sweep is done. From an
 * unattached thread: GCHEAP_ERR_NOT_ATTACHED and no collection. */
GCHEAP_API void gc_collect(void);

/* Nesting switch for automatic collections (gc_collect still works). */
GCHEAP_API void gc_disable(void);
GCHEAP_API void gc_enable(void);

/* GOGC: collect when the heap has grown by `percent`% over the live heap
 * of the last cycle (default 100, or the GCHEAP_GC environment variable);
 * a negative value switches automatic collection off. Returns the old
 * value, -1 for off (whatever negative value set it). */
GCHEAP_API int gc_set_percent(int percent);

/* Generational collection (off by default, or GCHEAP_GENERATIONAL=1):
 * between full ("major") marks, "minor" marks trace only the objects
 * allocated since the last mark, from the roots and from the older
 * objects stored into since (every gc_write then also records its slot).
 * An old object that dies is freed by the next major mark; forced
 * collections (gc_collect) are always major. Takes effect at the end of
 * the running or next mark. Returns the old setting (1 or 0). */
GCHEAP_API int gc_set_generational(int on);

/* The number of background mark workers, 1..GCHEAP_MAX_MARKERS; 0 is the
 * default, one per CPU online (the start-up value may come from the
 * GCHEAP_MARKERS environment variable). About a quarter of the CPUs'
 * worth (ncpu/4, at least a fraction of one) mark whenever a cycle
 * runs; the others only while a CPU would be idle, or while a thread
 * waits for the cycle (gc_collect). Returns the old number, or -1 with
 * GCHEAP_ERR_ARG for a negative n or one above GCHEAP_MAX_MARKERS. */
#define GCHEAP_MAX_MARKERS 256
GCHEAP_API int gc_set_mark_workers(int n);

/* Answer the collector if it is waiting (allocation does this too). An
 * attached thread that never reaches a safepoint (a long loop that does
 * not allocate: call this in it) stalls the collector's phase changes,
 * and so, once a stop is requested, every other attached thread at its
 * next safepoint or allocation; a thread that blocks (a lock, I/O) must
 * do it inside gc_blocking_begin/end. GCHEAP_ERR_NOT_ATTACHED from an
 * unattached thread. */
GCHEAP_API void gc_safepoint(void);

/* Around code that waits (I/O, locks, sleeps) and does not touch the
 * heap: the thread counts as stopped, and the collector scans its stack
 * from where it was at gc_blocking_begin, the caller's frame up. Call
 * both from one function, whose frame lives until gc_blocking_end: a
 * helper that calls gc_blocking_begin and returns leaves its frame, with
 * the registers it saved for its caller, to be overwritten by the wait,
 * and what only they held is freed. Inside, heap calls (gc_alloc
 * included) fail with GCHEAP_ERR_NOT_ATTACHED; the pair does not nest
 * (GCHEAP_ERR_ARG). A thread that blocks without it holds up every stop
 * of the world: after a second (GCHEAP_DEBUG=stopwarn=MS) the library
 * names it on stderr (its tid and pthread_setname_np name), once per
 * stop, and goes on waiting. */
GCHEAP_API void gc_blocking_begin(void);
GCHEAP_API void gc_blocking_end(void);

/* Collection events, in this order for each cycle (numbered from 1). */
typedef enum gc_cycle_event {
	GCHEAP_CYCLE_MARK_START = 0,
	GCHEAP_CYCLE_MARK_END = 1,
	GCHEAP_CYCLE_SWEEP_END = 2,
} gc_cycle_event;
typedef void (*gc_cycle_fn)(gc_cycle_event event, uint64_t cycle,
                            void *data);

/* Call fn(event, cycle, data) after each event from now on (fn NULL:
 * stop), on a library thread that is not attached (fn must not attach
 * it or touch the heap), outside every pause, holding no lock: every
 * event, in order, possibly late. When this returns, a callback it
 * replaced is no longer running (unless this is called from it).
 * GCHEAP_ERR_NOMEM if the thread cannot be started. */
GCHEAP_API gc_status gc_set_cycle_callback(gc_cycle_fn fn, void *data);

/* A full collection, then every free page given back to the OS (Go's
 * debug.FreeOSMemory). Returns the bytes released. The caller must be
 * attached (GCHEAP_ERR_NOT_ATTACHED, 0, otherwise). */
GCHEAP_API size_t gc_free_os_memory(void);

/* ---- The write barrier ------------------------------------------------- */

GCHEAP_API extern int gc_barrier_enabled;
GCHEAP_API void gc_write_slow(void *slot, void *value);

/* Store `value` into the pointer slot `slot` of a heap object or a
 * registered root. Every such store needs it (initialising stores into a
 * fresh object included); stores into the thread's own frames and native
 * stack do not. While the collector is idle this is one load, a predicted
 * branch and the store; with generational collection on, stores between
 * marks also record their slot's card, out of line. */
static inline void gc_write(void *slot, void *value)
{
	/* The library's only atomic outside alloc/sys/atomic.h: this public
	 * header cannot include internal headers, so the relaxed load of
	 * the switch is spelt out here. */
#if defined(__GNUC__) || defined(__clang__)
	if (__builtin_expect(__atomic_load_n(&gc_barrier_enabled,
	                                     __ATOMIC_RELAXED), 0))
#else
	if (*(volatile int *)&gc_barrier_enabled)
#endif
		gc_write_slow(slot, value);
	else
		*(void **)slot = value;
}

/* memmove for memory that holds pointers, with the bulk barrier. nbytes
 * 0 does nothing (any addresses); NULL with nbytes > 0 is GCHEAP_ERR_ARG. */
GCHEAP_API void gc_copy(void *dst, const void *src, size_t nbytes);

/* ---- Finalizers, cleanups and weak references ------------------------ */

/* A finalizer runs once, on a finalizer thread (or in gc_run_finalizers),
 * after its object has become unreachable; the object and everything it
 * reaches stay alive until the finalizer has returned, and the object is
 * freed by a later cycle unless the finalizer stored it somewhere
 * (resurrection). Order: when a finalizable object A reaches another one
 * B, A is finalized first and B on a later cycle; a cycle of finalizable
 * objects (or an object that reaches itself) is never finalized, as in
 * Go. Finalizers never run at exit unless the program calls
 * gc_run_finalizers(). See docs/api.md for the full rules. */
typedef void (*gc_finalizer_fn)(void *obj, void *arg);
typedef void (*gc_cleanup_fn)(void *arg);

/* Set the finalizer of the object that starts at `obj`, replacing any
 * earlier one, or clear it (fn == NULL). `arg` is passed to fn and kept
 * alive with the finalizer; it must not point into obj. GCHEAP_ERR_ARG if
 * obj is not the start of a heap object (inside a 16-byte tiny block any
 * address is accepted: the block is the object). */
GCHEAP_API gc_status gc_set_finalizer(void *obj, gc_finalizer_fn fn,
                                      void *arg);

/* Go's AddCleanup: run fn(arg) after `obj` (any address inside a heap
 * object) has been freed. An object may have several; they never see the
 * object and cannot resurrect it. `arg` is kept alive by the cleanup and
 * must not point into obj (it would keep obj alive forever). Returns an id
 * for gc_cancel_cleanup, or 0 on error. */
GCHEAP_API uint64_t gc_add_cleanup(void *obj, gc_cleanup_fn fn, void *arg);
/* Cancel a cleanup that has not been queued yet: GCHEAP_OK, or
 * GCHEAP_ERR_ARG if obj has no cleanup with that id (any more). */
GCHEAP_API gc_status gc_cancel_cleanup(void *obj, uint64_t id);

/* Run the queued finalizers and cleanups on the calling (attached)
 * thread; returns how many ran. */
GCHEAP_API size_t gc_run_finalizers(void);
/* on (the default, or GCHEAP_FINALIZERS=thread): a background thread,
 * started with the first finalizer or cleanup, runs them; off
 * (GCHEAP_FINALIZERS=manual): only gc_run_finalizers() does. Turning it
 * off returns once the thread has finished the entry it was running (a
 * finalizer must not wait for the thread that turns it off), except in a
 * notification callback (gc_set_finalizer_notify, gc_set_cycle_callback),
 * which does not wait. */
GCHEAP_API void gc_set_finalizer_thread(int on);
/* Finalizers and cleanups queued or running (one that is running counts
 * until it returns). */
GCHEAP_API size_t gc_finalizers_pending(void);
/* Call fn(pending, data) whenever finalizers or cleanups have been queued
 * (fn NULL: stop), on a library thread that is not attached (fn must not
 * attach it or touch the heap), holding no lock: in manual mode, the cue
 * to call gc_run_finalizers() on a thread of yours (write to a pipe or
 * eventfd to wake an event loop). `pending`
 * is gc_finalizers_pending() at the call. GCHEAP_ERR_NOMEM if the thread
 * cannot be started. */
typedef void (*gc_finalizer_notify_fn)(size_t pending, void *data);
GCHEAP_API gc_status gc_set_finalizer_notify(gc_finalizer_notify_fn fn,
                                             void *data);

/* A weak reference: a small heap object (keep it, and store it, like any
 * other pointer) that yields its target while the target is strongly
 * reachable and NULL once it is not. It is cleared before any finalizer
 * of the target runs, and stays NULL even if the finalizer resurrects the
 * target. gc_weak_new returns the same reference for the same address.
 * `obj` may be any address inside a heap object; for an object packed by
 * the tiny allocator, the reference lives as long as its 16-byte block. */
typedef struct gc_weak gc_weak;

GCHEAP_API gc_weak *gc_weak_new(void *obj);
/* The target, or NULL once it has become unreachable. The result is a
 * strong pointer (while marking, it is shaded). Here and in the ephemeron
 * and map calls below, an address that is not a handle of the right kind
 * (checked before it is read) is GCHEAP_ERR_ARG with a NULL or 0 result. */
GCHEAP_API void *gc_weak_get(const gc_weak *w);

/* An ephemeron: a pair in which the key is held weakly and the value is
 * kept alive only while the key is (a value that refers back to its own
 * key does not keep it alive, unless the value has a finalizer: what a
 * finalizable object reaches lives; see docs/api.md). Once the key is
 * unreachable, key and value read as NULL. A heap object: keep and store
 * it like any pointer. */
typedef struct gc_ephemeron gc_ephemeron;

GCHEAP_API gc_ephemeron *gc_ephemeron_new(void *key, void *value);
GCHEAP_API void *gc_ephemeron_key(const gc_ephemeron *e);
GCHEAP_API void *gc_ephemeron_value(const gc_ephemeron *e);
/* Replace the value (no effect once the key is gone). */
GCHEAP_API void gc_ephemeron_set_value(gc_ephemeron *e, void *value);

/* A weak-key hash table built on ephemerons, keyed by address: an entry
 * lives while its key is reachable from elsewhere, and its value is kept
 * alive only that long. A heap object; not thread-safe (callers that
 * share one lock it). */
typedef struct gc_weakmap gc_weakmap;

GCHEAP_API gc_weakmap *gc_weakmap_new(void);
/* The value for key, or NULL (absent, or the key is gone). */
GCHEAP_API void *gc_weakmap_get(gc_weakmap *m, const void *key);
/* Add or replace; GCHEAP_ERR_ARG if key is not a heap address. */
GCHEAP_API gc_status gc_weakmap_set(gc_weakmap *m, void *key, void *value);
/* Remove; 1 if the key was present. */
GCHEAP_API int gc_weakmap_delete(gc_weakmap *m, const void *key);
/* Entries whose keys are alive. */
GCHEAP_API size_t gc_weakmap_count(gc_weakmap *m);

/* ---- Errors and limits ------------------------------------------------- */

typedef void (*gc_error_fn)(gc_status code, const char *message, void *data);
typedef void (*gc_oom_fn)(size_t request, void *data);

/* The calling thread's last error (GCHEAP_OK after a success that reports
 * one, otherwise unchanged by successful calls). */
GCHEAP_API gc_status gc_last_error(void);
GCHEAP_API const char *gc_strerror(gc_status code);

/* Called on every error with a one-line message. NULL restores the default,
 * which prints "gcheap: <gc_strerror(code)>: <message>" on stderr. The
 * handler (and the OOM handler below) must return, not longjmp out of
 * the library: raise the program's own error when the call returns. */
GCHEAP_API void gc_set_error_handler(gc_error_fn fn, void *data);

/* Called when memory runs out (the OS refused, or the limit was hit) even
 * after an emergency collection, before gc_alloc returns NULL with
 * GCHEAP_ERR_NOMEM (whose message the error handler prints). NULL restores
 * the default, which does nothing more. */
GCHEAP_API void gc_set_oom_handler(gc_oom_fn fn, void *data);

/* Cap the bytes the heap may commit from the OS (0: no limit; the
 * default, or GCHEAP_MEMLIMIT in GOMEMLIMIT's syntax). A limit set below
 * what the heap holds refuses new memory, not the pages it holds:
 * gc_release_memory gives the free ones back. */
GCHEAP_API void gc_set_memory_limit(size_t bytes);
GCHEAP_API size_t gc_memory_limit(void);

/* Give free, committed pages back to the OS. Returns the bytes released. */
GCHEAP_API size_t gc_release_memory(void);

/* ---- Statistics -------------------------------------------------------- */

#define GCHEAP_STATS_VERSION 4

#define GCHEAP_NPHASES 4       /* phase_*_ns: the order of the comment */
#define GCHEAP_PAUSE_RING 256  /* pauses kept in pause_ring */
#define GCHEAP_PAUSE_HIST 32   /* pause_hist buckets */
#define GCHEAP_MAX_CLASSES 72  /* room for the size classes (68 today) */

/* A snapshot of the heap. New fields are only ever appended; `size` and
 * `version` tell the caller which fields were filled. */
typedef struct gc_stats {
	uint32_t version;         /* GCHEAP_STATS_VERSION of the library */
	uint32_t size;            /* bytes of this struct that were filled */
	uint64_t alloc_bytes;     /* total bytes handed out since start */
	uint64_t alloc_objects;   /* total objects handed out since start */
	uint64_t tiny_allocs;     /* objects packed by the tiny allocator */
	uint64_t large_objects;   /* live large (> 32 KiB) objects */
	uint64_t large_bytes;     /* bytes of live large objects */
	uint64_t heap_inuse;      /* bytes in spans that are in use */
	uint64_t heap_free;       /* free bytes in committed arenas */
	uint64_t spans_inuse;     /* spans in use */
	uint64_t os_reserved;     /* address space reserved for arenas */
	uint64_t os_committed;    /* bytes committed (mapped read-write) */
	uint64_t os_released;     /* committed bytes given back with madvise */
	uint64_t metadata_bytes;  /* off-heap metadata (spans, bitmaps) */
	uint64_t arenas;          /* 64 MiB arenas reserved */
	uint64_t threads;         /* attached threads (the library's
	                           * finalizer thread, when running, too) */
	uint64_t gc_cycles;       /* completed collections */
	uint64_t heap_live;       /* last cycle's marked + allocated since */
	uint64_t heap_marked;     /* bytes the last mark found live */
	uint64_t heap_goal;       /* heap_live at which the next mark ends */
	uint64_t pause_total_ns;  /* all stop-the-world pauses (each from
	                           * the stop's request to the release of
	                           * the stopped threads), gc_heap_dump's
	                           * included (outside the phases) */
	uint64_t pause_max_ns;    /* the longest one */
	uint64_t last_pause_ns;   /* the longer of the last cycle's two */
	uint64_t last_mark_ns;    /* the last cycle's mark, start to end */

	/* ---- Version 2: observability (docs/tools.md) ---- */
	uint64_t heap_alloc;      /* bytes of objects in use, as heap_objects */
	uint64_t heap_objects;    /* objects in use (a span cached by a
	                           * thread counts as full, as in Go) */
	uint64_t frees;           /* objects freed by sweep since start */
	uint64_t uptime_ns;       /* since the heap was initialised */
	/* Phases: sweep termination (pause 1), concurrent mark, mark
	 * termination (pause 2, every stop), concurrent sweep. */
	uint64_t phase_last_ns[GCHEAP_NPHASES];
	uint64_t phase_total_ns[GCHEAP_NPHASES];
	uint64_t pause_count;     /* stop-the-world pauses since start */
	/* The last GCHEAP_PAUSE_RING pauses: pause i (0-based, i <
	 * pause_count) is at pause_ring[i % GCHEAP_PAUSE_RING]. */
	uint64_t pause_ring[GCHEAP_PAUSE_RING];
	/* Pauses by length: bucket 0 under 2 us, bucket i in [2^i, 2^(i+1))
	 * us, the last one open-ended. */
	uint64_t pause_hist[GCHEAP_PAUSE_HIST];
	uint64_t assist_ns;       /* CPU time of mutator mark assists */
	uint64_t mark_worker_ns;  /* CPU time of background mark workers */
	uint64_t sweeper_ns;      /* CPU time of the background sweeper */
	uint64_t last_assist_ns;  /* the last cycle's assist CPU time */
	uint64_t last_worker_ns;  /* the last cycle's mark-worker CPU time */
	double gc_cpu_fraction;   /* (cycle pauses x ncpu + assist +
	                           * workers + sweeper) / (uptime x ncpu);
	                           * gc_heap_dump's pauses not counted */
	uint32_t ncpu;            /* CPUs online at start */
	uint32_t mark_workers;    /* background mark workers */
	/* Per size class; class 0 is large objects (one per span). */
	uint32_t nclasses;        /* entries of classes[] filled */
	uint32_t pad_;
	struct gc_class_stats {
		uint64_t size;        /* object size (0 for class 0) */
		uint64_t spans;       /* spans in use */
		uint64_t span_bytes;  /* bytes of those spans */
		uint64_t objects;     /* objects in use */
		uint64_t bytes;       /* objects x size */
		uint64_t free_bytes;  /* span_bytes - bytes: fragmentation */
		uint64_t mallocs;     /* objects handed out since start */
		uint64_t frees;       /* objects freed since start */
	} classes[GCHEAP_MAX_CLASSES];

	/* ---- Version 3: the allocation path ---- */
	/* Small allocations that wrote their pointer layout (heap bits or a
	 * type entry) or type id per object: a span's first layout, a
	 * second type in one span, type recording. The rest write nothing
	 * but the pop from the cached span. Counted per thread, added when
	 * its cache is released (at the latest after the next cycle) or it
	 * reads the stats. */
	uint64_t alloc_layout_writes;
	/* Time-to-safepoint: for each stop of the world, from asking every
	 * attached thread to stop until the last one had (a thread that
	 * runs long without a safepoint holds every pause up). */
	uint64_t stop_count;      /* stops of the world since start */
	uint64_t ttsp_total_ns;   /* summed over all of them */
	uint64_t ttsp_max_ns;     /* the longest */
	uint64_t last_ttsp_ns;    /* the last cycle's longest */
	int32_t ttsp_max_tid;     /* the thread that stopped last in the
	                           * longest (kernel tid; 0: none waited) */
	int32_t last_ttsp_tid;    /* the same for the last cycle's */
	uint64_t assist_count;    /* mark assists run (owed scan work) */
	uint64_t last_assist_count; /* those of the last cycle */
	/* Assists past the heap goal that found no grey work to help with
	 * wait for the mark instead of allocating on (docs/design.md). */
	uint64_t assist_parks;    /* such waits since start */
	uint64_t assist_park_ns;  /* their wall time, summed */

	/* ---- Version 4: generational collection (gc_set_generational) -- */
	uint64_t minor_cycles;    /* of gc_cycles, the minor marks begun */
	uint64_t cards_scanned;   /* dirty cards minor marks scanned */
	uint32_t generational;    /* 1 while minor marks are wanted */
	uint32_t last_minor;      /* 1 if the last mark was a minor one */
} gc_stats;

/* Fill `out` (of `size` bytes, normally sizeof(gc_stats)). */
GCHEAP_API gc_status gc_read_stats(gc_stats *out, size_t size);

/* ---- Observability: live export and heap dumps (docs/tools.md) ---------- */

/* Publish the stats in a shared-memory file, <dir>/<pid>, where <dir> is
 * $GCHEAP_EXPORT_DIR or /tmp/gcheap-<uid> (mode 0700, file 0600), updated
 * after every cycle and every `interval_ms` (0: 1000) by a small thread,
 * removed at exit; gcstat reads it. GCHEAP_EXPORT=1 (or =<ms>) in the
 * environment does the same at start-up. Idempotent; GCHEAP_ERR_ARG if
 * the directory is not the caller's own or not private. */
GCHEAP_API gc_status gc_export_start(unsigned interval_ms);
/* Stop exporting and remove the file. */
GCHEAP_API void gc_export_stop(void);

/* Record each small object's gc_type for heap dumps (a 16-bit id per
 * object beside the span; see docs/heapdump.md for the cost). Applies to
 * spans made from now on. On with GCHEAP_DEBUG=types=1; off by default.
 * Without it, objects of <= 512 bytes are named by size class. */
GCHEAP_API void gc_set_record_types(int on);

/* Write a heap snapshot to `path` in the format of docs/heapdump.md:
 * every allocated object (address, size, type, outgoing pointers), the
 * roots by kind, and the spans. Runs a collection first and writes with
 * the world stopped. The caller must be attached. GCHEAP_ERR_ARG (with
 * the reason) if the file cannot be written, GCHEAP_ERR_NOMEM if memory
 * to build it runs out. */
GCHEAP_API gc_status gc_heap_dump(const char *path);

/* Write the heap profile to `path` in pprof's format (a gzipped
 * profile.proto, as Go's heap profile: `go tool pprof FILE` reads it):
 * the allocation sites sampled so far, on average one per
 * GCHEAP_MEMPROFILERATE bytes allocated (default 512 KiB; 0 off, 1 every
 * allocation), with what they allocated and what of it is still in use.
 * Any thread may call it, attached or not. GCHEAP_ERR_ARG (with the
 * reason) if the file cannot be written, GCHEAP_ERR_NOMEM if the profile
 * cannot be built. */
GCHEAP_API gc_status gc_write_heap_profile(const char *path);

/* The library's version as "major.minor.patch". */
GCHEAP_API const char *gc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* GCHEAP_H */
