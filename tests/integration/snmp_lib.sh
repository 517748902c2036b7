# Helpers for the SNMP integration tests (sourced after lib.sh, not run):
# Debian's snmpsim serving tests/fixtures/snmpsim/*.snmprec (the community
# is the file's base name) and Debian's snmpd with a private configuration,
# both on 127.0.0.1 with free UDP ports, stopped by lib.sh's cleanup.

# A UDP port nobody uses right now.
free_udp_port() {
  $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_snmpsim [PREPARE]: snmpsimd on $SIM_PORT serving the fixtures
# (snmpsimd refuses to run as root: it drops to nobody, which must be able
# to read the data and write the cache). PREPARE, a function, may add data
# files to $WORK/snmpsim/data before it starts.
start_snmpsim() {
  SIM_PORT=$(free_udp_port)
  chmod 755 "$WORK"
  mkdir -p "$WORK/snmpsim/data" "$WORK/snmpsim/cache"
  cp "$RP_SRC"/tests/fixtures/snmpsim/*.snmprec "$WORK/snmpsim/data/"
  [ -z "${1:-}" ] || "$1"
  chmod -R a+rX "$WORK/snmpsim"
  chown nobody "$WORK/snmpsim/cache"
  snmpsimd --data-dir="$WORK/snmpsim/data" --cache-dir="$WORK/snmpsim/cache" \
    --agent-udpv4-endpoint="127.0.0.1:$SIM_PORT" \
    --process-user=nobody --process-group=nogroup \
    --logging-method="${SNMPSIM_LOGGING:-stderr}" >"$WORK/snmpsim.log" 2>&1 &
  PIDS+=($!)
  SIM_PID=$!
  wait_for 30 snmpget -v2c -c raritan-px -t 0.5 -r 0 "127.0.0.1:$SIM_PORT" 1.3.6.1.2.1.1.3.0 \
    || fail "snmpsimd did not answer on 127.0.0.1:$SIM_PORT"
}

# start_pdu NAME FIXTURE: a PDU of its own: snmpsimd serving one fixture
# (its own data and cache directories, so it can be stopped alone) on a free
# UDP port; sets PORT_<NAME> and PID_<NAME> (dashes in NAME become _).
start_pdu() {
  local name=$1 fixture=$2 port dir=$WORK/snmpsim-$1
  port=$(free_udp_port)
  chmod 755 "$WORK"
  mkdir -p "$dir/data" "$dir/cache"
  cp "$RP_SRC/tests/fixtures/snmpsim/$fixture.snmprec" "$dir/data/"
  chmod -R a+rX "$dir"
  chown nobody "$dir/cache"
  snmpsimd --data-dir="$dir/data" --cache-dir="$dir/cache" \
    --agent-udpv4-endpoint="127.0.0.1:$port" --process-user=nobody --process-group=nogroup \
    --logging-method=stderr >"$WORK/snmpsim-$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "PID_${name//-/_}" '%s' "$!"
  printf -v "PORT_${name//-/_}" '%s' "$port"
  wait_for 30 snmpget -v2c -c "$fixture" -t 0.5 -r 0 "127.0.0.1:$port" 1.3.6.1.2.1.1.3.0 \
    || fail "snmpsimd for $name did not answer on 127.0.0.1:$port"
}

# start_snmpd USERS...: Debian's snmpd on $SNMPD_PORT; each USERS item is a
# line of snmpd.conf (createUser, rouser, ...).
start_snmpd() {
  SNMPD_PORT=$(free_udp_port)
  mkdir -p "$WORK/snmpd/persist"
  {
    echo "agentAddress udp:127.0.0.1:$SNMPD_PORT"
    echo "sysServices 72"
    printf '%s\n' "$@"
  } >"$WORK/snmpd/snmpd.conf"
  SNMP_PERSISTENT_DIR="$WORK/snmpd/persist" MIBS="" \
    snmpd -f -C -c "$WORK/snmpd/snmpd.conf" -Lf "$WORK/snmpd.log" >/dev/null 2>&1 &
  PIDS+=($!)
  SNMPD_PID=$!
  wait_for 15 snmpget -v3 -l noAuthNoPriv -u probe -t 0.5 -r 0 "127.0.0.1:$SNMPD_PORT" \
    1.3.6.1.2.1.1.3.0 || true
  sleep 0.3
  kill -0 "$SNMPD_PID" || fail "snmpd did not start: $(tail -5 "$WORK/snmpd.log")"
}

# secret NAME VALUE [MODE]: writes $WORK/NAME with VALUE, mode 0600 unless told.
secret() {
  printf '%s\n' "$2" >"$WORK/$1"
  chmod "${3:-600}" "$WORK/$1"
}

# snmp_header [INTERVAL]: the agent and kafka sections of a test config.
snmp_header() {
  echo "agent: {id: t, rack: rs, interval: ${1:-1s}, state_dir: $WORK/state,"
  echo "        profiles_dir: ${PROFILES_DIR:-$RP_SRC/packaging/profiles}}"
  echo "kafka: {brokers: \"${BOOTSTRAP:-127.0.0.1:1}\", linger: 5ms}"
  echo "snmp:"
}

# once CONFIG OUT: rackpulse-agent --once; the frame as JSON in OUT.
once() {
  "$RP_BIN/agent/rackpulse-agent" -c "$1" --once >"$2" 2>"$2.log" \
    || fail "--once exited non-zero: $(tail -5 "$2.log")"
}

# frame_summary JSON: prints the frame's devices, values and statuses, for
# the Python assertions (a module used with `import`).
write_frame_py() {
  cat >"$WORK/frame.py" <<'PYEOF'
import json
def load(path):
    f = json.load(open(path))
    dic = {s["id"]: s for s in f["dictionary"]}
    def key(sid):
        s = dic[sid]
        return (s["device"], s["name"], tuple(sorted(s.get("labels", {}).items())))
    values = {key(s["series"]): s["value"] for s in f["samples"]}
    units = {key(s["id"]): s["unit"] for s in f["dictionary"]}
    statuses = {key(s["series"]): (s["status"], s.get("detail", "")) for s in f.get("statuses", [])}
    devices = {d["device"]: d for d in f["devices"]}
    return f, devices, values, units, statuses
PYEOF
}
