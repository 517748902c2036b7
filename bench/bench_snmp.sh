#!/bin/bash
# bench_snmp.sh: CPU per 1 000 values and poll completion time of the SNMP
# collector against N simulated PDUs (one snmpsimd process serving N
# communities, each a copy of one of the three vendor fixtures in
# tests/fixtures/snmpsim: Raritan 22 values, APC 21, Sentry4 27 per scrape).
# For each N:
#   poll completion = `rackpulse-agent --once` with all N PDUs: every scrape
#                     starts at once; the largest scrape_ms in the frame is
#                     when the last PDU's poll finished (median also shown)
#   CPU / 1000 values = the real agent runs --seconds at --interval against
#                     the dev broker; its user+sys CPU (/usr/bin/time) minus
#                     an agent with no device for the same time, divided by
#                     the values read (scrape counters of the last frame x
#                     values per PDU)
# snmpsimd (Python, one process) answers every PDU here: its CPU is printed
# separately and bounds the poll completion time, not the agent.
#
#   bash bench/bench_snmp.sh [--pdus "2 20 200"] [--seconds S] [--interval D] [--build DIR]
# Defaults: 40 s per N, interval auto (1 s, N/20 s above 20 PDUs: one
# simulator process must keep up), per-request timeout 2 s with 2 retries
# (a burst of 200 requests can overflow the simulator's UDP receive buffer).
set -euo pipefail

PDUS="2 20 200" SECS=40 INTERVAL=auto BUILD=${RP_BIN:-build}
while [ $# -gt 0 ]; do
  case $1 in
  --pdus) PDUS=$2; shift 2 ;;
  --seconds) SECS=$2; shift 2 ;;
  --interval) INTERVAL=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "bench_snmp.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
export RP_SRC=$(cd "$(dirname "$0")/.." && pwd)
export RP_BIN=$(cd "$BUILD" && pwd)
source "$RP_SRC/tests/integration/lib.sh"
source "$RP_SRC/tests/integration/snmp_lib.sh"

export SNMPSIM_LOGGING=null # its request log would be most of its CPU
MAXN=0
for n in $PDUS; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
FIX=(raritan-px apc-rpdu2 servertech-sentry4)
PROF=(raritan-px apc-rpdu2 servertech-sentry4)
VALS=(22 21 27)
copies() {
  local i
  for ((i = 0; i < MAXN; i++)); do
    cp "$WORK/snmpsim/data/${FIX[i % 3]}.snmprec" "$WORK/snmpsim/data/pdu$i.snmprec"
    secret "pdu$i.community" "pdu$i"
  done
}
start_snmpsim copies
wait_for 120 snmpget -v2c -c "pdu$((MAXN - 1))" -t 2 -r 0 "127.0.0.1:$SIM_PORT" 1.3.6.1.2.1.1.3.0 \
  || fail "snmpsimd does not serve pdu$((MAXN - 1))"
start_broker

config() { # N INTERVAL
  echo "agent: {id: b, rack: rb, interval: $2, state_dir: $WORK/state-$1-$RANDOM,"
  echo "        profiles_dir: $RP_SRC/packaging/profiles, max_series: 20000}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", linger: 5ms}"
  [ "$1" -eq 0 ] && return
  echo "snmp:"
  for ((i = 0; i < $1; i++)); do
    printf '  - {name: pdu%s, host: 127.0.0.1, port: %s, community_file: %s, profile: %s, timeout: 2s, retries: 2}\n' \
      "$i" "$SIM_PORT" "$WORK/pdu$i.community" "${PROF[i % 3]}"
  done
}
values_per_round() {
  local v=0 i
  for ((i = 0; i < $1; i++)); do v=$((v + VALS[i % 3])); done
  echo $v
}
sim_cpu() { awk '{print $14 + $15}' "/proc/$SIM_PID/stat"; }
last_frame() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o -1 -c 1 -e -f '%s' 2>/dev/null \
    | protoc --decode=rackpulse.v1.Frame -I "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto"
}
# run_agent N: the agent for $SECS seconds; prints "cpu_seconds scrapes"
run_agent() {
  local iv=$INTERVAL
  [ "$iv" != auto ] || iv=$(( $1 / 20 > 1 ? $1 / 20 : 1 ))s # 1 s, or 10 s for 200 PDUs
  config "$1" "$iv" >"$WORK/run-$1.yaml"
  /usr/bin/time -f '%U %S' -o "$WORK/time-$1" "$RP_BIN/agent/rackpulse-agent" \
    -c "$WORK/run-$1.yaml" >/dev/null 2>"$WORK/agent-$1.log" &
  local pid=$! agent
  sleep "$SECS"
  local scrapes=0
  if [ "$1" -gt 0 ]; then
    scrapes=$( (last_frame || true) | awk '$1 == "scrapes:" {s += $2} END {print s + 0}')
  fi
  agent=$(pgrep -P "$pid") # the agent, child of /usr/bin/time (which would die of SIGTERM)
  kill -TERM "$agent"; wait "$pid" || true
  echo "$(awk '{print $1 + $2}' "$WORK/time-$1") $scrapes"
}

read -r base_cpu _ < <(run_agent 0)
echo "baseline: agent with no device, ${SECS} s: ${base_cpu} s CPU"
printf '%-6s %-9s %-12s %-12s %-10s %-14s %-12s\n' PDUs values/rnd "poll max ms" "poll p50 ms" scrapes "CPU/1000 val" "snmpsim CPU"
for n in $PDUS; do
  config "$n" 1s >"$WORK/once-$n.yaml"
  s0=$(sim_cpu)
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/once-$n.yaml" --once >"$WORK/once-$n.json" 2>"$WORK/once-$n.log"
  read -r pmax p50 up < <($PY -c '
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
ms = sorted(x["scrape_ms"] for x in d)
print(ms[-1], ms[len(ms) // 2], sum(1 for x in d if x["up"]))' "$WORK/once-$n.json")
  [ "$up" -eq "$n" ] || echo "note: --once with $n PDUs: $up up: $(tail -1 "$WORK/once-$n.log")"
  s1=$(sim_cpu)
  read -r cpu scrapes < <(run_agent "$n")
  s2=$(sim_cpu)
  v=$(values_per_round "$n")
  $PY - "$n" "$v" "$pmax" "$p50" "$cpu" "$base_cpu" "$scrapes" "$s1" "$s2" <<'PYEOF'
import sys
n, v, pmax, p50 = (int(x) for x in sys.argv[1:5])
cpu, base, scrapes = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
s1, s2 = int(sys.argv[8]), int(sys.argv[9])
values = scrapes * v / n
per1000 = (cpu - base) / values * 1000 if values else float("nan")
print(f"{n:<6} {v:<9} {pmax:<12} {p50:<12} {scrapes:<10} {per1000 * 1000:8.2f} ms   "
      f"{(s2 - s1) / 100:.2f} s")
PYEOF
done
echo "(CPU/1000 val: agent user+sys over the run minus the baseline, per 1000 values read;"
echo " snmpsim CPU: the simulator's user+sys during the same run)"
