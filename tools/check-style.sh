#!/usr/bin/env bash
# tools/check-style.sh <source-root>: the mechanical part of gcheap's style
# (docs/design.md, .clang-format): every C source and header under the
# project's folders opens with a comment saying what it owns, and no line is
# longer than 80 columns (tabs count as 8). Prints each offence as
# file:line and exits 1 if there is any.
#
# One awk reads every file (a few processes in all, not a few per file:
# the test stays fast on a loaded machine). Columns are counted in bytes,
# as expand(1) does.
set -euo pipefail
root=${1:?usage: check-style.sh <source-root>}
cd "$root"

files=()
while IFS= read -r -d '' f; do
	files+=("$f")
done < <(find include format measure alloc gc runtime tools tests bench \
	examples \
	-path tests/abi/layering-fixture -prune -o \
	\( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null)

out=''
for f in "${files[@]}"; do
	# awk sees no first line in an empty file.
	[[ -s $f ]] || out+="$f:1: the file does not open with a comment"$'\n'
done
if [[ ${#files[@]} -gt 0 ]]; then
	out+=$(LC_ALL=C awk '
	FNR == 1 && substr($0, 1, 2) != "/*" {
		printf "%s:1: the file does not open with a comment\n", FILENAME
	}
	{
		w = 0
		m = split($0, seg, "\t")
		for (i = 1; i <= m; i++) {
			w += length(seg[i])
			if (i < m)
				w = int(w / 8) * 8 + 8
		}
		if (w > 80)
			printf "%s:%d: %d columns\n", FILENAME, FNR, w
	}' "${files[@]}")
fi
if [[ -n $out ]]; then
	printf '%s\n' "${out%$'\n'}"
	exit 1
fi
echo "style ok (${#files[@]} files)"
