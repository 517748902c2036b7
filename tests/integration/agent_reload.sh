#!/bin/bash
# SIGHUP reloads the device list: a CDU added starts reporting, one removed
# stops, the CDU that stays keeps its series and its window statistics (the
# 60 s window's sample count keeps growing across the reload), and a broken
# configuration is refused with file:line while the running one stays.
source "$(dirname "$0")/lib.sh"

start_broker
A=$(free_port)
B=$(free_port)
start_cdu "$A"
start_cdu "$B"
write_agent_config "$WORK/agent.yaml" r9 "$A"
start_aggregator
start_agent "$WORK/agent.yaml"

count60() {
  curl -sf "$URL/v1/racks/r9" | $PY -c '
import json, sys
r = json.load(sys.stdin)
print(r["stats"].get("cdu.supply_temp@cdu1", {}).get("60", {}).get("count", 0))'
}
devices() { curl -sf "$URL/v1/racks/r9" | $PY -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["devices"])))'; }
wait_for 20 sh -c "[ \$(curl -sf $URL/v1/racks/r9 >/dev/null && echo 1) ]" || fail "no rack state"
# Wait for the samples rather than a time (a loaded machine is slower).
at_least() { [ "$(count60)" -ge "$1" ]; }
wait_for 60 at_least 3 || fail "cdu1 has only $(count60) samples in its 60 s window"
before=$(count60)

# Add cdu2 (a second CDU) and reload.
write_agent_config "$WORK/agent.yaml" r9 "$A" "$B"
kill -HUP "$AGENT_PID"
wait_for 10 grep -q "reloaded .*2 device(s): 1 unchanged, 1 (re)started, 0 retired" "$WORK/agent.log" || fail "reload not logged as 1 kept, 1 started: $(tail -2 "$WORK/agent.log")"
fresh_cdu2() {
  curl -sf "$URL/v1/racks/r9" | $PY -c '
import json, sys, time
d = json.load(sys.stdin)["devices"].get("cdu2")
sys.exit(0 if d and d["up"] and d["reported_ms"] > (time.time() - 3) * 1000 else 1)'
}
wait_for 15 fresh_cdu2 || fail "cdu2 does not report after the reload: $(devices)"
sleep 3
after=$(count60)
[ "$after" -gt "$before" ] || fail "cdu1's 60 s window restarted: $before samples before, $after after"
pass "SIGHUP added cdu2; cdu1's window kept growing ($before -> $after samples)"

# A broken configuration is refused; the agent keeps running as it was.
cp "$WORK/agent.yaml" "$WORK/good.yaml"
printf 'agent: {rack: r9, intervall: 1s}\n' >"$WORK/agent.yaml"
kill -HUP "$AGENT_PID"
wait_for 10 grep -q "reload refused: .*agent.yaml:1: agent.intervall: unknown key" "$WORK/agent.log" \
  || fail "broken config not refused with file:line: $(tail -3 "$WORK/agent.log")"
kill -0 "$AGENT_PID" || fail "the agent died on a broken config"
pass "a broken config is refused with file:line; the agent runs on"

# Remove cdu1.
{
  echo "agent: {id: agent-r9, rack: r9, interval: 1s, state_dir: $WORK/state-r9}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", linger: 5ms}"
  echo "modbus:"
  sed -e "s/@NAME@/cdu2/" -e "s/@PORT@/$B/" "$RP_SRC/tests/fixtures/sim-cdu-device.yaml"
} >"$WORK/agent.yaml"
kill -HUP "$AGENT_PID"
wait_for 10 grep -q "reloaded .*: 1 device(s)" "$WORK/agent.log" \
  || fail "removal not logged: $(tail -3 "$WORK/agent.log")"
newest_devices() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o -1 -c 1 -e -q -f '%s' 2>/dev/null \
    | protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
    >"$WORK/last.txt"
  $PY -c 'import re,sys; print(" ".join(re.findall(r"devices \{\s*device: \"([^\"]+)\"", open(sys.argv[1]).read())))' "$WORK/last.txt"
}
# Frames published before the reload may still be the newest for a while.
only_cdu2() { [ "$(newest_devices)" = cdu2 ]; }
wait_for 30 only_cdu2 || fail "the newest frame's devices are '$(newest_devices)', expected 'cdu2'"
kill -0 "$AGENT_PID" || fail "the agent died"
pass "SIGHUP removed cdu1; the newest frame reports cdu2 only"
