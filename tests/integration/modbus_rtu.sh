#!/bin/bash
# Modbus RTU through a pseudo-terminal pair (socat): pymodbus's RTU server
# (typed_server.py --rtu, StartAsyncSerialServer with ModbusRtuFramer) on one
# end, the agent's libmodbus RTU context on the other. Every type in every
# order as over TCP; an illegal address isolated to its register (exception
# frames over RTU); a device that stops answering is down with "timed out".
source "$(dirname "$0")/lib.sh"
FIX="$RP_SRC/tests/fixtures/modbus"
command -v socat >/dev/null || fail "socat is missing (tools/deps.sh installs it)"

socat pty,raw,echo=0,link="$WORK/tty.server" pty,raw,echo=0,link="$WORK/tty.agent" \
  >"$WORK/socat.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -e "$WORK/tty.agent" -a -e "$WORK/tty.server" || fail "socat made no pty pair"
$PY "$FIX/typed_server.py" --rtu "$WORK/tty.server" --baud 19200 --hole holding:61-61 \
  --describe "$WORK/map.json" >"$WORK/typed.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
wait_for 15 grep -q "serving Modbus RTU" "$WORK/typed.log" || fail "RTU server did not start"

# 1. The whole typed map, coalesced, over RTU at 19200 baud 8N1.
$PY "$FIX/agent_config.py" "$WORK/map.json" "$WORK" --rtu "$WORK/tty.agent" --name rtu1 \
  --extra "baud: 19200" --extra "parity: N" --extra "unit_id: 7" >"$WORK/agent.yaml"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame.json" \
  2>"$WORK/agent.log" || fail "--once exited non-zero"
$PY "$FIX/check_frame.py" "$WORK/map.json" "$WORK/frame.json" rtu1 --all-types \
  >"$WORK/check.log" 2>&1 || fail "RTU values: $(cat "$WORK/check.log")"
pass "RTU: $(cat "$WORK/check.log"): every type in every order, coils, discretes"

# 2. An illegal address inside a coalesced request, over RTU.
cat >"$WORK/hole.yaml" <<YAML
agent: {id: t, rack: rt, interval: 1s, state_dir: $WORK/state}
kafka: {brokers: "127.0.0.1:1"}
modbus:
  - name: rtu1
    transport: rtu
    device: $WORK/tty.agent
    baud: 19200
    timeout: 500ms
    retries: 0
    registers:
      - {name: t.a, function: holding, address: 60, type: u16}
      - {name: t.hole, function: holding, address: 61, type: u16}
      - {name: t.b, function: holding, address: 62, type: u16}
      - {name: t.supply, function: input, address: 0, type: i16, scale: 0.1}
YAML
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/hole.yaml" --once >"$WORK/hole.json" \
  2>"$WORK/hole.log" || fail "--once exited non-zero"
$PY - "$WORK/hole.json" <<'PYEOF' || fail "RTU isolation: $(cat "$WORK/hole.json")"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["devices"][0]["up"], f["devices"]
names = {s["id"]: s["name"] for s in f["dictionary"]}
got = {names[s["series"]]: s["value"] for s in f["samples"]}
assert got == {"t.a": 0, "t.b": 0, "t.supply": 28.4}, got
st = [(names[s["series"]], s["detail"]) for s in f["statuses"]]
assert st == [("t.hole", "rtu1: register t.hole @ holding 61 (FC3): Illegal data address")], st
PYEOF
pass "RTU: illegal holding 61 isolated to t.hole"

# 3. The device stops answering: down with "timed out" and the serial device.
kill -TERM "$SERVER"
wait "$SERVER" 2>/dev/null || true
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/hole.yaml" --once >"$WORK/gone.json" \
  2>"$WORK/gone.log" || fail "--once exited non-zero"
$PY - "$WORK/gone.json" "$WORK/tty.agent" <<'PYEOF' || fail "RTU down: $(cat "$WORK/gone.json")"
import json, sys
d = json.load(open(sys.argv[1]))["devices"][0]
assert not d["up"] and "timed out" in d["last_error"] and sys.argv[2] in d["last_error"], d
print(d["last_error"])
PYEOF
pass "RTU: a silent device is down with the reason"
