#!/bin/bash
# Modbus faults through real peers (tests/fixtures/modbus/typed_server.py):
#  1. a port with nothing behind it, and a listener that accepts but never
#     answers: the device is down with the reason (refused / timed out);
#  2. an illegal address inside a coalesced request: only that register is
#     an error naming device, register, function and address; its
#     neighbours in the same request still read; a busy answer is a status;
#  3. a slow device: beyond the timeout down with "timed out", within it fine;
#  4. while one device times out, the agent keeps scraping another on time.
source "$(dirname "$0")/lib.sh"
FIX="$RP_SRC/tests/fixtures/modbus"

# start_typed NAME [options]: a typed_server on a free port, in $PORT_NAME.
start_typed() {
  local name=$1 port; shift
  port=$(free_port)
  $PY "$FIX/typed_server.py" --port "$port" "$@" >"$WORK/typed-$name.log" 2>&1 &
  PIDS+=($!)
  wait_for 15 $PY -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" \
    || fail "typed_server $name did not start"
  printf -v "PORT_$name" '%s' "$port"
}

# device NAME PORT TIMEOUT REGISTER...: one device of an agent config.
device() {
  local name=$1 port=$2 timeout=$3; shift 3
  printf '  - {name: %s, host: 127.0.0.1, port: %s, timeout: %s, retries: 0,\n' \
    "$name" "$port" "$timeout"
  printf '     registers: [%s]}\n' "$(IFS=,; echo "$*")"
}
header() {
  echo "agent: {id: t, rack: rf, interval: ${1:-1s}, state_dir: $WORK/state}"
  echo "kafka: {brokers: \"${BOOTSTRAP:-127.0.0.1:1}\", linger: 5ms}"
  echo "modbus:"
}
U16='{name: t.u16, function: holding, address: 0, type: u16}'

start_typed ok
start_typed silent --silent
start_typed holes --hole holding:61-61 --busy input:10-10
start_typed slow --delay-ms 700
DEAD=$(free_port)

# --- 1 and 3: devices that do not answer, or answer late -----------------
{
  header
  device refused "$DEAD" 300ms "$U16"
  device silent "$PORT_silent" 300ms "$U16"
  device slow_short "$PORT_slow" 300ms "$U16"
  device slow_long "$PORT_slow" 2s "$U16"
} >"$WORK/down.yaml"
start=$(date +%s%N)
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/down.yaml" --once >"$WORK/down.json" \
  2>"$WORK/down.log" || fail "--once exited non-zero"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
$PY - "$WORK/down.json" "$DEAD" "$PORT_silent" <<'PYEOF' || fail "down devices: $(cat "$WORK/down.json")"
import json, sys
f = json.load(open(sys.argv[1]))
dev = {d["device"]: d for d in f["devices"]}
r = dev["refused"]
assert not r["up"] and f"127.0.0.1:{sys.argv[2]}" in r["last_error"], r
assert "refused" in r["last_error"], r
for name in ("silent", "slow_short"):
    assert not dev[name]["up"] and "timed out" in dev[name]["last_error"], dev[name]
assert f"127.0.0.1:{sys.argv[3]}" in dev["silent"]["last_error"], dev["silent"]
assert dev["slow_long"]["up"], dev["slow_long"]
names = {s["id"]: s["name"] for s in f["dictionary"]}
got = {(s["device"], names[s["series"]]): s["value"] for s in f["samples"]}
assert got == {("slow_long", "t.u16"): 0x1234}, got
print(dev["refused"]["last_error"]); print(dev["silent"]["last_error"])
PYEOF
[ "$elapsed_ms" -lt 5000 ] || fail "--once took $elapsed_ms ms: a timeout is not bounding it"
pass "refused port and silent listener down with the reason; 700 ms device: timed out at 300 ms, read at 2 s ($elapsed_ms ms in all)"

# --- 2: an illegal address isolates one register; busy is a status -------
{
  header
  device holes "$PORT_holes" 1s \
    '{name: t.a, function: holding, address: 60, type: u16}' \
    '{name: t.hole, function: holding, address: 61, type: u16}' \
    '{name: t.b, function: holding, address: 62, type: u32}' \
    '{name: t.u16, function: holding, address: 0, type: u16}' \
    '{name: t.supply, function: input, address: 0, type: i16, scale: 0.1}' \
    '{name: t.busy, function: input, address: 10, type: u16}'
} >"$WORK/holes.yaml"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/holes.yaml" --once >"$WORK/holes.json" \
  2>"$WORK/holes.log" || fail "--once exited non-zero"
$PY - "$WORK/holes.json" <<'PYEOF' || fail "isolation: $(cat "$WORK/holes.json")"
import json, sys
f = json.load(open(sys.argv[1]))
dev = {d["device"]: d for d in f["devices"]}
assert dev["holes"]["up"], dev
names = {s["id"]: s["name"] for s in f["dictionary"]}
got = {names[s["series"]]: s["value"] for s in f["samples"]}
assert got == {"t.a": 0, "t.b": 0, "t.u16": 0x1234, "t.supply": 28.4}, got
st = {names[s["series"]]: s for s in f["statuses"]}
assert set(st) == {"t.hole", "t.busy"}, st
h = st["t.hole"]
assert h["status"] == "READING_ERROR", h
assert h["detail"] == "holes: register t.hole @ holding 61 (FC3): Illegal data address", h
b = st["t.busy"]
assert b["status"] == "READING_ERROR" and "busy" in b["detail"], b
assert b["detail"].startswith("holes: register t.busy @ input 10 (FC4): "), b
assert "read again next scrape" in b["detail"], b
print(h["detail"]); print(b["detail"])
PYEOF
pass "illegal holding 61 inside a coalesced 60..63 request: only t.hole is an error; busy input 10 is a status"

# --- 4: the healthy device is scraped on time while another times out ------
start_broker
{
  header 500ms
  device good "$PORT_ok" 1s "$U16"
  device stuck "$PORT_silent" 1500ms "$U16"
  device holes "$PORT_holes" 1s \
    '{name: t.a, function: holding, address: 60, type: u16}' \
    '{name: t.hole, function: holding, address: 61, type: u16}' \
    '{name: t.b, function: holding, address: 62, type: u32}'
} >"$WORK/run.yaml"
start_agent "$WORK/run.yaml"
# last_status: the device statuses of the newest frame on the topic.
# (every frame so far: devices and status details are sent when they
# change, so the newest frame alone does not hold them all)
last_status() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -f '%S:%s' 2>/dev/null >"$WORK/topic.kcat"
  $PY "$RP_SRC/tests/integration/frames_state.py" "$WORK/topic.kcat" "$RP_SRC/proto"
}
wait_for 20 sh -c "$(declare -f last_status); BOOTSTRAP='$BOOTSTRAP' RP_SRC='$RP_SRC' WORK='$WORK' PY='$PY'; \
  last_status | grep -q 'timed out'" || fail "no frame with the stuck device timed out"
last_status >"$WORK/t0.txt"; t0=$(date +%s%N)
sleep 4
last_status >"$WORK/t1.txt"; t1=$(date +%s%N)
$PY - "$WORK/t0.txt" "$WORK/t1.txt" "$(( (t1 - t0) / 1000000 ))" <<'PYEOF' \
  || fail "healthy device not scraped on time: $(cat "$WORK/t1.txt" | grep -A9 devices)"
import re, sys
def devices(path):
    text = open(path).read()
    out = {}
    for block in re.findall(r"devices \{(.*?)\n\}", text, re.S):
        name = re.search(r'device: "([^"]+)"', block).group(1)
        # proto3's text format leaves out zero fields: absent means 0.
        out[name] = {"scrapes": 0, "failures": 0}
        out[name].update({k: int(v) for k, v in re.findall(r"\b(scrapes|failures): (\d+)", block)})
        out[name]["up"] = "up: true" in block
        m = re.search(r'last_error: "([^"]*)"', block)
        out[name]["last_error"] = m.group(1) if m else ""
    return out
a, b, ms = devices(sys.argv[1]), devices(sys.argv[2]), int(sys.argv[3])
good = b["good"]["scrapes"] - a["good"]["scrapes"]
expected = ms / 500
assert b["good"]["up"] and b["good"].get("failures", 0) == 0, b
# Paced by the stuck device's 1.5 s timeout (what this guards against) it
# would get at most ms / 1500 scrapes; half the interval's count leaves room
# for a loaded machine and still tells the two apart.
assert good >= 0.5 * expected, f"good: {good} scrapes in {ms} ms, expected ~{expected:.0f}"
assert not b["stuck"]["up"] and "timed out" in b["stuck"]["last_error"], b
assert b["stuck"].get("failures", 0) >= 1, b
# Later scrapes read the refused request one register at a time from the
# start: the same single error, the device up and never failing.
assert b["holes"]["up"] and b["holes"].get("failures", 0) == 0, b
assert b["holes"]["scrapes"] - a["holes"]["scrapes"] >= 0.5 * expected, (a, b)
details = re.findall(r'detail: "(holes: [^"]*)"', open(sys.argv[2]).read())
assert details == ["holes: register t.hole @ holding 61 (FC3): Illegal data address"], details
print(f"good: {good} scrapes in {ms} ms (interval 500 ms); stuck: "
      f"{b['stuck'].get('scrapes', 0)} scrapes, {b['stuck']['last_error']}")
PYEOF
pass "good device scraped every 500 ms while the stuck one times out; later scrapes keep the hole isolated"

# SIGTERM while the stuck device's scrape is in flight: the agent waits for
# it (bounded by timeout x (retries + 1)), flushes and exits 0.
t0=$(date +%s%N)
kill -TERM "$AGENT_PID"
rc=0; wait "$AGENT_PID" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -eq 0 ] || fail "agent exited $rc after SIGTERM"
pass "agent stopped in $ms ms with a scrape in flight"
