#!/bin/bash
# Fatal idempotent-producer errors (rd_kafka_fatal_error): the dev broker
# answers one Produce request with OUT_OF_ORDER_SEQUENCE_NUMBER (fatal for
# librdkafka's idempotent producer), then refuses the producer id of the
# next five producers with CLUSTER_AUTHORIZATION_FAILED (fatal again each
# time; a few seconds in all, so frames built meanwhile carry the error in
# their health). The agent logs each with its reason, purges and recreates
# the producer, and sends again from the oldest kept frame. No sequence
# number is lost or repeated, nothing is counted as dropped or rejected.
# A fatal error of the idempotent producer can leave a gap on the broker:
# the first frame built after it carries the dictionary again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_control_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r6 "$CDU"
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "no frames before the fatal error"

broker_control "init_pid_errors CLUSTER_AUTHORIZATION_FAILED 5" \
  "produce_errors OUT_OF_ORDER_SEQUENCE_NUMBER 1"
fault_at=$(date +%s%3N)
wait_for 90 drained "$fault_at" || fail "no frame delivered after the fatal error, or the spool never drained: depth $(agent_health spool_depth)"
check_seqs agent-r6 "fatal producer error"
[ "$(agent_health frames_dropped)" -eq 0 ] || fail "frames dropped"
[ "$(agent_health frames_rejected)" -eq 0 ] || fail "frames counted as rejected"
all_health kafka_error >"$WORK/errors.txt"
grep -q "fatal producer error" "$WORK/errors.txt" || fail "no frame's health showed the fatal error"
[ -z "$(tail -1 "$WORK/errors.txt")" ] || fail "the newest frame still shows an error: $(tail -1 "$WORK/errors.txt")"
grep -q "kafka: fatal producer error: .*recreating the producer" "$WORK/agent.log" \
  || fail "no fatal producer error logged"
grep -q "producer recreated" "$WORK/agent.log" || fail "the producer was not recreated"
grep "fatal producer error" "$WORK/agent.log" | head -1 | cut -c1-200
frame_dicts >"$WORK/dicts.txt"
first_fatal=$(awk '/ fatal producer error/ { print $2; exit }' "$WORK/dicts.txt")
[ "$first_fatal" = 1 ] || fail "the first frame built after the fatal error has no dictionary: $(cat "$WORK/dicts.txt")"
pass "fatal producer error: producer recreated, every frame arrived once, in order; the dictionary sent again"
