#!/usr/bin/env bash
# tests/tools/test_profile.sh GCSTAT PROFHEAP [GO]: the heap profile and the
# dump analyses that need a known heap (tests/tools/profheap.c):
#  - with GCHEAP_MEMPROFILERATE=1 every allocation is sampled: go tool
#    pprof (when Go is installed) must read the profile, put big_site on
#    top of inuse_space with exactly its 8000 kB, count the 20000
#    allocations of garbage_site and none of them in use (sweep noticed
#    the frees), name the sites with file and line;
#  - at the default rate, big_site is still on top; at rate 0 nothing is
#    sampled; a bad rate is reported and the default kept; an unwritable
#    path is an error;
#  - gcstat profile DUMP writes, from the heap dump taken just after the
#    rate-1 profile, the same profile (pprof -raw shows no difference but
#    the time), named without the binary (-symbolize=none); a dump taken
#    at rate 0 has no profile, which gcstat says, exiting 1;
#  - gcstat dump counts the weak map's values as reachable (only the
#    ephemerons hold them) and retained by their keys;
#  - gcstat diff finds exactly what the process added between its two
#    dumps; gcstat dump --path finds the chain it built, with each field's
#    offset, and a weak map's value through its key.
set -uo pipefail
gcstat=${1:?} profheap=${2:?} go=${3:-}
tmp=$(mktemp -d /tmp/gcstat-prof.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp GOCACHE=$tmp/gocache GOFLAGS= GOTOOLCHAIN=local
export GCHEAP_DEBUG=checkmark=1,verify=1,poison=1
. "$(dirname "$0")/checklib.sh"

GCHEAP_MEMPROFILERATE=1 "$profheap" "$tmp/p1" "$tmp/d1" "$tmp/d2" ||
	{ echo "FAIL: profheap (rate 1) exit $?"; exit 1; }
"$profheap" "$tmp/pdef" "$tmp/x1" "$tmp/x2" ||
	{ echo "FAIL: profheap (default rate) exit $?"; exit 1; }
GCHEAP_MEMPROFILERATE=0 "$profheap" "$tmp/p0" "$tmp/z1" "$tmp/z2" ||
	{ echo "FAIL: profheap (rate 0) exit $?"; exit 1; }
GCHEAP_MEMPROFILERATE=4k "$profheap" "$tmp/p4k" "$tmp/x1" "$tmp/x2" ||
	{ echo "FAIL: profheap (rate 4k) exit $?"; exit 1; }

# The file is gzip (gzip -t checks the CRC) of a protobuf.
gzip -t <"$tmp/p1" 2>/dev/null && ok "profile is valid gzip" ||
	fail "profile is not valid gzip"

# gcstat profile DUMP: the profile records of d1 (a heap dump written
# right after p1, with nothing allocated or freed in between).
"$gcstat" profile "$tmp/d1" -o "$tmp/dp" &&
	[ "$(od -An -tx1 -N3 "$tmp/dp" | tr -d ' ')" = 1f8b08 ] &&
	gzip -t <"$tmp/dp" 2>/dev/null &&
	ok "gcstat profile DUMP -o: valid gzip" ||
	fail "gcstat profile DUMP did not write a gzip file"
out=$("$gcstat" profile "$tmp/d1")
[ "$out" = "$tmp/d1.pb.gz" ] && [ -s "$tmp/d1.pb.gz" ] &&
	ok "gcstat profile DUMP: wrote $out" || fail "default name: $out"
out=$("$gcstat" profile "$tmp/z1" 2>&1)
[ $? -eq 1 ] && grep -q "no heap profile (the process ran with GCHEAP_MEMPROFILERATE=0" <<<"$out" &&
	[ ! -e "$tmp/z1.pb.gz" ] &&
	ok "rate 0 dump: $out" || fail "rate 0 dump: $out"
out=$("$gcstat" profile "$tmp/p1" 2>&1)
[ $? -eq 1 ] && grep -q "is gzip, not a heap dump" <<<"$out" &&
	ok "a profile given as a dump: $out" || fail "profile of p1: $out"
out=$("$gcstat" profile "$tmp/nosuch" 2>&1)
[ $? -eq 1 ] && grep -q "is neither a pid nor a heap dump" <<<"$out" &&
	ok "no such dump: $out" || fail "profile nosuch: $out"
out=$("$gcstat" dump "$tmp/d1")
[ $? -eq 0 ] && grep -q "^heap dump of pid [0-9]* (format 1)" <<<"$out" &&
	ok "gcstat dump reads a dump with a profile" ||
	fail "gcstat dump of d1: $out"

# top TYPE FILE [pprof options]: pprof -top's rows "flat ... name".
top() {
	local idx=$1 file=$2
	shift 2
	"$go" tool pprof -top -sample_index="$idx" "$@" "$profheap" "$file" \
		2>"$tmp/pprof.err"
}
# The first function row of -top (after the header line "flat flat%").
first_row() { sed -n '/ flat%/{n;p;q}'; }
if [ -z "$go" ]; then
	echo "skip: go tool pprof (Go is not installed)"
else
	out=$(top inuse_space "$tmp/p1")
	row=$(first_row <<<"$out")
	grep -Eq '^ *8000kB .* big_site$' <<<"$row" &&
		ok "rate 1: top of inuse_space: $row" ||
		fail "rate 1 inuse_space: $out $(cat "$tmp/pprof.err")"
	out=$(top alloc_objects "$tmp/p1")
	grep -Eq '^ *20000 .* garbage_site$' <<<"$out" &&
		grep -Eq '^ *2000 .* small_site$' <<<"$out" &&
		ok "rate 1: alloc_objects 20000 garbage_site, 2000 small_site" ||
		fail "rate 1 alloc_objects: $out"
	out=$(top inuse_objects "$tmp/p1" -nodefraction=0 -show=garbage_site)
	if grep -Eq '^ *[1-9][0-9]* .* garbage_site$' <<<"$out"; then
		fail "garbage_site still in use: $out"
	else
		ok "rate 1: garbage_site's objects are not in use"
	fi
	out=$(top inuse_space "$tmp/p1" -lines)
	grep -Eq '^ *8000kB .* big_site .*profheap\.c:[0-9]+$' <<<"$out" &&
		ok "lines: $(grep big_site <<<"$out" | head -1)" ||
		fail "no line numbers: $out"
	# Without pprof's own symbolizer: the names the library wrote.
	out=$(top inuse_space "$tmp/p1" -symbolize=none)
	grep -Eq '^ *8000kB .* big_site$' <<<"$out" &&
		ok "names written by the library (dladdr)" ||
		fail "-symbolize=none: $out"
	out=$(top inuse_space "$tmp/pdef")
	row=$(first_row <<<"$out")
	grep -Eq ' big_site$' <<<"$row" &&
		ok "default rate: top of inuse_space: $row" ||
		fail "default rate: $out $(cat "$tmp/pprof.err")"
	grep -q "^Type: inuse_space" <<<"$out" &&
		ok "default sample type inuse_space" ||
		fail "default sample type: $out"
	# At 4 KiB the estimates are unbiased: big_site's 2000 objects of
	# 4096 bytes are each sampled with chance 1 - 1/e (1264 expected,
	# sd 1.7%), garbage_site's 20000 of 256 bytes with 6.1% (1212, sd
	# 2.8%); each estimate must be within 12% (over 4 sd).
	out=$(top alloc_objects "$tmp/p4k")
	for site in big_site:2000 garbage_site:20000; do
		n=$(awk -v f="${site%%:*}" '$NF == f {print $1}' <<<"$out")
		want=${site##*:}
		if [ -n "$n" ] && [ "$n" -ge $((want * 88 / 100)) ] &&
			[ "$n" -le $((want * 112 / 100)) ]; then
			ok "rate 4k: ${site%%:*} estimated $n of $want"
		else
			fail "rate 4k: ${site%%:*} estimated '$n' of $want: $out"
		fi
	done
	# The dump's profile is the live one.
	out=$(top inuse_space "$tmp/dp")
	row=$(first_row <<<"$out")
	grep -Eq '^ *8000kB .* big_site$' <<<"$row" &&
		ok "dump: top of inuse_space: $row" ||
		fail "dump inuse_space: $out $(cat "$tmp/pprof.err")"
	out=$(top alloc_objects "$tmp/dp")
	grep -Eq '^ *2000 .* small_site$' <<<"$out" &&
		grep -Eq '^ *2000 .* big_site$' <<<"$out" &&
		ok "dump: alloc_objects 2000 big_site, 2000 small_site" ||
		fail "dump alloc_objects: $out"
	out=$(top inuse_space "$tmp/dp" -symbolize=none)
	grep -Eq '^ *8000kB .* big_site$' <<<"$out" &&
		grep -Eq '^ *125kB .* small_site$' <<<"$out" &&
		ok "dump: names from its SYMBOL records" ||
		fail "dump -symbolize=none: $out"
	raw() { "$go" tool pprof -raw "$1" 2>&1 | grep -v '^Time:'; }
	d=$(diff <(raw "$tmp/p1") <(raw "$tmp/dp"))
	[ -z "$d" ] && grep -q "^Samples:" <<<"$(raw "$tmp/dp")" &&
		ok "dump: the same profile as the live one (pprof -raw)" ||
		fail "dump and live profiles differ: $d"
	out=$("$go" tool pprof -raw "$tmp/p0" 2>&1)
	grep -q "^Samples:" <<<"$out" &&
		! sed -n '/^Samples:/,/^Locations/p' <<<"$out" |
		grep -Eq '^ *[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+:' &&
		ok "rate 0: no samples" || fail "rate 0: $out"
fi

# Bad input.
out=$(GCHEAP_MEMPROFILERATE=lots "$profheap" "$tmp/pb" "$tmp/x1" \
	"$tmp/x2" 2>&1)
[ $? -eq 0 ] && grep -q "GCHEAP_MEMPROFILERATE=lots is not" <<<"$out" &&
	ok "bad rate: $out" || fail "bad rate: $out"
out=$("$profheap" "$tmp/none/p" "$tmp/x1" "$tmp/x2" 2>&1)
[ $? -eq 1 ] && grep -q "gc_write_heap_profile: cannot write" <<<"$out" &&
	ok "unwritable profile path: $out" || fail "unwritable path: $out"

# The weak map's values: reachable, and retained by their keys (each key
# 32 bytes, each value 1000 bytes in a 1024-byte slot).
dj=$("$gcstat" --json dump "$tmp/d1")
for want in '{"type": "wval", "count": 100, "bytes": 102400, "retained": 102400}' \
	'{"type": "wkey", "count": 100, "bytes": 3200, "retained": 105600}'
do
	grep -qF -- "$want" <<<"$dj" && ok "dump has $want" ||
		fail "dump lacks $want: $dj"
done
total=$(grep -o '"bytes": [0-9]*, "reachable_bytes": [0-9]*' <<<"$dj")
[ -n "$total" ] && [ "${total#*reachable_bytes\": }" = \
	"$(sed 's/"bytes": \([0-9]*\),.*/\1/' <<<"$total")" ] &&
	ok "all reachable: $total" || fail "not all reachable: $total"
# What only the collector's records keep (a finalizer's arg; the target
# of an object queued for finalization) has a root: it was unreachable.
out=$("$gcstat" --json dump --path finarg "$tmp/d1")
grep -q '"root": {"kind": "record"' <<<"$out" &&
	ok "path to a finalizer's arg" || fail "path to finarg: $out"
out=$("$gcstat" --json dump --path queuedval "$tmp/d1")
grep -q '"root": {"kind": "finq".*"type": "queuedval", "via": "field"' \
	<<<"$out" && ok "path through the finalizer queue" ||
	fail "path to queuedval: $out"

# gcstat diff: the second dump has GROW=300 more "growth" objects (48
# bytes) and one new large "bigblob" (65536 bytes), nothing else.
out=$("$gcstat" --json diff "$tmp/d1" "$tmp/d2")
for want in '"growth": [{"type": "bigblob", "objects": 1, "bytes": 65536, "retained": 65536, "objects_b": 1, "bytes_b": 65536}, {"type": "growth", "objects": 300, "bytes": 14400, "retained": 14400, "objects_b": 300, "bytes_b": 14400}]' \
	'"size": 65536, "type": "bigblob", "retained": 65536}]' \
	'"retained_growth": [{"type": "bigblob", "retained": 65536, "retained_b": 65536}, {"type": "growth", "retained": 14400, "retained_b": 14400}]}'
do
	grep -qF -- "$want" <<<"$out" && ok "diff has $want" ||
		fail "diff lacks $want: $out"
done
out=$("$gcstat" diff "$tmp/d1" "$tmp/d2")
grep -q "(+301 objects, +79936 bytes)" <<<"$out" &&
	grep -q "New large objects: 1, 64.0 KiB" <<<"$out" &&
	ok "diff text" || fail "diff text: $out"
out=$("$gcstat" --json diff "$tmp/d1" "$tmp/d1")
grep -qF '"growth": [], "new_large": [], "retained_growth": []' <<<"$out" &&
	ok "diff of a dump with itself: nothing" || fail "self diff: $out"

# gcstat dump --path: root -> holder -> (+8) holder -> (+8) target; a
# weak map's value through its key and the ephemeron.
out=$("$gcstat" --json dump --path target "$tmp/d1")
grep -Eq '"root": \{"kind": "global", "thread": 0, "where": [0-9]+\}, "steps": \[\{"addr": [0-9]+, "size": 16, "type": "holder", "via": "root"\}, \{"addr": [0-9]+, "size": 16, "type": "holder", "via": "field", "offset": 8\}, \{"addr": [0-9]+, "size": 24, "type": "target", "via": "field", "offset": 8\}\]\}' \
	<<<"$out" && ok "path to target" || fail "path to target: $out"
addr=$(grep -o '"target": [0-9]*' <<<"$out" | grep -o '[0-9]*$')
hex=$(printf '%#x' $((addr + 4)))
out2=$("$gcstat" --json dump --path "$hex" "$tmp/d1")
[ "$out2" = "$out" ] && ok "path by an interior address $hex" ||
	fail "path by address $hex: $out2"
out=$("$gcstat" dump --path wval "$tmp/d1")
grep -q "field +[0-9]*: 0x[0-9a-f]*  wkey (32 B)" <<<"$out" &&
	grep -q "value of ephemeron 0x[0-9a-f]* (key above): 0x[0-9a-f]*  wval (1024 B)" <<<"$out" &&
	ok "path through an ephemeron" || fail "path to wval: $out"
out=$("$gcstat" dump --path nosuch "$tmp/d1" 2>&1)
[ $? -eq 1 ] && grep -q "no object of type nosuch" <<<"$out" &&
	ok "path to an unknown type: $out" || fail "path nosuch: $out"
out=$("$gcstat" dump --path 0x10 "$tmp/d1" 2>&1)
[ $? -eq 1 ] && grep -q "no object at 0x10" <<<"$out" &&
	ok "path to a non-heap address: $out" || fail "path 0x10: $out"
"$gcstat" diff "$tmp/d1" >/dev/null 2>&1
[ $? -eq 2 ] && ok "diff with one dump: usage, exit 2" ||
	fail "diff with one dump: not a usage error"

[ "$fails" -eq 0 ] && echo "all ok" || echo "$fails failed"
[ "$fails" -eq 0 ]
