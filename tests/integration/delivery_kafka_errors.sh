#!/bin/bash
# Kafka errors that are not the frame's fault are outages, not reasons to
# drop. Two episodes of ERROR_SECONDS each, pushed by the dev broker:
#  1. every Produce request fails with TOPIC_AUTHORIZATION_FAILED;
#  2. the topic is unknown (metadata says UNKNOWN_TOPIC_OR_PART, and Produce
#     requests too until the producer refreshes its metadata).
# After each clears, the topic holds every sequence number once, in order,
# nothing dropped or rejected; the frames built meanwhile carry the error in
# their health, the newest one no more; the log says it once when an episode
# starts and once when it ends.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"
ERROR_SECONDS=${ERROR_SECONDS:-8}

start_control_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r5 "$CDU"
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "no frames before the error"

# 1. Authorization.
broker_control "produce_errors TOPIC_AUTHORIZATION_FAILED 1000000"
sleep "$ERROR_SECONDS" # the error lasts this long
broker_control "clear_errors"
cleared_at=$(date +%s%3N)
wait_for 60 drained "$cleared_at" || fail "the spool never drained after the authorization error: depth $(agent_health spool_depth)"
check_seqs agent-r5 "authorization error ${ERROR_SECONDS}s"
grep -q "kafka: .*TOPIC_AUTHORIZATION_FAILED.*frames stay in the spool" "$WORK/agent.log" \
  || fail "the authorization error was not logged"
wait_for 30 grep -q "kafka: delivering again" "$WORK/agent.log" || fail "recovery was not logged"

# 2. Unknown topic.
broker_control "topic_error rackpulse.frames UNKNOWN_TOPIC_OR_PART" "produce_errors UNKNOWN_TOPIC_OR_PART 3"
sleep "$ERROR_SECONDS"
broker_control "clear_errors" "topic_error rackpulse.frames NO_ERROR"
cleared_at=$(date +%s%3N)
wait_for 60 drained "$cleared_at" || fail "the spool never drained after the unknown topic: depth $(agent_health spool_depth)"
check_seqs agent-r5 "authorization error, then unknown topic"
grep -q "kafka: .*_UNKNOWN_\(TOPIC\|PARTITION\).*frames stay in the spool" "$WORK/agent.log" \
  || fail "the unknown topic was not logged"

[ "$(agent_health frames_dropped)" -eq 0 ] || fail "frames dropped"
[ "$(agent_health frames_rejected)" -eq 0 ] || fail "frames counted as rejected by Kafka"
all_health kafka_error >"$WORK/errors.txt"
grep -q "TOPIC_AUTHORIZATION_FAILED" "$WORK/errors.txt" || fail "no frame's health showed the authorization error: $(sort -u "$WORK/errors.txt" | tr '\n' '|')"
grep -q "_UNKNOWN_" "$WORK/errors.txt" || fail "no frame's health showed the unknown topic: $(sort -u "$WORK/errors.txt" | tr '\n' '|')"
[ -z "$(tail -1 "$WORK/errors.txt")" ] || fail "the newest frame still shows an error: $(tail -1 "$WORK/errors.txt")"
starts=$(grep -c "frames stay in the spool and are sent again" "$WORK/agent.log" || true)
[ "$starts" -eq 2 ] || fail "two error episodes were logged $starts times, not once each"
ends=$(grep -c "kafka: delivering again" "$WORK/agent.log" || true)
[ "$ends" -eq 2 ] || fail "two recoveries were logged $ends times, not once each"
pass "authorization error, then unknown topic, ${ERROR_SECONDS}s each: every frame arrived once, in order; health showed each ($(grep -c TOPIC_AUTH "$WORK/errors.txt") and $(grep -c _UNKNOWN_ "$WORK/errors.txt") frame(s)) and cleared"
