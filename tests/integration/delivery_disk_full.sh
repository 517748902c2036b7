#!/bin/bash
# The spool's disk full: the agent's state directory on a 2 MB tmpfs, Kafka
# away so the spool must grow, then the tmpfs filled. Spool writes fail
# (ENOSPC, EIO from LMDB): the agent logs it loudly, once, with the path, keeps the frames
# in memory and, when Kafka is back, delivers them all, once, in order; the
# frames built meanwhile say spool_degraded in their health. Once space
# returns the spool is written again (logged, health clear), and it is
# write-ahead again: frames spooled while Kafka is away survive kill -9.
# Each frame is on the topic once, except one the Kafka client itself sent
# again: when the dev broker goes down it can drop the answer to a Produce
# request it has already appended, and, unlike a real broker, it does not
# recognise the idempotent producer's retry (docs/failure-modes.md). The
# agent logs librdkafka's message debugging so that such a retry can be
# told from a frame the agent sent twice, which fails the test.
# Needs root (mount); skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
MNT=$(mktemp -d /tmp/rackpulse-spoolfs.XXXXXX)
mount -t tmpfs -o size=2m tmpfs "$MNT" || { rmdir "$MNT"; echo "SKIP: cannot mount a tmpfs"; exit 77; }
trap 'cleanup; umount "$MNT" 2>/dev/null || umount -l "$MNT"; rmdir "$MNT"; [ "$FAILED" -eq 0 ] || exit 1' EXIT

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r8 "$CDU"
sed -i "s|state_dir: [^}]*}|state_dir: $MNT/state}|" "$WORK/agent.yaml"
kafka_debug_msg "$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "no frames before the disk filled"

broker_down
dd if=/dev/zero of="$MNT/filler" bs=16k 2>/dev/null || true # until ENOSPC
wait_for 60 grep -q "spool write of " "$WORK/agent.log" \
  || fail "the spool never hit the full disk"
sleep 3 # a few more frames that cannot be spooled
broker_up
up_at=$(date +%s%3N)
# While the disk is still full, every frame reaches Kafka, in order.
fresh() { [ "$(agent_health ts_ms)" -gt $(( up_at + 3000 )) ]; }
wait_for 60 fresh || fail "no new frame on the topic after Kafka returned"
SEQ_DUPLICATES_OK=$(kafka_possibly_persisted "$WORK/agent.log") check_seqs agent-r8 "disk still full"
grep -q "spool $MNT/state/spool cannot be written: " "$WORK/agent.log" \
  || fail "no loud log line for the spool that cannot be written"
degraded_seen() { [ "$(all_health spool_degraded | grep -c true)" -gt 0 ]; }
degraded_seen || fail "no delivered frame says spool_degraded"
rm -f "$MNT/filler"
wait_for 60 grep -q "spool $MNT/state/spool written again: back to write-ahead" "$WORK/agent.log" \
  || fail "the spool did not recover once space returned"
recovered_at=$(date +%s%3N)
wait_for 60 drained "$recovered_at" || fail "the spool never drained: depth $(agent_health spool_depth)"
SEQ_DUPLICATES_OK=$(kafka_possibly_persisted "$WORK/agent.log") check_seqs agent-r8 "disk full"
[ "$(agent_health spool_degraded)" = 0 ] || fail "the newest frame still says spool_degraded"
[ "$(agent_health spool_write_failures)" -gt 0 ] || fail "spool_write_failures not counted"
[ "$(agent_health frames_dropped)" -eq 0 ] || fail "frames dropped"
episodes=$(grep -c "cannot be written" "$WORK/agent.log")
[ "$episodes" -eq 1 ] || fail "the full disk was logged $episodes times, not once"
failures=$(agent_health spool_write_failures)

# Write-ahead again: frames of an outage survive kill -9.
broker_down
last_before=$(sort -n "$WORK/seqs.txt" | tail -1)
sleep 4
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
mv "$WORK/agent.log" "$WORK/agent-first.log"
broker_up
start_agent "$WORK/agent.yaml"
wait_for 30 grep -q "unsent frame(s)" "$WORK/agent.log" || fail "the restarted agent found no spooled frames"
restarted_at=$(date +%s%3N)
wait_for 60 drained "$restarted_at" || fail "the spool never drained after the restart"
seqs_on_topic agent-r8 >"$WORK/seqs.txt"
distinct=$(sort -un "$WORK/seqs.txt" | wc -l)
last=$(sort -n "$WORK/seqs.txt" | tail -1)
missing=$(( last - $(sort -n "$WORK/seqs.txt" | head -1) + 1 - distinct ))
echo "after kill -9: seq ..$last, $distinct distinct, $missing missing (seq $last_before was the last before the outage)"
[ "$missing" -eq 0 ] || fail "$missing frame(s) lost across kill -9 after the spool recovered"
[ "$last" -gt $(( last_before + 3 )) ] || fail "too few frames after the restart"
pass "disk full: $failures failed spool write(s), every frame delivered from memory, logged once; spool write-ahead again after space returned"
