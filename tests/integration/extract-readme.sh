#!/usr/bin/env bash
# tests/integration/extract-readme.sh README.md OUT.c: copy the README's
# embedding example (the first ```c block) into OUT.c, so the build
# compiles exactly what the README shows.
set -euo pipefail
awk '/^```c$/ { f = 1; next } /^```$/ { if (f) exit } f' "$1" > "$2"
[ -s "$2" ] || { echo "no \`\`\`c block in $1" >&2; exit 1; }
