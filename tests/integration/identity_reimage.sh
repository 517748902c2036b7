#!/bin/bash
# A re-imaged host is seen at once (issue 17, item 5): an agent runs a while,
# stops, loses its state directory (spool and sequence number) and starts
# again with the same agent id. Its sequence numbers restart at 1, far below
# what the aggregator has applied for that agent; the new incarnation (born
# with the new spool) makes them new frames, so the rack shows the new
# values within a few intervals instead of staying stale until the new seq
# passes the old one. Real peers: pymodbus CDU, dev broker, agent,
# aggregator.
source "$(dirname "$0")/lib.sh"

STALENESS=5s
start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 31.7, "return_temp": 41.9, "flow": 118.4}'
start_aggregator

# 1. The first life: frames every 100 ms until the aggregator has applied
#    seq 100 (then the old high-water mark is 100 intervals ahead of a
#    restarted agent running at 1 s).
write_agent_config "$WORK/agent.yaml" r17 "$CDU"
sed -i 's/interval: 1s/interval: 100ms/' "$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
FIRST_PID=$AGENT_PID
seq_at_least() {
  curl -sf "$URL/v1/racks/r17" | $PY -c "import json,sys; sys.exit(json.load(sys.stdin)['last_seq'] < $1)"
}
wait_for 60 seq_at_least 100 || fail "the first agent never reached seq 100: $(curl -s "$URL/v1/racks/r17" | head -c 300)"
OLD_INC=$(curl -sf "$URL/v1/racks/r17" | $PY -c "import json,sys; print(json.load(sys.stdin)['agent_identity']['incarnation'])")
grep -q "incarnation $OLD_INC (new: created with this spool)" "$WORK/agent.log" \
  || fail "the agent did not log its new incarnation $OLD_INC: $(grep incarnation "$WORK/agent.log")"
pass "first agent reached seq 100 with incarnation $OLD_INC"

# 2. Stop it, wipe its state directory (a re-imaged host), change the value
#    so that only the new life can show it, and start it again (1 s frames).
kill -TERM "$FIRST_PID"
for _ in $(seq 100); do kill -0 "$FIRST_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FIRST_PID" 2>/dev/null && fail "the first agent did not stop on SIGTERM"
OLD_SEQ=$(curl -sf "$URL/v1/racks/r17" | $PY -c "import json,sys; print(json.load(sys.stdin)['last_seq'])")
rm -rf "$WORK/state-r17"
mv "$WORK/agent.log" "$WORK/agent-first.log"
cdu_set "$CDU" '{"supply_temp": 35.2, "return_temp": 45.0, "flow": 118.4}'
sed -i 's/interval: 100ms/interval: 1s/' "$WORK/agent.yaml"
RESTART_MS=$(date +%s%3N)
start_agent "$WORK/agent.yaml"

# 3. The new values reach the rack and the gate: at 1 s frames from seq 1,
#    the old mark (>= 100) would keep the rack stale for 100 s or more.
fresh() {
  "$RP_BIN/tools/rackpulsectl" --url "$URL" gate --rack r17 --kw 1 --json >"$WORK/gate.json" || return 1
  $PY - "$WORK/gate.json" <<'PYEOF'
import json, sys
g = json.load(open(sys.argv[1]))
checks = {c["name"]: c for c in g["checks"]}
assert abs(checks["supply_temp"]["observed"] - 35.2) < 1e-9, checks["supply_temp"]
assert checks["telemetry_fresh"]["pass"], checks["telemetry_fresh"]
assert g["decision"] == "allow", g
PYEOF
}
wait_for 30 fresh || fail "the restarted agent's values never reached the gate: $(cat "$WORK/gate.json" 2>/dev/null)"
FRESH_MS=$(date +%s%3N)
pass "gate allows with supply_temp 35.2 from the new life $((FRESH_MS - RESTART_MS)) ms after the restart (old seq $OLD_SEQ)"

# 4. It is a new incarnation, its very first frame (seq 1) was applied, and
#    none of its frames was counted as a duplicate of the old ones.
curl -sf "$URL/v1/racks/r17" >"$WORK/rack.json" || fail "GET /v1/racks/r17"
NEW_INC=$($PY - "$WORK/rack.json" "$OLD_INC" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
ident = r["agent_identity"]
assert ident["incarnation"] != sys.argv[2], ident
assert ident["incarnations"] == 2, ident
assert ident["last_seq"] < 100, ident
assert ident["samples_skipped"] is None, ident
assert abs(r["series"]["cdu.supply_temp@cdu1"]["value"] - 35.2) < 1e-9, r["series"]
print(ident["incarnation"])
PYEOF
) || fail "rack state after the restart is wrong: $(cat "$WORK/rack.json")"
grep -q "incarnation $NEW_INC (new: created with this spool), next sequence number 1" "$WORK/agent.log" \
  || fail "the restarted agent did not start a new incarnation at seq 1: $(grep incarnation "$WORK/agent.log")"
grep -q "agent agent-r17 (rack r17): new incarnation $NEW_INC from seq 1 " "$WORK/aggregator.log" \
  || fail "the aggregator did not log the new incarnation from seq 1: $(grep -i incarnation "$WORK/aggregator.log")"
curl -sf "$URL/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
grep -q '^rackpulse_agent_incarnations_total{agent="agent-r17",rack="r17"} 2$' "$WORK/metrics.txt" \
  || fail "incarnations not counted: $(grep agent-r17 "$WORK/metrics.txt")"
grep -q '^rackpulse_agent_duplicates_total{agent="agent-r17",rack="r17"} 0$' "$WORK/metrics.txt" \
  || fail "frames of the new incarnation were dropped as duplicates: $(grep agent-r17 "$WORK/metrics.txt")"
pass "new incarnation $NEW_INC applied from seq 1, counted (2 incarnations), no duplicates"

# 4b. A plain restart (state kept) is the same incarnation: it comes from
#     the spool, and the aggregator counts no new one.
kill -TERM "$AGENT_PID"
for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$AGENT_PID" 2>/dev/null && fail "the agent did not stop on SIGTERM"
BEFORE=$(curl -sf "$URL/v1/racks/r17" | $PY -c "import json,sys; print(json.load(sys.stdin)['last_seq'])")
mv "$WORK/agent.log" "$WORK/agent-second.log"
start_agent "$WORK/agent.yaml"
wait_for 30 seq_at_least $((BEFORE + 2)) || fail "the restarted agent's frames were not applied"
grep -q "incarnation $NEW_INC (from the spool)" "$WORK/agent.log" \
  || fail "a restart with its state changed the incarnation: $(grep incarnation "$WORK/agent.log")"
curl -sf "$URL/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
grep -q '^rackpulse_agent_incarnations_total{agent="agent-r17",rack="r17"} 2$' "$WORK/metrics.txt" \
  || fail "a restart with its state counted as a new incarnation: $(grep agent-r17 "$WORK/metrics.txt")"
pass "a restart that keeps the state keeps incarnation $NEW_INC"

# 5. Item 6 through the whole pipeline: with the agent stopped, a frame of
#    its incarnation names a dictionary the aggregator never received. Its
#    samples are skipped and counted (the rack says why), never decoded with
#    the stored dictionary (where id 0 is a real series).
kill -TERM "$AGENT_PID"
for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$AGENT_PID" 2>/dev/null && fail "the agent did not stop on SIGTERM"
# Far above the agent's last seq, which the aggregator may not have read yet.
LAST=$(curl -sf "$URL/v1/racks/r17" | $PY -c "import json,sys; print(json.load(sys.stdin)['agent_identity']['last_seq'])")
NOW=$(date +%s%3N)
INC_DEC=$($PY -c "print(int('$NEW_INC', 16))") # unsigned: bash arithmetic is signed
printf '%s' "schema_version: 1 agent_id: \"agent-r17\" rack_id: \"r17\" seq: $((LAST + 1000))
  ts_ms: $NOW interval_ms: 1000 dictionary_version: 1 incarnation: $INC_DEC
  dictionary_hash: 12345 samples { ts_ms: $NOW series: [0, 1, 2, 3, 4, 5, 6, 7] scaled: [999, 999, 999, 999, 999, 999, 999, 999] }" \
  | protoc --encode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
    >"$WORK/unknown-dict.bin" || fail "protoc could not encode the frame"
kcat -P -b "$BOOTSTRAP" -t rackpulse.frames -k r17 "$WORK/unknown-dict.bin" 2>>"$WORK/kcat.log" \
  || fail "kcat could not publish"
skipped() {
  curl -sf "$URL/v1/racks/r17" >"$WORK/rack2.json" || return 1
  $PY -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(r['last_seq'] != $((LAST + 1000)))" "$WORK/rack2.json"
}
wait_for 30 skipped || fail "the frame never arrived: $(cat "$WORK/rack2.json" 2>/dev/null)"
$PY - "$WORK/rack2.json" "$NOW" <<'PYEOF' || fail "the unknown dictionary was not skipped and said: $(cat "$WORK/rack2.json")"
import json, sys
r = json.load(open(sys.argv[1]))
ident = r["agent_identity"]
assert ident["unknown_dictionary_frames"] == 1, ident
assert "dictionary 0000000000003039 not received yet" in ident["samples_skipped"], ident
decoded = {k: v for k, v in r["series"].items() if v["ts_ms"] == int(sys.argv[2])}
assert not decoded, decoded  # no series took a sample of that frame
assert abs(r["series"]["cdu.supply_temp@cdu1"]["value"] - 35.2) < 1e-9, r["series"]
PYEOF
curl -sf "$URL/metrics" >"$WORK/metrics2.txt" || fail "GET /metrics"
grep -q '^rackpulse_agent_unknown_dictionary_frames_total{agent="agent-r17",rack="r17"} 1$' "$WORK/metrics2.txt" \
  || fail "unknown dictionary not counted: $(grep agent-r17 "$WORK/metrics2.txt")"
pass "a frame of an unknown dictionary hash: samples skipped, counted in /metrics, the rack says why"
