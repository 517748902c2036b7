#!/bin/bash
# Checks the code style, then builds rackpulse three times and runs the
# tests of each build:
#   build/       RelWithDebInfo, -Werror: every test, and the unit tests
#                again under Valgrind
#   build-asan/  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   build-fuzz/  clang, the libFuzzer harnesses of tests/fuzz (ASan+UBSan):
#                the fuzz tests only, each over its corpus then ~20 s fuzzing
#   build-tsan/  ThreadSanitizer: only the concurrency tests (label tsan:
#                reservations, gates and the ledger from many threads)
# Unit tests are cmocka programs; integration tests drive the real peers
# (pymodbus CDU, librdkafka mock cluster, kcat, protoc). Exits non-zero on
# the first failing build or test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh

# One code style (.clang-format): a file that clang-format would change
# fails the run before anything is built.
echo "=== style: clang-format --dry-run --Werror on every C file"
git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run --Werror

JOBS=$(nproc)
# Tests run one more at a time than there are cores: most of an integration
# test's time is waiting on its peers, and the tests must hold on a loaded
# machine anyway (they were run five at a time on two cores).
TEST_JOBS=$((JOBS + 1))
run_suite() {
  local dir=$1; shift
  echo "=== $dir: configure and build ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
  echo "=== $dir: tests${TEST_LABEL:+ labelled $TEST_LABEL}"
  ctest --test-dir "$dir" --output-on-failure -j "$TEST_JOBS" --timeout 300 \
    ${TEST_LABEL:+-L "$TEST_LABEL"}
}

run_suite build -DRP_BUILD_BENCH=ON
# The unit tests once more under Valgrind: any invalid access or leak
# (definite, indirect or possible) fails the test.
echo "=== build: unit tests under Valgrind"
ctest --test-dir build -L unit -T memcheck --output-on-failure -j "$JOBS" \
  --overwrite MemoryCheckCommand="$(command -v valgrind)" \
  --overwrite "MemoryCheckCommandOptions=--leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
run_suite build-asan -DRP_SANITIZE=ON
BUILD_TARGET=rp_fuzz TEST_LABEL=fuzz run_suite build-fuzz -DCMAKE_C_COMPILER=clang \
  -DRP_FUZZ=ON -DRP_BUILD_TESTS=OFF
# halt_on_error: a data race fails the test even though the program goes on.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" BUILD_TARGET=test_concurrency \
  TEST_LABEL=tsan run_suite build-tsan -DRP_TSAN=ON -DRP_BUILD_BENCH=OFF
echo "=== all tests passed in build/, build-asan/ (ASan+UBSan), build-fuzz/ (libFuzzer)" \
  "and build-tsan/ (TSan)"
