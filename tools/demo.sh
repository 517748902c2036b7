#!/bin/bash
# Builds rackpulse and runs the whole system on loopback with embedded
# defaults: the dev broker (librdkafka mock cluster), a simulated CDU
# (pymodbus, drifting values), the agent and the aggregator. Prints the rack
# state and a gate decision, then a decision every 10 s until Ctrl-C.
#
#   bash tools/demo.sh [--for SECONDS] [--port HTTP_PORT]
#
# State and logs go to .run/ in the source tree; everything started here is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
DURATION=0
HTTP_PORT=8470
while [ $# -gt 0 ]; do
  case $1 in
    --for) DURATION=$2; shift 2 ;;
    --port) HTTP_PORT=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
BIN=$SRC/build

RUN=$SRC/.run
rm -rf "$RUN"
mkdir -p "$RUN"
PIDS=()
stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: stopped; logs are in $RUN"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

echo "demo: starting the dev broker"
"$BIN/tools/rackpulse-devbroker" --bootstrap-file "$RUN/bootstrap" >/dev/null 2>"$RUN/broker.log" &
PIDS+=($!)
wait_for 10 test -s "$RUN/bootstrap" || { echo "demo: dev broker did not start" >&2; exit 1; }
BOOTSTRAP=$(cat "$RUN/bootstrap")

CDU_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "demo: starting the simulated CDU on 127.0.0.1:$CDU_PORT"
/usr/bin/python3 tools/cdu_sim.py --port "$CDU_PORT" --control "$RUN/cdu.json" >"$RUN/cdu.log" 2>&1 &
PIDS+=($!)
wait_for 15 /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $CDU_PORT), 1)" \
  || { echo "demo: the simulated CDU did not start; see $RUN/cdu.log" >&2; exit 1; }

cat >"$RUN/aggregator.yaml" <<EOF
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $RUN/aggregator-state, map_size_mb: 256}
http: {listen: 127.0.0.1, port: $HTTP_PORT}
policy: {version: demo-1, max_staleness: 10s, supply_temp_max: 40}
EOF
{
  echo "agent: {id: demo-agent, rack: demo-r01, interval: 1s, state_dir: $RUN/agent-state}"
  echo "kafka: {brokers: \"$BOOTSTRAP\"}"
  echo "modbus:"
  sed -e "s/@NAME@/cdu1/" -e "s/@PORT@/$CDU_PORT/" tests/fixtures/sim-cdu-device.yaml
} >"$RUN/agent.yaml"

echo "demo: starting the aggregator (http://127.0.0.1:$HTTP_PORT) and the agent"
"$BIN/aggregator/rackpulse-aggregator" -c "$RUN/aggregator.yaml" 2>"$RUN/aggregator.log" &
PIDS+=($!)
"$BIN/agent/rackpulse-agent" -c "$RUN/agent.yaml" 2>"$RUN/agent.log" &
PIDS+=($!)

CTL=("$BIN/tools/rackpulsectl" --url "http://127.0.0.1:$HTTP_PORT")
if ! wait_for 30 "${CTL[@]}" rack --rack demo-r01; then
  echo "demo: no rack state after 30 s; see $RUN/*.log" >&2
  exit 1
fi
echo
echo "demo: rack state (rackpulsectl rack --rack demo-r01):"
"${CTL[@]}" rack --rack demo-r01
echo
echo "demo: gate decision (rackpulsectl gate --rack demo-r01 --kw 25):"
"${CTL[@]}" gate --rack demo-r01 --kw 25 || true
echo
echo "demo: running; Ctrl-C stops. Try: echo '{\"supply_temp\": 42}' > $RUN/cdu.json"
START=$(date +%s)
while [ "$DURATION" -eq 0 ] || [ $(( $(date +%s) - START )) -lt "$DURATION" ]; do
  sleep 10 &
  wait $! || true
  "${CTL[@]}" gate --rack demo-r01 --kw 25 | head -1 || true
done
