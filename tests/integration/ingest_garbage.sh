#!/bin/bash
# Messages that are not frames, published with kcat between valid frames of
# one rack (same key, so the same partition): garbage bytes, a truncated
# frame, a frame with wrong protobuf wire types, a frame of another schema
# version and a 5 MB message (over the 4 MiB frame limit, within the
# broker's). Each is skipped, counted in /metrics and logged with topic,
# partition and offset; the valid frames after them are applied and the
# aggregator keeps running. `rackpulsectl tail` reports them the same way and
# prints the frames, with names from the agent's last dictionary in --json.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

start_broker
start_agg g
wait_for 20 assigned_since_start g || fail "no partition assigned"
loadgen --racks 1 --frames 5 --series 10 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 20 frames_applied_are g 5 || fail "first 5 frames not applied: $(agent_totals g)"

# The partition of rack r0001, and its first frame (it carries the dictionary).
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -c 1 -e -f '%p' >"$WORK/part" \
  2>"$WORK/kcat.log" || fail "kcat could not read the topic"
P=$(cat "$WORK/part")
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -p "$P" -o beginning -c 1 -e -f '%s' \
  >"$WORK/frame.bin" 2>>"$WORK/kcat.log"
size=$(stat -c %s "$WORK/frame.bin")
[ "$size" -gt 100 ] || fail "the first frame is only $size bytes"

printf '\xde\xad\xbe\xef this is not a frame \xff\xff\xff' >"$WORK/1-garbage.bin"
# Cut inside its last field (health): a cut between two fields would leave a
# shorter but well-formed protobuf message.
head -c $((size - 3)) "$WORK/frame.bin" >"$WORK/2-truncated.bin"
protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto" \
  <"$WORK/2-truncated.bin" >/dev/null 2>&1 && fail "the truncated frame still decodes"
# schema_version 1, then agent_id (a string) and rack_id sent as varints.
printf '\x08\x01\x10\x07\x18\x09' >"$WORK/3-wrong-types.bin"
# A well-formed Frame of schema version 2 with agent a1 in rack r1.
printf '\x08\x02\x12\x02a1\x1a\x02r1' >"$WORK/4-schema2.bin"
head -c 5000000 /dev/zero | tr '\0' 'x' >"$WORK/5-oversized.bin"
kcat -P -b "$BOOTSTRAP" -t rackpulse.frames -k r0001 -X message.max.bytes=10000000 \
  "$WORK"/[1-5]-*.bin 2>>"$WORK/kcat.log" || fail "kcat could not publish: $(cat "$WORK/kcat.log")"

loadgen --racks 1 --frames 5 --series 10 --seq-start 6 2>>"$WORK/loadgen.log" \
  || fail "loadgen failed"
wait_for 20 frames_applied_are g 10 || fail "frames after the garbage not applied: $(agent_totals g)"
check_agents g 10 1 || fail "per-agent counters are wrong"
[ "$(metric g 'rackpulse_ingest_frames_total{outcome="invalid"}')" = 5 ] \
  || fail "invalid frames counted: $(metric g 'rackpulse_ingest_frames_total{outcome="invalid"}')"
curl -sf "${AGG_URL[g]}/v1/racks/r0001" | grep -q '"last_seq":10' \
  || fail "rack r0001 is not at seq 10: $(curl -s "${AGG_URL[g]}/v1/racks/r0001" | head -c 300)"
pass "5 bad messages skipped and counted (invalid=5), frames 6..10 after them applied"

# Offsets 5..9 of partition P, each logged with topic, partition, offset, why.
expect=("5:protobuf decoding failed" "6:protobuf decoding failed" "7:protobuf decoding failed"
        "8:schema_version 2" "9:exceeds the 4194304-byte frame limit")
for e in "${expect[@]}"; do
  grep -q "ingest: rackpulse.frames \[$P\] offset ${e%%:*}: .* skipped: .*${e#*:}" "$WORK/g.log" \
    || fail "no log line for offset ${e%%:*} (${e#*:}): $(grep skipped "$WORK/g.log")"
done
kill -0 "${AGG_PID[g]}" && curl -sf "${AGG_URL[g]}/healthz" >/dev/null \
  || fail "the aggregator stopped"
pass "each logged with rackpulse.frames [$P] and its offset; the aggregator runs on"

# rackpulsectl tail reads the same stream from the beginning.
timeout 30 "$RP_BIN/tools/rackpulsectl" tail --brokers "$BOOTSTRAP" --from beginning \
  --json --count 10 >"$WORK/tail.json" 2>"$WORK/tail.err" || fail "tail --json failed: $(cat "$WORK/tail.err")"
[ "$(grep -c "rackpulsectl: tail: rackpulse.frames \[$P\] offset [5-9]: .* skipped" "$WORK/tail.err")" = 5 ] \
  || fail "tail did not report the 5 bad messages: $(cat "$WORK/tail.err")"
$PY - "$WORK/tail.json" <<'PYEOF' || fail "tail --json output is wrong: $(head -c 600 "$WORK/tail.json")"
import json, sys
frames = [json.loads(line) for line in open(sys.argv[1])]
assert [f["seq"] for f in frames] == list(range(1, 11)), [f["seq"] for f in frames]
# Frame 2 has no dictionary: its samples are named from frame 1's.
assert not frames[1]["dictionary"], frames[1]["dictionary"]
s = {x["name"] + "@" + x["device"]: x["value"] for x in frames[1]["samples"]}
# cdu.supply_temp of rack 1, agent 1, seq 2: 250 + (31 + 7 + 0 + 2) % 100 -> 29.0
assert s["cdu.supply_temp@cdu1"] == 29.0, s
assert all(f["rack_id"] == "r0001" and f["agent_id"] == "lg-r0001-1" for f in frames)
PYEOF
timeout 30 "$RP_BIN/tools/rackpulsectl" tail --brokers "$BOOTSTRAP" --from beginning \
  --rack r0001 --count 2 >"$WORK/tail.txt" 2>/dev/null || fail "tail failed"
grep -Eq "^20[0-9-]+T[0-9:.]+Z rack r0001 agent lg-r0001-1 seq 1 samples 10 devices [0-9]+ up [0-9]+ down \+dictionary  \(rackpulse.frames \[$P\] offset 0\)$" \
  "$WORK/tail.txt" || fail "tail's line is wrong: $(cat "$WORK/tail.txt")"
pass "rackpulsectl tail reports the bad messages and prints the frames, names resolved"

stop_agg g
pass "the aggregator stops cleanly on SIGTERM"
