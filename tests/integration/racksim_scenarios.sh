#!/bin/bash
# Failure scenarios driven live through racksim's control file, end to end
# (racksim -> agent -> dev broker -> aggregator -> gate and flags):
#  1. PDU feed B lost: its power and voltages read 0 through SNMP, every
#     server's PSU2 reads 0 W through IPMI, feed A carries the whole load
#     (= the servers' power + PDU losses). The gate still allows: the rack's
#     power sum is unchanged and no check watches redundancy (said here, so
#     a change to that is a decision).
#  2. A leak: the CDU's leak alarm bit -> the gate denies on `alarms` and the
#     aggregator raises the automatic `evacuate` flag; the reservoir level
#     falls in the truth and in the frames. Leak fixed -> the alarm clears,
#     the flag clears after its hold and the gate allows again.
#  3. A BMC hangs (its ipmi_sim is stopped): that server is down in the rack
#     state with the reason, the others stay up, the gate still allows (power
#     comes from the PDUs); resumed, it is up again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/racksim_lib.sh"

start_broker
cat >"$WORK/policy.yaml" <<'YAML'
version: racksim-scen-1
defaults:
  max_staleness: 10s
  power_margin_kw: 2
  supply_temp: {max: 40}
  alarms: {enabled: true}
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
racks:
  - {id: sim-r01, pool: sim, row: row-1, breaker_kw: 60, derating: 0.8, cdu_capacity_kw: 80}
YAML
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_EXTRA="flags: {min_hold: 2s}"
start_aggregator
start_racksim idle --speed 2
start_agent "$WORK/agent.yaml"
rack_control '{job: {util: 0.3}}'

gate() { curl -s "$URL/v1/racks/sim-r01/gate?kw=5"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# latest NAME DEVICE [LABELS]: the aggregator's latest value of a series.
cat >"$WORK/latest.py" <<'PYEOF'
import json, sys, urllib.request
rack = json.load(urllib.request.urlopen(sys.argv[1]))
name, device, labels = sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else ""
for key, s in rack["series"].items():
    base, _, dev = key.rpartition("@")
    n, _, lab = base.partition("{")
    if n == name and dev == device and lab.rstrip("}").replace('"', "") == labels:
        print(s["value"]); sys.exit(0)
sys.exit(1)
PYEOF
latest() { $PY "$WORK/latest.py" "$URL/v1/racks/sim-r01" "$@"; }

wait_for 60 sh -c "curl -s '$URL/v1/racks/sim-r01/gate?kw=5' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow to start with: $(gate)"
wait_for 30 sh -c "[ \"\$($PY $WORK/latest.py $URL/v1/racks/sim-r01 psu.input_power gpu1 psu=2 | cut -d. -f1)\" -gt 1000 ]" \
  || fail "the job did not reach the servers: $(latest psu.input_power gpu1 psu=2)"
pass "allow at 30 % load with both feeds up"

# --- 1. feed B lost ----------------------------------------------------------
rack_control '{feed: {pdu: pdu-b, up: false}}'
feed_b_down() {
  [ "$(latest pdu.power pdu-b inlet=1)" = 0.0 ] && [ "$(latest pdu.phase.voltage pdu-b phase=1)" = 0.0 ] &&
    for n in 1 2 3 4; do [ "$(latest psu.input_power gpu$n psu=2)" = 0.0 ] || return 1; done
}
wait_for 60 feed_b_down || fail "feed B not seen lost: pdu-b $(latest pdu.power pdu-b inlet=1) W, gpu1 PSU2 $(latest psu.input_power gpu1 psu=2) W"
# Feed A carries every server: its inlet = sum of server power x 1.004 + 18 W
# (within the PSU readings' 20 W steps and one second of load movement).
wait_for 30 $PY - "$URL/v1/racks/sim-r01" <<'PYEOF' || fail "feed A does not carry the load"
import json, sys, urllib.request
rack = json.load(urllib.request.urlopen(sys.argv[1]))
v = {k: s["value"] for k, s in rack["series"].items()}
a = next(x for k, x in v.items() if k.startswith("pdu.power") and k.endswith("@pdu-a"))
srv = sum(x for k, x in v.items() if k.startswith("server.power") and "@gpu" in k)
assert abs(a - (srv * 1.004 + 18)) < 120, (a, srv)
PYEOF
gate >"$WORK/g.json"
[ "$(field 'd["decision"]' <"$WORK/g.json")" = allow ] || fail "a lost feed should not deny by itself: $(cat "$WORK/g.json")"
pass "feed B lost: pdu-b reads 0 W / 0 V, every PSU2 0 W, pdu-a carries the servers + losses; the gate still allows (no check watches redundancy)"
rack_control '{feed: {pdu: pdu-b, up: true}}'
wait_for 60 sh -c "[ \"\$($PY $WORK/latest.py $URL/v1/racks/sim-r01 pdu.phase.voltage pdu-b phase=1)\" = 230.0 ]" \
  || fail "feed B did not come back"

# --- 2. a leak -----------------------------------------------------------------
rack_control '{set: {leak_lpm: 0.5}}'
deny_alarm() {
  gate >"$WORK/g.json"
  [ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] &&
    [ "$(field "next(c for c in d['checks'] if c['name']=='alarms')['pass']" <"$WORK/g.json")" = False ]
}
wait_for 60 deny_alarm || fail "no deny on alarms: $(cat "$WORK/g.json")"
wait_for 30 sh -c "curl -s '$URL/v1/flags?rack=sim-r01' | grep -q '\"evacuate\"'" \
  || fail "no evacuate flag: $(curl -s "$URL/v1/flags?rack=sim-r01")"
[ "$(latest cdu.alarms cdu1 alarm=leak)" = 1.0 ] || fail "leak bit: $(latest cdu.alarms cdu1 alarm=leak)"
lvl0=$(latest cdu.level cdu1)
wait_for 60 sh -c "[ \"\$($PY $WORK/latest.py $URL/v1/racks/sim-r01 cdu.level cdu1)\" != '$lvl0' ]" \
  || fail "the reservoir level did not fall from $lvl0"
pass "leak: alarms check denies, automatic evacuate flag raised, reservoir level falls ($lvl0 -> $(latest cdu.level cdu1) %)"

rack_control '{set: {leak_lpm: 0.0}}'
wait_for 60 sh -c "curl -s '$URL/v1/racks/sim-r01/gate?kw=5' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow after the leak was fixed: $(gate)"
wait_for 30 sh -c "! curl -s '$URL/v1/flags?rack=sim-r01' | grep -q '\"evacuate\"'" \
  || fail "evacuate flag not cleared: $(curl -s "$URL/v1/flags?rack=sim-r01")"
pass "leak fixed: the alarm clears, the evacuate flag clears, the gate allows"

# --- 3. a BMC that hangs ----------------------------------------------------------
rack_control '{bmc: {server: gpu2, hang: true}}'
dev_up() { curl -s "$URL/v1/racks/sim-r01" | field "d['devices']['$1']['up']"; }
gpu2_is() { [ "$(dev_up gpu2)" = "$1" ]; }
wait_for 60 gpu2_is False || fail "gpu2 not down: $(curl -s "$URL/v1/racks/sim-r01" | field "d['devices']['gpu2']")"
err=$(curl -s "$URL/v1/racks/sim-r01" | field "d['devices']['gpu2']['last_error']")
case $err in *"no answer"*) ;; *) fail "gpu2's error does not say it did not answer: $err" ;; esac
[ "$(dev_up gpu1)" = True ] || fail "gpu1 should stay up"
gate >"$WORK/g.json"
[ "$(field 'd["decision"]' <"$WORK/g.json")" = allow ] || fail "a hung BMC should not deny here: $(cat "$WORK/g.json")"
rack_control '{bmc: {server: gpu2, hang: false}}'
wait_for 60 gpu2_is True || fail "gpu2 did not come back: $(curl -s "$URL/v1/racks/sim-r01" | field "d['devices']['gpu2']")"
pass "a hung BMC: gpu2 down with '$err', the others up, the gate still allows (its power comes from the PDUs); it comes back up"
