#!/usr/bin/env bash
# Checks that native/'s C++ is formatted as native/.clang-format says (Google style at 110 columns, as
# STYLE asks): lists each file clang-format would change, with the diff, and exits 1. `--fix` formats them in
# place instead. Uses $CLANG_FORMAT, else clang-format, else the newest clang-format-NN on the PATH (Debian:
# apt-get install -y clang-format). Formatting can differ between clang-format's major versions; CI's is
# Debian 12's, clang-format 14.
set -euo pipefail
cd "$(dirname "$0")/.."

tool="${CLANG_FORMAT:-}"
if [ -z "$tool" ]; then
  if command -v clang-format >/dev/null; then
    tool=clang-format
  else
    tool="$(compgen -c clang-format- | grep -E '^clang-format-[0-9]+$' | sort -t- -k3 -n | tail -1 || true)"
  fi
fi
if [ -z "$tool" ] || ! command -v "$tool" >/dev/null; then
  echo "clang-format-check: clang-format not found; install it (apt-get install -y clang-format)" >&2
  exit 2
fi

fix=0
if [ "${1:-}" = --fix ]; then fix=1; fi

mapfile -t files < <(find native -path native/build -prune -o -path native/node_modules -prune -o \
  -type f \( -name '*.cc' -o -name '*.h' \) -print | sort)
differ=()
for file in "${files[@]}"; do
  if [ "$fix" = 1 ]; then
    "$tool" --style=file -i "$file"
  elif ! diff -u --label "$file" --label "$file (clang-format)" "$file" <("$tool" --style=file "$file") >&2; then
    differ+=("$file")
  fi
done
if [ "${#differ[@]}" -gt 0 ]; then
  echo "clang-format-check: ${#differ[@]} file(s) differ from $("$tool" --version | head -1):" >&2
  printf '  %s\n' "${differ[@]}" >&2
  echo "Run: bash scripts/clang-format-check.sh --fix" >&2
  exit 1
fi
echo "clang-format-check: ${#files[@]} files formatted ($("$tool" --version | head -1))"
