#!/usr/bin/env bash
# tools/check-internal-alloc.sh <source-root>: the library allocates its own
# heap objects only through runtime_new / runtime_new_array, which hold the
# new object in the thread's held slots (runtime/runtime.h, docs/design.md
# "The library's own allocations"). A gc_alloc or gc_alloc_array call in
# alloc/, gc/ or runtime/ outside runtime/malloc.c (where both are defined)
# is an object held only in a C local: printed as file:line, exit 1.
# runtime/mprof.c is the other exception: its gc_alloc is the program's own
# allocation, sampled by the heap profiler, and goes straight back to it.
set -euo pipefail
root=${1:?usage: check-internal-alloc.sh <source-root>}
cd "$root"

bad=0
n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	[ "$f" = runtime/malloc.c ] || [ "$f" = runtime/mprof.c ] && continue
	# Comment lines (" * ...", "/* ...") may name the call.
	if out=$(grep -nE '\bgc_alloc(_array)?[[:space:]]*\(' "$f" |
		grep -vE '^[0-9]+:[[:space:]]*(/\*|\*)'); then
		sed "s|^|$f:|" <<<"$out"
		bad=1
	fi
done < <(find alloc gc runtime \( -name '*.c' -o -name '*.h' \) -print0 \
	2>/dev/null)
[ "$bad" -eq 0 ] && echo "internal allocations ok ($n files)"
exit "$bad"
