#!/bin/sh
# tools/check-sizeclasses.sh: the sizeclasses-regen test. Regenerates the
# size-class tables with the mksizeclasses binary and diffs them against the
# checked-in alloc/sizeclasses.c; any difference (or a generator failure)
# fails the test, so the checked-in file always matches the generator.
#
# Usage: check-sizeclasses.sh <mksizeclasses> <alloc/sizeclasses.c>
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 <mksizeclasses> <alloc/sizeclasses.c>" >&2
	exit 2
fi
gen=$1
checked_in=$2

tmp=$(mktemp "${TMPDIR:-/tmp}/sizeclasses.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

if ! "$gen" "$tmp"; then
	echo "$0: $gen failed" >&2
	exit 1
fi
if ! diff -u "$checked_in" "$tmp"; then
	echo "$0: $checked_in is stale; regenerate it with" >&2
	echo "    $gen $checked_in" >&2
	exit 1
fi
echo "$checked_in matches $gen"
