#!/usr/bin/env bash
# Builds the libFuzzer targets (native/fuzz/) with AddressSanitizer and UndefinedBehaviorSanitizer, then fuzzes
# each for a bounded time: berth-helper's request parser (and the reply parser), and the addon's helper client
# on what a helper sends back (control messages and reply frames). Needs Debian's clang (apt-get install -y
# clang). FUZZ_SECONDS (default 20) bounds each target's run; a crash leaves its input in native/build/fuzz/
# and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
cxx="${FUZZ_CXX:-clang++}"
if ! command -v "$cxx" >/dev/null; then
  echo "native-fuzz: $cxx not found; install Debian's clang (apt-get install -y clang)" >&2
  exit 1
fi

# libFuzzer and the sanitizer runtimes are in libclang-rt-14-dev, which clang only recommends.
if [ ! -f "$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)" ] && [ "$(uname -m)" = x86_64 ]; then
  echo "native-fuzz: libFuzzer is missing; install it with apt-get install -y libclang-rt-14-dev" >&2
  exit 1
fi

out=native/build/fuzz
flags=(-std=c++17 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=all)
# Each target with its seeds: the checked-in ones stay as they are; what the fuzzer finds accumulates in the
# build folder.
fuzz() {
  local name="$1" seeds="$2"
  shift 2
  mkdir -p "$out/$name-corpus"
  "$cxx" "${flags[@]}" "$@" -o "$out/$name"
  cp "$seeds"/* "$out/$name-corpus/"
  "$out/$name" -max_total_time="$seconds" -max_len=512 -timeout=5 -print_final_stats=1 \
    -artifact_prefix="$out/$name-" "$out/$name-corpus"
}
fuzz request-parser-fuzz native/fuzz/corpus native/fuzz/request_parser_fuzz.cc
fuzz helper-reply-fuzz native/fuzz/reply-corpus native/fuzz/helper_reply_fuzz.cc native/src/helper_client.cc
