#!/bin/bash
# bench/agent_fixed_costs.sh: what the agent costs with no BMC (issue 25's
# "fixed costs"): the agent with one CDU (tools/cdu_sim.py, pymodbus) and
# the dev broker, after WARM seconds, SECS seconds under `strace -c -f`
# (system calls per second, every thread), then SECS seconds untraced for
# its CPU (/proc/PID/stat utime + stime) and its wakeups (voluntary and
# involuntary context switches of every thread, /proc/PID/task/*/status).
#
#   RP_BIN=build RP_SRC=. bash bench/agent_fixed_costs.sh [SECS] [WARM]
#
# Defaults: 20 s, 5 s of warm-up. Needs strace, python3-pymodbus.
RP_BIN=${RP_BIN:-build} RP_SRC=${RP_SRC:-.}
RP_BIN=$(cd "$RP_BIN" && pwd) RP_SRC=$(cd "$RP_SRC" && pwd)
export RP_BIN RP_SRC
source "$RP_SRC/tests/integration/lib.sh"
SECS=${1:-20} WARM=${2:-5}

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" fixed "$CDU"
start_agent "$WORK/agent.yaml"
sleep "$WARM"
kill -0 "$AGENT_PID" || fail "the agent exited: $(tail -5 "$WORK/agent.log")"

# ticks PID: utime + stime of the process (all threads), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# switches PID: voluntary + involuntary context switches of every thread.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }

t0=$(ticks "$AGENT_PID") s0=$(switches "$AGENT_PID")
sleep "$SECS"
t1=$(ticks "$AGENT_PID") s1=$(switches "$AGENT_PID")
hz=$(getconf CLK_TCK)
echo "untraced, $SECS s: CPU $(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$SECS" 'BEGIN {printf "%.2f", t / hz / s * 1000}') ms a second (clock ticks of 1/$hz s)," \
  "context switches $(awk -v n=$((s1 - s0)) -v s="$SECS" 'BEGIN {printf "%.1f", n / s}') a second," \
  "threads $(ls /proc/"$AGENT_PID"/task | wc -l)"

timeout -s INT "$SECS" strace -c -f -q -p "$AGENT_PID" -o "$WORK/strace.txt" || true
echo "strace -c -f, $SECS s (calls a second, then the table):"
awk -v s="$SECS" '$1 ~ /^[0-9.]+$/ && NF >= 5 {name = $NF; calls = $4; printf "  %-16s %6.2f/s\n", name, calls / s}' "$WORK/strace.txt" | sort -k2 -rn
cat "$WORK/strace.txt"
