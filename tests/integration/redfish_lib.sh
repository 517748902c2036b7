# Helpers for the Redfish integration tests (sourced after lib.sh, not
# run): tools/redfishsim serving devices on free ports of 127.0.0.1 over
# TLS (its certificate made at start in $WORK/tls), stopped by lib.sh's
# cleanup; the agent's redfish[] entries for them.

# The services' password: never in argv, logs or frames; a quote, a
# backslash and a non-ASCII letter in it check the login body's escaping.
RF_PASSWORD="rf-\"Pa\\55-é-$$-$RANDOM"

# start_redfishsim NAME KIND:DEV... : one simulator process (its control
# file $WORK/rf-NAME.json, ports in $WORK/rf-NAME.ports); sets RF_PID_NAME.
start_redfishsim() {
  local name=$1; shift
  local args=() d
  for d in "$@"; do args+=(--device "$d"); done
  [ -f "$WORK/rf-password" ] || { (umask 077; echo "$RF_PASSWORD" >"$WORK/rf-password"); }
  [ -f "$WORK/rf-$name.json" ] || echo '{}' >"$WORK/rf-$name.json"
  $PY "$RP_SRC/tools/redfishsim/redfishsim.py" "${args[@]}" --ports-out "$WORK/rf-$name.ports" \
    --control "$WORK/rf-$name.json" --password-file "$WORK/rf-password" \
    --tls-dir "$WORK/tls-$name" ${RF_SIM_ARGS:-} >"$WORK/redfishsim-$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "RF_PID_$name" '%s' "$!"
  wait_for 30 test -s "$WORK/rf-$name.ports" || fail "redfishsim $name did not start"
}

# rf_port SIM DEVICE: the port of one simulated service.
rf_port() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/rf-$1.ports" "$2"; }

# rf_set SIM JSON: replaces the simulator's control file (values, faults).
rf_set() { echo "$2" >"$WORK/rf-$1.json.tmp"; mv "$WORK/rf-$1.json.tmp" "$WORK/rf-$1.json"; }

# rf_stats SIM DEVICE: the service's counters (GET /_sim/stats).
rf_stats() {
  curl -sf --cacert "$WORK/tls-$1/cert.pem" "https://127.0.0.1:$(rf_port "$1" "$2")/_sim/stats"
}

# rf_device SIM DEVICE [EXTRA]: one redfish[] entry of the agent's config
# (YAML flow mapping), verifying the simulator's certificate.
rf_device() {
  echo "  - {name: $2, host: 127.0.0.1, port: $(rf_port "$1" "$2"), user: admin, password_file: $WORK/rf-password, ca_file: $WORK/tls-$1/cert.pem${3:+, $3}}"
}
