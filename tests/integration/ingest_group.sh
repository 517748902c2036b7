#!/bin/bash
# Two aggregators in one consumer group, each with its own store and HTTP
# port, share the topic's 4 partitions. One is killed (kill -9): once its
# session times out the other is assigned its partitions (logged), reads
# them from the beginning into its own store, and its state becomes complete
# for every rack, each frame applied once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

RACKS=12 FRAMES=20
start_broker
start_agg a
start_agg b
# Both members hold partitions once the group has settled (b, which joined
# last, is assigned only then).
both_assigned() { assigned_since_start a && assigned_since_start b; }
wait_for 40 both_assigned || fail "the group did not settle"
loadgen --racks $RACKS --frames $FRAMES --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
split_done() {
  local fa fb
  fa=$(agent_totals a | cut -d' ' -f2) fb=$(agent_totals b | cut -d' ' -f2)
  [ $((fa + fb)) -eq $((RACKS * FRAMES)) ] && [ "$fa" -gt 0 ] && [ "$fb" -gt 0 ]
}
wait_for 30 split_done || fail "frames not split between a and b: a $(agent_totals a), b $(agent_totals b)"
pass "a and b share the racks: a $(agent_totals a | cut -d' ' -f1), b $(agent_totals b | cut -d' ' -f1) agents"

kill9_agg a
echo "--- a killed $(date +%T.%N)" >>"$WORK/b.log"
# More frames while a is gone: they wait in Kafka for b.
loadgen --racks $RACKS --frames $FRAMES --seq-start $((FRAMES + 1)) --series 12 \
  2>>"$WORK/loadgen.log" || fail "loadgen failed"

# b's assignment after the kill holds all 4 partitions.
took_all() {
  awk '/^--- a killed/ {k = 1; n = 0} k && /ingest: assigned/ {n++} END {exit !(n >= 4)}' \
    "$WORK/b.log"
}
wait_for 60 took_all || fail "b never took a's partitions: $(tail -5 "$WORK/b.log")"
pass "b logged the assignment of all 4 partitions after a was killed"

wait_for 30 frames_applied_are b $((RACKS * 2 * FRAMES)) \
  || fail "b's state is incomplete: $(agent_totals b)"
check_agents b $((2 * FRAMES)) $RACKS || fail "b's counters are wrong"
curl -sf "${AGG_URL[b]}/v1/racks" >"$WORK/racks.json" || fail "GET /v1/racks"
$PY - "$WORK/racks.json" "$RACKS" <<'PYEOF' || fail "b does not list every rack: $(cat "$WORK/racks.json")"
import json, sys
racks = json.load(open(sys.argv[1]))["racks"]
assert sorted(r["rack"] for r in racks) == ["r%04d" % i for i in range(1, int(sys.argv[2]) + 1)]
PYEOF
for r in r0001 r0007 r0012; do
  curl -sf "${AGG_URL[b]}/v1/racks/$r" | grep -q "\"last_seq\":$((2 * FRAMES))" \
    || fail "rack $r is not at seq $((2 * FRAMES)) in b"
done
pass "b's state is complete: $RACKS racks, $((2 * FRAMES)) frames each, no duplicate, no gap"

stop_agg b
pass "b stops cleanly on SIGTERM"
