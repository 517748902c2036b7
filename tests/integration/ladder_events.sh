#!/bin/bash
# The escalation ladder (issue 23) through the real peers: a simulated CDU
# (cdu_sim.py --control) -> agent -> dev broker -> aggregator with a policy
# whose supply_temp ladder has steps of seconds. A supply excursion raises
# scale-back, then pause-admissions, then evacuate on the rack and on the
# other rack of its cooling loop (not on the rack of another loop), each a
# SET event on rackpulse.events in that order; back in band, all clear after
# clear_after (CLEARED events). An operator's flag that expires publishes
# its CLEARED event. The thermal SLO is served at /v1/slo and in /metrics.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/events_lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
write_agent_config "$WORK/agent.yaml" a01 "$CDU"
cat >"$WORK/policy.yaml" <<'YAML'
version: ladder-test
defaults:
  max_staleness: 5s
  supply_temp: {max: 40}
ladder:
  supply_temp:
    clear_after: 3s
    min_hold: 1s
    steps:
      - {flag: scale-back, after: 0s}
      - {flag: pause-admissions, after: 3s}
      - {flag: evacuate, after: 6s, target: loop}
slo:
  - {name: supply-hot, check: supply_temp, above: 40, period: 1h, budget: 1m, recovery: 1m}
racks:
  - {id: a01, loop: l1, row: r1}
  - {id: a02, loop: l1, row: r1}
  - {id: b01, loop: l2, row: r1}
YAML
umask 077
echo "ladder-token-for-tests" >"$WORK/token"
umask 022
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_EXTRA="flags: {min_hold: 1s}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_aggregator
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=1' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow at 30 degC to start with"

cdu_set "$CDU" '{"supply_temp": 47.0, "return_temp": 57.0, "flow": 120.0}'
# Wait on the flags in force and on the number of events (cheap), then
# decode the events once (a protoc run each).
event_count() { kcat -C -b "$BOOTSTRAP" -t rackpulse.events -o beginning -e -q -f '%k\n' 2>/dev/null | wc -l; }
has_events() { [ "$(event_count)" -ge "$1" ]; }
flag_count() { curl -s "$URL/v1/flags" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(len(d["flags"] if isinstance(d, dict) else d))'; }
has_flags() { [ "$(flag_count)" = "$1" ]; }
wait_for 60 has_flags 4 || fail "not 4 flags in force: $(curl -s "$URL/v1/flags")"
wait_for 30 has_events 4 || fail "not 4 events: $(decode_events)"
decode_events >"$WORK/set.txt"
grep -q 'rack_id: "a02" flag: "evacuate" action: SET' "$WORK/set.txt" \
  || fail "no evacuate on a02 (loop l1): $(cat "$WORK/set.txt")"
# The rack's own steps, in order, each with its step's flag.
order=$(grep 'action: SET' "$WORK/set.txt" | grep 'rack_id: "a01"' | sed -E 's/.*flag: "([a-z-]+)".*/\1/' | tr '\n' ' ')
[ "$order" = "scale-back pause-admissions evacuate " ] || fail "a01's SET events out of order: '$order'"
grep -q 'rack_id: "b01"' "$WORK/set.txt" && fail "b01 (loop l2) was flagged: $(cat "$WORK/set.txt")"
grep -q 'rack_id: "a01" flag: "scale-back" action: SET.*check: "supply_temp" observed: 47' "$WORK/set.txt" \
  || fail "scale-back SET does not name supply_temp at 47: $(cat "$WORK/set.txt")"
curl -s "$URL/v1/flags" >"$WORK/flags.json"
$PY - "$WORK/flags.json" <<'PYEOF' || fail "flags in force: $(cat "$WORK/flags.json")"
import json, sys
d = json.load(open(sys.argv[1]))
fl = d["flags"] if isinstance(d, dict) else d
have = sorted((f["rack"], f["flag"], f.get("step")) for f in fl)
want = [("a01", "evacuate", 3), ("a01", "pause-admissions", 2), ("a01", "scale-back", 1), ("a02", "evacuate", 3)]
sys.exit(0 if have == want else 1)
PYEOF
pass "supply 47 > 40: scale-back, pause-admissions, evacuate SET in order on a01; evacuate on a02 (loop l1), none on b01"

curl -s "$URL/v1/slo" >"$WORK/slo.json"
[ "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); o=[o for o in d["objectives"] if o["rack"]=="a01"][0]; print(o["in_burst"] and o["time_above_s"] > 0)' "$WORK/slo.json")" = True ] \
  || fail "/v1/slo does not show a01's burst: $(cat "$WORK/slo.json")"
grep -q 'rackpulse_slo_time_above_seconds{rack="a01",objective="supply-hot"}' <<<"$(curl -s "$URL/metrics")" \
  || fail "no rackpulse_slo_time_above_seconds in /metrics"
pass "/v1/slo and /metrics show the supply-hot SLO burning on a01"

cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
wait_for 60 has_flags 0 || fail "flags still in force: $(curl -s "$URL/v1/flags")"
wait_for 30 has_events 8 || fail "not every flag cleared: $(decode_events)"
decode_events >"$WORK/all.txt"
[ "$(grep -c 'action: CLEARED' "$WORK/all.txt")" = 4 ] || fail "CLEARED events: $(grep CLEARED "$WORK/all.txt")"
# Partitions interleave in kcat's output: compare event times, and a01's
# own events (one partition, keyed by rack) in log order.
ts_of() { grep "action: $1" "$WORK/all.txt" | sed -E 's/.*ts_ms: ([0-9]+).*/\1/' | sort -n; }
[ "$(ts_of CLEARED | head -1)" -gt "$(ts_of SET | tail -1)" ] \
  || fail "a flag cleared while the breach went on: $(cat "$WORK/all.txt")"
a01=$(grep 'rack_id: "a01"' "$WORK/all.txt" | sed -E 's/.*action: ([A-Z]+).*/\1/' | tr '\n' ' ')
[ "$a01" = "SET SET SET CLEARED CLEARED CLEARED " ] || fail "a01's events: $a01"
pass "back at 30: the four flags CLEARED after the breach (clear_after 3s)"

# An operator's flag that expires announces it.
export RACKPULSE_TOKEN_FILE="$WORK/token"
ctl flags set --rack b01 --flag maintenance --owner ops --for 1s --reason "ladder test" >/dev/null \
  || fail "flags set"
wait_for 30 has_flags 0 || fail "the maintenance flag did not expire: $(curl -s "$URL/v1/flags")"
wait_for 30 has_events 10 || fail "no event for the expired flag: $(decode_events)"
decode_events >"$WORK/expired.txt"
grep -q 'rack_id: "b01" flag: "maintenance" action: CLEARED' "$WORK/expired.txt" \
  || fail "no CLEARED event for the expired maintenance flag: $(cat "$WORK/expired.txt")"
pass "an expired operator flag publishes its CLEARED event"
