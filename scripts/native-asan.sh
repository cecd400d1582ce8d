#!/usr/bin/env bash
# Builds berth-helper with AddressSanitizer (+ LeakSanitizer, UndefinedBehaviorSanitizer) and runs the helper
# test suites against that build (the harness takes it from BERTH_HELPER_BIN). Any sanitizer report fails
# the run, even one from a helper process whose failure a test did not notice.
set -euo pipefail
cd "$(dirname "$0")/.."

# g++ by default: node-gyp needs it anyway, and its ASan runtime (libasan) comes with it. ASAN_CXX=clang++ also
# works where libclang-rt-14-dev is installed.
cxx="${ASAN_CXX:-g++}"
out="$PWD/native/build/asan"
rm -rf "$out"
mkdir -p "$out/reports"
"$cxx" -std=c++17 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize-recover=all \
  native/src/helper.cc -o "$out/berth-helper"
chmod 755 "$out" "$out/berth-helper"
# Reports go to files too, so nothing depends on a test reading the helper's stderr.
chmod 1777 "$out/reports"

export BERTH_HELPER_BIN="$out/berth-helper"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$out/reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$out/reports/ubsan"
status=0
node --import tsx --test test/helper-daemon.test.ts test/helper-cloexec.test.ts || status=$?
if compgen -G "$out/reports/*" >/dev/null; then
  echo "native-asan: sanitizer reports from berth-helper:" >&2
  cat "$out"/reports/* >&2
  exit 1
fi
exit "$status"
