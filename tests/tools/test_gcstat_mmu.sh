#!/usr/bin/env bash
# tests/tools/test_gcstat_mmu.sh GCSTAT: `gcstat mmu` and `gcstat plot mmu`
# on a hand-written trace whose pauses and assists are known, so that the
# minimum mutator utilization is known exactly:
#   gc 1: pauses [2.0, 2.5) and [8.0, 8.25) ms, no assists;
#   gc 2: pauses [20.0, 20.6), [30.5, 30.7), [40.0, 40.3) ms and 1.92 ms
#         of assists over 9.9 + 9.3 = 19.2 ms of mark: the mutator keeps
#         90% there;
#   the run ends at 50 ms (@0.050s).
# The worst 1 ms window is [20, 21): 0.6 + 0.4 x 0.1 lost, 36%; the worst
# 10 ms [20, 30): 0.6 + 9.4 x 0.1, 84.6%; 100 ms is the run: 1.85 ms of
# pauses and 1.92 of assists, 92.46%. The plot must be well-formed SVG
# whose curve runs from 0% at 100 us to those 92.46% at the run's length.
# Bad input: a missing file, a file without trace lines, lines without
# the pauses field, two runs in one file (exit 1, one line); a bad window
# list or a missing file argument (exit 2 and the usage).
set -uo pipefail
gcstat=${1:?}
tmp=$(mktemp -d /tmp/gcstat-mmu.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/checklib.sh"

cat >"$tmp/trace" <<'EOF'
program output between the lines is skipped
gcheap: gc 1 @0.010s 1%: 0.500+5.500+0.250 ms clock, 0.500+0.000/4.000+0.250 ms cpu, 1.000->1.500->0.800 MB, 4.000 MB goal, 1 workers, 0.010 ms ttsp (thread 7), pauses 2.000+0.500 8.000+0.250 ms
gcheap: gc 2 @0.050s 2%: 0.600+19.400+0.500 ms clock, 0.600+1.920/9.000+0.500 ms cpu, 4.000->4.500->2.000 MB, 8.000 MB goal, 1 workers, 0.010 ms ttsp (thread 7), pauses 20.000+0.600 30.500+0.200 40.000+0.300 ms
EOF

cat >"$tmp/want" <<EOF
$tmp/trace: 2 cycles, a run of 50.000 ms (from the heap's start to the end of the last cycle)
pauses: 5, 1.850 ms in all, longest 0.600 ms (gc 2, at 20.000 ms)
assists: 1.920 ms of CPU, spread over 19.200 ms of concurrent mark
    window      MMU  worst window
      1 ms   36.00%  20.000 .. 21.000 ms
     10 ms   84.60%  20.000 .. 30.000 ms
    100 ms   92.46%  0.000 .. 50.000 ms (the run)
EOF
if "$gcstat" mmu "$tmp/trace" >"$tmp/out" 2>"$tmp/err" &&
	diff -u "$tmp/want" "$tmp/out" && ! [ -s "$tmp/err" ]; then
	ok "mmu of the known trace"
else
	fail "mmu of the known trace: $(cat "$tmp/out" "$tmp/err")"
fi

want='{"file": "'$tmp'/trace", "cycles": 2, "run_ns": 50000000, "pauses": 5, "pause_total_ns": 1850000, "pause_max_ns": 600000, "pause_max_at_ns": 20000000, "pause_max_cycle": 2, "assist_ns": 1920000, "mark_ns": 19200000, "mmu": [{"window_ns": 250000, "mmu": 0.000000, "worst_at_ns": 2000000}, {"window_ns": 5000000, "mmu": 0.792000, "worst_at_ns": 20000000}]}'
got=$("$gcstat" --json mmu -w 250us,5ms "$tmp/trace")
[ "$got" = "$want" ] && ok "mmu --json -w 250us,5ms" ||
	fail "mmu --json: $got"
got2=$("$gcstat" mmu --json -w 250us,5ms - <"$tmp/trace")
[ "${got2/\"-\"/\"$tmp/trace\"}" = "$want" ] &&
	ok "mmu --json after the command, from stdin" ||
	fail "mmu --json from stdin: $got2"

# The plot: well-formed, with the curve and the three windows' dots.
if "$gcstat" plot mmu "$tmp/trace" -o "$tmp/mmu.svg" 2>"$tmp/err" &&
	grep -q "plotted the MMU of 2 cycles" "$tmp/err"; then
	ok "plot mmu"
else
	fail "plot mmu: $(cat "$tmp/err")"
fi
if command -v xmllint >/dev/null; then
	xmllint --noout "$tmp/mmu.svg" && ok "plot mmu: well-formed XML" ||
		fail "plot mmu: not well-formed"
elif command -v python3 >/dev/null; then
	python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' \
		"$tmp/mmu.svg" && ok "plot mmu: well-formed XML" ||
		fail "plot mmu: not well-formed"
else
	echo "note: neither xmllint nor python3: well-formedness not checked"
fi
head -1 "$tmp/mmu.svg" | grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' &&
	tail -1 "$tmp/mmu.svg" | grep -q '^</svg>$' && ok "plot mmu: an svg" ||
	fail "plot mmu: not an svg document"
# The curve: 121 points left to right inside the frame (x 70..730, y
# 60..370 for 100%..0%), from 0% at 100 us to 92.46% at 50 ms.
pts=$(grep -o 'polyline fill="none" stroke="#1f77b4"[^>]*points="[^"]*"' \
	"$tmp/mmu.svg" | sed 's/.*points="//; s/ *"$//')
if awk -v pts="$pts" 'BEGIN {
	n = split(pts, p, " ")
	if (n != 121) exit 1
	px = 0
	for (i = 1; i <= n; i++) {
		split(p[i], xy, ",")
		if (xy[1] <= px || xy[1] > 730 || xy[2] < 60 || xy[2] > 370)
			exit 1
		px = xy[1]
	}
	split(p[1], a, ","); split(p[n], b, ",")
	exit !(a[1] == 70 && a[2] == 370 && b[1] == 730 && b[2] == 83.4)
}'; then
	ok "plot mmu: the curve (0% at 100 us, 92.46% at the run)"
else
	fail "plot mmu: curve points: $pts"
fi
for dot in "1 ms: 36.00% (worst window at 20.000 ms)" \
	"10 ms: 84.60% (worst window at 20.000 ms)"; do
	grep -qF "<title>$dot</title>" "$tmp/mmu.svg" &&
		ok "plot mmu: dot $dot" || fail "plot mmu: no dot '$dot'"
done


echo "no trace here" >"$tmp/none"
sed 's/, pauses .* ms$//' "$tmp/trace" >"$tmp/old"
cat "$tmp/trace" "$tmp/trace" >"$tmp/twice"
sed '3s/pauses 20.000+0.600/pauses 20.000+x/' "$tmp/trace" >"$tmp/garbled"
for cmd in mmu "plot mmu"; do
	# shellcheck disable=SC2086 # $cmd is one or two words
	{
		expect_error "$cmd: missing file" "$tmp/missing: No such file" \
			"$gcstat" $cmd "$tmp/missing"
		expect_error "$cmd: no trace lines" "no gctrace lines" \
			"$gcstat" $cmd "$tmp/none"
		expect_error "$cmd: no pauses field" \
			"old:2: gc 1 has no pauses field" "$gcstat" $cmd "$tmp/old"
		expect_error "$cmd: two runs" "twice:5: gc 1: a pause starts" \
			"$gcstat" $cmd "$tmp/twice"
		expect_error "$cmd: garbled line" "garbled:3: not a gctrace" \
			"$gcstat" $cmd "$tmp/garbled"
	}
done
for w in 0 abc "1ms," ,1ms 1ms,,2ms -1ms \
	1us,2us,3us,4us,5us,6us,7us,8us,9us,10us,11us,12us,13us,14us,15us,16us,17us; do
	expect_usage "mmu -w '$w'" "bad window list" \
		"$gcstat" mmu -w "$w" "$tmp/trace"
done
"$gcstat" mmu -w 1us,2us,3us,4us,5us,6us,7us,8us,9us,10us,11us,12us,13us,14us,15us,16us \
	"$tmp/trace" >/dev/null && ok "mmu -w: 16 windows" ||
	fail "mmu -w: 16 windows refused"
expect_usage "mmu without a file" "no trace file" "$gcstat" mmu
expect_usage "mmu with two files" "unexpected argument" \
	"$gcstat" mmu "$tmp/trace" "$tmp/trace"
expect_usage "mmu with an unknown option" "unknown option" \
	"$gcstat" mmu -q "$tmp/trace"
expect_usage "plot mmu without a file" "" "$gcstat" plot mmu
"$gcstat" mmu --help | grep -q "^usage: gcstat \[--json\] mmu" &&
	"$gcstat" --help | grep -q "gcstat \[--json\] mmu \[-w" &&
	"$gcstat" --help | grep -q "| mmu FILE \[-o OUT.svg\]" &&
	ok "--help names mmu and plot mmu" || fail "--help: no mmu"

[ "$fails" -eq 0 ] && echo "all gcstat mmu checks passed" && exit 0
echo "$fails failed"
exit 1
