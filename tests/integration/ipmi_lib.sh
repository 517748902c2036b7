# IPMI helpers for the integration tests (sourced after lib.sh): ipmi_sim
# BMCs on 127.0.0.1 (tests/fixtures/ipmi_sim), agent configs listing them,
# and checks that no ipmitool child outlives the agent.
#
# BACKEND (environment; tests/integration/CMakeLists.txt registers each
# ipmi_* test once per backend): ipmitool (the default) or freeipmi. BE is
# the YAML to add to a BMC's entry for it: ipmi_sim needs FreeIPMI's
# opensesspriv workaround (it refuses the privilege FreeIPMI asks for in
# its Open Session Request otherwise).
BACKEND=${BACKEND:-ipmitool}
case $BACKEND in
  ipmitool) BE="" ;;
  freeipmi) BE=", backend: freeipmi, workarounds: opensesspriv" ;;
  *) echo "BACKEND=$BACKEND: not ipmitool or freeipmi" >&2; exit 1 ;;
esac

# start_bmc NAME PORT [SENSOR=VALUE...]: one ipmi_sim BMC; values in real
# units (inlet_temp=27 ...) are written before it starts. Its state is in
# $WORK/bmc-NAME (passfile: the 0600 password file).
start_bmc() {
  local name=$1 port=$2 kv pid; shift 2
  mkdir -p "$WORK/bmc-$name/values"
  for kv in "$@"; do echo "${kv#*=}" >"$WORK/bmc-$name/values/${kv%%=*}"; done
  pid=$(sh "$RP_SRC/tests/fixtures/ipmi_sim/start-bmc.sh" "$name" "$port" "$WORK/bmc-$name" \
    2>"$WORK/bmc-$name.log") || fail "ipmi_sim $name on port $port did not start: $(cat "$WORK/bmc-$name.log")"
  PIDS+=("$pid")
  eval "BMC_PID_$name=$pid"
}

# bmc_set NAME SENSOR VALUE: change a reading (ipmi_sim polls every second).
bmc_set() { echo "$3" >"$WORK/bmc-$1/values/$2.tmp" && mv "$WORK/bmc-$1/values/$2.tmp" "$WORK/bmc-$1/values/$2"; }

# A UDP port with nothing behind it (an IPMI LAN peer that never answers).
free_udp_port() {
  $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ipmi_bmc_yaml NAME PORT [extra yaml keys]: one `ipmi:` list entry for a
# BMC started by start_bmc (password from its file).
ipmi_bmc_yaml() {
  local name=$1 port=$2; shift 2
  echo "  - {name: $name, host: 127.0.0.1, port: $port, user: admin, password_file: $WORK/bmc-$name/passfile${1:+, $*}$BE}"
}

# ipmi_agent_head RACK: the agent and kafka sections (BOOTSTRAP if a broker
# runs) and the `ipmi:` key; BMC entries follow.
ipmi_agent_head() {
  echo "agent: {id: agent-$1, rack: $1, interval: ${INTERVAL:-1s}, state_dir: $WORK/state-$1}"
  echo "kafka: {brokers: \"${BOOTSTRAP:-127.0.0.1:1}\", linger: 5ms}"
  echo "ipmi:"
}

# ipmitool (or fake ipmitool) processes started for this test: their
# command lines name files under $WORK.
# ("[i]" keeps the pattern from matching the shell that runs pgrep.)
ipmitool_pids() { pgrep -f "[i]pmitool.*$WORK" || true; }

# no_ipmitool_left: fails when any remains (after a short grace).
no_ipmitool_left() {
  wait_for 5 sh -c "! pgrep -f '[i]pmitool.*$WORK' >/dev/null" || {
    ps -o pid,pgid,stat,etime,args -p "$(ipmitool_pids | paste -sd,)" >&2 || true
    fail "ipmitool processes left behind: $(ipmitool_pids | paste -sd' ')"
  }
}

# stop_agent: SIGTERM, then the exit status must be 0 and the log free of
# sanitizer reports (leaks of the sessions' handles show up here).
stop_agent() {
  local rc=0
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" || rc=$?
  [ "$rc" -eq 0 ] || fail "the agent exited with status $rc: $(tail -20 "$WORK/agent.log")"
  if grep -q "Sanitizer" "$WORK/agent.log"; then fail "sanitizer report: $(grep -A20 Sanitizer "$WORK/agent.log" | head -40)"; fi
}
