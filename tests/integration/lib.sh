# Shared helpers for the integration tests (sourced, not run).
#
# Every test gets a scratch directory ($WORK), starts its peers on 127.0.0.1
# with free ports, and stops everything it started on exit (trap), pass or
# fail. Binaries come from $RP_BIN (the CMake build directory).
set -euo pipefail

: "${RP_BIN:?RP_BIN must point at the build directory}"
: "${RP_SRC:?RP_SRC must point at the source directory}"
PY=/usr/bin/python3   # Debian's python: pymodbus lives there, not in pyenv
WORK=$(mktemp -d /tmp/rackpulse-test.XXXXXX)
PIDS=()
FAILED=0

cleanup() {
  local pid i
  # Stop in reverse order of start: clients before the broker they use.
  # Each is given 8 s to exit before the next one (which it may still need,
  # as the agent needs the broker to flush) is stopped.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Our daemons run under the sanitizers in the ASan build: a report in
  # their logs (a leak at exit, undefined behaviour) fails the test.
  if grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null 2>&1; then
    echo "FAIL: sanitizer report in $(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log | tr '\n' ' ')" >&2
    FAILED=1
  fi
  if [ "$FAILED" -ne 0 ]; then
    echo "--- logs in $WORK ---"
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  elif [ -n "${RP_KEEP_WORK:-}" ]; then
    echo "--- passed; RP_KEEP_WORK: logs kept in $WORK ---"
  else
    rm -rf "$WORK"
  fi
}
trap 'cleanup; [ "$FAILED" -eq 0 ] || exit 1' EXIT

fail() { echo "FAIL: $*" >&2; FAILED=1; exit 1; }
pass() { echo "ok: $*"; }

# A TCP port nobody listens on right now.
free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

start_broker() {
  # RP_BROKER_DEBUG=mock logs the group coordinator's steps into broker.log.
  "$RP_BIN/tools/rackpulse-devbroker" --bootstrap-file "$WORK/bootstrap" \
    ${RP_BROKER_DEBUG:+--debug "$RP_BROKER_DEBUG"} \
    >"$WORK/broker.out" 2>"$WORK/broker.log" &
  PIDS+=($!)
  BROKER_PID=$!
  wait_for 10 test -s "$WORK/bootstrap" || fail "dev broker did not start"
  BOOTSTRAP=$(cat "$WORK/bootstrap")
}

# start_cdu PORT [extra args]: the pymodbus CDU simulator.
start_cdu() {
  local port=$1; shift
  $PY "$RP_SRC/tools/cdu_sim.py" --port "$port" --control "$WORK/cdu-$port.json" "$@" \
    >"$WORK/cdu-$port.log" 2>&1 &
  PIDS+=($!)
  wait_for 15 $PY -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" \
    || fail "CDU simulator on port $port did not start"
}

# cdu_set PORT JSON: steer the simulator's values.
cdu_set() { echo "$2" >"$WORK/cdu-$1.json.tmp"; mv "$WORK/cdu-$1.json.tmp" "$WORK/cdu-$1.json"; }

# write_agent_config FILE RACK CDU_PORT...: an agent config with one CDU per port.
write_agent_config() {
  local file=$1 rack=$2; shift 2
  {
    echo "agent: {id: agent-$rack, rack: $rack, interval: 1s, state_dir: $WORK/state-$rack}"
    echo "kafka: {brokers: \"${BOOTSTRAP:-127.0.0.1:1}\", linger: 5ms}"
    echo "modbus:"
    local i=0 port
    for port in "$@"; do
      i=$((i + 1))
      sed -e "s/@NAME@/cdu$i/" -e "s/@PORT@/$port/" "$RP_SRC/tests/fixtures/sim-cdu-device.yaml"
    done
  } >"$file"
}

start_agent() {
  "$RP_BIN/agent/rackpulse-agent" -c "$1" >"$WORK/agent.out" 2>"$WORK/agent.log" &
  PIDS+=($!)
  AGENT_PID=$!
}

# wait_agent_started [SECONDS]: the agent has logged its start (its devices
# configured, its spool and producer made); fails the test otherwise.
wait_agent_started() {
  wait_for "${1:-30}" grep -q "device(s), frames every" "$WORK/agent.log" ||
    fail "the agent did not start: $(tail -5 "$WORK/agent.log")"
}

start_aggregator() {
  HTTP_PORT=$(free_port)
  local policy="policy: {version: test-1, max_staleness: ${STALENESS:-5s}, supply_temp_max: ${SUPPLY_MAX:-40}}"
  [ -n "${AGG_POLICY:-}" ] && policy=$AGG_POLICY
  cat >"$WORK/aggregator.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_wait: 20ms}
store: {path: $WORK/store, map_size_mb: 64}
http: {port: $HTTP_PORT${AGG_HTTP_EXTRA:+, $AGG_HTTP_EXTRA}}
$policy
${AGG_EXTRA:-}
YAML
  "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/aggregator.yaml" \
    >"$WORK/aggregator.out" 2>"$WORK/aggregator.log" &
  PIDS+=($!)
  AGG_PID=$!
  URL="http://127.0.0.1:$HTTP_PORT"
  wait_for 10 curl -sf "$URL/healthz" || fail "aggregator did not start"
}

ctl() { "$RP_BIN/tools/rackpulsectl" --url "$URL" "$@"; }

# make_tls_certs DIR: a test CA (DIR/ca.pem, ca.key) and a server
# certificate for 127.0.0.1 and localhost signed by it (DIR/server.pem,
# server.key, 0600), made by openssl.
make_tls_certs() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rackpulse test CA" \
      -keyout ca.key -out ca.pem >/dev/null 2>&1 || exit 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key \
      -out server.csr >/dev/null 2>&1 || exit 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem >/dev/null 2>&1 || exit 1
    chmod 0600 server.key
  ) || fail "openssl: test certificates"
}

# rp_events: every message on rackpulse.events so far, each decoded by protoc
# (rackpulse.v1.Event) on one line.
rp_events() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.events -o beginning -e -q -f '%s\n--\n' 2>/dev/null \
    | $PY -c '
import subprocess, sys
for m in sys.stdin.buffer.read().split(b"\n--\n"):
    if m:
        out = subprocess.run(["protoc", "--decode=rackpulse.v1.Event", "-I", sys.argv[1], sys.argv[2]],
                             input=m, capture_output=True).stdout.decode()
        print(" ".join(out.split()))' "$RP_SRC/proto" "$RP_SRC/proto/rackpulse.proto"
}
