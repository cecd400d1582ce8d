#!/usr/bin/env bash
# Builds berth-helper with AddressSanitizer (+ LeakSanitizer, UndefinedBehaviorSanitizer) and runs the helper
# test suites against that build (the harness takes it from BERTH_HELPER_BIN); then the same for the addon's
# relays and the engine tests that drive them. Any sanitizer report fails the run, even one from a helper
# process whose failure a test did not notice.
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
node --import tsx --test test/helper/daemon.test.ts test/helper/cloexec.test.ts || status=$?

# The addon (its relays and helper client): built the same way, loaded (BERTH_NATIVE_ADDON) by their own
# test files and by the engine's forwarding tests into a node with the ASan runtime preloaded. Node itself is not instrumented and leaks by design at exit, so leak detection is off here.
addon_api="$(node -p "require('node-addon-api').include_dir")"
# Every source of the addon: the N-API layer and the plain C++ under it (all of native/src but the helper).
mapfile -t addon_sources < <(ls native/src/*.cc | grep -v '^native/src/helper\.cc$')
"$cxx" -std=c++17 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize-recover=all -fPIC -shared \
  -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -DNODE_GYP_MODULE_NAME=berth_native \
  -I"$(node -p "process.execPath.replace(/bin\/node$/, 'include/node')")" -I"$addon_api" \
  "${addon_sources[@]}" -o "$out/berth_native.node"
BERTH_NATIVE_ADDON="$out/berth_native.node" \
  LD_PRELOAD="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libubsan.so)" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$out/reports/addon-asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$out/reports/addon-ubsan" \
  node --import tsx --test test/native/udp-relay.test.ts test/engine/udp-forwarding.test.ts test/native/tcp-relay.test.ts \
    test/engine/tcp-forwarding.test.ts test/backend/backend.test.ts test/native/tcp-stress.test.ts test/native/udp-stress.test.ts \
    test/helper/addon.test.ts test/backend/subreaper.test.ts test/backend/daemons.test.ts || status=$?
if compgen -G "$out/reports/*" >/dev/null; then
  echo "native-asan: sanitizer reports from berth-helper or the addon:" >&2
  cat "$out"/reports/* >&2
  exit 1
fi
exit "$status"
