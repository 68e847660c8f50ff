#!/usr/bin/env bash
# tools/localize-objects.sh: make the one object file that libgcheap.a holds,
# so that a program linking the archive sees gcheap's public gc_* symbols
# and nothing else.
#
# Usage: tools/localize-objects.sh <out.o> <objcopy> <lto> <cc...> -- <in.o...>
#
# Every source is compiled with -fvisibility=hidden and the public API is
# marked default visibility (GCHEAP_API in include/gcheap.h). The objects
# are partially linked into one relocatable object (cc -r), where the calls
# between them are resolved; then objcopy --localize-hidden turns every
# hidden global (runtime_error, mutex_init, os_commit, ...) into a local
# symbol, as the linker does for the shared library.
#
# <lto> is "none", "gcc" or "clang": the build's b_lto with that compiler.
# LTO objects carry compiler IR whose symbol table objcopy cannot rewrite,
# so link-time optimisation is done here, across the whole library, and the
# output is plain machine code (gcc: -flinker-output=nolto-rel; clang does
# code generation on -r by itself). Programs built with LTO then optimise
# up to gcheap's API, not through it.
#
# Exits non-zero, with the failing command's message, if a step fails.
set -euo pipefail

if [[ $# -lt 5 ]]; then
	echo "usage: ${0##*/} <out.o> <objcopy> <lto> <cc...> -- <in.o...>" >&2
	exit 2
fi
out=$1 objcopy=$2 lto=$3
shift 3
cc=()
while [[ $# -gt 0 && $1 != -- ]]; do
	cc+=("$1")
	shift
done
[[ $# -gt 1 ]] || { echo "${0##*/}: no input objects" >&2; exit 2; }
shift

case $lto in
none) ltoflags=() ;;
gcc) ltoflags=(-flto=auto -flinker-output=nolto-rel) ;;
clang) ltoflags=(-flto) ;;
*) echo "${0##*/}: unknown lto mode '$lto'" >&2; exit 2 ;;
esac

tmp=$out.partial.o
trap 'rm -f "$tmp"' EXIT
"${cc[@]}" -r -nostdlib "${ltoflags[@]}" -o "$tmp" "$@"
"$objcopy" --localize-hidden "$tmp" "$out"
