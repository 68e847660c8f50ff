/* tests/abi/header_alone.c: <gcheap.h> compiles on its own, included first
 * and only (twice, for the guard), as strict C11 with -pedantic -Werror and,
 * when a C++ compiler is around, as C++11. It uses size_t and uint64_t
 * without including anything else, and checks at run time that the version
 * macros match the library and that every status has a name. */
#include <gcheap.h>
#include <gcheap.h>

#ifdef __cplusplus
#define ABI_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define ABI_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#define ABI_STR(x) #x
#define ABI_XSTR(x) ABI_STR(x)

ABI_STATIC_ASSERT(GCHEAP_OK == 0, "GCHEAP_OK must be 0");
ABI_STATIC_ASSERT(GCHEAP_STATUS_COUNT > GCHEAP_ERR_ARG,
		  "GCHEAP_STATUS_COUNT must come last");
ABI_STATIC_ASSERT(GCHEAP_MAX_ALLOC > 0, "GCHEAP_MAX_ALLOC is a size_t");
ABI_STATIC_ASSERT(GCHEAP_TAIL_REPEAT != GCHEAP_TAIL_NOSCAN &&
		  GCHEAP_TAIL_NOSCAN != GCHEAP_TAIL_POINTERS,
		  "tail rules are distinct");
ABI_STATIC_ASSERT(sizeof(((gc_stats *)0)->alloc_bytes) == sizeof(uint64_t),
		  "gc_stats counters are 64-bit");

/* Every function of the API, so that a lost declaration breaks the build. */
static void (*const api[])(void) = {
	(void (*)(void))gc_init,
	(void (*)(void))gc_thread_attach,
	(void (*)(void))gc_thread_detach,
	(void (*)(void))gc_thread_is_attached,
	(void (*)(void))gc_type_new,
	(void (*)(void))gc_type_new_bitmap,
	(void (*)(void))gc_type_name,
	(void (*)(void))gc_type_size,
	(void (*)(void))gc_alloc,
	(void (*)(void))gc_alloc_array,
	(void (*)(void))gc_alloc_uninit,
	(void (*)(void))gc_size,
	(void (*)(void))gc_base,
	(void (*)(void))gc_last_error,
	(void (*)(void))gc_strerror,
	(void (*)(void))gc_set_error_handler,
	(void (*)(void))gc_set_oom_handler,
	(void (*)(void))gc_set_memory_limit,
	(void (*)(void))gc_memory_limit,
	(void (*)(void))gc_release_memory,
	(void (*)(void))gc_read_stats,
	(void (*)(void))gc_version,
	(void (*)(void))gc_realloc,
	(void (*)(void))gc_strdup,
	(void (*)(void))gc_strndup,
	(void (*)(void))gc_free,
	(void (*)(void))gc_alloc_uncollectable,
	(void (*)(void))gc_free_uncollectable,
	(void (*)(void))gc_keep_alive,
	(void (*)(void))gc_set_cycle_callback,
	(void (*)(void))gc_set_finalizer_notify,
	(void (*)(void))gc_free_os_memory,
};

static int same_string(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int main(void)
{
	static const char want[] = ABI_XSTR(GCHEAP_VERSION_MAJOR) "."
		ABI_XSTR(GCHEAP_VERSION_MINOR) "."
		ABI_XSTR(GCHEAP_VERSION_PATCH);
	const char *got = gc_version();
	size_t i;
	int code;

	for (i = 0; i < sizeof(api) / sizeof(api[0]); i++)
		if (api[i] == 0)
			return 1;
	if (got == 0 || !same_string(got, want))
		return 2; /* header and library disagree on the version */
	for (code = GCHEAP_OK; code < GCHEAP_STATUS_COUNT; code++) {
		const char *name = gc_strerror((gc_status)code);

		if (name == 0 || name[0] == '\0')
			return 3;
	}
	return 0;
}
