#!/usr/bin/env bash
# tests/integration/test_install.sh: gcheap as its users get it.
#
# Usage: test_install.sh <build-dir> <source-root>
#
#  1. `meson install --destdir` of <build-dir> into a temporary directory;
#     checks that gcheap.h is the only header installed, then builds a small
#     program against the installed copy with `pkg-config --cflags --libs
#     gcheap` (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR point into the
#     destdir) and runs it, linked to libgcheap.so (LD_LIBRARY_PATH) and to
#     libgcheap.a.
#  2. A throw-away meson project with subprojects/gcheap -> <source-root>
#     (a symlink) builds and runs the same program twice: once through
#     subproject('gcheap') then dependency('gcheap') (the subproject's
#     meson.override_dependency), once through a plain dependency('gcheap')
#     with --force-fallback-for=gcheap.
# The program attaches, allocates a few sizes, checks they are zeroed, and
# detaches.
#
# Exits 0 on success, 1 on failure, 77 (skip) if meson, pkg-config or a C
# compiler is missing. Temporary files are removed at exit unless
# GCHEAP_KEEP_TMP=1. Environment: MESON, PKG_CONFIG, CC (may hold several
# words), GCHEAP_B_SANITIZE and GCHEAP_B_COVERAGE (the build's b_sanitize
# and b_coverage, so the program is built to match the installed library).
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: ${0##*/} <build-dir> <source-root>" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
meson_cmd=${MESON:-meson}
pkg_config=${PKG_CONFIG:-pkg-config}
read -ra cc <<<"${CC:-cc}"
sanitize=${GCHEAP_B_SANITIZE:-none}
coverage=${GCHEAP_B_COVERAGE:-false}

for tool in "$meson_cmd" "$pkg_config" "${cc[0]}"; do
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

export PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_SYSROOT_DIR=$destdir
# Keep -I/-L even when the prefix is a system one (/usr).
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
cflags_s=$("$pkg_config" --cflags gcheap) ||
	fail "pkg-config --cflags gcheap"
libs_s=$("$pkg_config" --libs gcheap) || fail "pkg-config --libs gcheap"
static_libs_s=$("$pkg_config" --static --libs gcheap) ||
	fail "pkg-config --static --libs gcheap"
echo "pkg-config --cflags gcheap: $cflags_s"
echo "pkg-config --libs gcheap: $libs_s"
echo "pkg-config --static --libs gcheap: $static_libs_s"
read -ra cflags <<<"$cflags_s"
read -ra libs <<<"$libs_s"
read -ra static_libs <<<"$static_libs_s"
[[ " $cflags_s " == *" -I$destdir/"* ]] ||
	fail "the cflags do not point into the destdir"

strict=(-std=c11 -Wall -Wextra -Werror)

step "building and running a program against the installed libgcheap.so"
run_logged "$tmp/cc-shared.log" "${cc[@]}" "${strict[@]}" "${instr[@]}" \
	"${cflags[@]}" "$tmp/consumer.c" -o "$tmp/consumer-shared" "${libs[@]}"
resolved=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer-shared" |
	grep 'libgcheap\.so' || true)
echo "ldd: ${resolved#"${resolved%%[![:space:]]*}"}"
[[ $resolved == *"$destdir"* ]] ||
	fail "consumer-shared does not load libgcheap.so from the destdir"
LD_LIBRARY_PATH=$libdir "$tmp/consumer-shared" ||
	fail "consumer-shared exited with status $?"

step "building and running a program against the installed libgcheap.a"
# pkg-config names the library -lgcheap; take the archive instead of the .so.
static_link=()
for w in "${static_libs[@]}"; do
	if [[ $w == -lgcheap ]]; then
		static_link+=("$libdir/libgcheap.a")
	else
		static_link+=("$w")
	fi
done
run_logged "$tmp/cc-static.log" "${cc[@]}" "${strict[@]}" "${instr[@]}" \
	"${cflags[@]}" "$tmp/consumer.c" -o "$tmp/consumer-static" \
	"${static_link[@]}"
if ldd "$tmp/consumer-static" 2>/dev/null | grep -q libgcheap; then
	fail "consumer-static still needs libgcheap.so"
fi
"$tmp/consumer-static" || fail "consumer-static exited with status $?"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
unset PKG_CONFIG_ALLOW_SYSTEM_CFLAGS PKG_CONFIG_ALLOW_SYSTEM_LIBS

# ---- 2. gcheap as a meson subproject -------------------------------------

sub_opts="['tests=false', 'bench=false', 'examples=false', 'tools=false']"

# make_project DIR MESON-CODE: a consumer project around consumer.c.
make_project() {
	local dir=$1 code=$2
	mkdir -p "$dir/subprojects"
	ln -s "$src" "$dir/subprojects/gcheap"
	cp "$tmp/consumer.c" "$dir/"
	cat >"$dir/meson.build" <<EOF
project('gcheap-consumer', 'c', default_options: ['c_std=c11'])
$code
executable('consumer', 'consumer.c', dependencies: gcheap_dep,
  c_args: ['-Wall', '-Wextra', '-Werror'])
EOF
}

# build_and_run DIR LABEL SETUP-ARGS...
build_and_run() {
	local dir=$1 label=$2
	shift 2
	run_logged "$tmp/$label-setup.log" \
		"$meson_cmd" setup "$@" "$dir/build" "$dir"
	grep -E 'Dependency gcheap .*found' "$tmp/$label-setup.log" |
		sed 's/^/    /' || true
	grep -qE 'Dependency gcheap .*found: YES.*overridden' \
		"$tmp/$label-setup.log" ||
		fail "dependency('gcheap') did not come from the subproject"
	run_logged "$tmp/$label-compile.log" \
		"$meson_cmd" compile -C "$dir/build"
	"$dir/build/consumer" || fail "$label consumer exited with status $?"
}

step "subproject('gcheap') and dependency('gcheap')"
make_project "$tmp/sub-explicit" "
gcheap_proj = subproject('gcheap', default_options: $sub_opts)
# Found through the subproject's meson.override_dependency().
gcheap_dep = dependency('gcheap')"
build_and_run "$tmp/sub-explicit" sub-explicit

step "dependency('gcheap') falling back to subprojects/gcheap"
make_project "$tmp/sub-fallback" "
gcheap_dep = dependency('gcheap', default_options: $sub_opts)"
build_and_run "$tmp/sub-fallback" sub-fallback --force-fallback-for=gcheap

echo
echo "install and subproject: ok"
