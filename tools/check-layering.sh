#!/usr/bin/env bash
# tools/check-layering.sh: check that every folder of gcheap includes only
# what it may.
#
# Usage: tools/check-layering.sh <source-root>
#
# Every .c and .h file under these folders is scanned; besides its own
# folder's files and the public header (include/), a file may include:
#     format/    nothing else (the on-disk and shared-memory formats)
#     measure/   nothing else (measurements bench/ and tools/ share)
#     alloc/     format/ (alloc/sys/ is alloc/'s own)
#     gc/        alloc/, format/
#     runtime/   gc/, alloc/, format/
#     tools/     format/, measure/ (gcstat is a client of the formats,
#                not of the library's internals)
#     bench/     measure/ (benchmarks use the public API only)
#     examples/  nothing else (examples use the public API only)
# So the library's layers include downward only (alloc/ < gc/ < runtime/),
# and nothing outside the library includes its internals. Headers that are
# not in the tree (the C library, libatomic_ops, check, bdwgc, the
# generated config.h) are not judged; any other file of the tree (tests/,
# ...) is out of bounds for all of these folders. tests/ itself is not
# scanned: tests reach internals by design.
#
# An include "X" is resolved the way the build resolves it: against the
# including file's directory, then the source root, then include/ (angle
# includes skip the first). Paths with ../ are normalised first, so
# "../gc/mgc.h" counts as gc/mgc.h. A quoted include that resolves to no
# file is also an error when a forbidden folder has a file of that name:
# inside alloc/, "mgc.h" or "sys/../mgc.h" is caught when gc/mgc.h exists.
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

folders=(format measure alloc gc runtime tools bench examples)
declare -A may_include=(
	[format]=''
	[measure]=''
	[alloc]='format'
	[gc]='alloc format'
	[runtime]='gc alloc format'
	[tools]='format measure'
	[bench]='measure'
	[examples]=''
)

# Sets `folder` to the checked folder of the root-relative path $1, or to
# "" (include/, tests/, a file at the top, outside the root, ...).
folder_of() {
	local d
	folder=''
	for d in "${folders[@]}"; do
		if [[ $1 == "$d"/* ]]; then
			folder=$d
			return
		fi
	done
}

# Sets `verdict` to why a file of folder $1 may not include the
# root-relative path $2, or to "" when it may.
judge() {
	local from=$1 to=$2 d
	verdict=''
	[[ $to == include/* ]] && return
	folder_of "$to"
	[[ $folder == "$from" ]] && return
	for d in ${may_include[$from]}; do
		[[ $folder == "$d" ]] && return
	done
	local allowed="$from/"
	for d in ${may_include[$from]}; do
		allowed+=", $d/"
	done
	verdict="$from/ may include only $allowed and include/"
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
all=() # every file of the checked folders, for the name match
for d in "${folders[@]}"; do
	[[ -d $d ]] || continue
	while IFS= read -r -d '' f; do
		files+=("${f#./}")
	done < <(find "$d" -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | sort -z)
	while IFS= read -r -d '' f; do
		all+=("${f#./}")
	done < <(find "$d" -type f -print0 | sort -z)
done
[[ ${#files[@]} -gt 0 ]] ||
	die "no .c or .h files under ${folders[*]/%//} of $1"

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]*)[>"]'
violations=0
report() { # file line text reason
	echo "$1:$2: $3: ${*:4}"
	violations=$((violations + 1))
}

# Checks the include of $target (kind " or <) on line $2 of file $1.
check_include() {
	local file=$1 lineno=$2 text=$3 kind=$4 target=$5
	local from dir c h found='' cands=() stripped
	folder_of "$file"
	from=$folder
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
		judge "$from" "$found"
		[[ -z $verdict ]] ||
			report "$file" "$lineno" "$text" \
				"$verdict (resolves to $found)"
		return 0
	fi

	# Nothing exists: judge by the path's own folder, when it names a
	# checked one ...
	for c in "${cands[@]}"; do
		normalize "$c"
		folder_of "$norm"
		[[ -n $folder ]] || continue
		judge "$from" "$norm"
		if [[ -n $verdict ]]; then
			report "$file" "$lineno" "$text" \
				"$verdict (names $norm)"
			return 0
		fi
	done
	# ... or, for a quoted include, by a forbidden folder's file of that
	# name (an include written without its directory, or with ../).
	[[ $kind == '"' ]] || return 0
	normalize "$target"
	stripped=$norm
	while [[ $stripped == ../* ]]; do
		stripped=${stripped#../}
	done
	[[ -n $stripped && $stripped != .. ]] || return 0
	for h in "${all[@]}"; do
		[[ $h == */"$stripped" ]] || continue
		judge "$from" "$h"
		if [[ -n $verdict ]]; then
			report "$file" "$lineno" "$text" \
				"$verdict (the name matches $h)"
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
	echo "layering: $violations forbidden include(s) in ${#files[@]}" \
		"files under $abs_root (see tools/check-layering.sh)"
	exit 1
fi
echo "layering ok (${#files[@]} files)"
