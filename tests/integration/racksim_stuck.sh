#!/bin/bash
# A stuck sensor, end to end: racksim's stuck-sensor scenario (the CDU's
# supply temperature sensor sticks at its last value at 25 s, then a
# training job heats the loop) -> agent -> dev broker -> aggregator -> gate.
# The gate allows at first. As the loop heats, the true supply passes the
# policy's 34 degC limit while the served (stuck) one stays at 30.0, so the
# supply_temp check alone passes: it is blind to the fault. The delta_t
# check catches it: dT = return - supply grows past the rack's design 12 K
# (the true dT stays ~7 K) and the gate denies, naming delta_t. The ground
# truth records served 30.0 against the true supply.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/racksim_lib.sh"

start_broker
cat >"$WORK/policy.yaml" <<'YAML'
version: racksim-stuck-1
defaults:
  max_staleness: 10s
  supply_temp: {max: 34, persist: 1}
  delta_t: {enabled: true, min: 0, max: 12, persist: 2}
  alarms: {enabled: true}
racks:
  - {id: sim-r01, pool: sim, row: row-1, breaker_kw: 60, derating: 0.8, cdu_capacity_kw: 80}
YAML
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
start_aggregator
# Speed 4: the job starts at model 30 s (~8 s) and the loop heats for ~40 s.
start_racksim stuck-sensor --speed 4
start_agent "$WORK/agent.yaml"

gate() { curl -s "$URL/v1/racks/sim-r01/gate?kw=1"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
check_of() { field "next(c for c in d['checks'] if c['name']=='$1')$2"; }

wait_for 60 sh -c "curl -s '$URL/v1/racks/sim-r01/gate?kw=1' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow to start with: $(gate)"
pass "allow while the rack idles (t=$(rack_state 's["t"]') s)"

rack_until 150 's["devices"]["rack"]["cdu.delta_t"]["true"] > 5 and s["devices"]["cdu1"]["cdu.supply_temp"]["true"] > 34.5' \
  || fail "the loop did not heat: $(rack_state 's["devices"]["cdu1"]["cdu.supply_temp"]')"
deny_delta_t() {
  gate >"$WORK/g.json"
  [ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] && [ "$(check_of delta_t "['pass']" <"$WORK/g.json")" = False ]
}
wait_for 60 deny_delta_t || fail "no deny on delta_t: $(cat "$WORK/g.json")"
true_supply=$(rack_state '"%.1f" % s["devices"]["cdu1"]["cdu.supply_temp"]["true"]')
true_dt=$(rack_state '"%.1f" % s["devices"]["rack"]["cdu.delta_t"]["true"]')
[ "$(check_of supply_temp "['pass']" <"$WORK/g.json")" = True ] \
  || fail "supply_temp should pass on the stuck value: $(cat "$WORK/g.json")"
seen=$(check_of supply_temp "['observed']" <"$WORK/g.json")
$PY -c "import sys; sys.exit(0 if abs(float('$seen') - 30.0) < 0.05 else 1)" \
  || fail "supply_temp observed $seen, not the stuck 30.0"
dt_seen=$(check_of delta_t "['observed']" <"$WORK/g.json")
$PY -c "import sys; sys.exit(0 if float('$dt_seen') > 12 and float('$true_dt') < 12 else 1)" \
  || fail "delta_t observed $dt_seen, true $true_dt"
pass "deny on delta_t ($dt_seen K served vs $true_dt K true); supply_temp passed on the stuck $seen degC while the true supply was $true_supply degC > 34"

$PY - "$RACK/truth.jsonl" <<'PYEOF' || fail "the truth does not show the stuck sensor"
import json, sys
last = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["device"] == "cdu1" and r["quantity"] == "cdu.supply_temp":
        last = r
assert last["served"] == 30.0 and last["true"] > 34, last
PYEOF
pass "truth.jsonl: cdu.supply_temp served 30.0 while true > 34"
