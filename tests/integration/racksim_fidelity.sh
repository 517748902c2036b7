#!/bin/bash
# Fidelity, per protocol: the agent reads a whole simulated rack (racksim:
# a CDU over Modbus, two PDU feeds over SNMP with PDU2-MIB, four BMCs over
# IPMI, all from one physical model) during a training job with +-30 %
# power swings; the model is held at one instant and every value in the
# agent's frame is compared with the model's ground truth at that instant
# (tools/racksim/fidelity.py: units, scales, word order, decimal digits,
# agent == served within the frame's encoding, served == true within the
# device's resolution; dT = return - supply, heat removed, the power
# balance PDU = servers + losses, the capture ratio). Then: the comparison
# is not vacuous (a word-swapped float read as ABCD and a PDU profile that
# ignores the decimal digits both fail it); the model resumes; the ground
# truth file records every device and the events; SIGTERM tears the whole
# rack down.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/racksim_lib.sh"
FID=("$PY" "$RP_SRC/tools/racksim/fidelity.py")

# Speed 4: the job's ramp (model 20-60 s) takes ~15 s.
start_racksim training --speed 4
rack_until 120 's["t"] >= 70' || fail "the model did not reach t=70 s: $(rack_state 's["t"]')"
hold_and_compare "$WORK/agent.yaml"
t_hold=$(rack_state 's["t"]')
it_kw=$(rack_state '"%.1f" % s["devices"]["rack"]["rack.it_power"]["true"]')
cat "$WORK/fidelity.txt"
for p in modbus snmp ipmi derived; do
  grep -q "^$p  *ok" "$WORK/fidelity.txt" || fail "$p not compared"
done
pass "Modbus, SNMP and IPMI values and dT / heat removed / power balance match the model at t=$t_hold s ($it_kw kW IT load)"

# Not vacuous: the float read in the wrong word order, and outlet currents
# read without their decimal digits, are caught.
sed -e 's/profile: generic-cdu}/profile: generic-cdu, registers: [{name: cdu.heat_load, function: input, address: 4, type: f32, order: ABCD, unit: kW}]}/' \
  -e "s|profiles_dir: [^}]*|profiles_dir: $WORK/profiles|" "$WORK/agent.yaml" >"$WORK/wrong.yaml"
mkdir -p "$WORK/profiles/modbus" "$WORK/profiles/snmp"
cp "$RP_SRC/packaging/profiles/modbus/"*.yaml "$WORK/profiles/modbus/"
$PY - "$RP_SRC/packaging/profiles/snmp/raritan-px.yaml" >"$WORK/profiles/snmp/raritan-px.yaml" <<'PYEOF'
import sys
for line in open(sys.argv[1]):
    if "pdu.outlet.current" in line:
        line = line.replace(" digits: digits,", "")
    sys.stdout.write(line)
PYEOF
grep -q "order: ABCD" "$WORK/wrong.yaml" || fail "could not write the wrong config"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/wrong.yaml" --once >"$WORK/wrong.json" 2>"$WORK/wrong.log" \
  || fail "--once (wrong) exited non-zero: $(tail -5 "$WORK/wrong.log")"
if "${FID[@]}" "$WORK/wrong.json" "$RACK/state.json" >"$WORK/wrong.txt" 2>&1; then
  fail "a wrong word order and missing decimal digits passed: $(cat "$WORK/wrong.txt")"
fi
grep -q "cdu1 cdu.heat_load: agent" "$WORK/wrong.txt" || fail "word order not caught: $(cat "$WORK/wrong.txt")"
grep -q "pdu-a pdu.outlet.current{outlet=1}: agent" "$WORK/wrong.txt" || fail "decimal digits not caught: $(cat "$WORK/wrong.txt")"
grep -q "^ipmi  *ok" "$WORK/wrong.txt" || fail "IPMI should still pass: $(cat "$WORK/wrong.txt")"
pass "a CDAB float read as ABCD and PDU2-MIB currents read without their decimal digits are caught"

# The model resumes; the truth records every device and the events.
rack_control '{hold: false}'
rack_until 30 "s['t'] > $t_hold + 2 and not s['held']" || fail "the model did not resume"
$PY - "$RACK/truth.jsonl" <<'PYEOF' || fail "truth.jsonl is incomplete"
import json, sys
devices, events = set(), []
for line in open(sys.argv[1]):
    r = json.loads(line)
    (events.append(r) if r["quantity"] == "event" else devices.add(r["device"]))
    assert "t" in r and "wall" in r, r
want = {"cdu1", "pdu-a", "pdu-b", "gpu1", "gpu2", "gpu3", "gpu4", "rack"}
assert devices == want, devices
kinds = [(e["source"], next(k for k in e["event"] if k != "at")) for e in events]
assert ("scenario", "job") in kinds and ("control", "hold") in kinds, kinds
PYEOF
pass "the model resumed after the hold; truth.jsonl has every device and the scenario and control events"

[ -n "$(racksim_children)" ] || fail "no snmpd/ipmi_sim found for this rack"
kill -TERM "$RACKSIM_PID"
wait_for 30 sh -c "! kill -0 $RACKSIM_PID 2>/dev/null" || fail "racksim did not exit on SIGTERM"
wait_for 10 sh -c "[ -z \"\$(pgrep -f '[s]nmpd .*$RACK|[i]pmi_sim .*$RACK|[p]du_pass.py $RACK')\" ]" \
  || fail "processes left behind: $(racksim_children | paste -sd' ')"
pass "SIGTERM stopped racksim and every snmpd, ipmi_sim and helper it started"
