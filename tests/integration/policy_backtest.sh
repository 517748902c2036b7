#!/bin/bash
# Policy backtest (issue 23), done-when: an hour of simulated frames (three
# racks, one frame a second, produced in a second with historical frame
# times and Kafka timestamps) with a CDU supply temperature excursion on
# r0001, replayed by `rackpulsectl policy simulate` through the
# aggregator's code: a strict policy against a loose one finds the
# decisions that change (on r0001 only, from supply_temp) and flags the
# incident minutes ahead where the loose one is late; the loose policy as
# candidate allows a must-deny incident and exits 1. A running aggregator
# (consumer group) on the same topic keeps its partitions and state, and
# --against current reads its configuration.
source "$(dirname "$0")/lib.sh"

start_broker
# The hour ended an hour ago; the excursion ramps r0001's supply by 12 degC
# from minute 30 to 40 and holds it (the base swings 25.0..34.9 degC).
BASE=$(( ($(date +%s) - 7200) * 1000 ))
"$RP_BIN/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -r 3 -n 3600 -s 6 --ts-base "$BASE" \
  --excursion 1:1800:2400:12 -q || fail "loadgen"
START=$((BASE + 38 * 60000)) # the incident: evacuated by hand at minute 38
cat >"$WORK/incidents.yaml" <<YAML
incidents:
  - {rack: r0001, start: $START, end: $((START + 120000)), what: "CDU supply excursion", must_deny: true}
YAML
cat >"$WORK/loose.yaml" <<'YAML'
version: loose-1
defaults:
  supply_temp: {max: 45}
YAML
cat >"$WORK/strict.yaml" <<'YAML'
version: strict-1
defaults:
  supply_temp: {max: 37, persist_for: 10s}
ladder:
  supply_temp:
    clear_after: 60s
    steps:
      - {flag: scale-back, after: 0s}
      - {flag: pause-admissions, after: 60s}
      - {flag: evacuate, after: 300s}
slo:
  - {name: supply-hot, check: supply_temp, above: 38, period: 1h, budget: 5m, recovery: 5m}
YAML

# A running aggregator under the loose policy, caught up with the hour.
AGG_POLICY="policy: {file: $WORK/loose.yaml}"
start_aggregator
applied() { curl -s "$URL/metrics" | awk '/^rackpulse_ingest_frames_total\{outcome="applied"\}/ {print $2}'; }
has_applied() { [ "$(applied)" = "$1" ]; }
wait_for 60 has_applied 10800 \
  || fail "the aggregator did not apply the 10800 frames: $(applied)"

simulate() {
  "$RP_BIN/tools/rackpulsectl" policy simulate --brokers "$BOOTSTRAP" --from "$BASE" \
    --to $((BASE + 3599000)) --incidents "$WORK/incidents.yaml" "$@"
}
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

set +e
simulate --policy "$WORK/strict.yaml" --against current --config "$WORK/aggregator.yaml" --json \
  >"$WORK/strict.json" 2>"$WORK/strict.log"
rc=$?
set -e
[ "$rc" = 0 ] || fail "strict candidate: exit $rc: $(cat "$WORK/strict.log")"
j() { field "$1" <"$WORK/strict.json"; }
[ "$(j 'd["policies"]["current"]["version"]')" = loose-1 ] || fail "--against current did not read the aggregator's policy"
[ "$(j 'd["frames"]')" = 10800 ] || fail "frames replayed: $(j 'd["frames"]')"
[ "$(j 'list(d["decisions"]["by_rack"].keys())')" = "['r0001']" ] \
  || fail "decisions changed beyond r0001: $(j 'd["decisions"]')"
[ "$(j 'd["decisions"]["allow_to_deny"] > 300 and d["decisions"]["deny_to_allow"] == 0')" = True ] \
  || fail "allow->deny / deny->allow: $(j 'd["decisions"]')"
[ "$(j 'd["decisions"]["by_check"]["supply_temp"]["allow_to_deny"] > 0')" = True ] \
  || fail "the changes are not counted under supply_temp: $(j 'd["decisions"]["by_check"]')"
cand_lead=$(j 'd["incidents"][0]["candidate"]["lead_s"]')
cur_lead=$(j 'd["incidents"][0]["current"]["lead_s"]')
[ "$(j 'd["incidents"][0]["candidate"]["lead_s"] >= 60')" = True ] || fail "strict lead time $cand_lead s"
[ "$(j 'd["incidents"][0]["current"]["lead_s"] is None or d["incidents"][0]["current"]["lead_s"] < 0')" = True ] \
  || fail "the loose policy was not late: lead $cur_lead s"
[ "$(j 'd["flags"]["summary"]["earlier"] >= 1')" = True ] || fail "no flag raised earlier: $(j 'd["flags"]["summary"]')"
[ "$(j '[f["flag"] for f in d["flags"]["changes"] if f["candidate_ms"]][:1]')" = "['scale-back']" ] \
  || fail "the ladder's first step is not scale-back: $(j 'd["flags"]["changes"][:3]')"
[ "$(j 'd["incidents"][0]["violated"]')" = False ] || fail "strict policy violated the must-deny"
[ "$(j '[o["met"] for o in d["policies"]["candidate"]["slo"] if o["rack"]=="r0001"]')" = "[False]" ] \
  || fail "the SLO of r0001 is not missed in the backtest: $(j 'd["policies"]["candidate"]["slo"]')"
pass "strict vs loose: allow->deny on r0001 only ($(j 'd["decisions"]["allow_to_deny"]')), lead ${cand_lead} s vs ${cur_lead} s, SLO missed"

set +e
simulate --policy "$WORK/loose.yaml" --against "$WORK/strict.yaml" >"$WORK/loose.txt" 2>"$WORK/loose.log"
rc=$?
set -e
[ "$rc" = 1 ] || fail "loose candidate with a must-deny incident: exit $rc, expected 1: $(cat "$WORK/loose.txt" "$WORK/loose.log")"
grep -q "must deny: VIOLATED" "$WORK/loose.txt" || fail "table does not say VIOLATED: $(cat "$WORK/loose.txt")"
grep -q "deny->allow" "$WORK/loose.txt" || fail "table without decision changes"
pass "loose candidate allows the must-deny incident: exit 1, table says VIOLATED"

# Errors: a candidate that does not validate names file:line; no --to.
set +e
printf 'version: bad\nladder: {supply_temp: {steps: [{flag: panic}]}}\n' >"$WORK/bad.yaml"
simulate --policy "$WORK/bad.yaml" --against "$WORK/loose.yaml" >/dev/null 2>"$WORK/bad.log"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "bad.yaml:2" "$WORK/bad.log" || fail "bad candidate: exit $rc: $(cat "$WORK/bad.log")"
printf 'incidents:\n  - {rack: r0001, start: yesterday}\n' >"$WORK/bad-inc.yaml"
set +e
simulate --policy "$WORK/strict.yaml" --against "$WORK/loose.yaml" --incidents "$WORK/bad-inc.yaml" \
  >/dev/null 2>"$WORK/bad-inc.log"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "bad-inc.yaml:2: incidents\[0\]" "$WORK/bad-inc.log" \
  || fail "bad incident time: exit $rc: $(cat "$WORK/bad-inc.log")"
pass "a candidate that does not validate, or an incident without a time: exit 2, naming file:line"

# The aggregator was not disturbed: still every frame, still its partitions.
[ "$(applied)" = 10800 ] || fail "aggregator state changed: $(applied)"
grep -q "revoked" "$WORK/aggregator.log" && fail "the backtest took partitions from the aggregator"
"$RP_BIN/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -r 1 -n 1 -s 6 --seq-start 3601 -q
wait_for 30 has_applied 10801 \
  || fail "the aggregator stopped consuming after the backtest: $(applied)"
pass "the running aggregator kept its partitions and went on consuming"
