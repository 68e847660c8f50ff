/* runtime/types.c: the public pointer-map API; validation lives in
 * alloc/gctype.c, errors are reported here. */
#include "runtime/runtime.h"

gc_type *gc_type_new(const char *name, size_t size,
                     const size_t *ptr_offsets, size_t nptrs, unsigned flags)
{
	char err[160];
	gc_status st;
	gc_type *t = gctype_from_offsets(name, size, ptr_offsets, nptrs, flags,
	                                 &st, err, sizeof(err));

	if (!t)
		runtime_error(st, "%s", err);
	return t;
}

gc_type *gc_type_new_bitmap(const char *name, size_t size,
                            const uint64_t *ptr_bitmap, unsigned flags)
{
	char err[160];
	gc_status st;
	gc_type *t = gctype_make(name, size, ptr_bitmap, flags, &st, err,
	                         sizeof(err));

	if (!t)
		runtime_error(st, "%s", err);
	return t;
}

static bool check_type(const gc_type *t)
{
	if (!t) {
		runtime_error(GCHEAP_ERR_ARG, "type is NULL");
		return false;
	}
	if (!gctype_valid(t)) {
		runtime_error(GCHEAP_ERR_TYPE, "%p is not a gc_type",
		              (const void *)t);
		return false;
	}
	return true;
}

const char *gc_type_name(const gc_type *t)
{
	return check_type(t) ? t->name : NULL;
}

size_t gc_type_size(const gc_type *t)
{
	return check_type(t) ? t->size : 0;
}
