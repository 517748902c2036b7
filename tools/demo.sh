#!/bin/bash
# Builds rackpulse and runs the whole system on loopback with embedded
# defaults: the dev broker (librdkafka mock cluster), a simulated rack that
# obeys physics (tools/racksim: a CDU over Modbus, two PDU feeds over SNMP,
# four GPU servers' BMCs over IPMI, all from one model) playing a story, the
# agent and the aggregator with a demo policy. Prints a compact live table:
# the gate allows while the rack idles, denies as a training job eats the
# power headroom and heats the loop (an automatic flag is raised), and
# allows again once the job ends and the loop cools (the flag clears).
#
#   bash tools/demo.sh [--for SECONDS] [--port HTTP_PORT]
#
# With --for N the story is played fast enough to fit in N seconds (at
# least real time); without it, at 1.5x, and the rack idles after it until
# Ctrl-C. State and logs go to .run/ in the source tree; everything started
# here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
DURATION=0
HTTP_PORT=8470
while [ $# -gt 0 ]; do
  case $1 in
    --for) DURATION=$2; shift 2 ;;
    --port) HTTP_PORT=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $DURATION in ''|*[!0-9]*) echo "demo: --for: expected whole seconds, got '$DURATION'" >&2; exit 2 ;; esac

bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
BIN=$SRC/build

RUN=$SRC/.run
rm -rf "$RUN"
mkdir -p "$RUN"
# Daemons run in their own sessions (setsid), so a Ctrl-C reaches this
# script only: each is then sent one SIGTERM, newest first, and given 10 s
# to exit before the next, so the agent closes its BMC sessions while the
# simulated rack still answers and flushes to a broker still up.
PIDS=()
stop_all() {
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
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
setsid "$BIN/tools/rackpulse-devbroker" --bootstrap-file "$RUN/bootstrap" >/dev/null 2>"$RUN/broker.log" &
PIDS+=($!)
wait_for 10 test -s "$RUN/bootstrap" || { echo "demo: dev broker did not start" >&2; exit 1; }
BOOTSTRAP=$(cat "$RUN/bootstrap")

# The story (tools/racksim/scenarios/demo.yaml) lasts 210 s of model time.
if [ "$DURATION" -gt 0 ]; then
  SPEED=$(/usr/bin/python3 -c "print(max(1.0, round(215.0 / max($DURATION - 8, 1), 2)))")
else
  SPEED=1.5
fi
echo "demo: starting the simulated rack (racksim, scenario demo, ${SPEED}x real time)"
# Held at model time 0 until the aggregator has its first frame, so the
# story starts when the table does.
mkdir -p "$RUN/rack"
echo '{hold: true}' >"$RUN/rack/control.yaml"
setsid /usr/bin/python3 tools/racksim/racksim.py --scenario demo --run "$RUN/rack" --speed "$SPEED" \
  --agent-config "$RUN/agent.yaml" --agent-id demo-agent --state-dir "$RUN/agent-state" \
  --brokers "$BOOTSTRAP" >"$RUN/racksim.out" 2>"$RUN/racksim.log" &
PIDS+=($!)
wait_for 120 test -s "$RUN/rack/ready.json" \
  || { echo "demo: the simulated rack did not start; see $RUN/racksim.log" >&2; exit 1; }

# The demo policy, sized to the simulated rack (~7 kW idle, up to ~38 kW in
# training): 55 kW x 0.8 - 2 kW margin leaves room for a 10 kW job only
# while the rack idles, and a long training job on this loop pushes the
# supply past 33 degC. Automatic flags are held at least 5 s. The rack's
# two racksim PDUs are its feeds A and B (N+N: either carries the rack),
# 100 A a phase with one over-current protector a phase (racksim puts
# server i on phase (i-1) % 3 + 1, so phase 1 carries two servers: new
# load is expected there in that proportion); the gate checks feed power,
# phase and branch currents from what the PDUs report, and prices energy
# at a time-of-use tariff.
cat >"$RUN/policy.yaml" <<EOF
version: demo-3
defaults:
  max_staleness: 10s
  power_margin_kw: 2
  supply_temp: {max: 33, hysteresis: 1, persist: 3}
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
  thermal: {enabled: true, series: cdu.heat_removed}
rows:
  row-1: {limit_kw: 200, derating: 0.8}
tariff: {currency: EUR, periods: [{from: "07:00", price: 0.18}, {from: "22:00", price: 0.09}]}
racks:
  - {id: demo-r01, pool: demo, row: row-1, breaker_kw: 55, derating: 0.8, cdu_capacity_kw: 45,
     feed_a: pdu-a, feed_b: pdu-b, redundancy: n+n, feed_kw: 55, phase_amps: 100,
     branch_amps: 100, volts: 230}
EOF
cat >"$RUN/aggregator.yaml" <<EOF
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $RUN/aggregator-state, map_size_mb: 256}
http: {listen: 127.0.0.1, port: $HTTP_PORT}
policy: {file: $RUN/policy.yaml}
flags: {min_hold: 5s}
EOF

echo "demo: starting the aggregator (http://127.0.0.1:$HTTP_PORT) and the agent"
setsid "$BIN/aggregator/rackpulse-aggregator" -c "$RUN/aggregator.yaml" 2>"$RUN/aggregator.log" &
PIDS+=($!)
setsid "$BIN/agent/rackpulse-agent" -c "$RUN/agent.yaml" 2>"$RUN/agent.log" &
PIDS+=($!)

CTL=("$BIN/tools/rackpulsectl" --url "http://127.0.0.1:$HTTP_PORT")
if ! wait_for 30 "${CTL[@]}" rack --rack demo-r01; then
  echo "demo: no rack state after 30 s; see $RUN/*.log" >&2
  exit 1
fi
echo '{hold: false}' >"$RUN/rack/control.tmp" && mv "$RUN/rack/control.tmp" "$RUN/rack/control.yaml"
echo "demo: the floor: http://127.0.0.1:$HTTP_PORT/"
echo "demo: full state any time: ${CTL[*]} rack --rack demo-r01 --json"
echo "demo: steer the rack live, e.g. a leak: echo '{set: {leak_lpm: 0.5}}' > $RUN/rack/control.yaml"
echo "demo: a gate asks for 10 kW on demo-r01 every 2 s:"
echo
/usr/bin/python3 tools/racksim/demo_table.py --url "http://127.0.0.1:$HTTP_PORT" --rack demo-r01 \
  --kw 10 --state "$RUN/rack/state.json" --for "$DURATION" || true
