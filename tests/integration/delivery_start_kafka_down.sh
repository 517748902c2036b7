#!/bin/bash
# The agent started while Kafka cannot be reached is no start error: with
# its brokers refusing connections the agent runs, spools its frames and,
# once Kafka is back, delivers every one from the first, once, in order;
# with a broker name that does not resolve it runs too, and at SIGTERM
# leaves its frames in the spool and exits 0. A setting Kafka's client
# refuses (here a TLS CA file that does not exist) stops the start: exit 1,
# "cannot start" naming the setting (test_delivery covers the rest).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

start_broker
broker_down
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" r10 "$CDU"
start_agent "$WORK/agent.yaml"
wait_agent_started
# A frame is spooled while Kafka is down: the spool's file is written
# after the start (which wrote it last when it logged "frames every").
spool_mtime() { stat -c %Y.%y "$WORK/state-r10/spool/data.mdb"; }
started_mtime=$(spool_mtime)
spooled() { [ "$(spool_mtime)" != "$started_mtime" ]; }
wait_for 30 spooled || fail "no frame spooled while Kafka was down"
kill -0 "$AGENT_PID" || fail "the agent stopped while Kafka was down"
grep -q "cannot start" "$WORK/agent.log" && fail "the agent said it cannot start"
broker_up
wait_for 60 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 3 ]" \
  || fail "frames spooled while Kafka was down did not arrive"
check_seqs agent-r10 "started with Kafka down"
[ "$(sort -n "$WORK/seqs.txt" | head -1)" -eq 1 ] || fail "the frames built before Kafka came did not arrive"

# A broker name that does not resolve (.invalid never does).
sed -i 's|brokers: "[^"]*"|brokers: "kafka.invalid:9092"|' "$WORK/agent.yaml"
sed -i "s|state_dir: [^}]*}|state_dir: $WORK/state-dns}|" "$WORK/agent.yaml"
mv "$WORK/agent.log" "$WORK/agent-refused.log"
start_agent "$WORK/agent.yaml"
wait_for 30 grep -q "kafka.invalid" "$WORK/agent.log" || fail "the agent did not try the broker"
wait_agent_started
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "the agent exited $rc with an unknown broker name: $(tail -3 "$WORK/agent.log")"
grep -q "frame(s) stay in the spool for the next start" "$WORK/agent.log" \
  || fail "no frame kept in the spool: $(tail -3 "$WORK/agent.log")"
# A TLS file that cannot be read: the configuration's fault, no retry.
sed -i "s|^kafka: {\(.*\)}$|kafka: {\1, properties: {security.protocol: ssl, ssl.ca.location: $WORK/no-such-ca.pem}}|" "$WORK/agent.yaml"
sed -i "s|state_dir: [^}]*}|state_dir: $WORK/state-tls}|" "$WORK/agent.yaml"
mv "$WORK/agent.log" "$WORK/agent-dns.log"
start_agent "$WORK/agent.yaml"
rc=0
wait_for 30 sh -c "! kill -0 $AGENT_PID 2>/dev/null" || fail "the agent runs with an unreadable ssl.ca.location"
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 1 ] || fail "the agent exited $rc, not 1, with an unreadable ssl.ca.location"
grep -q "cannot start: kafka producer: ssl.ca.location" "$WORK/agent.log" \
  || fail "no 'cannot start' naming ssl.ca.location: $(tail -3 "$WORK/agent.log")"
pass "Kafka unreachable at start (refused, unknown name): the agent runs and spools, every frame delivered once Kafka is back; an unreadable TLS file stops the start"
