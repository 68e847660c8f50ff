#!/usr/bin/env bash
# tools/check-getenv.sh <source-root>: the library reads its environment in
# one place, runtime/options.c, into the one options struct
# (alloc/sys/options.h), so that every variable is parsed, checked and
# documented once and read at one moment (initialisation). A getenv or
# secure_getenv call, or a use of environ, in alloc/, gc/ or runtime/
# outside runtime/options.c is printed as file:line, exit 1.
set -euo pipefail
root=${1:?usage: check-getenv.sh <source-root>}
cd "$root"

bad=0
n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	[ "$f" = runtime/options.c ] && continue
	# Comment lines (" * ...", "/* ...") may name the call.
	if out=$(grep -nE '\b(secure_)?getenv[[:space:]]*\(|\b__?environ\b' \
		"$f" | grep -vE '^[0-9]+:[[:space:]]*(/\*|\*)'); then
		sed "s|^|$f:|" <<<"$out"
		bad=1
	fi
done < <(find alloc gc runtime \( -name '*.c' -o -name '*.h' \) -print0 \
	2>/dev/null)
[ "$bad" -eq 0 ] && echo "environment reads ok ($n files)"
exit "$bad"
