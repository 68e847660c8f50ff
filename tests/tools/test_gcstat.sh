#!/usr/bin/env bash
# tests/tools/test_gcstat.sh GCSTAT KNOWNHEAP FUZZ_DUMP: gcstat against a
# live process that builds a known heap (tests/tools/knownheap.c): the
# listing, the summary and its JSON, intervals, the dump analysis (types,
# retained sizes by root), the plots; the export file's permissions, its
# removal at exit and the cleaning of stale files; and bad input: a
# missing pid, a process that does not export, a file of another user, a
# directory that is not private, and a corpus of truncated and corrupt
# dumps, each of which must give one line on stderr and exit status 1
# (never a crash), also through the fuzz driver.
set -uo pipefail
gcstat=${1:?} knownheap=${2:?} fuzz=${3:?}
tmp=$(mktemp -d /tmp/gcstat-test.XXXXXX)
export GCHEAP_EXPORT_DIR=$tmp/exp
kpid=
cleanup() {
	[ -n "$kpid" ] && touch "$tmp/ready.stop" && wait "$kpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/checklib.sh"


# The library refuses a directory that is not private.
mkdir -m 755 "$tmp/open"
out=$(GCHEAP_EXPORT_DIR=$tmp/open "$knownheap" "$tmp/x" "$tmp/y" 2>&1)
rc=$?
[ "$rc" -ne 0 ] && grep -q "is not private" <<<"$out" &&
	ok "export refuses a 755 directory: $out" ||
	fail "export into a 755 directory: exit $rc: $out"

# A stale file of a dead process is removed by the next process that
# exports; a file that merely has a dead pid's name is not (it was).
mkdir -m 700 "$tmp/exp"
true &
dead0=$!
wait "$dead0"
true &
dead1=$!
wait "$dead1"
{ printf 'GHAPEXP1'; head -c 400 /dev/zero; } >"$tmp/exp/$dead0"
echo "the user's own data" >"$tmp/exp/$dead1"

"$knownheap" "$tmp/dump" "$tmp/ready" &
kpid=$!
for _ in $(seq 200); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
[ -s "$tmp/ready" ] || { echo "FAIL: knownheap did not start"; exit 1; }
pid=$(cat "$tmp/ready")

[ ! -e "$tmp/exp/$dead0" ] && ok "stale file removed by the exporter" ||
	fail "stale file $dead0 left by the exporter"
[ -e "$tmp/exp/$dead1" ] && ok "a file that is no export file stays" ||
	fail "file $dead1, no export file, removed by the exporter"
rm -f "$tmp/exp/$dead1"

# Permissions.
[ "$(stat -c %a "$tmp/exp")" = 700 ] && ok "directory mode 700" ||
	fail "directory mode $(stat -c %a "$tmp/exp")"
[ "$(stat -c %a "$tmp/exp/$pid")" = 600 ] && ok "file mode 600" ||
	fail "file mode $(stat -c %a "$tmp/exp/$pid")"

# The listing and the summary.
"$gcstat" | grep -Eq "^ *$pid +knownheap " && ok "listed" ||
	fail "gcstat does not list $pid: $("$gcstat" 2>&1)"
sum=$("$gcstat" "$pid")
grep -q "in 1103 objects" <<<"$sum" && ok "summary: 1103 objects" ||
	fail "summary: $sum"
json=$("$gcstat" --json "$pid")
for want in '"heap_objects": 1103' '"frees": 2000' \
	'"size": 24, "spans": [0-9]*, "span_bytes": [0-9]*, "objects": 1000,' \
	'"size": 48, "spans": [0-9]*, "span_bytes": [0-9]*, "objects": 101,' \
	'"class": 0, "size": 0, "spans": 2, "span_bytes": 98304, "objects": 2,'
do
	grep -q -- "$want" <<<"$json" && ok "json has $want" ||
		fail "json lacks $want: $json"
done
rows=$("$gcstat" -i 100ms -n 3 "$pid" | grep -c ' KiB ')
[ "$rows" -eq 3 ] && ok "3 interval rows" || fail "interval rows: $rows"
nd=$("$gcstat" --json -i 50ms -n 2 "$pid" | grep -c '"heap_objects": 1103')
[ "$nd" -eq 2 ] && ok "json interval rows" || fail "json rows: $nd"

# On a terminal, -i redraws the summary (script(1), from the essential
# bsdutils, gives it one).
scr=$(script -qc "$gcstat -i 50ms -n 2 $pid" /dev/null)
[ "$(grep -c $'\e\[H\e\[2J' <<<"$scr")" -eq 2 ] &&
	grep -q "in 1103 objects" <<<"$scr" && ok "terminal redraw" ||
	fail "terminal redraw: $scr"

# The dump: the numbers knownheap built.
dj=$("$gcstat" --json dump "$tmp/dump")
for want in '"objects": 1103' \
	'{"type": "cell", "count": 1000, "bytes": 24000, "retained": 24000}' \
	'{"type": "leaf", "count": 101, "bytes": 4848, "retained": 4848}' \
	'{"type": "bigvec", "count": 1, "bytes": 40960, "retained": 45760}' \
	'{"kind": "global", "roots": 1, "retained": 24000}' \
	'{"type": "blob", "count": 1, "bytes": 57344, "retained": 57344}' \
	'{"kind": "frame", "roots": 2, "retained": 103104}'
do
	grep -qF -- "$want" <<<"$dj" && ok "dump has $want" ||
		fail "dump lacks $want: $dj"
done
"$gcstat" dump --top 2 "$tmp/dump" | grep -q "By type (top 2 of 4" &&
	ok "dump --top" || fail "dump --top"

# The small things: --help on stdout, --version, -i without an interval,
# the first -i row covers the time since start.
out=$("$gcstat" --help 2>"$tmp/err")
[ $? -eq 0 ] && grep -q "^usage: gcstat" <<<"$out" && [ ! -s "$tmp/err" ] &&
	ok "--help on stdout, exit 0" || fail "--help: $out / $(cat "$tmp/err")"
out=$("$gcstat" --version)
[ $? -eq 0 ] && grep -Eq "^gcstat [0-9]+\.[0-9]+\.[0-9]+ .*heap dump format 1" \
	<<<"$out" && ok "--version: $out" || fail "--version: $out"
out=$("$gcstat" -i "$pid" -n 1)
[ $? -eq 0 ] && [ "$(grep -c ' KiB ' <<<"$out")" -eq 1 ] &&
	ok "-i PID (default interval)" || fail "-i PID: $out"
out=$("$gcstat" -i 50ms "$pid" -n 1)
[ $? -eq 0 ] && [ "$(grep -c ' KiB ' <<<"$out")" -eq 1 ] &&
	ok "-i 50ms PID -n 1" || fail "-i 50ms PID -n 1: $out"
row=$("$gcstat" --json -i 50ms -n 1 "$pid")
st=$("$gcstat" --json "$pid")
pc=$(grep -o '"pause_count": [0-9]*' <<<"$st" | grep -o '[0-9]*$')
if grep -q '"alloc_rate": 0,' <<<"$row" ||
	! grep -q "\"pauses\": $pc," <<<"$row"; then
	fail "first -i row is not since start ($pc pauses): $row"
else
	ok "first -i row: rate and pauses since start"
fi
expect_usage "plot without arguments" "" "$gcstat" plot
expect_usage "plot of an unknown picture" "" "$gcstat" plot bogus x
expect_usage "plot live of a non-pid" "" "$gcstat" plot live bogus
expect_usage "plot with an unknown option" "" "$gcstat" plot trace x -q
expect_usage "an unknown option" "" "$gcstat" -q

# Plots.
"$gcstat" plot heapmap "$tmp/dump" -o "$tmp/map.svg" &&
	grep -q "<svg" "$tmp/map.svg" && grep -q "class 3 (24 B)" \
	"$tmp/map.svg" && ok "heap map" || fail "heap map"
"$gcstat" plot live "$pid" -d 200ms -i 50ms -o "$tmp/live.svg" &&
	grep -q "polyline" "$tmp/live.svg" && ok "live plot" ||
	fail "live plot"
# Its "in use" line is what `gcstat PID` calls heap in use (not heap_live),
# and it draws only the pauses that happened while it sampled: knownheap is
# idle, so none (the pauses before sampling began were all drawn on the
# first sample).
inuse=$("$gcstat" "$pid" | sed -n 's/^ *heap in use *\([0-9.]* [KMG]*i*B\) in.*/\1/p')
grep -q "<title>in use (spans), last $inuse</title>" "$tmp/live.svg" &&
	ok "live plot: in use $inuse" ||
	fail "live plot: no in-use line of $inuse: $(grep -o '<title>[^<]*' "$tmp/live.svg")"
grep -q "<title>heap_live, last" "$tmp/live.svg" && ok "live plot: heap_live" ||
	fail "live plot: no heap_live line"
pc2=$("$gcstat" --json "$pid" | grep -o '"pause_count": [0-9]*' |
	grep -o '[0-9]*$')
ticks=$(grep -c "<title>pause " "$tmp/live.svg")
[ "$pc2" -eq "$pc" ] && [ "$ticks" -eq 0 ] &&
	grep -q "($pc before the" "$tmp/live.svg" &&
	ok "live plot: no pause from before sampling ($pc)" ||
	fail "live plot: $ticks pauses drawn, $pc -> $pc2 happened"
printf 'noise\ngcheap: gc 1 @0.100s 1%%: 0.010+0.500+0.020 ms clock, 0.010+0.000/0.400+0.020 ms cpu, 1.000->1.200->0.600 MB, 4.194 MB goal, 1 workers\ngcheap: gc 2 @0.300s 1%%: 0.010+0.500+0.020 ms clock, 0.010+0.000/0.400+0.020 ms cpu, 4.100->4.300->0.700 MB, 4.194 MB goal, 1 workers\n' >"$tmp/trace"
"$gcstat" plot trace "$tmp/trace" -o "$tmp/trace.svg" 2>"$tmp/err" &&
	grep -q "plotted 2 cycles" "$tmp/err" && ok "trace plot" ||
	fail "trace plot: $(cat "$tmp/err")"

# Bad input.
expect_error "missing pid" "no process with pid" "$gcstat" 999999999
# A process without gcheap (this shell ignores SIGURG) does not answer.
expect_error "not gcheap" "does not answer" "$gcstat" $$
[ ! -e "$tmp/exp/$$.request" ] && ok "unanswered request removed" ||
	fail "unanswered request left"
expect_error "not a pid" "neither a pid" "$gcstat" bogus
expect_error "missing dump" "No such file" "$gcstat" dump "$tmp/none"
# Not a dump: refused at its header, not read whole first (it was, until
# memory ran out). 1 GiB of zeros through a pipe: gcstat must leave it
# unread (head dies of SIGPIPE) and say why.
rm -f "$tmp/fed"
out=$( { head -c 1073741824 /dev/zero && echo whole >"$tmp/fed"; } |
	"$gcstat" dump /dev/stdin 2>&1 >/dev/null)
rc=$?
if [ "$rc" -eq 1 ] && grep -q "bad magic" <<<"$out" && [ ! -e "$tmp/fed" ]
then
	ok "endless input refused at its header: $out"
else
	fail "endless input: exit $rc, $(cat "$tmp/fed" 2>/dev/null): $out"
fi
expect_error "--top past a long" "bad --top 99999999999999999999999" \
	"$gcstat" dump --top 99999999999999999999999 "$tmp/none"
expect_error "junk after --top" "bad --top 2abc" "$gcstat" dump --top 2abc \
	"$tmp/dump"
expect_error "junk after -n" "bad count 3x" "$gcstat" -n 3x "$pid"
expect_error "no trace lines" "no gctrace lines" "$gcstat" plot trace \
	"$tmp/exp/$pid"
if [ "$(id -u)" -eq 0 ]; then
	cp "$tmp/exp/$pid" "$tmp/exp/$$" && chown 65534 "$tmp/exp/$$"
	expect_error "another user's file" "belongs to uid 65534" \
		"$gcstat" $$
	rm -f "$tmp/exp/$$"
else
	echo "skip: another user's file (needs root to make one)"
fi
chmod 755 "$tmp/exp"
expect_error "directory not private" "not private" "$gcstat" "$pid"
chmod 700 "$tmp/exp"

# A stale file (a dead pid) is cleaned by the listing.
true &
dead=$!
wait "$dead"
cp "$tmp/exp/$pid" "$tmp/exp/$dead"
: > "$tmp/exp/$dead.lock"   # a request's lock, left by gcstat
: > "$tmp/exp/$pid.lock"    # a live process's: stays
"$gcstat" >/dev/null
[ ! -e "$tmp/exp/$dead" ] && ok "stale file removed" ||
	fail "stale file $dead left"
[ ! -e "$tmp/exp/$dead.lock" ] && ok "dead pid's lock file removed" ||
	fail "lock file $dead.lock left"
[ -e "$tmp/exp/$pid.lock" ] && ok "live pid's lock file kept" ||
	fail "lock file $pid.lock of a live process removed"

# A file whose pid is alive but was reused (another start time): stale.
cp "$tmp/exp/$pid" "$tmp/exp/$$"
expect_error "reused pid" "is gone" "$gcstat" $$
[ ! -e "$tmp/exp/$$" ] && ok "reused-pid file removed" ||
	fail "reused-pid file left"

# Corrupt dumps: truncations, flipped bytes, another version, garbage.
mkdir "$tmp/corpus"
size=$(stat -c %s "$tmp/dump")
for len in 0 4 8 31 32 33 37 100 1000 $((size / 2)) $((size - 25)) \
	$((size - 1)); do
	head -c "$len" "$tmp/dump" >"$tmp/corpus/trunc-$len"
done
for off in 16 12 33 40 60 100 500 $((size / 3)) $((size - 10)); do
	cp "$tmp/dump" "$tmp/corpus/flip-$off"
	# Invert the byte (writing a fixed value may not change it).
	byte=$(od -An -tu1 -j "$off" -N1 "$tmp/dump" | tr -d ' ')
	printf "\\$(printf %o $((byte ^ 255)))" |
		dd of="$tmp/corpus/flip-$off" bs=1 seek="$off" conv=notrunc \
		status=none
done
cp "$tmp/dump" "$tmp/corpus/version"
printf '\002' | dd of="$tmp/corpus/version" bs=1 seek=8 conv=notrunc \
	status=none
head -c 4096 /dev/urandom >"$tmp/corpus/random"
{ printf 'GCHEAPDM\001\000\000\000\040\000\000\000'; head -c 16 /dev/zero
  printf '\003\377\377\377\017'; } >"$tmp/corpus/huge-record"
{ head -c 32 "$tmp/dump"; printf '\003\031\000\000\000'
  head -c 21 /dev/zero; printf '\377\377\377\377'; } >"$tmp/corpus/nptrs"
for f in "$tmp"/corpus/*; do
	case $f in
	*/version) pat="version 2" ;;
	*/trunc-*) pat="truncated\|bad magic" ;;
	*) pat="corrupt\|truncated\|bad magic" ;;
	esac
	expect_error "dump $(basename "$f")" "$pat" "$gcstat" dump "$f"
done
out=$("$fuzz" "$tmp/dump" "$tmp"/corpus/* 2>&1)
rc=$?
if [ "$rc" -ne 0 ]; then
	fail "fuzz driver exit $rc: $out"
elif [ "$(grep -c ': rejected: ' <<<"$out")" -ne \
	"$(ls "$tmp/corpus" | wc -l)" ] ||
	! grep -q "$tmp/dump: parsed" <<<"$out"; then
	fail "fuzz driver: $out"
else
	ok "fuzz driver: every corrupt file rejected, the dump parsed"
fi

# On demand: a process started without any export answers gcstat's
# requests (runtime/attach.c): the export starts, a heap dump and the heap
# profile are written for gcstat.
KNOWNHEAP_NOEXPORT=1 "$knownheap" "$tmp/dump2" "$tmp/ready2" &
k2=$!
for _ in $(seq 200); do [ -s "$tmp/ready2" ] && break; sleep 0.05; done
pid2=$(cat "$tmp/ready2")
[ ! -e "$tmp/exp/$pid2" ] && ok "knownheap without export: no file" ||
	fail "knownheap exports without being asked"
sum=$("$gcstat" "$pid2")
[ $? -eq 0 ] && grep -q "in 1103 objects" <<<"$sum" &&
	[ -e "$tmp/exp/$pid2" ] && ok "on demand: summary of $pid2" ||
	fail "on demand summary: $sum"
out=$("$gcstat" --json dump "$pid2" 2>"$tmp/err")
grep -qF '{"type": "cell", "count": 1000, "bytes": 24000, "retained": 24000}' \
	<<<"$out" && grep -q "pid $pid2 wrote $tmp/exp/$pid2.heapdump" \
	"$tmp/err" && ok "on demand: dump ($(cat "$tmp/err"))" ||
	fail "on demand dump: $out $(cat "$tmp/err")"
"$gcstat" profile "$pid2" -o "$tmp/prof.pb.gz" &&
	gzip -t <"$tmp/prof.pb.gz" && ok "on demand: profile" ||
	fail "on demand profile"
# Clients of one process take turns (a second unlinked the first's request
# and reply, and a dump was rewritten in place under a reader).
cpids=()
for c in 1 2 3; do
	"$gcstat" --json dump "$pid2" >"$tmp/conc$c" 2>&1 &
	cpids+=($!)
done
wait "${cpids[@]}"
bad=0
for c in 1 2 3; do
	grep -qF '{"type": "cell", "count": 1000' "$tmp/conc$c" || bad=$c
done
[ "$bad" -eq 0 ] && ok "three concurrent dump requests" ||
	fail "concurrent dump request $bad: $(cat "$tmp/conc$bad")"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	# Another user may not ask: kill(2) says no.
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env \
		GCHEAP_EXPORT_DIR="$tmp/nobody" "$gcstat" dump "$pid2" 2>&1)
	rc=$?
	[ "$rc" -eq 1 ] && grep -q "belongs to another user" <<<"$out" &&
		ok "another user's request refused: $out" ||
		fail "another user's request: exit $rc: $out"
else
	echo "skip: another user's request (needs root and setpriv)"
fi
touch "$tmp/ready2.stop"
wait "$k2"
GCHEAP_ATTACH=0 KNOWNHEAP_NOEXPORT=1 "$knownheap" "$tmp/dump3" \
	"$tmp/ready3" &
k3=$!
for _ in $(seq 200); do [ -s "$tmp/ready3" ] && break; sleep 0.05; done
expect_error "GCHEAP_ATTACH=0" "does not answer" "$gcstat" \
	"$(cat "$tmp/ready3")"
touch "$tmp/ready3.stop"
wait "$k3"

# At exit the process removes its file.
touch "$tmp/ready.stop"
wait "$kpid"
krc=$?
kpid=
[ "$krc" -eq 0 ] && ok "knownheap exit 0" || fail "knownheap exit $krc"
[ ! -e "$tmp/exp/$pid" ] && ok "file removed at exit" ||
	fail "file left at exit"
expect_error "exited pid" "no process with pid" "$gcstat" "$pid"

[ "$fails" -eq 0 ] && echo "all ok" || echo "$fails failed"
[ "$fails" -eq 0 ]
