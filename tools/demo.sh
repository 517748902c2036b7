#!/bin/bash
# Builds rackpulse and runs the whole system on loopback with embedded
# defaults: the dev broker (librdkafka mock cluster), a simulated rack (a CDU
# on pymodbus with drifting values, a Raritan-style PDU on snmpsim, two GPU
# server BMCs on ipmi_sim), the agent and the aggregator with a demo policy.
# Prints the rack state, a gate decision and a placement, then a decision
# every 10 s until Ctrl-C.
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
  [ -z "${SIM:-}" ] || rm -rf "$SIM"
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

free_udp_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A PDU: snmpsimd serving the Raritan PX data (community "raritan-px").
# snmpsimd refuses to run as root and drops to nobody, who must read the
# data and write the cache: they live in a world-readable temporary folder.
SIM=$(mktemp -d /tmp/rackpulse-demo-snmpsim.XXXXXX)
mkdir -p "$SIM/data" "$SIM/cache"
cp tests/fixtures/snmpsim/raritan-px.snmprec "$SIM/data/"
chmod -R a+rX "$SIM"
chown nobody "$SIM/cache"
PDU_PORT=$(free_udp_port)
echo "demo: starting the simulated PDU (snmpsim) on 127.0.0.1:$PDU_PORT"
snmpsimd --data-dir="$SIM/data" --cache-dir="$SIM/cache" \
  --agent-udpv4-endpoint="127.0.0.1:$PDU_PORT" --process-user=nobody \
  --process-group=nogroup >"$RUN/pdu.log" 2>&1 &
PIDS+=($!)
(umask 077 && echo raritan-px >"$RUN/pdu.community")

# Two GPU servers' BMCs (ipmi_sim); start-bmc.sh prints each one's PID.
BMC_LINES=""
for n in 1 2; do
  port=$(free_udp_port)
  echo "demo: starting simulated BMC gpu$n (ipmi_sim) on 127.0.0.1:$port"
  pid=$(sh tests/fixtures/ipmi_sim/start-bmc.sh "gpu$n" "$port" "$RUN/bmc-gpu$n" 2>>"$RUN/bmc.log") \
    || { echo "demo: BMC gpu$n did not start; see $RUN/bmc.log" >&2; exit 1; }
  PIDS+=($pid)
  BMC_LINES="$BMC_LINES  - {name: gpu$n, host: 127.0.0.1, port: $port, user: admin, password_file: $RUN/bmc-gpu$n/passfile}
"
done

cat >"$RUN/policy.yaml" <<EOF
version: demo-1
defaults:
  max_staleness: 10s
  power_margin_kw: 2
  supply_temp: {max: 40, hysteresis: 1, persist: 3}
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
  thermal: {enabled: true, series: cdu.heat_removed}
racks:
  - {id: demo-r01, pool: demo, row: row-1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
EOF
cat >"$RUN/aggregator.yaml" <<EOF
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $RUN/aggregator-state, map_size_mb: 256}
http: {listen: 127.0.0.1, port: $HTTP_PORT}
policy: {file: $RUN/policy.yaml}
EOF
{
  echo "agent: {id: demo-agent, rack: demo-r01, interval: 1s, state_dir: $RUN/agent-state,"
  echo "        profiles_dir: $SRC/packaging/profiles}"
  echo "kafka: {brokers: \"$BOOTSTRAP\"}"
  echo "derived:"
  echo "  - {name: cdu.delta_t, type: delta_t, return: cdu.return_temp, supply: cdu.supply_temp}"
  echo "  - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,"
  echo "     supply: cdu.supply_temp, flow: cdu.flow, coolant: water}"
  echo "modbus:"
  sed -e "s/@NAME@/cdu1/" -e "s/@PORT@/$CDU_PORT/" tests/fixtures/sim-cdu-device.yaml
  echo "snmp:"
  echo "  - {name: pdu1, host: 127.0.0.1, port: $PDU_PORT, version: 2c,"
  echo "     community_file: $RUN/pdu.community, profile: raritan-px}"
  echo "ipmi:"
  printf '%s' "$BMC_LINES"
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
echo "demo: placement (rackpulsectl placement --kw 25):"
"${CTL[@]}" placement --kw 25 || true
echo
echo "demo: running; Ctrl-C stops. Try: echo '{\"supply_temp\": 42}' > $RUN/cdu.json"
START=$(date +%s)
while [ "$DURATION" -eq 0 ] || [ $(( $(date +%s) - START )) -lt "$DURATION" ]; do
  sleep 10 &
  wait $! || true
  "${CTL[@]}" gate --rack demo-r01 --kw 25 | head -1 || true
done
