#!/bin/bash
# ipmi_bench.sh: per-scrape CPU and wall time of the IPMI collector against
# N simulated BMCs (ipmi_sim, tests/fixtures/ipmi_sim), one mode at a time:
#   persistent       one `ipmitool ... shell` per BMC, commands over stdin
#   oneshot          one ipmitool child per command, SDR cache (sdr dump, -S)
#   oneshot-nocache  one ipmitool child per command, SDR read every time
# For each mode the real agent runs for --seconds with all N BMCs, publishing
# to the dev broker; then:
#   CPU/scrape  = (agent + all its ipmitool children, user+sys, from
#                 /usr/bin/time) / scrapes; children are reaped by the agent,
#                 so their CPU is in its rusage; an agent with no device for
#                 the same time is the baseline, subtracted
#   wall/scrape = scrape_ms of every device in every frame (kcat + protoc
#                 --decode on the topic), mean and p95
#   scrapes     = sum of the devices' scrape counters in the last frame
# and, with strace, the IPMI messages (sendto calls) one `sdr elist` costs in
# each mode against the first BMC.
#
#   bash bench/ipmi_bench.sh [--bmcs N] [--seconds S] [--interval D] [--build DIR]
#
# Defaults: 40 BMCs, 30 s per mode, interval 2s, build dir ./build. Needs
# ipmi_sim (openipmi), ipmitool, kcat, protoc; strace is optional.
set -euo pipefail

BMCS=40 SECONDS_PER_MODE=30 INTERVAL=2s BUILD=${RP_BIN:-build}
while [ $# -gt 0 ]; do
  case $1 in
  --bmcs) BMCS=$2; shift 2 ;;
  --seconds) SECONDS_PER_MODE=$2; shift 2 ;;
  --interval) INTERVAL=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
  *) echo "ipmi_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
AGENT=$BUILD/agent/rackpulse-agent
BROKER=$BUILD/tools/rackpulse-devbroker
for f in "$AGENT" "$BROKER"; do
  [ -x "$f" ] || { echo "ipmi_bench.sh: $f missing: build first (make rackpulse-agent rackpulse-devbroker)" >&2; exit 2; }
done
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/rackpulse-ipmi-bench.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

udp_port() {
  $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "starting $BMCS ipmi_sim BMCs..." >&2
PORTS=()
for i in $(seq "$BMCS"); do PORTS+=("$(udp_port)"); done
for i in $(seq "$BMCS"); do
  (sh "$SRC/tests/fixtures/ipmi_sim/start-bmc.sh" "b$i" "${PORTS[$((i - 1))]}" "$WORK/bmc$i" \
    >"$WORK/bmc$i.pid" 2>"$WORK/bmc$i.log" || echo "b$i failed: $(cat "$WORK/bmc$i.log")" >&2) &
  if [ $((i % 8)) -eq 0 ]; then wait; fi
done
wait
for i in $(seq "$BMCS"); do
  [ -s "$WORK/bmc$i.pid" ] || { echo "BMC b$i did not start" >&2; exit 1; }
  PIDS+=("$(cat "$WORK/bmc$i.pid")")
done

"$BROKER" --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.out" 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$WORK/bootstrap")

# config MODE: the agent config for one mode (MODE "none": no device).
config() {
  local mode=$1 session=persistent cache=true i
  case $mode in
  oneshot) session=oneshot ;;
  oneshot-nocache) session=oneshot cache=false ;;
  esac
  echo "agent: {id: bench-$mode, rack: bench-$mode, interval: $INTERVAL, state_dir: $WORK/state-$mode}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", topic: bench.$mode, linger: 5ms}"
  [ "$mode" = none ] && return
  echo "ipmi:"
  for i in $(seq "$BMCS"); do
    echo "  - {name: b$i, host: 127.0.0.1, port: ${PORTS[$((i - 1))]}, user: admin,"
    echo "     password_file: $WORK/bmc$i/passfile, session: $session, sdr_cache: $cache}"
  done
}

# run MODE: runs the agent for SECONDS_PER_MODE; prints "cpu_s wall_s".
run() {
  local mode=$1
  config "$mode" >"$WORK/$mode.yaml"
  /usr/bin/time -f "%U %S" -o "$WORK/$mode.time" "$AGENT" -c "$WORK/$mode.yaml" \
    >"$WORK/$mode.out" 2>"$WORK/$mode.log" &
  local tpid=$! apid=""
  for _ in $(seq 50); do apid=$(pgrep -P "$tpid" || true); [ -n "$apid" ] && break; sleep 0.1; done
  sleep "$SECONDS_PER_MODE"
  kill -TERM "$apid"
  wait "$tpid" || { echo "agent ($mode) failed: $(tail -5 "$WORK/$mode.log")" >&2; exit 1; }
  awk '{printf "%.3f\n", $1 + $2}' "$WORK/$mode.time"
}

# frames MODE: every frame of the mode's topic, decoded, as JSON stats.
frames() {
  local mode=$1
  kcat -C -b "$BOOTSTRAP" -t "bench.$mode" -o beginning -e -f '%S:%s' >"$WORK/$mode.kcat" 2>/dev/null
  $PY "$SRC/bench/frame_devices.py" "$WORK/$mode.kcat" "$SRC/proto"
}

echo "baseline: the agent with no device, ${SECONDS_PER_MODE}s..." >&2
BASE=$(run none)
declare -A CPU STATS
for mode in persistent oneshot oneshot-nocache; do
  echo "$mode: $BMCS BMCs, interval $INTERVAL, ${SECONDS_PER_MODE}s..." >&2
  CPU[$mode]=$(run "$mode")
  STATS[$mode]=$(frames "$mode")
done

# IPMI messages per `sdr elist` (sendto calls of ipmitool), against b1.
MSGS_P="-" MSGS_O="-" MSGS_N="-"
if command -v strace >/dev/null; then
  P1=${PORTS[0]}
  opts=(-I lanplus -H 127.0.0.1 -p "$P1" -U admin -f "$WORK/bmc1/passfile" -C 3)
  sends() { strace -f -e trace=sendto -o "$WORK/strace.txt" "$@" >/dev/null 2>&1 || true; grep -c sendto "$WORK/strace.txt" || true; }
  ipmitool "${opts[@]}" sdr dump "$WORK/b1.sdr" >/dev/null
  MSGS_N=$(sends ipmitool "${opts[@]}" sdr elist)
  MSGS_O=$(sends ipmitool "${opts[@]}" -S "$WORK/b1.sdr" sdr elist)
  one=$(printf 'sdr elist\nexit\n' | sends ipmitool "${opts[@]}" shell)
  six=$(printf 'sdr elist\nsdr elist\nsdr elist\nsdr elist\nsdr elist\nsdr elist\nexit\n' | sends ipmitool "${opts[@]}" shell)
  MSGS_P=$(( (six - one) / 5 ))
fi

$PY - "$BASE" "$SECONDS_PER_MODE" "$BMCS" "$INTERVAL" "$MSGS_P" "$MSGS_O" "$MSGS_N" \
  "${CPU[persistent]}" "${STATS[persistent]}" "${CPU[oneshot]}" "${STATS[oneshot]}" \
  "${CPU[oneshot-nocache]}" "${STATS[oneshot-nocache]}" <<'PYEOF'
import json, sys
base, secs, bmcs, interval = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msgs = dict(zip(["persistent", "oneshot", "oneshot-nocache"], sys.argv[5:8]))
rows = {}
for k, mode in enumerate(["persistent", "oneshot", "oneshot-nocache"]):
    cpu, st = float(sys.argv[8 + 2 * k]), json.loads(sys.argv[9 + 2 * k])
    n = max(st["scrapes"], 1)
    rows[mode] = dict(cpu=cpu, net=cpu - base, n=st["scrapes"], fail=st["failures"],
                      cpu_ms=(cpu - base) * 1000 / n, wall=st["wall_mean"], p95=st["wall_p95"],
                      msgs=msgs[mode])
print(f"IPMI collector: {bmcs} ipmi_sim BMCs, interval {interval}, {secs} s per mode; "
      f"baseline (agent, no device) {base:.2f} s CPU")
print("| mode | scrapes (failed) | CPU s total | CPU ms / scrape | wall ms / scrape, mean | p95 | IPMI msgs / sdr elist |")
print("|---|---|---|---|---|---|---|")
for mode, r in rows.items():
    print(f"| {mode} | {r['n']} ({r['fail']}) | {r['cpu']:.2f} | {r['cpu_ms']:.2f} | "
          f"{r['wall']:.1f} | {r['p95']} | {r['msgs']} |")
p = rows["persistent"]
for mode in ("oneshot", "oneshot-nocache"):
    r = rows[mode]
    print(f"| ratio {mode} / persistent | | | {r['cpu_ms'] / p['cpu_ms']:.1f}× | "
          f"{r['wall'] / p['wall']:.1f}× | | |")
PYEOF
