#!/bin/bash
# agent_kafka_idle: librdkafka's main thread (rdk:main) does not spin
# before its timers (agent/kafka_timedwait.c). librdkafka 2.0.2 rounds its
# sleep down to whole milliseconds and then polls in a loop until the
# timer is due: ~0.9 ms of CPU a second for its 1 s timer alone, where
# the thread needs well under 0.1 ms a second once it sleeps until then.
# An agent with one CDU and the dev broker; rdk:main's time on the CPU
# (/proc/PID/task/TID/schedstat, nanoseconds: CPU time, which a loaded
# machine does not inflate the way it does wall time) over 10 s must stay
# under 3 ms (9 ms or so with the spin).
source "$RP_SRC/tests/integration/lib.sh"
SECS=10 LIMIT_MS=3

nm -D --defined-only "$RP_BIN/agent/rackpulse-agent" | grep -qw cnd_timedwait ||
  fail "rackpulse-agent does not export cnd_timedwait: librdkafka would not reach it"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" idle "$CDU"
start_agent "$WORK/agent.yaml"
wait_agent_started
# rdk:main's task directory, once librdkafka has started its threads.
main_task() { grep -lx 'rdk:main' /proc/"$AGENT_PID"/task/*/comm 2>/dev/null | head -1 | xargs -r dirname; }
wait_for 30 test -n "$(main_task)" || fail "no rdk:main thread in the agent"
TASK=$(main_task)
# The producer connected and delivering (the thread then runs its
# steady-state timers, not the connection's): two frames on the topic.
wait_for 60 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 2 ]" ||
  fail "no frames on rackpulse.frames: $(tail -5 "$WORK/agent.log")"
ns() { awk '{print $1}' "$TASK/schedstat"; }
a=$(ns)
sleep "$SECS"
b=$(ns)
kill -0 "$AGENT_PID" || fail "the agent exited: $(tail -5 "$WORK/agent.log")"
used=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (b - a) / 1e6}')
echo "rdk:main: $used ms of CPU in $SECS s"
awk -v u="$used" -v l="$LIMIT_MS" 'BEGIN {exit !(u > 0 && u < l)}' ||
  fail "rdk:main used $used ms of CPU in $SECS s (limit $LIMIT_MS): librdkafka's main thread spins before its timers"
pass "rdk:main $used ms of CPU in $SECS s"
