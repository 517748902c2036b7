#!/bin/bash
# kill -9 of the agent while its spool holds frames Kafka never acknowledged:
# after a restart every one of them arrives, and sequence numbers continue
# from where they were (never repeat, never go back).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r2 "$CDU"
start_agent "$WORK/agent.yaml"
wait_for 15 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 2 ]" \
  || fail "no frames before the outage"
broker_down
sleep 8
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
broker_up
start_agent "$WORK/agent.yaml"
grep -q "unsent frame(s)" "$WORK/agent.log" || sleep 2
grep -q "unsent frame(s)" "$WORK/agent.log" || fail "the restarted agent found no spooled frames"
sleep 6
seqs_on_topic agent-r2 >"$WORK/seqs.txt"
distinct=$(sort -un "$WORK/seqs.txt" | wc -l)
first=$(sort -n "$WORK/seqs.txt" | head -1)
last=$(sort -n "$WORK/seqs.txt" | tail -1)
missing=$(( last - first + 1 - distinct ))
echo "after kill -9: seq $first..$last, $distinct distinct of $(wc -l <"$WORK/seqs.txt")"
[ "$missing" -eq 0 ] || fail "$missing frame(s) lost across kill -9"
[ "$distinct" -ge 12 ] || fail "too few frames ($distinct)"
pass "no frame lost across kill -9 with a full spool; sequence continued"
