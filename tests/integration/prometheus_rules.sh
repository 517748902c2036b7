#!/bin/bash
# The shipped alert rules (packaging/prometheus/rackpulse-rules.yml): valid
# for Prometheus (promtool check rules), firing as their unit tests expect
# (promtool test rules rackpulse-rules.test.yml), and every rackpulse_*
# metric they read is one the aggregator exports (named in aggregator/*.c).
source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool is not installed (bash tools/deps.sh: prometheus)"
DIR="$RP_SRC/packaging/prometheus"
promtool check rules "$DIR/rackpulse-rules.yml" >"$WORK/check.log" 2>&1 \
  || fail "promtool check rules: $(cat "$WORK/check.log")"
pass "promtool check rules: $(grep -o '[0-9]* rules found' "$WORK/check.log")"
# promtool resolves rule_files relative to the test file.
(cd "$DIR" && promtool test rules rackpulse-rules.test.yml) >"$WORK/test.log" 2>&1 \
  || fail "promtool test rules: $(cat "$WORK/test.log")"
pass "promtool test rules: every alert fires (and stays quiet) as its unit tests expect"
for m in $(grep -o 'rackpulse_[a-z_]*' "$DIR/rackpulse-rules.yml" | sort -u); do
  grep -q "\"$m\|$m{\|$m \|# TYPE $m" "$RP_SRC"/aggregator/*.c \
    || fail "the rules read $m, which the aggregator does not export"
done
pass "every metric the rules read is exported by the aggregator"
