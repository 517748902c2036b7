#!/bin/bash
# Gates, reservations, placement, flags and the audit log through the real
# peers (pymodbus CDU -> agent -> dev broker -> aggregator), with a policy
# file: hysteresis and persistence on the supply temperature, power headroom
# with reservations of other owners, a fail-closed stale deny, an expiring
# reservation, bearer-token auth, input validation, SIGHUP policy reload.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
write_agent_config "$WORK/agent.yaml" a01 "$CDU"

# The simulated CDU's heat load (~83 kW) stands in for the rack's draw: this
# test has no PDU. 120 kW x 0.8 - 83.2 - 2 margin = ~10.8 kW of headroom.
cat >"$WORK/policy.yaml" <<'YAML'
version: test-9
defaults:
  max_staleness: 4s
  power_margin_kw: 2
  supply_temp: {max: 40, hysteresis: 2, persist: 3}
  power: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
racks:
  - {id: a01, pool: p1, row: r1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
YAML
umask 077
echo "s3cret-token-for-tests" >"$WORK/token"
umask 022
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_EXTRA="reservations: {unused_grace: 1h}
flags: {min_hold: 2s}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_aggregator
start_agent "$WORK/agent.yaml"

AUTH=(-H "Authorization: Bearer s3cret-token-for-tests")
gate() { curl -s "$URL/v1/racks/a01/gate?kw=$1${2:+&owner=$2}"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
check_of() { field "next(c for c in d['checks'] if c['name']=='$1')$2"; }

wait_for 20 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=5' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow to start with: $(gate 5)"
gate 5 >"$WORK/g.json"
[ "$(field 'd["policy_version"]' <"$WORK/g.json")" = "test-9" ] || fail "policy version not test-9"
head=$(check_of power_headroom "['observed']" <"$WORK/g.json")
pass "allow at 5 kW under policy test-9 (power headroom $head kW)"

# --- hysteresis and persistence ---------------------------------------------
cdu_set "$CDU" '{"supply_temp": 42.0, "return_temp": 52.0, "flow": 120.0}'
# One process polls (no fork per poll): the ~2 s between the first sample
# at 42 and the trip must not be missed because forks are slow.
saw_pending=$($PY - "$URL" "$WORK/g.json" <<'PYEOF'
import json, sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
pending, deadline = 0, time.time() + 60
while time.time() < deadline:
    with urllib.request.urlopen(url + "/v1/racks/a01/gate?kw=1", timeout=30) as r:
        body = r.read()
    d = json.loads(body)
    c = next(c for c in d["checks"] if c["name"] == "supply_temp")
    pending |= "not yet persistent" in c.get("reason", "")
    if d["decision"] == "deny" and not c["pass"]:
        break
    time.sleep(0.05)
open(out, "wb").write(body)
print(int(pending))
PYEOF
)
[ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] && [ "$(check_of supply_temp "['pass']" <"$WORK/g.json")" = False ] \
  || fail "no deny at 42 > 40: $(cat "$WORK/g.json")"
[ "$saw_pending" = 1 ] || fail "the check tripped on its first out-of-band sample (persist: 3)"
pass "supply 42 > 40 denies only after persisting (saw 'not yet persistent' first)"

cdu_set "$CDU" '{"supply_temp": 39.0, "return_temp": 49.0, "flow": 120.0}'
# Until a sample at 39 reaches the gate (not a fixed time: the agent, the
# broker and the consumer may be slow on a loaded machine).
at_39() { gate 1 >"$WORK/g.json"; [ "$(check_of supply_temp "['observed']" <"$WORK/g.json")" = 39.0 ]; }
wait_for 30 at_39 || fail "no sample at 39 reached the gate: $(cat "$WORK/g.json")"
[ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] || fail "cleared at 39, inside the hysteresis of 2: $(cat "$WORK/g.json")"
check_of supply_temp "['reason']" <"$WORK/g.json" | grep -q hysteresis || fail "reason does not name the hysteresis"
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
wait_for 15 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=1' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow back at 30: $(gate 1)"
pass "still denied at 39 (hysteresis 2), allowed again at 30"

# The trip raised an automatic pause-admissions flag, set and later cleared,
# each announced on rackpulse.events (decoded here with the schema alone).
source "$(dirname "$0")/events_lib.sh"
events() { decode_events; }
# Not `events | grep -q`: grep leaving early breaks the decoder's pipe, and
# pipefail makes that a failure.
has_cleared_event() { grep -q 'action: CLEARED' <<<"$(events)"; }
wait_for 15 has_cleared_event \
  || fail "no flag events on rackpulse.events: $(events)"
events >"$WORK/events.txt"
grep -q 'rack_id: "a01" flag: "pause-admissions" action: SET source: "auto" owner: "rackpulse".*check: "supply_temp" observed: 42' "$WORK/events.txt" \
  || fail "no SET event for pause-admissions from supply_temp: $(cat "$WORK/events.txt")"
grep -q 'flag: "pause-admissions" action: CLEARED' "$WORK/events.txt" || fail "no CLEARED event"
pass "automatic pause-admissions flag: SET (supply_temp 42) and CLEARED events on rackpulse.events"

# --- reservations and power headroom -----------------------------------------
code=$(curl -s -o "$WORK/r.json" -w '%{http_code}' -X POST "$URL/v1/reservations" -d '{"rack":"a01","kw":5,"owner":"alice","end":9999999999999}')
[ "$code" = 401 ] || fail "reservation without a token: HTTP $code"
code=$(curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"a01\",\"kw\":8,\"owner\":\"alice\",\"class\":\"silver\",\"end\":$(( $(date +%s%3N) + 3600000 ))}")
[ "$code" = 201 ] || fail "reservation of 8 kW refused: HTTP $code $(cat "$WORK/r.json")"
RES=$(field 'd["id"]' <"$WORK/r.json")
gate 5 bob >"$WORK/g.json"
[ "$(field 'd["decision"]' <"$WORK/g.json")" = deny ] || fail "bob's 5 kW allowed despite alice's 8 kW: $(cat "$WORK/g.json")"
[ "$(check_of power_headroom "['pass']" <"$WORK/g.json")" = False ] || fail "deny does not name power_headroom"
gate 5 alice >"$WORK/g.json"
[ "$(field 'd["decision"]' <"$WORK/g.json")" = allow ] || fail "alice's own reservation counted against her: $(cat "$WORK/g.json")"
code=$(curl -s -o "$WORK/r2.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"a01\",\"kw\":9,\"owner\":\"carol\",\"end\":$(( $(date +%s%3N) + 3600000 ))}")
[ "$code" = 409 ] || fail "a reservation that does not fit got HTTP $code: $(cat "$WORK/r2.json")"
pass "alice's 8 kW reservation denies bob's 5 kW (power_headroom), not alice's; carol's 9 kW does not fit (409)"

curl -s "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$RES" | grep -q '"state":"released"' || fail "release"
gate 5 bob | grep -q '"decision":"allow"' || fail "released power not given back"
code=$(curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"a01\",\"kw\":8,\"owner\":\"alice\",\"end\":$(( $(date +%s%3N) + 2500 ))}")
[ "$code" = 201 ] || fail "short reservation refused: $(cat "$WORK/r.json")"
gate 5 bob | grep -q '"decision":"deny"' || fail "short reservation not counted"
wait_for 15 sh -c "curl -s '$URL/v1/reservations?owner=alice' | grep -q '\"state\":\"expired\"'" \
  || fail "the reservation did not expire: $(curl -s "$URL/v1/reservations?owner=alice")"
gate 5 bob | grep -q '"decision":"allow"' || fail "expired reservation still holds power"
pass "release and expiry give the power back"

# --- validation ----------------------------------------------------------------
expect_code() { # CODE METHOD PATH [BODY]
  local got
  got=$(curl -s -o "$WORK/e.json" -w '%{http_code}' "${AUTH[@]}" -X "$2" "$URL$3" ${4:+-d "$4"})
  [ "$got" = "$1" ] || fail "$2 $3 ${4:-}: HTTP $got, expected $1: $(cat "$WORK/e.json")"
  grep -q '"error"' "$WORK/e.json" || fail "$2 $3: no JSON error"
}
expect_code 400 GET "/v1/racks/a01/gate?kw=-3"
expect_code 400 GET "/v1/racks/a01/gate?kw=abc"
expect_code 404 GET "/v1/racks/zz9/gate?kw=1"
expect_code 400 POST /v1/reservations '{"rack":"a01","kw":-1,"owner":"x","end":9999999999999}'
expect_code 400 POST /v1/reservations '{"rack":"a01","kw":1,"owner":"x","start":2000000000000,"end":1999999999999}'
expect_code 400 POST /v1/reservations 'not json'
expect_code 409 POST /v1/reservations "{\"rack\":\"nosuch\",\"kw\":1,\"owner\":\"x\",\"end\":$(( $(date +%s%3N) + 3600000 ))}"
head -c 70000 /dev/zero | tr '\0' 'a' >"$WORK/big"
got=$(curl -s -o "$WORK/e.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" --data-binary @"$WORK/big")
[ "$got" = 413 ] || fail "oversized body: HTTP $got"
pass "bad input answered with 4xx and a JSON error"

# --- flags, placement, audit -----------------------------------------------------
code=$(curl -s -o "$WORK/f.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/flags" \
  -d "{\"rack\":\"a01\",\"flag\":\"maintenance\",\"owner\":\"ops\",\"expires_ms\":$(( $(date +%s%3N) + 600000 )),\"reason\":\"pump swap\"}")
[ "$code" = 201 ] || fail "flag: HTTP $code $(cat "$WORK/f.json")"
gate 1 >"$WORK/g.json"
[ "$(check_of flags "['pass']" <"$WORK/g.json")" = False ] || fail "maintenance flag does not deny"
curl -s "$URL/v1/placement?kw=2&count=3" >"$WORK/p.json"
grep -q '"rack":"a01"' "$WORK/p.json" || fail "placement does not mention a01"
[ "$(field 'd["excluded"][0]["rack"]' <"$WORK/p.json")" = a01 ] || fail "a flagged rack was not excluded: $(cat "$WORK/p.json")"
[ "$(field 'len(d["excluded"][0]["decision_id"])' <"$WORK/p.json")" = 32 ] || fail "the excluded rack has no decision id: $(cat "$WORK/p.json")"
curl -s "${AUTH[@]}" -X DELETE "$URL/v1/flags/a01/maintenance" | grep -q cleared || fail "flag not cleared"
curl -s "$URL/v1/placement?kw=2&count=3" >"$WORK/p.json"
[ "$(field 'd["racks"][0]["rack"]' <"$WORK/p.json")" = a01 ] || fail "placement: $(cat "$WORK/p.json")"
score=$(field 'd["racks"][0]["score"]' <"$WORK/p.json")
pass "maintenance flag denies and excludes a01 (with its decision id) from placement; cleared, a01 ranks first (score $score)"

n=$(curl -s "$URL/v1/audit?rack=a01&limit=1000" | field 'len(d["decisions"])')
[ "$n" -ge 10 ] || fail "audit log holds only $n decisions"
curl -s "$URL/v1/audit?rack=a01&limit=1000" | field 'all(len(x["decision_id"])==32 and x["policy_version"]=="test-9" for x in d["decisions"])' | grep -q True \
  || fail "audit entries lack ids or versions"
pass "audit log: $n decisions of rack a01 with ids and policy version"

# --- policy reload ------------------------------------------------------------------
sed -i 's/^version: test-9/version: test-9b/; s/^  max_staleness: 4s/  max_staleness: four/' "$WORK/policy.yaml"
kill -HUP "$AGG_PID"
wait_for 10 grep -q "reload refused: .*policy.yaml:3: defaults.max_staleness" "$WORK/aggregator.log" \
  || fail "bad policy not refused with file:line: $(tail -3 "$WORK/aggregator.log")"
gate 1 | grep -q '"policy_version":"test-9"' || fail "the old policy did not stay"
sed -i 's/max_staleness: four/max_staleness: 4s/' "$WORK/policy.yaml"
kill -HUP "$AGG_PID"
wait_for 10 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=1' | grep -q '\"policy_version\":\"test-9b\"'" \
  || fail "the new policy was not applied"
pass "SIGHUP: a bad policy is refused with file:line, a good one applies"

# --- the CLI ----------------------------------------------------------------------
export RACKPULSE_TOKEN_FILE="$WORK/token"
ctl reserve --rack a01 --kw 1.5 --owner dave --class gold --end +1h --json >"$WORK/cli.json" \
  || fail "rackpulsectl reserve failed"
RID=$(field 'd["id"]' <"$WORK/cli.json")
ctl reservations --owner dave | grep -q "$RID  active" || fail "rackpulsectl reservations does not list $RID"
ctl extend --id "$RID" --end +2h >"$WORK/ext.txt" 2>&1 || fail "rackpulsectl extend failed: $(cat "$WORK/ext.txt")"
ctl release --id "$RID" | grep -q "released" || fail "rackpulsectl release failed"
env -u RACKPULSE_TOKEN_FILE "$RP_BIN/tools/rackpulsectl" --url "$URL" release --id "$RID" 2>"$WORK/cli.err" \
  && fail "a change without a token succeeded"
grep -q "need a token" "$WORK/cli.err" || fail "no clear message without a token"
ctl flags set --rack a01 --flag pause-admissions --owner ops --for 10m --reason "cli test" >/dev/null \
  || fail "rackpulsectl flags set failed"
ctl flags --rack a01 | grep -q "pause-admissions" || fail "rackpulsectl flags does not list the flag"
set +e; ctl gate --rack a01 --kw 1 >"$WORK/cli.txt"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "FAIL  flags" "$WORK/cli.txt" || fail "gate with a flag: exit $rc: $(cat "$WORK/cli.txt")"
ctl flags clear --rack a01 --flag pause-admissions >/dev/null || fail "rackpulsectl flags clear failed"
ctl placement --kw 1 --count 2 | grep -q "1. a01" || fail "rackpulsectl placement: $(ctl placement --kw 1)"
[ "$(ctl audit --rack a01 --limit 5 | wc -l)" = 5 ] || fail "rackpulsectl audit --limit 5"
pass "rackpulsectl reserve, reservations, extend, release, flags set/list/clear, placement, audit"

# --- stale telemetry fails closed ----------------------------------------------------
kill "${PIDS[1]}" # the CDU simulator
wait_for 20 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=1' | grep -q '\"decision\":\"deny\"'" \
  || fail "no fail-closed deny after the CDU stopped: $(gate 1)"
gate 1 >"$WORK/g.json"
check_of supply_temp ".get('reason','')" <"$WORK/g.json" | grep -q -i "stale\|fails closed" \
  || fail "deny does not say the supply reading is stale: $(cat "$WORK/g.json")"
pass "stopped CDU: supply temperature stale, the gate fails closed"
