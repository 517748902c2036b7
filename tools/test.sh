#!/bin/bash
# Builds rackpulse twice and runs every test in each build:
#   build/       RelWithDebInfo, -Werror
#   build-asan/  the same under AddressSanitizer + UndefinedBehaviorSanitizer
# Unit tests are cmocka programs; integration tests drive the real peers
# (pymodbus CDU, librdkafka mock cluster, kcat, protoc). Exits non-zero on
# the first failing build or test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh

JOBS=$(nproc)
run_suite() {
  local dir=$1; shift
  echo "=== $dir: configure and build ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  echo "=== $dir: tests"
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 300
}

run_suite build -DRP_BUILD_BENCH=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
run_suite build-asan -DRP_SANITIZE=ON
echo "=== all tests passed in build/ and build-asan/ (ASan+UBSan)"
