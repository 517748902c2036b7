#!/bin/bash
# End to end through the real peers: pymodbus CDU -> agent -> dev broker
# (librdkafka mock cluster over TCP) -> aggregator (LMDB) -> HTTP gate, and
# a third-party consumer (kcat + protoc --decode) reading the topic.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 31.7, "return_temp": 41.9, "flow": 118.4}'
write_agent_config "$WORK/agent.yaml" r17 "$CDU"
start_aggregator
start_agent "$WORK/agent.yaml"

# 1. The gate answers allow with the simulator's supply temperature in it.
wait_for 20 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' gate --rack r17 --kw 12 --json \
  >'$WORK/gate.json'" || fail "gate never allowed: $(cat "$WORK/gate.json" 2>/dev/null)"
$PY - "$WORK/gate.json" <<'PYEOF' || fail "gate answer is wrong: $(cat "$WORK/gate.json")"
import json, sys
g = json.load(open(sys.argv[1]))
assert g["decision"] == "allow", g
assert g["rack"] == "r17" and g["kw"] == 12 and g["policy_version"] == "test-1", g
checks = {c["name"]: c for c in g["checks"]}
assert abs(checks["supply_temp"]["observed"] - 31.7) < 1e-9, checks
assert checks["supply_temp"]["limit"] == 40 and checks["supply_temp"]["pass"], checks
assert checks["telemetry_fresh"]["pass"] and checks["telemetry_fresh"]["observed"] < 5, checks
assert len(g["decision_id"]) == 32
PYEOF
pass "gate allows with supply_temp observed 31.7 from the simulator"

# 2. The rack state holds every series the simulator serves, with units.
curl -sf "$URL/v1/racks/r17" >"$WORK/rack.json" || fail "GET /v1/racks/r17"
$PY - "$WORK/rack.json" <<'PYEOF' || fail "rack state is wrong: $(cat "$WORK/rack.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["series"]
assert abs(s["cdu.return_temp@cdu1"]["value"] - 41.9) < 1e-9, s
assert abs(s["cdu.flow@cdu1"]["value"] - 118.4) < 1e-9, s
assert s["cdu.flow@cdu1"]["unit"] == "L/min", s
assert s["cdu.pump_speed@cdu1"]["value"] == 62.5, s
assert s["cdu.alarms{alarm=leak}@cdu1"]["value"] == 0, s
assert r["devices"]["cdu1"]["up"] is True, r["devices"]
PYEOF
pass "rack state carries the simulator's values"

# 3. Above the policy limit the gate denies, naming the check; rackpulsectl
#    exits 1 so a pipeline stops.
cdu_set "$CDU" '{"supply_temp": 44.2, "return_temp": 54.0}'
deny() { "$RP_BIN/tools/rackpulsectl" --url "$URL" gate --rack r17 --kw 12 >"$WORK/deny.txt"; [ $? -eq 1 ]; }
wait_for 30 deny || fail "gate did not deny above the limit: $(cat "$WORK/deny.txt")"
grep -q "FAIL  supply_temp .*observed 44.20 Cel .*limit 40.00 Cel" "$WORK/deny.txt" \
  || fail "deny does not name supply_temp: $(cat "$WORK/deny.txt")"
pass "gate denies at 44.2 > 40 and names supply_temp (exit 1)"

# 4. Errors exit 2: unknown rack, bad kW, unreachable aggregator.
set +e
ctl gate --rack nosuch --kw 1 2>"$WORK/err.txt"; rc1=$?
ctl gate --rack r17 --kw -3 2>>"$WORK/err.txt"; rc2=$?
"$RP_BIN/tools/rackpulsectl" --url "http://127.0.0.1:$(free_port)" gate --rack r17 --kw 1 \
  2>>"$WORK/err.txt"; rc3=$?
set -e
[ "$rc1$rc2$rc3" = "222" ] || fail "expected exit 2 for errors, got $rc1 $rc2 $rc3"
grep -q "unknown rack" "$WORK/err.txt" || fail "unknown rack not said: $(cat "$WORK/err.txt")"
pass "errors exit 2 with a reason"

# 5. A third-party consumer decodes a frame from the topic with the schema
#    alone and finds the simulator's values (scaled integers, 1 decimal).
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o -1 -c 1 -e -f '%s' >"$WORK/frame.bin" 2>"$WORK/kcat.log" \
  || fail "kcat could not read the topic"
[ -s "$WORK/frame.bin" ] || fail "kcat read an empty message"
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -c 1 -e -f '%k %s' 2>/dev/null \
  | head -c 3 | grep -q "r17" || fail "frames are not keyed by rack id"
protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
  <"$WORK/frame.bin" >"$WORK/frame.txt" || fail "protoc could not decode the frame"
grep -q 'rack_id: "r17"' "$WORK/frame.txt" || fail "no rack_id in $(head -20 "$WORK/frame.txt")"
# The newest frame may not carry the dictionary; the first one with
# series does (a frame built before the first scrape has none).
part=$(kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -c 1 -e -f '%p' 2>/dev/null)
: >"$WORK/first.txt"
for off in $(seq 0 19); do
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -p "$part" -o "$off" -c 1 -e -f '%s' 2>/dev/null \
    | protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
    >"$WORK/first.txt" || true
  grep -q "dictionary {" "$WORK/first.txt" && break
done
$PY - "$WORK/first.txt" "$WORK/frame.txt" <<'PYEOF' || fail "decoded frames lack the values"
import re, sys
first, last = open(sys.argv[1]).read(), open(sys.argv[2]).read()
ids = dict((m.group(2), int(m.group(1))) for m in
           re.finditer(r'dictionary \{\s*id: (\d+)\s*name: "([^"]+)"', first))
if "cdu.supply_temp" not in ids:   # id 0 is omitted by proto3 text format
    ids.update((m.group(1), 0) for m in re.finditer(r'dictionary \{\s*name: "([^"]+)"', first))
assert "cdu.supply_temp" in ids, first[:800]
blocks = re.findall(r'samples \{(.*?)\n\}', last, re.S)
assert blocks, last[:800]
series = [int(x) for x in re.findall(r'series: (\d+)', blocks[-1])]
scaled = [int(x) for x in re.findall(r'scaled: (-?\d+)', blocks[-1])]
values = dict(zip(series, scaled))
assert values.get(ids["cdu.supply_temp"]) == 442, (ids, values)
assert values.get(ids["cdu.return_temp"]) == 540, (ids, values)
PYEOF
pass "kcat + protoc --decode find supply 44.2 (scaled 442) and return 54.0 on the topic"

# 6. A stopped simulator: the device goes down in the frame and, once the
#    last reading is older than the staleness limit, the gate fails closed.
kill "${PIDS[1]}"
wait_for 40 sh -c "curl -sf '$URL/v1/racks/r17' | grep -q '\"up\":false'" \
  || fail "device not marked down: $(curl -s "$URL/v1/racks/r17")"
curl -s "$URL/v1/racks/r17" | grep -q "127.0.0.1:$CDU" \
  || fail "last_error does not name the device address"
kill -0 "$AGENT_PID" || fail "the agent stopped when its device went away"
pass "stopped CDU is down in the frame with its address; the agent keeps running"
