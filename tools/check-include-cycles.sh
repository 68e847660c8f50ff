#!/usr/bin/env bash
# tools/check-include-cycles.sh: check that the modules of gcheap include
# one another without a cycle.
#
# Usage: tools/check-include-cycles.sh <source-root>
#
# A module is a file name without its extension: alloc/mspan is
# alloc/mspan.c and alloc/mspan.h together. Module A depends on module B
# when a file of A includes a header of B. The folders of
# tools/check-layering.sh are scanned (format/, measure/, alloc/,
# runtime/, tools/, bench/, examples/), but for gc/, which still has one
# cycle: gc/mgc.h declares the marking primitives that gc/mfinal.c calls,
# and gc/mgc.c calls mfinal's root and ephemeron passes (untangling it
# needs the marking API and mgc_'s state in headers of their own; add gc
# here then). An include is resolved the way the build
# resolves it (against the including file's directory, then the root, then
# include/; angle includes skip the first), and only headers that exist in
# the tree count. The layering check keeps the folders in order; this one
# keeps the modules inside a folder in order, e.g. alloc/'s
#     mspan < pagealloc < mheap < mcentral < mcache
# (docs/design.md), so that each can be read, and tested, without the
# ones above it.
#
# Prints each cycle found, with the include line behind each of its steps,
# and exits 1; or prints "include cycles: none (N modules)" and exits 0.
# Exits 2 on a usage error.
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

folders=(format measure alloc runtime tools bench examples)
files=()
for d in "${folders[@]}"; do
	[[ -d $d ]] || continue
	while IFS= read -r -d '' f; do
		files+=("${f#./}")
	done < <(find "$d" -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | sort -z)
done
[[ ${#files[@]} -gt 0 ]] ||
	die "no .c or .h files under ${folders[*]/%//} of $1"

# Sets `norm` to $1 with '.', '..' and repeated '/' folded away,
# lexically; "" when it climbs out of the root.
normalize() {
	local part
	local -a parts out=()
	IFS=/ read -ra parts <<<"$1"
	for part in "${parts[@]}"; do
		case $part in
		'' | .) ;;
		..)
			if [[ ${#out[@]} -eq 0 ]]; then
				norm=''
				return
			fi
			unset 'out[-1]'
			;;
		*) out+=("$part") ;;
		esac
	done
	norm=''
	for part in "${out[@]}"; do
		norm+=${norm:+/}$part
	done
}

declare -A is_module=() # module -> 1
declare -A edges=()     # module -> space-separated modules it includes
declare -A site=()      # "A B" -> "file:line: #include ..." (the first)

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]*)[>"]'
for f in "${files[@]}"; do
	is_module[${f%.*}]=1
done
for f in "${files[@]}"; do
	from=${f%.*}
	dir=${f%/*}
	lineno=0
	while IFS= read -r line || [[ -n $line ]]; do
		lineno=$((lineno + 1))
		[[ $line == *include* ]] || continue
		line=${line%$'\r'}
		[[ $line =~ $include_re ]] || continue
		open=${BASH_REMATCH[1]}
		target=${BASH_REMATCH[2]}
		if [[ $open == '"' ]]; then
			cands=("$dir/$target" "$target" "include/$target")
		else
			cands=("$target" "include/$target")
		fi
		found=''
		for c in "${cands[@]}"; do
			normalize "$c"
			if [[ -n $norm && -f $norm ]]; then
				found=$norm
				break
			fi
		done
		[[ -n $found ]] || continue
		to=${found%.*}
		[[ $to != "$from" && -n ${is_module[$to]:-} ]] || continue
		if [[ -z ${site["$from $to"]:-} ]]; then
			edges[$from]+=" $to"
			site["$from $to"]="$f:$lineno: $line"
		fi
	done <"$f"
done

# Depth-first search; a back edge closes a cycle, printed from the stack.
declare -A color=() # unset: unvisited, 1: on the stack, 2: done
stack=()
ncycles=0

visit() {
	local m=$1 n i start
	color[$m]=1
	stack+=("$m")
	for n in ${edges[$m]:-}; do
		if [[ ${color[$n]:-} == 1 ]]; then
			ncycles=$((ncycles + 1))
			for ((i = 0; i < ${#stack[@]}; i++)); do
				[[ ${stack[i]} == "$n" ]] && start=$i
			done
			local path=""
			for ((i = start; i < ${#stack[@]}; i++)); do
				path+="${stack[i]} -> "
			done
			echo "include cycle: $path$n"
			for ((i = start; i < ${#stack[@]}; i++)); do
				local next=$n
				((i + 1 < ${#stack[@]})) && next=${stack[i + 1]}
				echo "    ${site["${stack[i]} $next"]}"
			done
		elif [[ -z ${color[$n]:-} ]]; then
			visit "$n"
		fi
	done
	unset 'stack[-1]'
	color[$m]=2
}

mapfile -t modules < <(printf '%s\n' "${!is_module[@]}" | sort)
for m in "${modules[@]}"; do
	[[ -n ${color[$m]:-} ]] || visit "$m"
done

if [[ $ncycles -gt 0 ]]; then
	echo "include cycles: $ncycles found among ${#modules[@]} modules" \
		"under $(pwd -P) (see tools/check-include-cycles.sh)"
	exit 1
fi
echo "include cycles: none (${#modules[@]} modules)"
