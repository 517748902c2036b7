#!/bin/bash
# A rack made only of Redfish devices feeds the aggregator and its gate,
# through the real peers: two compute trays, a power shelf, a CDU
# (ThermalEquipment/CDUs/1, with the contoso-cdu OEM profile) and a rack
# PDU (PowerEquipment/RackPDUs/1), each its own HTTPS service of
# tools/redfishsim with sessions and a verified certificate -> the agent
# -> the dev broker -> the aggregator -> the gate.
#  1. The gate allows, with the CDU's supply temperature and the PDU's
#     mains power (summed over its inlets, W -> kW) as its observations;
#     trays, shelf and OEM readings are in the rack state with the metric
#     names the other protocols use.
#  2. The CDU's supply temperature above the limit -> deny (supply_temp);
#     a leak detector in Critical -> deny (alarms); the PDU's draw up ->
#     deny (power_headroom).
#  3. An absent reading (Reading: null) is a status, not a zero: the
#     supply_temp check fails closed naming it.
#  4. The simulator stopped: every device is down with its address and
#     the gate fails closed.
#  5. The password and the session tokens are in no argv, log or frame.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redfish_lib.sh"

start_broker
start_redfishsim r tray:tray1 tray:tray2 shelf:shelf1 cdu:cdu1 pdu:pdu1
{
  echo "agent: {id: agent-rf1, rack: rf1, interval: 1s, state_dir: $WORK/state, profiles_dir: $RP_SRC/packaging/profiles}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", linger: 5ms}"
  echo "redfish:"
  for d in tray1 tray2 shelf1 pdu1; do rf_device r "$d" "timeout: 2s"; done
  rf_device r cdu1 "timeout: 2s, profile: contoso-cdu"
} >"$WORK/agent.yaml"
cat >"$WORK/policy.yaml" <<'YAML'
version: redfish-1
defaults:
  max_staleness: 5s
  supply_temp: {series: cdu.supply_temp, stat: latest, across: max, max: 40}
  alarms: {enabled: true}
  flow: {enabled: true, series: cdu.flow, min: 50}
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
racks:
  - {id: rf1, breaker_kw: 60, derating: 1.0}
YAML
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
start_aggregator
start_agent "$WORK/agent.yaml"

gate() { curl -sf "$URL/v1/racks/rf1/gate?kw=10" >"$WORK/gate.json"; }
# check_is CHECK pass|fail: one check's outcome (the automatic flags a
# denial raises keep the decision at deny for a while after).
check_is() {
  gate || return 1
  $PY - "$WORK/gate.json" "$@" <<'PYEOF'
import json, sys
g = json.load(open(sys.argv[1]))
c = {c["name"]: c for c in g["checks"]}[sys.argv[2]]
sys.exit(0 if c["pass"] == (sys.argv[3] == "pass") else 1)
PYEOF
}
# decision_is ALLOW|DENY [CHECK]: the gate's decision, and the failing check.
decision_is() {
  gate || return 1
  $PY - "$WORK/gate.json" "$@" <<'PYEOF'
import json, sys
g = json.load(open(sys.argv[1]))
want = sys.argv[2]
if g["decision"] != want:
    sys.exit(1)
if len(sys.argv) > 3:
    c = {c["name"]: c for c in g["checks"]}[sys.argv[3]]
    sys.exit(0 if not c["pass"] else 1)
PYEOF
}

# 1. Allow, with the values the simulator serves.
wait_for 40 decision_is allow || fail "gate never allowed: $(cat "$WORK/gate.json" 2>/dev/null)"
curl -sf "$URL/v1/racks/rf1" >"$WORK/rack.json" || fail "GET /v1/racks/rf1"
$PY - "$WORK/gate.json" "$WORK/rack.json" <<'PYEOF' || fail "gate or rack state wrong: $(cat "$WORK/gate.json")"
import json, sys
g = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
c = {c["name"]: c for c in g["checks"]}
assert abs(c["supply_temp"]["observed"] - 30.0) < 1e-9, c["supply_temp"]
assert abs(c["flow"]["observed"] - 120.0) < 1e-9, c["flow"]
assert c["alarms"]["pass"], c["alarms"]
p = c["power_headroom"]
assert p["pass"], p
s = r["series"]
def v(k):
    assert k in s, (k, sorted(s)[:60])
    return s[k]["value"]
assert v("server.power@tray1") == 5200 and s["server.power@tray1"]["unit"] == "W"
assert v("gpu.temp{gpu=3}@tray2") == 63.5
assert v("server.inlet_temp@tray1") == 24.0
assert v("psu.input_power{psu=1}@tray1") == 2590
assert v("shelf.power@shelf1") == 31500
assert v("cdu.return_temp@cdu1") == 40.0 and s["cdu.flow@cdu1"]["unit"] == "L/min"
assert v("cdu.pump_speed{pump=2}@cdu1") == 61.0
assert v("cdu.alarms{alarm=leak,detector=1}@cdu1") == 0
assert v("cdu.valve_position@cdu1") == 45.0          # the profile's OEM reading
assert v("pdu.power{inlet=2}@pdu1") == 20500 and s["pdu.power{inlet=2}@pdu1"]["unit"] == "W"
assert v("pdu.outlet.power{outlet=12}@pdu1") == 450
for d in ("tray1", "tray2", "shelf1", "cdu1", "pdu1"):
    assert r["devices"][d]["up"] is True, r["devices"]
PYEOF
pass "a rack of Redfish devices: the gate allows on the CDU's and PDU's values; trays, shelf and OEM readings arrive"

# Connections are kept alive between scrapes: a tray's service sees far
# fewer TLS connections than requests.
reuse() {
  rf_stats r tray1 >"$WORK/stats-tray1.json" || return 1
  $PY - "$WORK/stats-tray1.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["requests"] >= 20 and s["connections"] * 4 <= s["requests"], s
assert s["expand"] >= 1 and s["logins"] == 1, s
PYEOF
}
wait_for 30 reuse || fail "no connection reuse: $(cat "$WORK/stats-tray1.json")"
pass "keep-alive: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%d requests over %d connections" % (s["requests"], s["connections"]))' "$WORK/stats-tray1.json") to tray1, one login, \$expand used"

# 2. Denials, each naming its check.
rf_set r '{"cdu1": {"values": {"supply_temp": 44.2, "return_temp": 54.0}}}'
wait_for 30 check_is supply_temp fail || fail "no deny on supply_temp: $(cat "$WORK/gate.json")"
grep -q '"observed":44.2' "$WORK/gate.json" || fail "supply_temp observed is not 44.2: $(cat "$WORK/gate.json")"
rf_set r '{"cdu1": {"values": {"leak": true}}}'
wait_for 30 check_is alarms fail || fail "no deny on a leak: $(cat "$WORK/gate.json")"
rf_set r '{"pdu1": {"values": {"inlets": [{"power": 27000, "current": 39, "voltage": 400, "energy": 1},
                                          {"power": 27000, "current": 39, "voltage": 400, "energy": 1}]}}}'
wait_for 30 check_is power_headroom fail || fail "no deny on power: $(cat "$WORK/gate.json")"
rf_set r '{}'
for c in supply_temp alarms power_headroom; do
  wait_for 30 check_is "$c" pass || fail "$c did not pass after the values came back: $(cat "$WORK/gate.json")"
done
pass "supply temperature, a leak detector and the PDU's draw each deny, naming the check"

# 3. An absent reading is a status and fails closed.
rf_set r '{"cdu1": {"values": {"supply_temp": null}}}'
wait_for 30 check_is supply_temp fail || fail "an absent supply temperature did not deny: $(cat "$WORK/gate.json")"
$PY - "$WORK/gate.json" <<'PYEOF' || fail "the absent reading was not named: $(cat "$WORK/gate.json")"
import json, sys
g = json.load(open(sys.argv[1]))
c = {c["name"]: c for c in g["checks"]}["supply_temp"]
assert c.get("observed") in (None, 0) or c["observed"] != c["observed"] or "reason" in c, c
assert "cdu1" in json.dumps(c), c
PYEOF
rf_set r '{}'
wait_for 30 check_is supply_temp pass || fail "supply_temp did not pass after the reading came back"
pass "Reading: null is a status: supply_temp fails closed naming cdu1"

# 5 (before the simulator goes). Secrets: argv, logs, frames.
rf_stats r cdu1 >"$WORK/stats-cdu1.json"
TOKENS=$($PY -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["tokens"]))' "$WORK/stats-cdu1.json")
[ -n "$TOKENS" ] || fail "the agent made no session on cdu1"
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -f '%s' >"$WORK/frames.bin" 2>/dev/null \
  || fail "kcat could not read the topic"
tr '\0' ' ' <"/proc/$AGENT_PID/cmdline" >"$WORK/argv.txt"
for s in "$RF_PASSWORD" $TOKENS; do
  for f in "$WORK/argv.txt" "$WORK/agent.log" "$WORK/agent.out" "$WORK/frames.bin" "$WORK/aggregator.log"; do
    if grep -aqF "$s" "$f"; then fail "a secret is in $(basename "$f")"; fi
  done
done
pass "the password and $(echo "$TOKENS" | wc -w) session token(s) are in no argv, log or frame"

# 4. The simulator stopped: devices down, the gate fails closed.
kill "$RF_PID_r"
wait_for 30 sh -c "curl -sf '$URL/v1/racks/rf1' | $PY -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if all(not d[\"up\"] for d in r[\"devices\"].values()) else 1)'" \
  || fail "devices not all down: $(curl -s "$URL/v1/racks/rf1")"
curl -s "$URL/v1/racks/rf1" | grep -q "127.0.0.1:$(rf_port r cdu1)" || fail "the CDU's error does not name its address"
for c in supply_temp alarms power_headroom; do
  wait_for 30 check_is "$c" fail || fail "$c did not fail closed: $(cat "$WORK/gate.json")"
  grep -q "of device [a-z0-9]*: stale" "$WORK/gate.json" || fail "$c: no stale device named"
done
grep -q '"decision":"deny"' "$WORK/gate.json" || fail "the gate did not deny"
kill -0 "$AGENT_PID" || fail "the agent stopped when its devices went away"
pass "simulator stopped: every device down with its address; the gate fails closed"
