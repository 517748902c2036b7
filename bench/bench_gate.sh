#!/bin/bash
# Gate latency under load: wrk (Debian) against GET /v1/racks/{rack}/gate
# with RACKS racks in state (published by rackpulse-loadgen through the dev
# broker), each request for a random rack. Prints wrk's requests/s and its
# latency distribution (p50, p99). Every decision is audited, as in
# production. Target (DESIGN.md): p99 <= 1 ms at 5 000 requests/s.
#
#   bash bench/bench_gate.sh [BUILD_DIR] [--racks N] [--seconds S] [--connections "1 2 4 16"]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
[ $# -gt 0 ] && shift
RACKS=1000 SECONDS_=20 CONNS="1 2 4 16"
while [ $# -gt 0 ]; do
  case $1 in
    --racks) RACKS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    *) echo "bench_gate: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
WORK=$(mktemp -d /tmp/rackpulse-bench-gate.XXXXXX)
PIDS=()
trap 'for ((i=${#PIDS[@]}-1;i>=0;i--)); do kill ${PIDS[$i]} 2>/dev/null || true; sleep 0.5; done; rm -rf "$WORK"' EXIT

"$BUILD/tools/rackpulse-devbroker" --bootstrap-file "$WORK/bs" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/bs" ] && break; sleep 0.1; done
BS=$(cat "$WORK/bs")
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/agg.yaml" <<YAML
kafka: {brokers: "$BS"}
store: {path: $WORK/store, map_size_mb: 512}
http: {port: $PORT, threads: 2, max_connections: 1024, rate_limit: 0}
policy: {version: bench, max_staleness: 1h, supply_temp_max: 40}
flags: {automatic: false}
log_level: warn
YAML
"$BUILD/aggregator/rackpulse-aggregator" -c "$WORK/agg.yaml" 2>"$WORK/agg.log" &
PIDS+=($!)
"$BUILD/tools/rackpulse-loadgen" -b "$BS" -r "$RACKS" -n 3 -s 20 -q
for _ in $(seq 300); do
  n=$(curl -s "http://127.0.0.1:$PORT/v1/racks" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["racks"]))' 2>/dev/null || echo 0)
  [ "$n" -ge "$RACKS" ] && break
  sleep 0.2
done
echo "racks in state: $n"
gate_lua() { # DELAY_MS: each connection waits this long between requests
  cat <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/v1/racks/r%04d/gate?kw=5", math.random(1, $RACKS)))
end
LUA
  [ "$1" = 0 ] || echo "delay = function() return $1 end"
}
echo "machine: $(lscpu | sed -n 's/^Model name:\s*//p'), $(nproc) cores; $(date -u +%F)"
echo "aggregator with 2 HTTP threads; wrk on the same 2 cores (closed loop: fewer"
echo "connections = lower rate; Debian's wrk has no fixed-rate mode)"
printf '%-28s %12s %10s %10s %10s\n' load requests/s p50 p90 p99
# Paced runs first: 10 connections, each waiting 10 000 / RATE ms between
# requests (wrk's delay()), about RATE requests/s; then flat out.
runs=""
for rate in 1000 5000; do runs="$runs paced:$rate"; done
for c in $CONNS; do runs="$runs open:$c"; done
for run in $runs; do
  kind=${run%%:*}; n=${run#*:}
  if [ "$kind" = paced ]; then
    c=10; t=2; gate_lua $(( 10000 / n )) >"$WORK/gate.lua"; label="paced ~$n/s (10 conns)"
  else
    c=$n; t=$(( c < 2 ? 1 : 2 )); gate_lua 0 >"$WORK/gate.lua"; label="flat out, $c conn(s)"
  fi
  wrk -t"$t" -c"$c" -d"${SECONDS_}s" --latency -s "$WORK/gate.lua" "http://127.0.0.1:$PORT" >"$WORK/wrk.txt"
  grep -q "Non-2xx" "$WORK/wrk.txt" && { echo "non-2xx answers:"; cat "$WORK/wrk.txt"; exit 1; }
  printf '%-28s %12s %10s %10s %10s\n' "$label" "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")" \
    "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")" "$(awk '$1 == "90%" {print $2}' "$WORK/wrk.txt")" \
    "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")"
done
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E "^rackpulse_(gate_decisions_total|audit_dropped_total)"
