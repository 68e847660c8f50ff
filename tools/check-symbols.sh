#!/usr/bin/env bash
# tools/check-symbols.sh: check which symbols gcheap's libraries make visible.
#
# Usage: tools/check-symbols.sh <libgcheap.so> [<libgcheap.a>]
#
#  - The shared library may export (nm -D --defined-only) only symbols that
#    start with gc_, besides the few the linker adds (listed below) and, in a
#    --coverage build, those of libgcov. It must export at least one gc_
#    symbol, or the visibility attributes are broken.
#  - Every defined global symbol of the static archive (nm -g --defined-only:
#    T, D, B, R, W, ...) must start with gc_ or with one of the internal
#    prefixes listed in internal-prefixes.txt next to this script: those
#    symbols are hidden in the .so, but a program that links the .a sees
#    them all and must not clash with them.
#
# Prints what it checked. Exits 0 if all is well, 1 on a bad symbol (each one
# is printed), 2 on a usage error or a file that cannot be read.
# Environment: NM (default nm); GCHEAP_INTERNAL_PREFIXES (another prefix
# file, default tools/internal-prefixes.txt).
set -euo pipefail

prog=${0##*/}
die() {
	echo "$prog: error: $*" >&2
	exit 2
}

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $prog <libgcheap.so> [<libgcheap.a>]" >&2
	exit 2
fi
so=$1
ar=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix_file=${GCHEAP_INTERNAL_PREFIXES:-$here/internal-prefixes.txt}
nm=${NM:-nm}
command -v "$nm" >/dev/null || die "$nm not found"

# Symbols the linker may define in any shared object (older binutils export
# some of them; other targets add the __*__ spellings).
linker_symbols=(
	_init _fini
	__bss_start __bss_start__ __bss_end__ _bss_end__
	_edata __edata _end __end__ end
	_DYNAMIC _GLOBAL_OFFSET_TABLE_ _PROCEDURE_LINKAGE_TABLE_
)
# Symbols that instrumentation puts in the library itself: libgcov
# (--coverage) exports __gcov_* and mangle_path (the latter only accepted
# when __gcov_* symbols are present); ASan defines a global __odr_asan.<var>
# in each object for every global variable (seen in the .a only).
toolchain_prefixes=(__gcov_ __odr_asan)
gcov_only_symbols=(mangle_path)

in_list() {
	local x=$1 y
	shift
	for y in "$@"; do
		[[ $x == "$y" ]] && return 0
	done
	return 1
}

has_prefix() {
	local x=$1 p
	shift
	for p in "$@"; do
		[[ $x == "$p"* ]] && return 0
	done
	return 1
}

# The internal prefixes: one per line, '#' comments and blank lines skipped.
internal_prefixes=(gc_)
load_prefixes() {
	local line n=0
	[[ -r $prefix_file ]] || die "cannot read $prefix_file"
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%%#*}
		line=${line#"${line%%[![:space:]]*}"}
		line=${line%"${line##*[![:space:]]}"}
		n=$((n + 1))
		[[ -z $line ]] && continue
		[[ $line =~ ^[A-Za-z_.$][A-Za-z0-9_.$]*$ ]] ||
			die "$prefix_file:$n: not a symbol prefix: '$line'"
		internal_prefixes+=("$line")
	done <"$prefix_file"
}

# Prints "<type> <name>" of each defined symbol nm lists, one a line; with
# an archive, "<member>: <type> <name>". Symbol versions (@VER) are cut off.
list_symbols() {
	local out
	if ! out=$("$nm" "$@" 2>&1); then
		die "$nm $* failed: $out"
	fi
	awk '
		/^$/ { next }
		/:$/ { member = substr($0, 1, length($0) - 1); next }
		NF >= 2 {
			name = $NF; type = $(NF - 1)
			sub(/@.*/, "", name)
			if (member != "")
				print member ": " type " " name
			else
				print type " " name
		}' <<<"$out"
}

is_elf() {
	[[ $(head -c 4 -- "$1" | od -An -c | tr -d ' ') == '177ELF' ]]
}

status=0

check_shared() {
	local lines line type name gcov=0 total=0 ngc=0 nignored=0
	local bad=()
	[[ -f $so && -r $so ]] || die "cannot read $so"
	is_elf "$so" || die "$so is not an ELF file"
	lines=$(list_symbols -D --defined-only -- "$so")
	grep -q ' __gcov_' <<<"$lines" && gcov=1
	while read -r type name; do
		[[ -z ${name:-} ]] && continue
		total=$((total + 1))
		if [[ $name == gc_* ]]; then
			ngc=$((ngc + 1))
		elif in_list "$name" "${linker_symbols[@]}" ||
			has_prefix "$name" "${toolchain_prefixes[@]}" ||
			{ [[ $gcov == 1 ]] &&
				in_list "$name" "${gcov_only_symbols[@]}"; } ||
			{ [[ $type == A && $name == GCHEAP_* ]]; }; then
			# GCHEAP_* of type A: version nodes of a version script.
			nignored=$((nignored + 1))
		else
			bad+=("$type $name")
		fi
	done <<<"$lines"

	echo "$so: $total dynamic symbols defined: $ngc gc_*," \
		"$nignored linker/toolchain, ${#bad[@]} other"
	if [[ ${#bad[@]} -gt 0 ]]; then
		echo "FAIL: $so exports symbols that do not start with gc_:"
		for line in "${bad[@]}"; do
			echo "    $line"
		done
		status=1
	fi
	if [[ $ngc -eq 0 ]]; then
		echo "FAIL: $so exports no gc_ symbol at all" \
			"(are GCHEAP_API / visibility attributes lost?)"
		status=1
	fi
}

check_static() {
	local lines line member type name total=0 nignored=0 magic
	local bad=()
	[[ -f $ar && -r $ar ]] || die "cannot read $ar"
	magic=$(head -c 7 -- "$ar")
	[[ $magic == '!<arch>' || $magic == '!<thin>' ]] ||
		die "$ar is not an ar archive"
	load_prefixes
	lines=$(list_symbols -g --defined-only -- "$ar")
	while read -r member type name; do
		[[ -z ${name:-} ]] && continue
		total=$((total + 1))
		if has_prefix "$name" "${internal_prefixes[@]}"; then
			:
		elif has_prefix "$name" "${toolchain_prefixes[@]}"; then
			nignored=$((nignored + 1))
		else
			bad+=("$member $type $name")
		fi
	done <<<"$lines"

	echo "$ar: $total global symbols defined," \
		"${#internal_prefixes[@]} accepted prefixes" \
		"(gc_ + $prefix_file), $nignored toolchain, ${#bad[@]} other"
	if [[ ${#bad[@]} -gt 0 ]]; then
		echo "FAIL: $ar defines globals with no agreed prefix" \
			"(make them static, rename them, or extend" \
			"${prefix_file##*/}):"
		for line in "${bad[@]}"; do
			echo "    $line"
		done
		status=1
	fi
}

check_shared
if [[ -n $ar ]]; then
	check_static
fi
if [[ $status -eq 0 ]]; then
	echo "symbols ok"
fi
exit "$status"
