#!/bin/bash
# The idempotent producer's own retry on the dev broker. When a broker goes
# down after it has appended a Produce request but before its answer left,
# librdkafka sends the batch again with the same producer id and sequence.
# A real broker acknowledges that retry without appending it; the dev
# broker (librdkafka 2.0.2's mock cluster) checks sequences only for
# transactional producers and appends it again, so the frame is on the
# topic twice although the agent handed it over once. delivery_disk_full
# tolerates exactly such frames: those librdkafka's message debugging says
# it sent again after a lost connection (kafka_possibly_persisted). This
# test makes the case happen on purpose (the broker holds its answer to a
# Produce request 20 s, and goes down meanwhile) and checks that every
# duplicate is one kafka_possibly_persisted names, so that tolerance keeps
# matching librdkafka's log. Should no frame be duplicated any more, the
# dev broker de-duplicates: delivery_disk_full's tolerance can go.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_control_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r9 "$CDU"
kafka_debug_msg "$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "no frames from the agent"

broker_control "produce_delay 1 20000"
before=$(grep -c "Produce MessageSet" "$WORK/agent.log" || true)
wait_for 30 sh -c "[ \$(grep -c 'Produce MessageSet' $WORK/agent.log) -gt $before ]" \
  || fail "no Produce request after the broker was told to hold its answer"
broker_down # within the 20 s the answer is held: it is lost
wait_for 30 grep -q "MsgPossiblyPersisted" "$WORK/agent.log" \
  || fail "librdkafka did not report a Produce request left unanswered"
broker_up
retried=$(kafka_possibly_persisted "$WORK/agent.log")
[ -n "$retried" ] || fail "kafka_possibly_persisted found nothing in librdkafka's log"
last_retried=$(tail -1 <<<"$retried")
after_retried() { seqs_on_topic agent-r9 | awk -v l="$last_retried" '$1 > l + 1 { f = 1 } END { exit !f }'; }
wait_for 60 after_retried || fail "no frame after the retried ones reached the topic"

SEQ_DUPLICATES_OK=$retried check_seqs agent-r9 "retry on the dev broker"
dups=$(sort -n "$WORK/seqs.txt" | uniq -d | tr '\n' ' ')
[ -n "$dups" ] || fail "no frame twice on the topic: the dev broker now de-duplicates the idempotent producer's retry (drop the tolerance in delivery_disk_full)"
pass "frame(s) ${dups% } appended twice by the dev broker, each one librdkafka itself sent again after the lost connection ($(tr '\n' ' ' <<<"$retried" | sed 's/ $//'))"
