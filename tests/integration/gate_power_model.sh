#!/bin/bash
# Every watt once, through the real peers: one rack with a Raritan PDU
# (snmpsim fixture: inlet 3456 W, outlet 3 at 460 W), a pymodbus CDU, one
# agent, the dev broker and the aggregator. Alice reserves 1 kW on outlet 3
# (a running reservation whose measured draw, 0.46 kW, is within it). Bob's
# power headroom must count that reservation once: 5 kW breaker - (max(1,
# 0.46) + unaccounted 3.456 - 0.46) = 1.004 kW, not 5 - 3.456 - 1 = 0.544
# kW as when its draw and its kW were both subtracted; so bob's 0.8 kW
# passes the power check. Then preemption with notice (preempt_notice:
# 10m): a gold request that needs a preemptible bronze reservation's kW is
# refused with the time to retry, and the bronze one gets a preempt-notice
# event on rackpulse.events naming it. Energy: the upkeep integrates alice's
# measured 0.46 kW at the policy's flat 0.20 EUR/kWh; /metrics, rackpulsectl
# and her close-out summary at release (peak and p95 utilisation 46 %)
# agree.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snmp_lib.sh"

start_broker
start_pdu pdu-a raritan-px
secret raritan-px.community raritan-px
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 100.0}'
write_agent_config "$WORK/agent.yaml" rpm "$CDU"
sed -i "1s|state_dir: [^}]*|&, profiles_dir: $RP_SRC/packaging/profiles|" "$WORK/agent.yaml"
{
  echo "snmp:"
  printf '  - {name: pdu-a, host: 127.0.0.1, port: %s, community_file: %s, profile: raritan-px}\n' \
    "$PORT_pdu_a" "$WORK/raritan-px.community"
} >>"$WORK/agent.yaml"

cat >"$WORK/policy.yaml" <<'YAML'
version: power-model-1
defaults:
  max_staleness: 10s
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
tariff: {currency: EUR, flat: 0.2}
racks:
  - {id: rpm, breaker_kw: 5, derating: 1.0}
YAML
echo "power-model-token-1" >"$WORK/token"
chmod 600 "$WORK/token"
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
AGG_EXTRA="reservations: {preempt_notice: 10m}"
start_aggregator
start_agent "$WORK/agent.yaml"
AUTH=(-H "Authorization: Bearer power-model-token-1")

power() { # KW OWNER -> the power_headroom check as JSON
  curl -sf "$URL/v1/racks/rpm/gate?kw=$1&owner=$2&duration=1m" | $PY -c '
import json, sys
print(json.dumps(next(c for c in json.load(sys.stdin)["checks"] if c["name"] == "power_headroom")))'
}
have_outlet() {
  curl -sf "$URL/v1/racks/rpm" | grep -q 'pdu.outlet.power' \
    && power 0.8 bob | grep -q '"draw_kw": 3.45'
}
wait_for 60 have_outlet || fail "no PDU draw at the gate: $(curl -s "$URL/v1/racks/rpm" | head -c 800)"

code=$(curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"rack\":\"rpm\",\"kw\":1,\"owner\":\"alice\",\"outlets\":[\"3\"],\"end\":$(($(date +%s%3N) + 3600000))}")
[ "$code" = 201 ] || fail "alice's 1 kW on outlet 3 refused: HTTP $code $(cat "$WORK/r.json")"

# The reservation starts at its creation: wait until the gate sees it running.
measured() { power 0.8 bob >"$WORK/p.json" && grep -q '"measured_kw": 0.46' "$WORK/p.json"; }
wait_for 30 measured || fail "alice's outlet draw never measured: $(cat "$WORK/p.json")"
$PY - "$WORK/p.json" <<'PYEOF' || fail "power headroom counts alice twice: $(cat "$WORK/p.json")"
import json, sys
c = json.load(open(sys.argv[1]))
near = lambda a, b: abs(a - b) < 1e-6
assert near(c["draw_kw"], 3.456), c
assert near(c["reservations_committed_kw"], 1.0), c
assert near(c["reservations_measured_kw"], 0.46), c
assert near(c["unaccounted_kw"], 3.456 - 0.46), c
assert near(c["committed_kw"], 1.0 + 3.456 - 0.46), c
assert near(c["observed"], 5 - (1.0 + 3.456 - 0.46)), c
assert c["pass"] is True, c
PYEOF
pass "alice's running 1 kW (0.46 kW measured on outlet 3) counted once: bob's headroom $(
  $PY -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["observed"], 3))' "$WORK/p.json") kW, 0.8 kW passes"

# Alice's own gate: her reservation does not count against her; its outlet
# draw is the rack's like any other: 5 - 3.456 = 1.544.
power 0.8 alice >"$WORK/pa.json"
$PY -c 'import json,sys; c=json.load(open(sys.argv[1])); assert abs(c["observed"]-1.544)<1e-6, c' \
  "$WORK/pa.json" || fail "alice's own headroom: $(cat "$WORK/pa.json")"
pass "alice's own gate: 1.544 kW (her outlet's draw counted once, her reservation not)"

# --- preemption with notice -------------------------------------------------
reserve() { # BODY -> HTTP code, answer in $WORK/r.json
  curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" -d "$1"
}
end=$(($(date +%s%3N) + 3600000))
code=$(reserve "{\"rack\":\"rpm\",\"kw\":0.9,\"owner\":\"carol\",\"class\":\"bronze\",\"preemptible\":true,\"end\":$end}")
[ "$code" = 201 ] || fail "carol's bronze 0.9 kW refused: HTTP $code $(cat "$WORK/r.json")"
CAROL=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/r.json")
code=$(reserve "{\"rack\":\"rpm\",\"kw\":0.5,\"owner\":\"dave\",\"class\":\"gold\",\"end\":$end}")
[ "$code" = 409 ] || fail "dave's gold 0.5 kW: HTTP $code, expected 409 during the notice: $(cat "$WORK/r.json")"
$PY - "$WORK/r.json" "$CAROL" <<'PYEOF' || fail "no retry time in the refusal: $(cat "$WORK/r.json")"
import json, sys, time
r = json.load(open(sys.argv[1]))
assert r["noticed"] == [sys.argv[2]], r
assert 540 < r["retry_at_ms"] / 1000 - time.time() <= 600, r
assert "retry then" in r["error"], r
PYEOF
curl -sf "$URL/v1/reservations?owner=carol" | grep -q '"state":"active"' || fail "carol revoked before her notice ran out"
notice_event() { rp_events | grep 'flag: "preempt-notice"' | grep -q "reservation_id: \"$CAROL\""; }
wait_for 30 notice_event || fail "no preempt-notice event for $CAROL: $(rp_events)"
pass "gold request refused during carol's 10 min notice (409 with retry_at_ms); preempt-notice event on rackpulse.events"

# --- energy and cost ----------------------------------------------------------
ALICE=$(curl -sf "$URL/v1/reservations?owner=alice" | $PY -c 'import json,sys; print(json.load(sys.stdin)["reservations"][0]["id"])')
metered() { curl -sf "$URL/metrics" | grep -q 'rackpulse_energy_kwh_total{owner="alice",source="measured"} 0\.0*[1-9]'; }
wait_for 60 metered || fail "no measured kWh for alice on /metrics: $(curl -sf "$URL/metrics" | grep energy)"
ctl reservations --owner alice >"$WORK/ctl.txt" || fail "rackpulsectl reservations: $(cat "$WORK/ctl.txt")"
grep -q "energy .* kWh .* EUR per hour), peak 46%, p95 46%" "$WORK/ctl.txt" || fail "rackpulsectl: $(cat "$WORK/ctl.txt")"
curl -sf "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$ALICE" >"$WORK/closed.json" || fail "release of alice's reservation"
$PY - "$WORK/closed.json" <<'PYEOF' || fail "close-out summary: $(cat "$WORK/closed.json")"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["measured_kwh"] > 0 and s["estimated_kwh"] == 0, s
assert s["measured_kwh"] <= 0.46 * s["hours"] + 1e-9, s
assert abs(s["cost"] - 0.2 * s["kwh"]) < 1e-9 and s["currency"] == "EUR", s
assert abs(s["peak_utilization"] - 0.46) < 1e-9 and abs(s["p95_utilization"] - 0.46) < 1e-9, s
assert abs(s["cost_per_hour"] - s["cost"] / s["hours"]) < 1e-9, s
PYEOF
pass "energy: alice's measured kWh on /metrics and in rackpulsectl; close-out summary at release (cost = kWh x 0.20 EUR, peak/p95 46 %)"
