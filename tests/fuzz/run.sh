#!/bin/bash
# Runs one libFuzzer harness for the test suite:
#   run.sh HARNESS SEED_DIR WORK_DIR SECONDS [DICT]
# First every input of SEED_DIR (the corpus kept in the repository, crash
# regressions included) is run; then the harness fuzzes for SECONDS (with
# the dictionary DICT of keywords when one is given),
# keeping new inputs in WORK_DIR (in the build tree) and any failing input
# as WORK_DIR/crash-* (or leak-*, timeout-*), which is printed. Fails on
# any crash, sanitizer report, leak or hang (an input running over 10 s).
set -euo pipefail
bin=$1 seeds=$2 work=$3 seconds=$4 dict=${5:-}
mkdir -p "$work/corpus" "$work/artifacts"
rm -f "$work"/artifacts/*
rc=0
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  ${dict:+-dict="$dict"} -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" \
  >"$work/log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  grep -E -m 10 "ERROR:|runtime error|invariant failed|SUMMARY" "$work/log" || true
  echo "..."
  tail -n 40 "$work/log"
  for f in "$work"/artifacts/*; do
    [ -e "$f" ] || continue
    echo "=== failing input $f (keep it in $seeds once fixed):"
    head -c 2000 "$f" | od -c | head -40
  done
  echo "=== $(basename "$bin"): FAILED (exit $rc), full log in $work/log"
  exit 1
fi
grep -E "^#[0-9]+.*DONE|^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$work/log" || true
echo "=== $(basename "$bin"): ok"
