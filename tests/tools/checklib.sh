# tests/tools/checklib.sh: what the gcstat shell tests share, sourced by
# them (not a test of its own): a count of failures, one line per check,
# and the two ways gcstat refuses input (docs/tools.md): exit 1 with one
# line naming the problem, or exit 2 with the usage.
# shellcheck shell=bash
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect_error DESCRIPTION PATTERN CMD...: exit 1, one line matching.
expect_error() {
	local what=$1 pat=$2
	shift 2
	local out rc
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -ne 1 ]; then
		fail "$what: exit $rc (want 1): $out"
	elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
		fail "$what: not one line: $out"
	elif ! grep -q -- "$pat" <<<"$out"; then
		fail "$what: '$out' does not say '$pat'"
	else
		ok "$what: $out"
	fi
}

# expect_usage DESCRIPTION PATTERN CMD...: exit 2, the usage on stderr
# (and PATTERN in what it printed; "" for any).
expect_usage() {
	local what=$1 pat=$2
	shift 2
	local out rc
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q "^usage: gcstat" <<<"$out" &&
		grep -q -- "$pat" <<<"$out"; then
		ok "$what: exit 2"
	else
		fail "$what: exit $rc (want 2 and the usage): $out"
	fi
}
