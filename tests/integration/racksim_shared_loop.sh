#!/bin/bash
# Two racks on one CDU loop (racksim --racks 2, the shared-loop scenario),
# one agent each, both reading the shared CDU: sim-r01 idles while a
# training job on sim-r02 heats the loop. sim-r01's gate denies on
# supply_temp although its own power headroom is ample: the heat is its
# neighbour's. Then, held at one instant, each agent's frame matches the
# truth for its own rack's devices and the shared CDU (fidelity.py).
# The policy names each rack's racksim PDUs as feeds A and B (N+N, phases,
# branch breakers: racksim's PDUs have one over-current protector a phase,
# rated here like the phase, 63 A) and the loop's CDU capacity: the gate
# reads phase and branch currents from racksim's PDUs, and the loop's
# heat, reported by both racks' agents from the one CDU, counts once at
# loop level.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/racksim_lib.sh"

start_broker
cat >"$WORK/policy.yaml" <<'YAML'
version: racksim-loop-1
defaults:
  max_staleness: 10s
  power_margin_kw: 2
  supply_temp: {max: 32, persist: 2}
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
loops:
  loop-1: {cdu_capacity_kw: 150}
racks:
  - {id: sim-r01, pool: sim, row: row-1, loop: loop-1, breaker_kw: 60, derating: 0.8, cdu_capacity_kw: 80,
     feed_a: r01-pdu-a, feed_b: r01-pdu-b, feed_kw: 60, phase_amps: 63, branch_amps: 63}
  - {id: sim-r02, pool: sim, row: row-1, loop: loop-1, breaker_kw: 60, derating: 0.8, cdu_capacity_kw: 80,
     feed_a: r02-pdu-a, feed_b: r02-pdu-b, feed_kw: 60, phase_amps: 63, branch_amps: 63}
YAML
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
start_aggregator
start_racksim shared-loop --speed 4
[ "${#AGENT_CONFIGS[@]}" = 2 ] || fail "expected two agent configs, got ${AGENT_CONFIGS[*]}"
for c in "${AGENT_CONFIGS[@]}"; do
  "$RP_BIN/agent/rackpulse-agent" -c "$c" >/dev/null 2>"$WORK/agent-$(basename "$c" .yaml).log" &
  PIDS+=($!)
done

gate() { curl -s "$URL/v1/racks/$1/gate?kw=5"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
check_of() { field "next(c for c in d['checks'] if c['name']=='$1')$2"; }
allows() { gate "$1" | grep -q '"decision":"allow"'; }

wait_for 60 allows sim-r01 || fail "sim-r01: no allow to start with: $(gate sim-r01)"
wait_for 60 allows sim-r02 || fail "sim-r02: no allow to start with: $(gate sim-r02)"
pass "both racks on the loop allow while idle"

r01_denies_hot() {
  gate sim-r01 >"$WORK/g.json"
  [ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] && [ "$(check_of supply_temp "['pass']" <"$WORK/g.json")" = False ]
}
wait_for 120 r01_denies_hot || fail "sim-r01 was not denied on the loop's supply: $(cat "$WORK/g.json")"
[ "$(check_of power_headroom "['pass']" <"$WORK/g.json")" = True ] || fail "sim-r01's power should pass: $(cat "$WORK/g.json")"
own=$(rack_state '"%.1f" % s["devices"]["r01-rack"]["rack.it_power"]["true"]')
other=$(rack_state '"%.1f" % s["devices"]["r02-rack"]["rack.it_power"]["true"]')
sup=$(check_of supply_temp "['observed']" <"$WORK/g.json")
$PY -c "import sys; sys.exit(0 if float('$own') < 10 < float('$other') else 1)" || fail "loads: sim-r01 $own kW, sim-r02 $other kW"
pass "sim-r01 ($own kW, idle) denied on supply_temp $sup degC > 32 heated by sim-r02 ($other kW) on the same loop; its power headroom passes"

# The loop's heat at sim-r01 is the one CDU's (sim-r02's work), once.
gate sim-r02 >"$WORK/g2.json"
heat=$(rack_state '"%.2f" % s["devices"]["rack"]["cdu.heat_removed"]["true"]')
$PY - "$WORK/g.json" "$WORK/g2.json" "$heat" <<'PYEOF' || fail "loop and feed checks: $(cat "$WORK/g.json" "$WORK/g2.json")"
import json, sys
r1, r2 = (json.load(open(p)) for p in sys.argv[1:3])
truth = float(sys.argv[3])
c1 = {c["name"]: c for c in r1["checks"]}
c2 = {c["name"]: c for c in r2["checks"]}
loop = c1["loop_thermal"]
assert loop["loop"] == "loop-1" and loop["racks"] == 2, loop
# one CDU: its heat once (twice would be about 2x the truth)
assert abs(loop["heat_removed_kw"] - truth) <= 0.25 * truth + 1, (loop, truth)
assert abs(loop["observed"] - (150 - loop["heat_removed_kw"] - loop["pending_kw"])) < 1e-6, loop
# racksim's PDUs at the gate: sim-r02's phases and branches carry its job
for name in ("phase_current", "branch_current", "feed_power"):
    assert isinstance(c2[name]["observed"], float), c2[name]
assert c2["phase_current"]["worst_a"] > c1["phase_current"]["worst_a"] > 0, (c1["phase_current"], c2["phase_current"])
assert [f["pdu"] for f in c2["feed_power"]["feeds"]] == ["r02-pdu-a", "r02-pdu-b"], c2["feed_power"]
PYEOF
pass "loop_thermal at sim-r01 counts the shared CDU's $heat kW once; sim-r02's phase/branch/feed checks read racksim's PDUs"

for c in "${AGENT_CONFIGS[@]}"; do
  hold_and_compare "$c"
  grep -q "^modbus  *ok" "$WORK/fidelity.txt" && grep -q "^snmp  *ok" "$WORK/fidelity.txt" \
    && grep -q "^ipmi  *ok" "$WORK/fidelity.txt" || fail "$c: $(cat "$WORK/fidelity.txt")"
done
pass "held: each rack's agent reads its own PDUs and BMCs and the shared CDU as the model served them"
