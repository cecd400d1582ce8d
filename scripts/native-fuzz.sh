#!/usr/bin/env bash
# Builds the libFuzzer target for berth-helper's request parser (native/fuzz/) with AddressSanitizer and
# UndefinedBehaviorSanitizer, then fuzzes for a bounded time. Needs Debian's clang (apt-get install -y clang).
# FUZZ_SECONDS (default 20) bounds the run; a crash leaves its input in native/build/fuzz/ and fails.
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
mkdir -p "$out/corpus"
"$cxx" -std=c++17 -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  native/fuzz/request_parser_fuzz.cc -o "$out/request-parser-fuzz"
# The checked-in seeds stay as they are; what the fuzzer finds accumulates in the build folder.
cp native/fuzz/corpus/* "$out/corpus/"
"$out/request-parser-fuzz" -max_total_time="$seconds" -max_len=256 -timeout=5 -print_final_stats=1 \
  -artifact_prefix="$out/" "$out/corpus"
