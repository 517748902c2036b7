#!/bin/bash
# The gate does not trust an agent's wall clock: the agent runs under
# faketime 60 s ahead (its monotonic clock untouched), with a pymodbus CDU,
# the dev broker and the aggregator (built-in policy, max_staleness 5s,
# clock_skew 2s).
#  1. The gate denies with a clock_skew check naming the agent and the skew
#     (its values are otherwise fresh and in band).
#  2. The agent is killed while ahead: its last frame's time lies a minute in
#     the future, yet telemetry_fresh and supply_temp go stale by the
#     aggregator's receive time within the staleness limit (not 65 s later).
#  3. The same agent (same state directory) restarted 60 s behind: the gate
#     denies on clock_skew saying the frames arrive late for their time.
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || fail "faketime is not installed (tools/deps.sh)"
start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 31.0, "return_temp": 41.0, "flow": 110.0}'
write_agent_config "$WORK/agent.yaml" rck "$CDU"
STALENESS=5s start_aggregator
# start_skewed_agent OFFSET: the agent under faketime (e.g. +60s, -60s);
# sets AGENT_PID. Under the sanitizer build, libfaketime is preloaded before
# the ASan runtime.
start_skewed_agent() {
  local attempt started
  for attempt in 1 2 3; do
    started=$(grep -c "frames every" "$WORK/agent.log" 2>/dev/null || true)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$1" \
      "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" >>"$WORK/agent.out" 2>>"$WORK/agent.log" &
    local faketime_pid=$!
    PIDS+=("$faketime_pid")
    # faketime runs the agent as its child. Read its pid in one step (a
    # command substitution that fails would end the script without a word).
    AGENT_PID=""
    for _ in $(seq 100); do
      AGENT_PID=$(pgrep -P "$faketime_pid" | head -n 1 || true)
      [ -n "$AGENT_PID" ] && break
      sleep 0.1
    done
    [ -n "$AGENT_PID" ] && PIDS+=("$AGENT_PID")
    if wait_for 20 sh -c "[ \$(grep -c 'frames every' '$WORK/agent.log') -gt ${started:-0} ]"; then
      return 0
    fi
    # librdkafka waits for its threads against an absolute wall-clock
    # deadline; under faketime's shifted clock (the monotonic one left
    # alone) that wait can end at once on a loaded machine: "background
    # thread(s) did not initialize". An artifact of faking one process's
    # clock, not of a host whose clock is off: start it again.
    grep -q "did not initialize" "$WORK/agent.log" \
      || fail "the agent did not start under faketime $1: $(tail -5 "$WORK/agent.log")"
    echo "note: librdkafka's thread start timed out under faketime $1 (attempt $attempt); again" >&2
    sed -i "s/did not initialize/did not initialise (seen, retried)/" "$WORK/agent.log"
  done
  fail "the agent did not start under faketime $1 in 3 attempts: $(tail -5 "$WORK/agent.log")"
}
start_skewed_agent +60s

cat >"$WORK/poll.py" <<'PYEOF'
import json, sys, time, urllib.request
url, seconds, until = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline, g = time.time() + seconds, None
while time.time() < deadline:
    try:
        g = json.load(urllib.request.urlopen(url + "/v1/racks/rck/gate?kw=5"))
    except Exception as e:  # 404 until the first frame arrives
        g = str(e)
    else:
        c = {x["name"]: x for x in g["checks"]}
        if eval(until):
            json.dump(g, open(sys.argv[4], "w"))
            sys.exit(0)
    time.sleep(0.2)
sys.exit(f"not within {seconds} s: {until}; last answer {json.dumps(g)}")
PYEOF
poll() { $PY "$WORK/poll.py" "$URL" "$@"; }

# --- 1 ----------------------------------------------------------------------
poll 60 'not c["clock_skew"]["pass"]' "$WORK/skew.json" || fail "no clock_skew denial"
$PY - "$WORK/skew.json" <<'PYEOF' || fail "skew denial is wrong: $(cat "$WORK/skew.json")"
import json, sys
g = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in g["checks"]}
k = c["clock_skew"]
assert g["decision"] == "deny", g
assert 55 < k["observed"] < 65 and k["limit"] == 2, k
assert "agent agent-rck's clock is" in k["reason"] and "s ahead of the aggregator" in k["reason"], k
assert c["telemetry_fresh"]["pass"] and c["supply_temp"]["pass"], c
assert [x["name"] for x in g["checks"] if not x["pass"]] == ["clock_skew"], g
PYEOF
pass "agent 60 s ahead: the gate denies on clock_skew naming agent-rck ($($PY -c '
import json,sys; print([x for x in json.load(open(sys.argv[1]))["checks"] if x["name"] == "clock_skew"][0]["observed"])' "$WORK/skew.json") s)"

# --- 2 ----------------------------------------------------------------------
kill -KILL "$AGENT_PID"
t0=$(date +%s)
poll 40 'not c["telemetry_fresh"]["pass"] and not c["supply_temp"]["pass"]' "$WORK/stale.json" \
  || fail "values of the dead agent never went stale"
t1=$(date +%s)
$PY - "$WORK/stale.json" <<'PYEOF' || fail "stale denial is wrong: $(cat "$WORK/stale.json")"
import json, sys
g = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in g["checks"]}
assert g["decision"] == "deny", g
s = c["supply_temp"]["reason"]
assert "cdu.supply_temp of device cdu1: stale (last heard" in s and "fails closed" in s, s
assert c["telemetry_fresh"]["observed"] > 5, c["telemetry_fresh"]
PYEOF
# Trusting the frame time alone, they would read fresh for 60 + 5 s.
[ $((t1 - t0)) -le 30 ] || fail "stale only $((t1 - t0)) s after the agent died"
pass "agent killed while 60 s ahead: stale by receive time after $((t1 - t0)) s"

# --- 3 ----------------------------------------------------------------------
start_skewed_agent -60s
poll 60 'not c["clock_skew"]["pass"] and "behind" in c["clock_skew"].get("reason", "")' \
  "$WORK/behind.json" || fail "no clock_skew denial for an agent 60 s behind"
$PY - "$WORK/behind.json" <<'PYEOF' || fail "behind denial is wrong: $(cat "$WORK/behind.json")"
import json, sys
g = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in g["checks"]}
k = c["clock_skew"]
assert g["decision"] == "deny", g
assert 55 < abs(k["observed"]) < 65, k
assert "agent agent-rck's frames are received" in k["reason"], k
PYEOF
pass "agent 60 s behind: the gate denies on clock_skew (frames received late for their time)"
