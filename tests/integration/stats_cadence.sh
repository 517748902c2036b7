#!/bin/bash
# Window statistics at their own cadence (issue 25), through the real
# peers: one CDU (pymodbus), the agent with stats.every 600 (a series'
# statistics go out once, then only when one moves by more than the
# tolerance), the dev broker and the aggregator with a gate on the supply
# temperature's p95 and a 3 s staleness limit.
#  1. Between cadence points the gate keeps its statistics: every answer
#     over 8 s passes supply_temp (never "no statistics", never stale),
#     while the stored statistics' newest sample follows the samples.
#  2. A step in the supply temperature sends them at once: the gate's p95
#     follows within seconds, not 600 frames.
#  3. Frames on the topic: statistics in few of them, as scaled integers.
#  4. The CDU stops: supply_temp fails closed (stale by the newest sample).
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
CDU_PID=${PIDS[-1]}
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 100.0}'
write_agent_config "$WORK/agent.yaml" rsc "$CDU"
echo "stats: {every: 600, tolerance: 0.01}" >>"$WORK/agent.yaml"
cat >"$WORK/policy.yaml" <<'YAML'
version: cadence-1
defaults:
  max_staleness: 3s
  supply_temp: {series: cdu.supply_temp, stat: p95, window: 60s, across: max, max: 40}
racks:
  - {id: rsc}
YAML
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
start_aggregator
start_agent "$WORK/agent.yaml"

gate() { curl -sf "$URL/v1/racks/rsc/gate?kw=1"; }
supply() { gate | $PY -c "import json,sys; c={x['name']: x for x in json.load(sys.stdin)['checks']}['supply_temp']; print(c['pass'], c.get('observed'), c.get('reason', ''))"; }
passes() { [ "$(supply | cut -d' ' -f1)" = True ]; }
wait_for 30 passes || fail "supply_temp never passed: $(supply)"
newest() { curl -sf "$URL/v1/racks/rsc" | $PY -c "import json,sys; print(json.load(sys.stdin)['stats']['cdu.supply_temp@cdu1']['60']['newest_ms'])"; }

# --- 1 ----------------------------------------------------------------------
n0=$(newest)
end=$(($(date +%s) + 8))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
  s=$(supply)
  [ "${s%% *}" = True ] || fail "supply_temp failed between cadence points: $s"
  n=$((n + 1))
  sleep 0.3
done
n1=$(newest)
[ $((n1 - n0)) -ge 5000 ] || fail "the statistics' newest sample did not follow the samples: $n0 -> $n1"
pass "8 s between cadence points: supply_temp passed $n answers in a row; newest sample $n0 -> $n1"

# --- 2 ----------------------------------------------------------------------
cdu_set "$CDU" '{"supply_temp": 36.0, "return_temp": 46.0, "flow": 100.0}'
moved() { $PY -c "import sys; sys.exit(not float('$(supply | cut -d' ' -f2)') > 30.5)"; }
t0=$(date +%s)
wait_for 30 moved || fail "a step of 6 Cel did not reach the gate's p95: $(supply)"
pass "a 6 Cel step reached the gate's p95 after $(($(date +%s) - t0)) s (stats.every 600)"

# --- 3 ----------------------------------------------------------------------
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -D '\n--frame--\n' >"$WORK/frames.bin" 2>/dev/null \
  || fail "kcat could not read the topic"
$PY - "$WORK/frames.bin" "$RP_SRC/proto" <<'PYEOF' || fail "frames on the topic are wrong"
import subprocess, sys
raw = open(sys.argv[1], "rb").read().split(b"\n--frame--\n")
frames = [f for f in raw if f]
with_stats, scaled, doubles = 0, 0, 0
for f in frames:
    t = subprocess.run(["protoc", "--decode=rackpulse.v1.Frame", "-I", sys.argv[2], sys.argv[2] + "/rackpulse.proto"],
                       input=f, capture_output=True, check=True).stdout.decode()
    assert "stats_every_frames: 600" in t, t[:400]
    if "stats {" in t:
        with_stats += 1
    scaled += t.count("scaled: true")
    doubles += t.count(" mean: ")
assert len(frames) >= 12, len(frames)
assert with_stats <= len(frames) // 2, (with_stats, len(frames))
assert scaled > 0 and doubles == 0, (scaled, doubles)
print(f"{len(frames)} frames, {with_stats} with statistics, {scaled} scaled statistics, no doubles")
PYEOF
pass "protoc --decode: statistics in few frames, as scaled integers"

# --- 4 ----------------------------------------------------------------------
kill "$CDU_PID"
stale() { s=$(supply); [ "${s%% *}" = False ] && grep -q "stale" <<<"$s"; }
wait_for 30 stale || fail "supply_temp did not fail closed with the CDU stopped: $(supply)"
pass "CDU stopped: supply_temp fails closed ($(supply | cut -d' ' -f3-))"
