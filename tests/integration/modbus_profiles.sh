#!/bin/bash
# Modbus register maps as data: the shipped generic-cdu profile read from the
# CDU simulator (tools/cdu_sim.py serves that map), with inline entries that
# replace a profile entry by name and add one; both shipped profiles pass
# --check-config; a profile's device defaults apply unless the device sets
# its own; errors name the profile file and line, and documented 1-based
# notation (address_base 1) is said to be so.
source "$(dirname "$0")/lib.sh"
PROFILES="$RP_SRC/packaging/profiles"

CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 27.3, "return_temp": 37.9, "flow": 131.2, "level": 64, "pump_fault": 1}'
sleep 0.5

# 1. generic-cdu from the simulator; cdu.level replaced inline (scale 0.5),
#    cdu.extra added inline (0-based: input 3 = the dp word, 85 kPa).
cat >"$WORK/agent.yaml" <<YAML
agent: {id: t, rack: rp, interval: 1s, state_dir: $WORK/state, profiles_dir: $PROFILES}
kafka: {brokers: "127.0.0.1:1"}
modbus:
  - name: cdu1
    host: 127.0.0.1
    port: $CDU
    profile: generic-cdu
    registers:
      - {name: cdu.level, function: input, address: 6, type: u16, scale: 0.5, unit: "%"}
      - {name: cdu.extra, function: input, address: 3, type: u16, unit: kPa}
YAML
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame.json" \
  2>"$WORK/agent.log" || fail "--once exited non-zero"
$PY - "$WORK/frame.json" <<'PYEOF' || fail "generic-cdu: $(cat "$WORK/frame.json")"
import json, math, sys
f = json.load(open(sys.argv[1]))
assert f["devices"][0]["up"], f["devices"]
names = {s["id"]: (s["name"], s["labels"]) for s in f["dictionary"]}
units = {s["name"]: s["unit"] for s in f["dictionary"]}
got = {names[s["series"]][0]: s["value"] for s in f["samples"] if not names[s["series"]][1]}
alarms = {names[s["series"]][1]["alarm"]: s["value"] for s in f["samples"]
          if names[s["series"]][1]}
want = {"cdu.supply_temp": 27.3, "cdu.return_temp": 37.9, "cdu.flow": 131.2, "cdu.dp": 85,
        "cdu.level": 32, "cdu.extra": 85, "cdu.pump_speed": 62.5, "cdu.supply_pressure": 0,
        "cdu.pump1_speed": 0, "cdu.valve_position": 0, "cdu.facility_supply_temp": 0}
for k, v in want.items():
    assert k in got and math.isclose(got[k], v, abs_tol=1e-9), (k, got.get(k), v)
q = 995.6 * 4.18 * (37.9 - 27.3) * 131.2 / 60000
assert math.isclose(got["cdu.heat_load"], q, abs_tol=1e-3), (got["cdu.heat_load"], q)
assert alarms["leak"] == 0 and alarms["pump_fault"] == 1 and alarms["power_fault"] == 0, alarms
assert units["cdu.supply_temp"] == "Cel" and units["cdu.flow"] == "L/min", units
assert len(got) == 17 and not f["statuses"], (len(got), f["statuses"])
PYEOF
pass "generic-cdu (documented 30001.. notation) read from cdu_sim; inline cdu.level replaced, cdu.extra added"

# 2. Both shipped profiles are valid.
cat >"$WORK/check.yaml" <<YAML
agent: {rack: rp, profiles_dir: $PROFILES}
modbus:
  - {name: a, host: 127.0.0.1, profile: generic-cdu}
  - {name: b, transport: rtu, device: /dev/ttyUSB0, profile: liebert-xdu-style}
YAML
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/check.yaml" --check-config >"$WORK/check.out" 2>&1 \
  || fail "shipped profiles: $(cat "$WORK/check.out")"
pass "shipped profiles generic-cdu and liebert-xdu-style are valid"

# 3. Errors: each names where it is; exit status 2.
mkdir -p "$WORK/profiles/modbus"
printf 'address_base: 1\nregisters:\n  - {name: a, function: input, address: 30001}\n  - {name: b, function: input, address: 40002}\n' \
  >"$WORK/profiles/modbus/base1.yaml"
printf 'registers:\n  - {name: a, function: input, address: 0}\n\n  - {name: b, type: u17, address: 1}\n' \
  >"$WORK/profiles/modbus/badtype.yaml"
printf 'max_regs: 1\nregisters:\n  - {name: a, function: input, address: 0, type: u32}\n' \
  >"$WORK/profiles/modbus/small.yaml"
check() { # check PROFILE [extra device lines] -> $WORK/err.txt, returns the exit status
  { echo "agent: {rack: rp, profiles_dir: $WORK/profiles}"
    echo "modbus:"
    echo "  - name: d"
    echo "    host: 127.0.0.1"
    echo "    profile: $1"
    [ $# -gt 1 ] && echo "$2"
  } >"$WORK/bad.yaml"
  local rc=0
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/bad.yaml" --check-config >"$WORK/err.txt" 2>&1 || rc=$?
  return $rc
}
expect_error() { # expect_error PROFILE EXTRA MESSAGE
  local rc=0
  check "$1" "$2" || rc=$?
  [ "$rc" -eq 2 ] || fail "profile $1: exit $rc, want 2: $(cat "$WORK/err.txt")"
  grep -qF -- "$3" "$WORK/err.txt" || fail "profile $1: want '$3', got: $(cat "$WORK/err.txt")"
}
expect_error nosuch "" "bad.yaml:5: modbus[0].profile: $WORK/profiles/modbus/nosuch.yaml: No such file"
expect_error ../etc/passwd "" "bad.yaml:5: modbus[0].profile: profile '../etc/passwd': a name is"
expect_error badtype "" "$WORK/profiles/modbus/badtype.yaml:4: registers[1]: type 'u17' is not one of"
expect_error base1 "" "base1.yaml:4: registers[1]: address 40002: with address_base 1 (documented 1-based numbers) an input register is 30001..39999"
expect_error small "" "registers with profile small: register a @ input 0: u32 needs 2 words, max_regs_per_request is 1"
check small "    max_regs: 2" || fail "the device's max_regs did not override the profile's: $(cat "$WORK/err.txt")"
pass "profile errors name the file and line (missing, bad name, bad type, 1-based notation, profile max_regs; device max_regs wins)"
