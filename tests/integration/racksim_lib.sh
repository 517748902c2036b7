# Helpers for the tests that run a whole simulated rack with racksim
# (tools/racksim/racksim.py; sourced after lib.sh, not run).

# start_racksim SCENARIO [racksim options...]: the rack in $RACK (its run
# directory), the agent config for it in $WORK/agent.yaml; waits (120 s)
# until every device answers. Stopped by lib.sh's cleanup (SIGTERM: racksim
# stops its snmpd and ipmi_sim processes itself).
start_racksim() {
  local scenario=$1; shift
  RACK=$WORK/rack
  $PY "$RP_SRC/tools/racksim/racksim.py" --scenario "$scenario" --run "$RACK" \
    --agent-config "$WORK/agent.yaml" --state-dir "$WORK/agent-state" --brokers "${BOOTSTRAP:-127.0.0.1:1}" \
    "$@" >"$WORK/racksim.out" 2>"$WORK/racksim.log" &
  PIDS+=($!)
  RACKSIM_PID=$!
  wait_for 120 test -s "$RACK/ready.json" || fail "racksim did not start: $(tail -5 "$WORK/racksim.log")"
  # One rack: $WORK/agent.yaml; several: $WORK/agent-RACK.yaml each.
  AGENT_CONFIGS=($($PY -c "import json; print(' '.join(json.load(open('$RACK/ready.json'))['agent_configs']))"))
  [ "${#AGENT_CONFIGS[@]}" -gt 0 ] && test -s "${AGENT_CONFIGS[0]}" || fail "racksim wrote no agent config"
}

# hold_and_compare CONFIG: holds the model, then reads the rack once with
# the agent and compares the frame with the truth (tools/racksim/fidelity.py)
# until it matches (ipmi_sim polls its files once a second) or 60 s pass;
# the last comparison is in $WORK/fidelity.txt.
hold_and_compare() {
  local config=$1 ok=0
  rack_control '{hold: true}'
  rack_until 30 's["held"]' || fail "the model did not hold"
  for _ in $(seq 30); do
    "$RP_BIN/agent/rackpulse-agent" -c "$config" --once >"$WORK/frame.json" 2>"$WORK/once.log" \
      || fail "--once exited non-zero: $(tail -5 "$WORK/once.log")"
    if $PY "$RP_SRC/tools/racksim/fidelity.py" "$WORK/frame.json" "$RACK/state.json" >"$WORK/fidelity.txt" 2>&1; then
      ok=1
      break
    fi
    sleep 2
  done
  [ "$ok" = 1 ] || fail "$config: the agent's frame differs from the truth at t=$(rack_state 's["t"]'): $(cat "$WORK/fidelity.txt")"
}

# rack_state EXPR: a Python expression over s = RUN/state.json, printed.
rack_state() { $PY -c "import json; s = json.load(open('$RACK/state.json')); print($1)"; }

# rack_until SECONDS EXPR: waits until the Python expression over s is true.
rack_until() {
  wait_for "$1" $PY -c "import json, sys; s = json.load(open('$RACK/state.json')); sys.exit(0 if ($2) else 1)"
}

# rack_control YAML: applies events now through the live control file.
rack_control() { echo "$1" >"$RACK/control.tmp" && mv "$RACK/control.tmp" "$RACK/control.yaml"; }

# racksim_children: the snmpd, ipmi_sim and helper processes of this rack.
racksim_children() { pgrep -f "[s]nmpd .*$RACK|[i]pmi_sim .*$RACK|[p]du_pass.py $RACK" || true; }
