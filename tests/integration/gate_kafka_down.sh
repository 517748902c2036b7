#!/bin/bash
# Kafka away between the agent and the aggregator (the dev broker's brokers
# taken down with SIGUSR1, brought back with SIGUSR2), through the real
# peers (pymodbus CDU -> agent -> dev broker -> aggregator):
#  1. while Kafka is away no frame reaches the aggregator: the gate stops
#     allowing within the staleness limit and says the telemetry is stale
#     (it never allows on the last values it had), yet raises no automatic
#     flag: missing evidence denies admission, it does not evacuate a rack
#     (an outage would otherwise flag every rack of a site);
#  2. when Kafka is back, the agent's spool replays what it kept, the gate
#     allows again, and no sequence number was lost or applied twice
#     (the aggregator's gap and duplicate counters stay at 0).
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 31.0, "return_temp": 41.0, "flow": 110.0}'
write_agent_config "$WORK/agent.yaml" rkd "$CDU"
STALENESS=5s start_aggregator
start_agent "$WORK/agent.yaml"

# decision: the gate's decision for rkd, or "none" (no answer yet).
decision() {
  curl -s "$URL/v1/racks/rkd/gate?kw=5" >"$WORK/g.json"
  $PY -c 'import json,sys; print(json.load(open(sys.argv[1])).get("decision","none"))' \
    "$WORK/g.json" 2>/dev/null || echo none
}
is() { [ "$(decision)" = "$1" ]; }
# metric NAME: the aggregator's counter NAME summed over its labels (0 if absent).
metric() {
  curl -s "$URL/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}

wait_for 30 is allow || fail "the gate never allowed: $(cat "$WORK/g.json")"
pass "Kafka up: the gate allows"

# --- 1 ----------------------------------------------------------------------
kill -USR1 "$BROKER_PID"
t0=$(date +%s)
wait_for 40 is deny || fail "Kafka away 40 s and the gate still answers: $(cat "$WORK/g.json")"
t1=$(date +%s)
$PY - "$WORK/g.json" <<'PYEOF' || fail "deny during the outage is wrong: $(cat "$WORK/g.json")"
import json, sys
g = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in g["checks"]}
assert g["decision"] == "deny", g
# Every failing check fails for staleness (the frame's age, or a value's).
failing = [x for x in g["checks"] if not x["pass"]]
assert failing, g
for x in failing:
    assert (x["name"] == "telemetry_fresh" and x["observed"] > 5) or "stale" in x.get("reason", ""), x
assert not c["supply_temp"]["pass"] or not c["telemetry_fresh"]["pass"], c
PYEOF
# 5 s of staleness, plus the frames librdkafka had already fetched.
[ $((t1 - t0)) -le 20 ] || fail "the gate denied only $((t1 - t0)) s after Kafka went away"
pass "Kafka away: the gate denies on stale telemetry after $((t1 - t0)) s"
# A few more seconds away, so that the spool holds frames to replay and the
# upkeep thread (once a second) has looked at the stale rack several times.
sleep 3
curl -sf "$URL/v1/flags?rack=rkd" >"$WORK/flags.json" || fail "GET flags: $(cat "$WORK/flags.json")"
$PY - "$WORK/flags.json" <<'PYEOF' || fail "an outage raised flags: $(cat "$WORK/flags.json")"
import json, sys
f = json.load(open(sys.argv[1]))
flags = f.get("flags", f) if isinstance(f, dict) else f
assert flags == [], flags
PYEOF
! grep -q "set on rack rkd" "$WORK/aggregator.log" || fail "an outage raised a flag: $(grep "set on rack" "$WORK/aggregator.log")"
pass "Kafka away: no automatic flag raised on missing evidence"

# --- 2 ----------------------------------------------------------------------
kill -USR2 "$BROKER_PID"
t2=$(date +%s)
# The consumer may have to rejoin its group after the outage (session
# timeout and rebalance): up to tens of seconds on the mock cluster.
wait_for 150 is allow || fail "Kafka back 150 s and the gate does not allow: $(cat "$WORK/g.json")"
t3=$(date +%s)
applied=$(metric rackpulse_agent_frames_total)
gaps=$(metric rackpulse_agent_gaps_total)
dups=$(metric rackpulse_agent_duplicates_total)
[ "$gaps" = 0 ] || fail "$gaps frames lost across the outage"
[ "$dups" = 0 ] || fail "$dups frames applied twice across the outage"
pass "Kafka back: the gate allows again after $((t3 - t2)) s; $applied frames applied, none lost or doubled"
