#!/usr/bin/env bash
# tests/integration/test_install.sh: gcheap as its users get it.
#
# Usage: test_install.sh <build-dir> <source-root>
#
#  1. `meson install --destdir` of <build-dir> into a temporary directory;
#     checks that gcheap.h is the only header installed, then builds two
#     programs (a small one below, and the README's example) against the
#     installed copy with `pkg-config --cflags --libs gcheap`, with
#     PKG_CONFIG_LIBDIR holding gcheap.pc alone (so gcheap.pc may require
#     no other package: atomic_ops.pc is not there), and runs them linked
#     to libgcheap.so (found through LD_LIBRARY_PATH, then -Wl,-rpath) and
#     to libgcheap.a.
#  2. A throw-away meson project with subprojects/gcheap -> <source-root>
#     (a symlink), gcheap's options left at their defaults and `check`
#     hidden from pkg-config (PKG_CONFIG_LIBDIR: links to the system's .pc
#     files but check.pc), builds the small program through a plain
#     dependency('gcheap') with --force-fallback-for=gcheap; ninja must run
#     at most one build step per library source plus 10 (the library and
#     the program: no tests, benchmarks, examples or tools). A second one calls
#     subproject('gcheap', default_options: ...), then dependency('gcheap')
#     (the subproject's meson.override_dependency) and the subproject's
#     gcheap_shared_dep, and runs the program linked both ways.
# The small program attaches, allocates a few sizes, checks they are zeroed,
# and detaches.
#
# Exits 0 on success, 1 on failure, 77 (skip) if meson, ninja, pkg-config
# or a C compiler is missing. Temporary files are removed at exit unless
# GCHEAP_KEEP_TMP=1. Environment: MESON, NINJA, PKG_CONFIG, CC (may hold
# several words), GCHEAP_B_SANITIZE and GCHEAP_B_COVERAGE (the build's
# b_sanitize and b_coverage, so the programs are built to match the
# installed library).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: ${0##*/} <build-dir> <source-root>" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
meson_cmd=${MESON:-meson}
pkg_config=${PKG_CONFIG:-pkg-config}
ninja_cmd=${NINJA:-ninja}
read -ra cc <<<"${CC:-cc}"
sanitize=${GCHEAP_B_SANITIZE:-none}
coverage=${GCHEAP_B_COVERAGE:-false}

for tool in "$meson_cmd" "$ninja_cmd" "$pkg_config" "${cc[0]}"; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not found"
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcheap-integration.XXXXXX")
cleanup() {
	if [[ ${GCHEAP_KEEP_TMP:-0} == 1 ]]; then
		echo "(kept $tmp)"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	echo
	echo "== $*"
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# run_logged LOG CMD...: run CMD with its output in LOG; show LOG if it fails.
run_logged() {
	local log=$1 rc=0
	shift
	echo "\$ $*"
	"$@" >"$log" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]]; then
		sed 's/^/    /' "$log" >&2
		fail "exit status $rc: $*"
	fi
}

# Flags that the build's instrumentation needs in every program linked to
# the library.
instr=()
if [[ -n $sanitize && $sanitize != none ]]; then
	instr+=("-fsanitize=$sanitize")
fi
if [[ $coverage == true ]]; then
	instr+=(--coverage)
fi

cat >"$tmp/consumer.c" <<'EOF'
/* consumer.c: a program outside the gcheap tree that uses the library as
 * installed: attach, allocate a few sizes, check zeroing, detach. */
#include <gcheap.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
	static const size_t sizes[] = {1, 7, 8, 16, 24, 100, 512, 4096,
				       33000, 1 << 20};
	size_t i, j, n = sizeof(sizes) / sizeof(sizes[0]);
	gc_status st;

	st = gc_thread_attach();
	if (st != GCHEAP_OK) {
		fprintf(stderr, "gc_thread_attach: %s\n", gc_strerror(st));
		return 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char *p = gc_alloc(sizes[i], NULL);

		if (p == NULL) {
			fprintf(stderr, "gc_alloc(%zu): %s\n", sizes[i],
				gc_strerror(gc_last_error()));
			return 1;
		}
		for (j = 0; j < sizes[i]; j++) {
			if (p[j] != 0) {
				fprintf(stderr, "gc_alloc(%zu): byte %zu is "
					"%#x, not 0\n", sizes[i], j, p[j]);
				return 1;
			}
		}
		memset(p, 0xa5, sizes[i]);
	}
	st = gc_thread_detach();
	if (st != GCHEAP_OK) {
		fprintf(stderr, "gc_thread_detach: %s\n", gc_strerror(st));
		return 1;
	}
	printf("gcheap %s: %zu allocations, all zeroed\n", gc_version(), n);
	return 0;
}
EOF

# ---- 1. meson install --destdir, then pkg-config -------------------------

destdir=$tmp/destdir
step "installing $build into $destdir"
run_logged "$tmp/install.log" \
	"$meson_cmd" install -C "$build" --no-rebuild --destdir "$destdir"

pcfile=$(find "$destdir" -name gcheap.pc -print -quit)
[[ -n $pcfile ]] || fail "no gcheap.pc was installed"
pcdir=${pcfile%/*}
libdir=${pcdir%/pkgconfig}
echo "pkg-config file: ${pcfile#"$destdir"}"

mapfile -t headers < <(find "$destdir" -name '*.h' | sort)
if [[ ${#headers[@]} -ne 1 || ${headers[0]} != */include/gcheap.h ]]; then
	printf '    %s\n' "${headers[@]#"$destdir"}" >&2
	fail "expected gcheap.h to be the only installed header"
fi
echo "installed header: ${headers[0]#"$destdir"}"
for f in libgcheap.so libgcheap.a; do
	[[ -e $libdir/$f ]] || fail "$f is not in ${libdir#"$destdir"}"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/extract-readme.sh" "$src/README.md" "$tmp/readme.c"

# Only gcheap.pc: a Requires of any other package fails here.
export PKG_CONFIG_LIBDIR=$pcdir
unset PKG_CONFIG_PATH
export PKG_CONFIG_SYSROOT_DIR=$destdir
# Keep -I/-L even when the prefix is a system one (/usr).
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
for args in "--cflags" "--libs" "--static --libs"; do
	# shellcheck disable=SC2086
	"$pkg_config" --print-errors $args gcheap >"$tmp/pc.out" 2>&1 || {
		sed 's/^/    /' "$tmp/pc.out" >&2
		fail "pkg-config $args gcheap, with gcheap.pc alone"
	}
done
cflags_s=$("$pkg_config" --cflags gcheap)
libs_s=$("$pkg_config" --libs gcheap)
static_libs_s=$("$pkg_config" --static --libs gcheap)
echo "pkg-config --cflags gcheap: $cflags_s"
echo "pkg-config --libs gcheap: $libs_s"
echo "pkg-config --static --libs gcheap: $static_libs_s"
read -ra cflags <<<"$cflags_s"
read -ra libs <<<"$libs_s"
read -ra static_libs <<<"$static_libs_s"
[[ " $cflags_s " == *" -I$destdir/"* ]] ||
	fail "the cflags do not point into the destdir"
# pkg-config names the library -lgcheap; for the static programs, take the
# archive instead of the .so.
static_link=()
for w in "${static_libs[@]}"; do
	if [[ $w == -lgcheap ]]; then
		static_link+=("$libdir/libgcheap.a")
	else
		static_link+=("$w")
	fi
done

strict=(-std=c11 -Wall -Wextra -Werror)
export GCHEAP_DEBUG=checkmark=1,verify=1,stress=4096

for prog in consumer readme; do
	step "$prog.c against the installed libgcheap.so"
	run_logged "$tmp/cc-$prog-shared.log" "${cc[@]}" "${strict[@]}" \
		"${instr[@]}" "${cflags[@]}" "$tmp/$prog.c" \
		-o "$tmp/$prog-shared" "${libs[@]}"
	resolved=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/$prog-shared" |
		grep 'libgcheap\.so' || true)
	echo "ldd: ${resolved#"${resolved%%[![:space:]]*}"}"
	[[ $resolved == *"$destdir"* ]] ||
		fail "$prog-shared does not load libgcheap.so from the destdir"
	LD_LIBRARY_PATH=$libdir "$tmp/$prog-shared" ||
		fail "$prog-shared exited with status $?"

	step "$prog.c against libgcheap.so, found through -Wl,-rpath"
	run_logged "$tmp/cc-$prog-rpath.log" "${cc[@]}" "${strict[@]}" \
		"${instr[@]}" "${cflags[@]}" "$tmp/$prog.c" \
		-o "$tmp/$prog-rpath" "${libs[@]}" "-Wl,-rpath,$libdir"
	"$tmp/$prog-rpath" || fail "$prog-rpath exited with status $?"

	step "$prog.c against the installed libgcheap.a"
	run_logged "$tmp/cc-$prog-static.log" "${cc[@]}" "${strict[@]}" \
		"${instr[@]}" "${cflags[@]}" "$tmp/$prog.c" \
		-o "$tmp/$prog-static" "${static_link[@]}"
	linked=$(ldd "$tmp/$prog-static" 2>&1 || true)
	if [[ $linked == *libgcheap* ]]; then
		fail "$prog-static still needs libgcheap.so"
	fi
	"$tmp/$prog-static" || fail "$prog-static exited with status $?"
done
unset GCHEAP_DEBUG PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
unset PKG_CONFIG_ALLOW_SYSTEM_CFLAGS PKG_CONFIG_ALLOW_SYSTEM_LIBS

# ---- 2. gcheap as a meson subproject -------------------------------------

# The subproject builds are plain (no sanitizer), and their programs must
# load their own libgcheap.so, not the one of the build under test that
# meson test puts on LD_LIBRARY_PATH.
unset LD_LIBRARY_PATH

# make_project DIR MESON-CODE: a consumer project around consumer.c.
make_project() {
	local dir=$1 code=$2
	mkdir -p "$dir/subprojects"
	ln -s "$src" "$dir/subprojects/gcheap"
	cp "$tmp/consumer.c" "$dir/"
	cat >"$dir/meson.build" <<EOF
project('gcheap-consumer', 'c', default_options: ['c_std=c11'])
$code
EOF
}

# setup_and_build DIR LABEL SETUP-ARGS...
setup_and_build() {
	local dir=$1 label=$2
	shift 2
	run_logged "$tmp/$label-setup.log" \
		"$meson_cmd" setup "$@" "$dir/build" "$dir"
	grep -E 'Dependency gcheap .*found' "$tmp/$label-setup.log" |
		sed 's/^/    /' || true
	grep -qE 'Dependency gcheap .*found: YES.*overridden' \
		"$tmp/$label-setup.log" ||
		fail "dependency('gcheap') did not come from the subproject"
	run_logged "$tmp/$label-compile.log" "$ninja_cmd" -C "$dir/build" -j 2
}

# The system's pkg-config files but check.pc, in one directory.
pcfiltered=$tmp/pkgconfig-nocheck
mkdir -p "$pcfiltered"
syspc=$("$pkg_config" --variable pc_path pkg-config)
IFS=: read -ra syspcdirs <<<"${PKG_CONFIG_PATH:+$PKG_CONFIG_PATH:}$syspc"
for d in "${syspcdirs[@]}"; do
	for f in "$d"/*.pc; do
		[[ -e $f && ${f##*/} != check.pc ]] || continue
		[[ -e $pcfiltered/${f##*/} ]] || ln -s "$f" "$pcfiltered/"
	done
done
if PKG_CONFIG_LIBDIR=$pcfiltered PKG_CONFIG_PATH='' "$pkg_config" \
	--exists check; then
	fail "check is still visible through $pcfiltered"
fi

step "dependency('gcheap') from subprojects/gcheap: defaults, no check"
make_project "$tmp/sub-fallback" "
gcheap_dep = dependency('gcheap')
executable('consumer', 'consumer.c', dependencies: gcheap_dep,
  c_args: ['-Wall', '-Wextra', '-Werror'])"
PKG_CONFIG_LIBDIR=$pcfiltered PKG_CONFIG_PATH='' \
	setup_and_build "$tmp/sub-fallback" sub-fallback \
	--force-fallback-for=gcheap
steps=$(sed -n 's/^\[[0-9]*\/\([0-9]*\)\].*/\1/p' \
	"$tmp/sub-fallback-compile.log" | tail -n 1)
# One step per library source, plus a few (the program, the links, the
# localized archive): anything more is tests, benchmarks or tools.
nsrc=$(find "$src/alloc" "$src/gc" "$src/runtime" -name '*.c' | wc -l)
maxsteps=$((nsrc + 10))
echo "ninja ran ${steps:-no} build steps (at most $maxsteps)"
[[ -n $steps && $steps -le $maxsteps ]] ||
	fail "the subproject build ran ${steps:-no} steps, more than" \
		"$maxsteps ($nsrc library sources + 10)"
"$tmp/sub-fallback/build/consumer" ||
	fail "sub-fallback consumer exited with status $?"

step "subproject('gcheap'), dependency('gcheap') and gcheap_shared_dep"
make_project "$tmp/sub-explicit" "
gcheap_proj = subproject('gcheap',
  default_options: ['check_level=1', 'stats=false'])
# Found through the subproject's meson.override_dependency().
gcheap_dep = dependency('gcheap')
executable('consumer', 'consumer.c', dependencies: gcheap_dep,
  c_args: ['-Wall', '-Wextra', '-Werror'])
executable('consumer-shared', 'consumer.c',
  dependencies: gcheap_proj.get_variable('gcheap_shared_dep'),
  c_args: ['-Wall', '-Wextra', '-Werror'])"
setup_and_build "$tmp/sub-explicit" sub-explicit
"$tmp/sub-explicit/build/consumer" ||
	fail "sub-explicit consumer exited with status $?"
linked=$(ldd "$tmp/sub-explicit/build/consumer-shared")
[[ $linked == *"$tmp/sub-explicit/build/"*libgcheap.so* ]] ||
	fail "consumer-shared does not load the subproject's libgcheap.so"
"$tmp/sub-explicit/build/consumer-shared" ||
	fail "sub-explicit consumer-shared exited with status $?"

echo
echo "install and subproject: ok"
