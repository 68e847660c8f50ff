#!/usr/bin/env bash
# tools/check-layering.sh: check that gcheap's layers include downward only.
#
# Usage: tools/check-layering.sh <source-root>
#
# The layers, bottom to top: alloc/ (with alloc/sys/), gc/, runtime/. Every
# .c and .h file under them is scanned; a file may include headers of its
# own layer and of the layers below it, plus the public header (include/)
# and the generated config.h, but nothing from a higher layer:
#     alloc/ may not include gc/ or runtime/ headers;
#     gc/ may not include runtime/ headers.
# An include "X" is resolved the way the build resolves it: against the
# including file's directory, then the source root, then include/ (angle
# includes skip the first). Paths with ../ are normalised first, so
# "../gc/mgc.h" counts as gc/mgc.h. A quoted include that resolves to no
# file is also an error when a higher layer has a file of that name: inside
# alloc/, "mgc.h" or "sys/../mgc.h" is caught when gc/mgc.h exists.
#
# Prints each offending include as file:line and exits 1, or prints
# "layering ok (N files)" and exits 0. Exits 2 on a usage error.
set -euo pipefail

prog=${0##*/}
die() {
	echo "$prog: error: $*" >&2
	exit 2
}

if [[ $# -ne 1 ]]; then
	echo "usage: $prog <source-root>" >&2
	exit 2
fi
[[ -d $1 ]] || die "$1 is not a directory"
cd "$1"
abs_root=$(pwd -P)

layers=(alloc gc runtime)

# Sets `rank` to the layer of the root-relative path $1: 0 alloc, 1 gc,
# 2 runtime, -1 anything else (include/, config.h, outside the root, ...).
layer_of() {
	local i
	rank=-1
	for i in "${!layers[@]}"; do
		if [[ $1 == "${layers[i]}"/* ]]; then
			rank=$i
			return
		fi
	done
}

# Sets `norm` to $1 with '.', '..' and repeated '/' folded away, lexically
# (symlinks are not followed). A path that climbs out of the root keeps its
# leading "../" parts.
normalize() {
	local part
	local -a parts out=()
	IFS=/ read -ra parts <<<"$1"
	for part in "${parts[@]}"; do
		case $part in
		'' | .) ;;
		..)
			if [[ ${#out[@]} -gt 0 && ${out[-1]} != .. ]]; then
				unset 'out[-1]'
			else
				out+=(..)
			fi
			;;
		*) out+=("$part") ;;
		esac
	done
	norm=''
	for part in "${out[@]}"; do
		norm+=${norm:+/}$part
	done
}

files=()
higher=() # every file of gc/ and runtime/, for the name match
for d in "${layers[@]}"; do
	[[ -d $d ]] || continue
	while IFS= read -r -d '' f; do
		files+=("${f#./}")
	done < <(find "$d" -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | sort -z)
	[[ $d == alloc ]] && continue
	while IFS= read -r -d '' f; do
		higher+=("${f#./}")
	done < <(find "$d" -type f -print0 | sort -z)
done
[[ ${#files[@]} -gt 0 ]] ||
	die "no .c or .h files under alloc/, gc/ or runtime/ of $1"

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]*)[>"]'
violations=0
report() { # file line text reason
	echo "$1:$2: $3: ${*:4}"
	violations=$((violations + 1))
}

# Checks the include of $target (kind " or <) on line $2 of file $1.
check_include() {
	local file=$1 lineno=$2 text=$3 kind=$4 target=$5
	local frank dir c h found='' cands=() stripped
	layer_of "$file"
	frank=$rank
	dir=${file%/*}

	if [[ $target == /* ]]; then
		# An absolute path: only one inside the root matters.
		[[ $target == "$abs_root"/* ]] || return 0
		cands=("${target#"$abs_root"/}")
	elif [[ $kind == '"' ]]; then
		cands=("$dir/$target" "$target" "include/$target")
	else
		cands=("$target" "include/$target")
	fi
	if [[ $target == *../* ]]; then
		echo "$file:$lineno: warning: $text: use a path from the" \
			"top of the tree, not ../" >&2
	fi

	# The first candidate that exists is what the compiler takes.
	for c in "${cands[@]}"; do
		normalize "$c"
		[[ $norm == .. || $norm == ../* ]] && continue
		if [[ -f $norm ]]; then
			found=$norm
			break
		fi
	done
	if [[ -n $found ]]; then
		layer_of "$found"
		if ((rank > frank)); then
			report "$file" "$lineno" "$text" \
				"${layers[frank]}/ may not include" \
				"${layers[rank]}/ headers (resolves to $found)"
		fi
		return 0
	fi

	# Nothing exists: judge by the path's own layer ...
	for c in "${cands[@]}"; do
		normalize "$c"
		layer_of "$norm"
		if ((rank > frank)); then
			report "$file" "$lineno" "$text" \
				"${layers[frank]}/ may not include" \
				"${layers[rank]}/ headers (names $norm)"
			return 0
		fi
	done
	# ... or, for a quoted include, by a higher layer's file of that name
	# (an include written without its directory, or with ../).
	[[ $kind == '"' ]] || return 0
	normalize "$target"
	stripped=$norm
	while [[ $stripped == ../* ]]; do
		stripped=${stripped#../}
	done
	[[ -n $stripped && $stripped != .. ]] || return 0
	for h in "${higher[@]}"; do
		[[ $h == */"$stripped" ]] || continue
		layer_of "$h"
		if ((rank > frank)); then
			report "$file" "$lineno" "$text" \
				"${layers[frank]}/ may not include" \
				"${layers[rank]}/ headers (the name matches $h)"
			return 0
		fi
	done
}

# shellcheck disable=SC2094 # check_include only reads "$f" (by name).
for f in "${files[@]}"; do
	lineno=0
	while IFS= read -r line || [[ -n $line ]]; do
		lineno=$((lineno + 1))
		[[ $line == *include* ]] || continue
		line=${line%$'\r'}
		[[ $line =~ $include_re ]] || continue
		open=${BASH_REMATCH[1]}
		target=${BASH_REMATCH[2]}
		close='"'
		[[ $open == '<' ]] && close='>'
		check_include "$f" "$lineno" "#include $open$target$close" \
			"$open" "$target"
	done <"$f"
done

if [[ $violations -gt 0 ]]; then
	echo "layering: $violations upward include(s) in ${#files[@]} files" \
		"under $abs_root (alloc/ < gc/ < runtime/)"
	exit 1
fi
echo "layering ok (${#files[@]} files)"
