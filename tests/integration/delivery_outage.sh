#!/bin/bash
# Kafka away for a while (the dev broker's brokers taken down) while the agent
# scrapes every second: after recovery the topic holds every sequence number
# exactly once (the idempotent producer may not duplicate; the spool may not
# lose), in order, and the scrape schedule kept going during the outage. The
# one exception is the dev broker's: a frame whose Produce was in flight when
# the brokers went down, which librdkafka logs as possibly persisted and
# sends again, and which the mock cluster (unlike a real broker) appends
# twice (delivery_kafka_retry proves that mechanism); any other duplicate
# fails.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"
DOWN=${DOWN_SECONDS:-60}

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r1 "$CDU"
kafka_debug_msg "$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"
wait_for 15 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "no frames before the outage"

broker_down
sleep "$DOWN"
before_up=$(date +%s)
broker_up
# Everything produced during the outage arrives within a few seconds.
expect=$(( DOWN + 3 ))
wait_for 60 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge $expect ]" \
  || fail "frames of the outage did not arrive"
sleep 3
SEQ_DUPLICATES_OK=$(kafka_possibly_persisted "$WORK/agent.log") check_seqs agent-r1 "outage ${DOWN}s"
distinct=$(sort -un "$WORK/seqs.txt" | wc -l)
[ "$distinct" -ge "$expect" ] || fail "only $distinct frames for a ${DOWN}s outage"
[ "$(agent_health frames_dropped)" -eq 0 ] || fail "frames dropped during a short outage"
pass "every frame of a ${DOWN}s outage arrived once, in order (recovered $(( $(date +%s) - before_up ))s after)"
