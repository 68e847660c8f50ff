#!/usr/bin/env bash
# tools/check-symbols.sh: check which symbols gcheap's libraries make visible.
#
# Usage: tools/check-symbols.sh <libgcheap.so> [<libgcheap.a>]
#
#  - The shared library may export (nm -D --defined-only) only symbols that
#    start with gc_, besides the few the linker adds (listed below) and, in a
#    --coverage build, those of libgcov. It must export at least one gc_
#    symbol, or the visibility attributes are broken.
#  - The static archive must define (nm -g --defined-only: T, D, B, R, W,
#    ...) exactly the gc_ symbols the shared library exports: no internal
#    global (a program that links the .a sees every global in it, and its
#    own runtime_error or mutex_init must not clash with gcheap's), and no
#    public one missing. The archive's internal symbols are made local when
#    it is built (tools/localize-objects.sh). Symbols that instrumentation
#    adds (below) are ignored. It must not call libatomic_ops (AO_*):
#    gcheap.pc requires no other package.
#
# Prints what it checked. Exits 0 if all is well, 1 on a bad symbol (each one
# is printed), 2 on a usage error or a file that cannot be read.
# Environment: NM (default nm).
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
# The gc_ symbols the shared library exports: the public API.
public=()

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
			public+=("$name")
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
	local leaks=() missing=()
	local -A defined=() api=()
	[[ -f $ar && -r $ar ]] || die "cannot read $ar"
	magic=$(head -c 7 -- "$ar")
	[[ $magic == '!<arch>' || $magic == '!<thin>' ]] ||
		die "$ar is not an ar archive"
	for name in "${public[@]}"; do
		api[$name]=1
	done
	lines=$(list_symbols -g --defined-only -- "$ar")
	while read -r member type name; do
		[[ -z ${name:-} ]] && continue
		total=$((total + 1))
		if has_prefix "$name" "${toolchain_prefixes[@]}"; then
			nignored=$((nignored + 1))
		else
			defined[$name]=1
			[[ -n ${api[$name]:-} ]] || leaks+=("$member $type $name")
		fi
	done <<<"$lines"
	for name in "${public[@]}"; do
		[[ -n ${defined[$name]:-} ]] || missing+=("$name")
	done
	# libatomic_ops is used for its inline operations only: gcheap.pc
	# names no package, which holds while the archive calls no AO_
	# function.
	mapfile -t atomic < <(list_symbols -u -- "$ar" |
		awk '$NF ~ /^AO_/ { print $NF }' | sort -u)

	echo "$ar: $total global symbols defined: $nignored toolchain," \
		"${#leaks[@]} not exported by ${so##*/}," \
		"${#missing[@]} of its ${#public[@]} gc_ symbols missing"
	if [[ ${#leaks[@]} -gt 0 ]]; then
		echo "FAIL: $ar defines globals that are not gcheap's API" \
			"(a program that links it cannot define them; make" \
			"them static, or hidden so that" \
			"tools/localize-objects.sh makes them local):"
		for line in "${leaks[@]}"; do
			echo "    $line"
		done
		status=1
	fi
	if [[ ${#atomic[@]} -gt 0 ]]; then
		echo "FAIL: $ar calls libatomic_ops (gcheap.pc would have" \
			"to require atomic_ops): ${atomic[*]}"
		status=1
	fi
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "FAIL: $ar does not define these gc_ symbols of ${so##*/}:"
		for line in "${missing[@]}"; do
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
