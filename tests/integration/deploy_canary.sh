#!/bin/bash
# Canary soaks and overrides through the real peers (pymodbus CDU -> agent
# -> dev broker -> aggregator), with rackpulsectl as the pipeline uses it:
#  1. a soak that holds: `watch` exits 0 with a plain line per interval;
#  2. a soak that breaks when the CDU's supply temperature rises mid-soak:
#     exit 1 at once, naming the limit, the observed rise and when;
#  3. an override: a denied deploy is allowed (only with the override
#     role), the decision shows it, and it expires by itself (audited);
#  4. a soak that loses telemetry (the CDU process stopped): exit 1.
# Soaks last seconds here; the agent's windows are 3 s and 10 s.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
CDU_PID=${PIDS[-1]}
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0}'
write_agent_config "$WORK/agent.yaml" r1 "$CDU"
echo 'stats: {windows: [3s, 10s], series: ["cdu.*"]}' >>"$WORK/agent.yaml"
cat >"$WORK/tokens" <<'EOF2'
ci   reserve,flag  ci-token-0123456789abcdef
ops  override      ops-token-0123456789abcdef
EOF2
chmod 0600 "$WORK/tokens"
printf 'ci-token-0123456789abcdef\n' >"$WORK/ci.tok"
printf 'ops-token-0123456789abcdef\n' >"$WORK/ops.tok"
chmod 0600 "$WORK"/*.tok
AGG_HTTP_EXTRA="tokens_file: $WORK/tokens"
start_aggregator
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "curl -sf '$URL/v1/racks/r1' | $PY -c '
import json,sys; sys.exit(0 if \"3\" in json.load(sys.stdin)[\"stats\"][\"cdu.heat_load@cdu1\"] else 1)'" \
  || fail "no 3 s statistics of the CDU: $(curl -s "$URL/v1/racks/r1" | head -c 600)"
sleep_until_baseline() { # the 3 s window filled with the steady state
  wait_for 20 sh -c "curl -sf '$URL/v1/racks/r1' | $PY -c '
import json,sys; s=json.load(sys.stdin)[\"stats\"][\"cdu.supply_temp@cdu1\"][\"3\"]
sys.exit(0 if s[\"count\"] >= 3 and abs(s[\"mean\"] - $1) < 0.05 else 1)'"
}
sleep_until_baseline 30.0 || fail "supply statistics never settled at 30.0"
watch() { ctl --token-file "$WORK/ci.tok" watch --rack r1 --kw 5 --baseline 3s --interval 1s "$@"; }

# 1. A soak that holds.
start=$(date +%s)
set +e
watch --for 4s --max-temp-rise 2 --max-power-rise 8% --power-series cdu.heat_load \
  --max-stale 5s --deploy-id dep-ok >"$WORK/held.txt" 2>&1; rc=$?
set -e
[ "$rc" -eq 0 ] || fail "a steady soak did not hold (rc $rc): $(cat "$WORK/held.txt")"
grep -q "^HELD: canary canary-" "$WORK/held.txt" || fail "no HELD line: $(cat "$WORK/held.txt")"
lines=$(grep -c "^canary-.* r1 .*supply 30.00 (+0.00)" "$WORK/held.txt" || true)
[ "$lines" -ge 2 ] || fail "expected a plain line per second, got $lines: $(cat "$WORK/held.txt")"
[ $(( $(date +%s) - start )) -lt 30 ] || fail "a 4 s soak took too long"
pass "a 4 s soak at a steady supply temperature held (exit 0, $lines progress lines)"

# 2. A soak that breaks mid-way: supply (and return) 3.5 degC up after the start.
watch --for 60s --max-temp-rise 2 --max-stale 5s --deploy-id dep-hot >"$WORK/broke.txt" 2>&1 &
WATCH=$!
wait_for 20 grep -q "^canary-" "$WORK/broke.txt" || fail "the soak did not start: $(cat "$WORK/broke.txt")"
cdu_set "$CDU" '{"supply_temp": 33.5, "return_temp": 43.5}'
set +e
wait "$WATCH"; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a soak over its temperature limit exited $rc: $(cat "$WORK/broke.txt")"
grep -Eq "^BROKEN: canary .* on rack r1: max_temp_rise: observed 3\.500, limit 2\.000, at 20[0-9-]+T" \
  "$WORK/broke.txt" || fail "the break is not named: $(cat "$WORK/broke.txt")"
id=$(sed -n 's/^BROKEN: canary \([^ ]*\) .*/\1/p' "$WORK/broke.txt")
curl -sf "$URL/v1/canaries/$id" >"$WORK/canary.json" || fail "GET /v1/canaries/$id"
$PY - "$WORK/canary.json" <<'PYEOF' || fail "canary JSON is wrong: $(cat "$WORK/canary.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["state"] == "failed" and c["verdict"]["limit"] == "max_temp_rise", c
assert abs(c["baseline"]["supply_temp"] - 30.0) < 0.05 and c["baseline"]["window_s"] == 3, c
assert c["elapsed_s"] < 50 and c["deploy"]["deploy_id"] == "dep-hot" and c["client"] == "ci", c
PYEOF
pass "a soak broke when the supply rose 3.5 degC mid-soak (exit 1, limit, value and time named)"

# 3. Override: supply 44 > 40 denies; ci (no override role) is refused; ops
#    allows it for 3 s; the decision shows it; it expires by itself.
cdu_set "$CDU" '{"supply_temp": 44.0, "return_temp": 54.0}'
gate() { ctl --deploy-id dep-ovr gate --rack r1 --kw 1 "$@"; }
wait_for 30 sh -c "! '$RP_BIN/tools/rackpulsectl' --url '$URL' gate --rack r1 --kw 1 >/dev/null" \
  || fail "the gate never denied at 44 degC"
set +e
ctl --token-file "$WORK/ci.tok" override --rack r1 --for 3s --reason "ci tries" 2>"$WORK/o403.txt"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "needs the role 'override'" "$WORK/o403.txt" \
  || fail "ci could override: $(cat "$WORK/o403.txt")"
ctl --token-file "$WORK/ops.tok" --deploy-id dep-ovr override --rack r1 --for 3s \
  --reason "INC-7 hotfix; cooling vendor on site" >"$WORK/override.json" || fail "ops could not override"
gate >"$WORK/allowed.txt" || fail "the override did not allow: $(cat "$WORK/allowed.txt")"
grep -q "ALLOW" "$WORK/allowed.txt" && grep -q "OVERRIDE ovr-.* by ops until .*: INC-7 hotfix" \
  "$WORK/allowed.txt" || fail "the decision does not show the override: $(cat "$WORK/allowed.txt")"
grep -q "FAIL  supply_temp" "$WORK/allowed.txt" || fail "the failing check is hidden"
set +e
ctl --deploy-id dep-other gate --rack r1 --kw 1 >/dev/null; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "an override for dep-ovr allowed another deploy (rc $rc)"
denied_again() { gate >"$WORK/again.txt" 2>&1; [ $? -eq 1 ]; }
wait_for 20 denied_again || fail "the override never expired: $(cat "$WORK/again.txt")"
# The audit is written in batches: wait until the story has all of it.
ovr_story_ok() {
  ctl --deploy-id dep-ovr audit --json >"$WORK/ovr-story.json" || return 1
  $PY - "$WORK/ovr-story.json" >"$WORK/ovr-check.txt" 2>&1 <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["decisions"]
kinds = [e["action"] if "action" in e else "gate:" + e["decision"] for e in s]
i = kinds.index("override_create")
assert "gate:allow" in kinds[i:], kinds
allow = [e for e in s if e.get("decision") == "allow"][0]
# supply_temp, and the pause-admissions flag the upkeep raises for it as
# soon as it sees the breach (before or after the override: either order)
denied_by = allow["override"]["denied_by"]
assert "supply_temp" in denied_by and set(denied_by) <= {"supply_temp", "flags"}, allow["override"]
assert allow["override"]["client"] == "ops", allow
exp = [e for e in s if e.get("action") == "override_expired"][0]
assert exp["client"] == "aggregator" and exp["override"]["state"] == "expired", exp
last_allow = max(j for j, k in enumerate(kinds) if k == "gate:allow")
assert "gate:deny" in kinds[last_allow:], kinds  # denied again once it ended
PYEOF
}
wait_for 15 ovr_story_ok || fail "override story is wrong: $(cat "$WORK/ovr-check.txt")"
grep -q "override ovr-.* of rack r1 expired" "$WORK/aggregator.log" || fail "the expiry was not logged"
pass "an override allowed dep-ovr on r1 (shown in the decision), not another deploy, and expired by itself (audited)"

# 4. A soak that loses its telemetry: the CDU process is stopped.
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0}'
sleep_until_baseline 30.0 || fail "supply statistics never settled back at 30.0"
watch --for 60s --max-temp-rise 2 --max-stale 3s --deploy-id dep-lost >"$WORK/lost.txt" 2>&1 &
WATCH=$!
wait_for 20 grep -q "^canary-" "$WORK/lost.txt" || fail "the soak did not start: $(cat "$WORK/lost.txt")"
kill -TERM "$CDU_PID"
set +e
wait "$WATCH"; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a soak without telemetry exited $rc: $(cat "$WORK/lost.txt")"
grep -q "^BROKEN: canary .* on rack r1: telemetry: .*telemetry lost: no OK reading of cdu.supply_temp" \
  "$WORK/lost.txt" || fail "lost telemetry not named: $(cat "$WORK/lost.txt")"
pass "a soak failed when its CDU stopped answering (exit 1, telemetry lost)"

# The watch's errors exit 2.
set +e
ctl --token-file "$WORK/ci.tok" watch --rack nosuch --kw 1 --for 5s 2>"$WORK/err.txt"; rc2=$?
set -e
[ "$rc2" -eq 2 ] && grep -q "unknown rack" "$WORK/err.txt" || fail "unknown rack: rc $rc2 $(cat "$WORK/err.txt")"
pass "watch errors exit 2"
