#!/bin/bash
# The gate API under concurrent and unauthenticated use, through the real
# peers (pymodbus CDU -> agent -> dev broker -> aggregator):
#   - twelve reservations sent at once, each fitting alone but not all
#     together: exactly the ones that fit are admitted (201), the rest 409;
#   - an unauthenticated ?class= looser than the rack's own limits is
#     refused (403, a JSON error naming the class); a stricter one, or any
#     with the token, is answered;
#   - a flood of unauthenticated gates keeps the audit log within its cap
#     (oldest dropped first, counted) and leaves room for flags and
#     reservations: an automatic flag, an operator flag and a reservation
#     are all written after it;
#   - asking under another class between samples does not reset the rack's
#     own persistence: a hot rack still trips.
# Every wait is for a condition, with a generous timeout.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
write_agent_config "$WORK/agent.yaml" a01 "$CDU"

# The simulated CDU's heat load (~83 kW) stands in for the rack's draw:
# 120 kW x 0.8 - 83.2 - 2 margin = ~10.8 kW of headroom.
cat >"$WORK/policy.yaml" <<'YAML'
version: test-c1
defaults:
  max_staleness: 30s
  power_margin_kw: 2
  supply_temp: {max: 40, hysteresis: 2, persist: 3}
  power: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
classes:
  gold: {supply_temp: {max: 38}}
  loose: {supply_temp: {max: 50}}
racks:
  - {id: a01, pool: p1, row: r1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
YAML
umask 077
echo "s3cret-token-for-tests" >"$WORK/token"
umask 022
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_EXTRA="audit: {max_entries: 100, map_size_mb: 16}
flags: {min_hold: 2s}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_aggregator
start_agent "$WORK/agent.yaml"

AUTH=(-H "Authorization: Bearer s3cret-token-for-tests")
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
check_of() { field "next(c for c in d['checks'] if c['name']=='$1')$2"; }
wait_for 60 sh -c "curl -s '$URL/v1/racks/a01/gate?kw=1' | grep -q '\"decision\":\"allow\"'" \
  || fail "no allow to start with: $(curl -s "$URL/v1/racks/a01/gate?kw=1")"
head=$(curl -s "$URL/v1/racks/a01/gate?kw=0" | check_of power_headroom "['observed']")

# --- concurrent reservations ---------------------------------------------------
# kw = headroom / 4.5: four fit, a fifth does not. All twelve are sent at
# once from one process (threads released together by a barrier).
$PY - "$URL" "$head" >"$WORK/res.txt" <<'PYEOF' || fail "concurrent reservations: $(cat "$WORK/res.txt")"
import json, sys, threading, time, urllib.request, urllib.error
url, head = sys.argv[1], float(sys.argv[2])
kw = head / 4.5
n = 12
go = threading.Barrier(n)
codes = [None] * n
def one(i):
    body = json.dumps({"rack": "a01", "kw": kw, "owner": f"team{i}",
                       "end": int(time.time() * 1000) + 3600000}).encode()
    req = urllib.request.Request(url + "/v1/reservations", data=body, method="POST",
                                 headers={"Authorization": "Bearer s3cret-token-for-tests"})
    go.wait()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            codes[i] = r.status
    except urllib.error.HTTPError as e:
        codes[i] = e.code
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(f"{n} x {kw:.2f} kW at once into {head:.2f} kW: {codes.count(201)} admitted, "
      f"{codes.count(409)} refused ({codes})")
assert codes.count(201) == 4 and codes.count(409) == 8, codes
PYEOF
cat "$WORK/res.txt"
held=$(curl -s "$URL/v1/reservations?rack=a01" | field 'round(sum(r["kw"] for r in d["reservations"] if r["state"]=="active"), 3)')
$PY -c "import sys; sys.exit(0 if $held <= $head + 1e-6 else 1)" || fail "$held kW reserved, more than the $head kW headroom"
pass "12 concurrent reservations over HTTP: exactly the 4 that fit admitted ($held of $head kW)"

# --- the class rule ------------------------------------------------------------
code=$(curl -s -o "$WORK/c.json" -w '%{http_code}' "$URL/v1/racks/a01/gate?kw=1&class=loose")
[ "$code" = 403 ] || fail "unauthenticated looser class: HTTP $code $(cat "$WORK/c.json")"
grep -q "\"error\":\"class 'loose' is looser than rack a01" "$WORK/c.json" || fail "403 does not name the class: $(cat "$WORK/c.json")"
code=$(curl -s -o "$WORK/c.json" -w '%{http_code}' "${AUTH[@]}" "$URL/v1/racks/a01/gate?kw=1&class=loose")
[ "$code" = 200 ] || fail "authenticated looser class: HTTP $code $(cat "$WORK/c.json")"
code=$(curl -s -o "$WORK/c.json" -w '%{http_code}' -H "Authorization: Bearer wrong" "$URL/v1/racks/a01/gate?kw=1&class=loose")
[ "$code" = 401 ] || fail "a wrong token on a gate: HTTP $code $(cat "$WORK/c.json")"
code=$(curl -s -o "$WORK/c.json" -w '%{http_code}' "$URL/v1/racks/a01/gate?kw=1&class=gold")
[ "$code" = 200 ] || fail "unauthenticated stricter class: HTTP $code $(cat "$WORK/c.json")"
rc=0; ctl gate --rack a01 --kw 1 --class loose >"$WORK/ctl.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "class 'loose' is looser" "$WORK/ctl.out" \
  || fail "rackpulsectl gate --class loose without a token: exit $rc, $(cat "$WORK/ctl.out")"
rc=0; ctl --token-file "$WORK/token" gate --rack a01 --kw 1 --class loose >"$WORK/ctl.out" 2>&1 || rc=$?
[ "$rc" != 2 ] || fail "rackpulsectl --token-file gate --class loose: exit 2, $(cat "$WORK/ctl.out")"
pass "class=loose refused without a token (403 naming it), answered with one (also by rackpulsectl); class=gold answered"

# --- a flood of unauthenticated gates --------------------------------------------
$PY - "$HTTP_PORT" <<'PYEOF' || fail "flood failed"
import http.client, sys, threading
port = int(sys.argv[1])
def flood():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(500):
        c.request("GET", "/v1/racks/a01/gate?kw=1")
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
ts = [threading.Thread(target=flood) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
PYEOF
evicted() { curl -s "$URL/metrics" | awk '/^rackpulse_audit_evicted_total/ {print $2}'; }
wait_for 30 sh -c "[ \"\$(curl -s '$URL/metrics' | awk '/^rackpulse_audit_evicted_total/ {print \$2}')\" -ge 1900 ]" \
  || fail "rackpulse_audit_evicted_total is $(evicted) after 2000 gates with max_entries 100"
n=$(curl -s "$URL/v1/audit?limit=10000" | field 'len(d["decisions"])')
[ "$n" -le 100 ] || fail "the audit log holds $n decisions, over its cap of 100"
pass "2000 unauthenticated gates: the audit log holds $n (cap 100), $(evicted) oldest evicted"

# Room for the ledger proper: a reservation (after releasing the others),
# an operator flag, and below an automatic flag.
for id in $(curl -s "$URL/v1/reservations?rack=a01" | field '" ".join(r["id"] for r in d["reservations"] if r["state"]=="active")'); do
  curl -s "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$id" | grep -q '"state":"released"' || fail "release $id"
done
code=$(curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"a01\",\"kw\":2,\"owner\":\"after-flood\",\"end\":$(( $(date +%s%3N) + 3600000 ))}")
[ "$code" = 201 ] || fail "reservation after the flood: HTTP $code $(cat "$WORK/r.json")"
code=$(curl -s -o "$WORK/f.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/flags" \
  -d "{\"rack\":\"a01\",\"flag\":\"maintenance\",\"owner\":\"ops\",\"expires_ms\":$(( $(date +%s%3N) + 600000 ))}")
[ "$code" = 201 ] || fail "operator flag after the flood: HTTP $code $(cat "$WORK/f.json")"
curl -s "${AUTH[@]}" -X DELETE "$URL/v1/flags/a01/maintenance" | grep -q cleared || fail "flag not cleared"
pass "after the flood: a reservation and an operator flag written"

# --- trip state per class ----------------------------------------------------------
# 42 C: over the rack's own 40 (persist 3), inside loose's 50. Between the
# rack's own gates a trusted caller keeps asking under loose; the own check
# must still trip after three samples.
cdu_set "$CDU" '{"supply_temp": 42.0, "return_temp": 52.0, "flow": 120.0}'
tripped=0
for _ in $(seq 300); do
  curl -s "${AUTH[@]}" "$URL/v1/racks/a01/gate?kw=1&class=loose" >"$WORK/l.json"
  curl -s "$URL/v1/racks/a01/gate?kw=1" >"$WORK/g.json"
  if [ "$(check_of supply_temp "['pass']" <"$WORK/g.json")" = False ] \
    && [ "$(check_of supply_temp "['observed']" <"$WORK/g.json")" = 42.0 ]; then
    tripped=1
    break
  fi
  sleep 0.2
done
[ "$tripped" = 1 ] || fail "the rack's own supply_temp never tripped at 42 with class=loose asked between: $(cat "$WORK/g.json")"
[ "$(check_of supply_temp "['pass']" <"$WORK/l.json")" = True ] || fail "loose (max 50) failed at 42: $(cat "$WORK/l.json")"
pass "own supply_temp trips at 42 although class=loose (in band) was asked between samples"

# The trip raises an automatic pause-admissions flag: written after the flood.
wait_for 30 sh -c "curl -s '$URL/v1/flags?rack=a01' | grep -q '\"flag\":\"pause-admissions\".*\"source\":\"auto\"\\|\"source\":\"auto\".*\"flag\":\"pause-admissions\"'" \
  || fail "no automatic pause-admissions flag after the flood: $(curl -s "$URL/v1/flags?rack=a01")"
pass "automatic pause-admissions flag written after the flood"
