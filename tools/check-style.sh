#!/usr/bin/env bash
# tools/check-style.sh <source-root>: the mechanical part of gcheap's style
# (docs/design.md, .clang-format): every C source and header under the
# project's folders opens with a comment saying what it owns, and no line is
# longer than 80 columns (tabs count as 8). Prints each offence as
# file:line and exits 1 if there is any.
set -euo pipefail
root=${1:?usage: check-style.sh <source-root>}
cd "$root"

bad=0
n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	if ! head -c 2 "$f" | grep -q '^/\*'; then
		echo "$f:1: the file does not open with a comment"
		bad=1
	fi
	if ! out=$(expand -t 8 "$f" | awk -v f="$f" \
		'length($0) > 80 { printf "%s:%d: %d columns\n", f, NR, length($0) }') ||
	   [ -n "$out" ]; then
		echo "$out"
		bad=1
	fi
done < <(find include format alloc gc runtime tools tests bench examples \
	-path tests/abi/layering-fixture -prune -o \
	\( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null)
[ "$bad" -eq 0 ] && echo "style ok ($n files)"
exit "$bad"
