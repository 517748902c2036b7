#!/bin/bash
# The spool's bound: with Kafka away and a spool of 5 frames (2 in flight),
# the oldest unsent frames are dropped and counted; after recovery the number
# of missing sequence numbers on the topic equals the agent's drop counter.
# A dropped frame may have carried the dictionary: the frame built after a
# drop carries it again, and once nothing is dropped any more the frames go
# without it (its periodic resend, dictionary_every, is 300 frames).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r3 "$CDU"
echo "spool: {max_frames: 5, max_in_flight: 2}" >>"$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
wait_for 15 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 2 ]" \
  || fail "no frames before the outage"
broker_down
sleep 15
broker_up
# A frame's health counts the drops made before it was built; the write of
# the frame itself may drop once more. Measure once the spool has drained
# (newest frame says depth 0): no drop can follow that.
up_at=$(date +%s%3N)
drained() {
  [ "$(agent_health ts_ms)" -gt $(( up_at + 3000 )) ] && [ "$(agent_health spool_depth)" -eq 0 ]
}
wait_for 40 drained || fail "the spool never drained after recovery: newest frame at $(agent_health ts_ms) (up at $up_at), depth $(agent_health spool_depth)"
seqs_on_topic agent-r3 >"$WORK/seqs.txt"
distinct=$(sort -un "$WORK/seqs.txt" | wc -l)
first=$(sort -n "$WORK/seqs.txt" | head -1)
last=$(sort -n "$WORK/seqs.txt" | tail -1)
missing=$(( last - first + 1 - distinct ))
dropped=$(agent_health frames_dropped)
echo "bound 5: seq $first..$last, $distinct distinct, $missing missing, agent says $dropped dropped"
[ "$dropped" -gt 0 ] || fail "nothing was dropped: the bound was never reached"
[ "$missing" -eq "$dropped" ] || fail "missing ($missing) != dropped counter ($dropped): seqs $(sort -n "$WORK/seqs.txt" | tr "\n" " ")"
grep -q "spool full: dropped" "$WORK/agent.log" || fail "drops were not logged"
pass "spool bound: $dropped frames dropped, counted and logged; nothing else missing"

# Which frames carry the dictionary, decoded with protoc from the schema,
# once two more frames have followed the drained one (no drop since).
seq_drained=$(agent_health seq)
wait_for 20 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o -1 -c 1 -e -q -f '%h' 2>/dev/null | tr ',' '\n' | sed -n 's/^rackpulse-seq=//p') -ge $((seq_drained + 2)) ]" \
  || fail "no frames after the drained one"
frame_dicts >"$WORK/dicts.txt"
echo "frames (seq, with dictionary): $(awk '{printf "%s:%s ", $1, $2}' "$WORK/dicts.txt")"
# (a frame built before the first scrape has no series, so no dictionary:
# the first frame with samples carries it)
[ "$(awk '$3 == 1 { print $2; exit }' "$WORK/dicts.txt")" = 1 ] \
  || fail "the first frame with samples has no dictionary"
last_gap=$(sort -n "$WORK/dicts.txt" | awk 'NR > 1 && $1 > prev + 1 { gap = $1 - 1 } { prev = $1 } END { print gap + 0 }')
[ "$last_gap" -gt 0 ] || fail "no gap in the sequence numbers on the topic"
after=$(sort -n "$WORK/dicts.txt" | awk -v g="$last_gap" '$1 > g { print $2 }')
[ "$(echo "$after" | head -1)" = 1 ] || fail "the first frame after the newest dropped one ($last_gap) has no dictionary"
[ "$(echo "$after" | tail -1)" = 0 ] || fail "the newest frame, built after recovery, still carries the dictionary"
pass "a frame after the drops carries the dictionary again; later frames do not"
