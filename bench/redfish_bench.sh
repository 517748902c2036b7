#!/bin/bash
# redfish_bench.sh: the Redfish collector against N simulated Redfish
# services (tools/redfishsim, compute trays: EnvironmentMetrics, Sensors
# with $expand, two PSU metrics each, over TLS with sessions), beside the
# IPMI collector on N ipmi_sim BMCs (persistent ipmitool shells), both every
# --interval for --seconds, publishing to the dev broker:
#   CPU / 1 000 values = (agent, user+sys, its ipmitool children included,
#                         from /usr/bin/time) / (values per round x rounds)
#                        values per round: samples of one `--once` frame;
#                        rounds = the devices' scrapes in the last frame / N
#   round (cold)       = wall time of `rackpulse-agent --once` with all N
#                        (sessions, discovery or ipmitool shells included)
#   scrape ms          = every device's scrape_ms in every frame (mean, p95,
#                        max): the time to complete one round in steady state
#                        is the max, as all devices start together
#   RSS                = the agent's VmHWM (IPMI: and its ipmitool shells' RSS)
# The simulators' own CPU is not counted (the Python Redfish simulator is
# the slower peer on loopback).
#
#   bash bench/redfish_bench.sh [--devices N] [--seconds S] [--interval D] [--build DIR] [--no-ipmi]
#
# Defaults: 100 devices, 30 s, interval 5s, build dir ./build. Needs kcat,
# protoc, ipmi_sim and ipmitool (for the IPMI side).
set -euo pipefail

N=100 SECS=30 INTERVAL=5s BUILD=${RP_BIN:-build} IPMI=1
while [ $# -gt 0 ]; do
  case $1 in
  --devices) N=$2; shift 2 ;;
  --seconds) SECS=$2; shift 2 ;;
  --interval) INTERVAL=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --no-ipmi) IPMI=0; shift ;;
  -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
  *) echo "redfish_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
AGENT=$BUILD/agent/rackpulse-agent
BROKER=$BUILD/tools/rackpulse-devbroker
for f in "$AGENT" "$BROKER"; do
  [ -x "$f" ] || { echo "redfish_bench.sh: $f missing: build first" >&2; exit 2; }
done
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/rackpulse-redfish-bench.XXXXXX)
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

"$BROKER" --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.out" 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$WORK/bootstrap")

echo "starting $N simulated Redfish trays..." >&2
(umask 077; echo "bench-pw-$$" >"$WORK/rf-password")
$PY "$SRC/tools/redfishsim/redfishsim.py" --devices "tray:$N:t" --ports-out "$WORK/rf.ports" \
  --password-file "$WORK/rf-password" --tls-dir "$WORK/tls" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/rf.ports" ] && break; sleep 0.2; done
[ -s "$WORK/rf.ports" ] || { echo "redfishsim did not start: $(cat "$WORK/sim.log")" >&2; exit 1; }

redfish_config() {
  echo "agent: {id: bench-redfish, rack: bench-redfish, interval: $INTERVAL, state_dir: $WORK/state-rf-$1}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", topic: bench.redfish.$1, linger: 5ms}"
  echo "redfish:"
  $PY - "$WORK/rf.ports" "$WORK/rf-password" "$WORK/tls/cert.pem" <<'PYEOF'
import json, sys
for name, port in json.load(open(sys.argv[1])).items():
    print("  - {name: %s, host: 127.0.0.1, port: %d, user: admin, password_file: %s, ca_file: %s, timeout: 4s}"
          % (name, port, sys.argv[2], sys.argv[3]))
PYEOF
}

start_bmcs() {
  echo "starting $N ipmi_sim BMCs..." >&2
  PORTS=()
  for i in $(seq "$N"); do PORTS+=("$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"); done
  local batch=()
  for i in $(seq "$N"); do
    (sh "$SRC/tests/fixtures/ipmi_sim/start-bmc.sh" "b$i" "${PORTS[$((i - 1))]}" "$WORK/bmc$i" \
      >"$WORK/bmc$i.pid" 2>"$WORK/bmc$i.log" || echo "b$i failed" >&2) &
    batch+=($!)
    if [ ${#batch[@]} -eq 16 ] || [ "$i" -eq "$N" ]; then
      wait "${batch[@]}"
      batch=()
      for j in $(seq $((i - (i - 1) % 16)) "$i"); do  # stopped by cleanup from now on
        [ -s "$WORK/bmc$j.pid" ] && PIDS+=("$(cat "$WORK/bmc$j.pid")")
      done
    fi
  done
  for i in $(seq "$N"); do
    [ -s "$WORK/bmc$i.pid" ] || { echo "BMC b$i did not start" >&2; exit 1; }
  done
}

ipmi_config() {
  echo "agent: {id: bench-ipmi, rack: bench-ipmi, interval: $INTERVAL, state_dir: $WORK/state-ipmi-$1, ipmi_max_children: $N}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", topic: bench.ipmi.$1, linger: 5ms}"
  echo "ipmi:"
  for i in $(seq "$N"); do
    echo "  - {name: b$i, host: 127.0.0.1, port: ${PORTS[$((i - 1))]}, user: admin, password_file: $WORK/bmc$i/passfile}"
  done
}

# once KIND: wall seconds of one --once round of all N, and its samples.
once() {
  $2 once >"$WORK/$1-once.yaml"
  local t0 t1
  t0=$(date +%s.%N)
  "$AGENT" -c "$WORK/$1-once.yaml" --once >"$WORK/$1-once.json" 2>"$WORK/$1-once.log" \
    || { echo "--once ($1) failed: $(tail -3 "$WORK/$1-once.log")" >&2; exit 1; }
  t1=$(date +%s.%N)
  $PY -c 'import json,sys; f=json.load(open(sys.argv[1])); up=sum(d["up"] for d in f["devices"]); print("%.3f %d %d" % (float(sys.argv[2]), len(f["samples"]), up))' \
    "$WORK/$1-once.json" "$(echo "$t1 - $t0" | bc)"
}

# run KIND CONFIGFN: the agent for SECS; prints "cpu_s hwm_kb children_rss_kb".
run() {
  $2 run >"$WORK/$1.yaml"
  /usr/bin/time -f "%U %S" -o "$WORK/$1.time" "$AGENT" -c "$WORK/$1.yaml" \
    >"$WORK/$1.out" 2>"$WORK/$1.log" &
  local tpid=$! apid=""
  for _ in $(seq 50); do apid=$(pgrep -P "$tpid" || true); [ -n "$apid" ] && break; sleep 0.1; done
  sleep "$SECS"
  local hwm kids=0 c
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
  for c in $(pgrep -P "$apid" || true); do
    kids=$((kids + $(awk '/VmRSS/ {print $2}' "/proc/$c/status" 2>/dev/null || echo 0)))
  done
  kill -TERM "$apid"
  wait "$tpid" || { echo "agent ($1) failed: $(tail -5 "$WORK/$1.log")" >&2; exit 1; }
  echo "$(awk '{printf "%.3f", $1 + $2}' "$WORK/$1.time") $hwm $kids"
}

frames() {
  kcat -C -b "$BOOTSTRAP" -t "bench.$1.run" -o beginning -e -f '%S:%s' >"$WORK/$1.kcat" 2>/dev/null
  $PY "$SRC/bench/frame_devices.py" "$WORK/$1.kcat" "$SRC/proto"
}

declare -A ONCE RUN STATS
KINDS=(redfish)
[ "$IPMI" = 1 ] && KINDS+=(ipmi)
for k in "${KINDS[@]}"; do
  [ "$k" = ipmi ] && start_bmcs
  echo "$k: one --once round of $N..." >&2
  ONCE[$k]=$(once "$k" "${k}_config")
  echo "$k: $N devices, interval $INTERVAL, ${SECS}s..." >&2
  RUN[$k]=$(run "$k" "${k}_config")
  STATS[$k]=$(frames "$k")
done

$PY - "$N" "$INTERVAL" "$SECS" "${KINDS[@]}" -- "${ONCE[@]}" -- "${RUN[@]}" -- "${STATS[@]}" <<'PYEOF'
import json, sys
a = sys.argv[1:]
n, interval, secs = int(a[0]), a[1], a[2]
rest = a[3:]
i = rest.index("--"); kinds = rest[:i]; rest = rest[i + 1:]
i = rest.index("--"); onces = rest[:i]; rest = rest[i + 1:]
i = rest.index("--"); runs = rest[:i]; stats = rest[i + 1:]
print(f"{n} devices per collector, interval {interval}, {secs} s each")
print("| collector | --once round: wall s (values, devices up) | scrapes (failed) | values | CPU s | CPU ms / 1 000 values | scrape ms mean / p95 / max | agent peak RSS | children RSS |")
print("|---|---|---|---|---|---|---|---|---|")
for k, o, r, s in zip(kinds, onces, runs, [s for s in stats if s]):
    wall, vals, up = o.split()
    cpu, hwm, kids = r.split()
    st = json.loads(s)
    rounds = st["scrapes"] / n
    values = int(vals) * rounds
    print(f"| {k} | {float(wall):.2f} ({vals}, {up}) | {st['scrapes']} ({st['failures']}) | {values:.0f} | "
          f"{float(cpu):.2f} | {float(cpu) * 1e6 / max(values, 1):.1f} | "
          f"{st['wall_mean']:.0f} / {st['wall_p95']} / {st['wall_max']} | {int(hwm) / 1024:.1f} MiB | "
          f"{int(kids) / 1024:.1f} MiB |")
PYEOF
