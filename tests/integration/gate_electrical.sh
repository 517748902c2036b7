#!/bin/bash
# The electrical topology through the real peers: one rack fed by two
# Raritan PDUs (two snmpsim processes serving the fixture: inlet 3456 W,
# phases 5.012/5.123/4.987 A, branch breakers 5.2/4.8/0.0 A each), one
# agent, the dev broker and the aggregator. The policy names feed A (pdu-a)
# and feed B (pdu-b), N+N, 8 kW a feed, 16 A phases, 14 A branches; new
# load lands on phases and branches as the rack draws now:
#   feed_power      8 - (3.456 + 3.456)                         = 1.088 kW
#   phase_current   (16 - 10.246 A) x 230 V / (10.246 / 30.244) = 3.906 kW
#   branch_current  (14 - 10.4 A) x 230 V / (10.4 / 20)         = 1.592 kW
# A 1 kW reservation is admitted, a further 0.2 kW refused naming the feed
# (0.088 kW left on one feed); with feed_kw 8 and no redundancy the same
# rack would have 9.088 kW: the N+N rule is what refuses. The same 0.2 kW
# asked with "wait": "30m" waits (202) and is admitted, with an event on
# rackpulse.events, once the 1 kW is released; 5 kW with "wait": "3s" is
# refused with an event when its wait ends. A policy reload puts the rack
# in a row, a pool and a cooling loop: a reservation is admitted and the
# next refused by the row's rating, and the loop's CDU capacity (0.5 kW
# above the heat it removes) allows 0.3 kW and refuses 1 kW; a pool of rel
# and a second rack places 10 kW best fit. Then pdu-b stops
# answering: once its readings are stale the gate denies, failing closed
# with the series and the PDU named.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snmp_lib.sh"

start_broker
start_pdu pdu-a raritan-px
start_pdu pdu-b raritan-px
secret raritan-px.community raritan-px
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 100.0}'
write_agent_config "$WORK/agent.yaml" rel "$CDU"
sed -i "1s|state_dir: [^}]*|&, profiles_dir: $RP_SRC/packaging/profiles|" "$WORK/agent.yaml"
{
  echo "snmp:"
  for p in pdu-a pdu-b; do
    port=PORT_${p//-/_}
    printf '  - {name: %s, host: 127.0.0.1, port: %s, community_file: %s, profile: raritan-px}\n' \
      "$p" "${!port}" "$WORK/raritan-px.community"
  done
  cat <<'YAML'
derived:
  - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,
     supply: cdu.supply_temp, flow: cdu.flow, coolant: water}
YAML
} >>"$WORK/agent.yaml"

cat >"$WORK/policy.yaml" <<'YAML'
version: electrical-1
defaults:
  max_staleness: 10s
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
racks:
  - {id: rel, breaker_kw: 20, derating: 1.0, feed_a: pdu-a, feed_b: pdu-b, feed_kw: 8,
     phase_amps: 16, branch_amps: 14, volts: 230}
YAML
echo "electrical-token-1" >"$WORK/token"
chmod 600 "$WORK/token"
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_aggregator
start_agent "$WORK/agent.yaml"
AUTH=(-H "Authorization: Bearer electrical-token-1")

gate() { curl -sf "$URL/v1/racks/rel/gate?kw=$1&owner=${2:-bob}&duration=1m"; }
both_feeds() { gate 0.1 | grep -q '"feeds":\[{"pdu":"pdu-a","kw":3.456},{"pdu":"pdu-b","kw":3.456}\]'; }
wait_for 60 both_feeds || fail "no feed readings at the gate: $(gate 0.1 | head -c 1500)"

gate 0.5 >"$WORK/g.json"
$PY - "$WORK/g.json" <<'PYEOF' || fail "topology terms: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
near = lambda a, b: abs(a - b) < 1e-6
f, p, b = c["feed_power"], c["phase_current"], c["branch_current"]
assert f["redundant"] is True and near(f["observed"], 8 - 2 * 3.456), f
assert [x["pdu"] for x in f["feeds"]] == ["pdu-a", "pdu-b"], f
assert p["worst"] == "2" and near(p["worst_a"], 2 * 5.123), p
assert near(p["observed"], (16 - 10.246) * 230 / (10.246 / 30.244) / 1000), p
assert b["worst"] == "1" and near(b["worst_a"], 10.4), b
assert near(b["observed"], (14 - 10.4) * 230 / (10.4 / 20) / 1000), b
assert all(x["pass"] for x in (f, p, b)), d
assert d["decision"] == "allow", d
PYEOF
pass "feed (N+N) 1.088 kW, phase 2 at 10.246 A of 16 A, branch 1 at 10.4 A of 14 A, each term in the decision"

reserve() { # KW -> HTTP code, answer in $WORK/r.json
  curl -s -o "$WORK/r.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
    -d "{\"rack\":\"rel\",\"kw\":$1,\"owner\":\"alice\",\"end\":$(($(date +%s%3N) + 3600000))}"
}
code=$(reserve 1.0)
[ "$code" = 201 ] || fail "1 kW within 1.088 kW refused: HTTP $code $(cat "$WORK/r.json")"
cp "$WORK/r.json" "$WORK/first.json"
code=$(reserve 0.2)
[ "$code" = 409 ] || fail "0.2 kW over the feed admitted: HTTP $code $(cat "$WORK/r.json")"
gate 0.2 >"$WORK/g.json"
$PY - "$WORK/g.json" <<'PYEOF' || fail "the reservation is not pending on the feed: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
assert abs(c["feed_power"]["pending_kw"] - 1.0) < 1e-6, c["feed_power"]
assert abs(c["feed_power"]["observed"] - 0.088) < 1e-6, c["feed_power"]
assert c["feed_power"]["pass"] is False and d["decision"] == "deny", d
PYEOF
pass "1 kW admitted, 0.2 kW refused: one feed must carry the rack (0.088 kW left)"
FIRST=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/first.json")

# --- the wait queue ----------------------------------------------------------
queue() { # KW WAIT -> HTTP code, answer in $WORK/q.json
  curl -s -o "$WORK/q.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
    -d "{\"rack\":\"rel\",\"kw\":$1,\"owner\":\"carol\",\"wait\":\"$2\",\"end\":$(($(date +%s%3N) + 3600000))}"
}
code=$(queue 0.2 30m)
[ "$code" = 202 ] || fail "0.2 kW with wait 30m: HTTP $code, expected 202 waiting: $(cat "$WORK/q.json")"
WAITER=$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["state"]=="waiting", r; print(r["id"])' "$WORK/q.json")
code=$(queue 5 3s)
[ "$code" = 202 ] || fail "5 kW with wait 3s: HTTP $code: $(cat "$WORK/q.json")"
HOPELESS=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/q.json")
curl -sf "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$FIRST" >/dev/null || fail "release of $FIRST"
admitted() { rp_events | grep 'flag: "admitted"' | grep -q "reservation_id: \"$WAITER\""; }
wait_for 60 admitted || fail "no admitted event for $WAITER: $(rp_events)"
curl -sf "$URL/v1/reservations?owner=carol" >"$WORK/list.json"
$PY - "$WORK/list.json" "$WAITER" "$HOPELESS" <<'PYEOF' || fail "queue states: $(cat "$WORK/list.json")"
import json, sys
rs = {r["id"]: r for r in json.load(open(sys.argv[1]))["reservations"]}
w = rs[sys.argv[2]]
assert w["state"] == "active" and w["rack"] == "rel" and w["waited_ms"] > 0, w
PYEOF
refused() { rp_events | grep 'flag: "refused"' | grep -q "reservation_id: \"$HOPELESS\""; }
wait_for 60 refused || fail "no refused event for $HOPELESS: $(rp_events)"
curl -sf "$URL/v1/reservations?owner=carol" | grep -q '"state":"refused"' || fail "5 kW not refused"
pass "queue: 0.2 kW waited and was admitted (event) once 1 kW was released; 5 kW refused (event) when its 3 s wait ended"

# --- row, pool and loop totals -------------------------------------------------
# The same rack in row r1 (10 kW x 0.8), pool p1 (20 kW x 0.5) and loop l1
# (the CDU's capacity), its feeds without ratings: a policy reload (SIGHUP).
curl -sf "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$WAITER" >/dev/null || fail "release of $WAITER"
cp "$WORK/policy.yaml" "$WORK/policy-feeds.yaml"
in_force() { # VERSION
  kill -HUP "$AGG_PID"
  wait_for 30 eval "gate 0.1 | grep -q '\"policy_version\":\"$1\"'" \
    || fail "policy $1 not in force: $(gate 0.1 | head -c 600)"
}
topology_policy() { # VERSION LOOP_CAPACITY_KW
  cat >"$WORK/policy.yaml" <<YAML
version: $1
defaults:
  max_staleness: 10s
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
rows: {r1: {limit_kw: 10, derating: 0.8}}
pools: {p1: {limit_kw: 20, derating: 0.5}}
loops: {l1: {cdu_capacity_kw: $2}}
racks:
  - {id: rel, row: r1, pool: p1, loop: l1, breaker_kw: 20, derating: 1.0, feed_a: pdu-a,
     feed_b: pdu-b}
YAML
  in_force "$1"
}
topology_policy electrical-2 1000
gate 0.5 >"$WORK/g.json"
HEAT=$($PY - "$WORK/g.json" <<'PYEOF') || fail "row, pool and loop terms: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
near = lambda a, b: abs(a - b) < 1e-6
r, p, l = c["row_power"], c["pool_power"], c["loop_thermal"]
assert r["row"] == "r1" and near(r["group_draw_kw"], 6.912) and near(r["observed"], 8 - 6.912), r
assert p["pool"] == "p1" and near(p["observed"], 10 - 6.912), p
assert l["loop"] == "l1" and l["heat_removed_kw"] > 1, l
assert "feed_power" not in c and d["decision"] == "allow", d
print(l["heat_removed_kw"])
PYEOF
code=$(reserve 1.0)
[ "$code" = 201 ] || fail "1 kW within the row's 1.088 kW refused: HTTP $code $(cat "$WORK/r.json")"
ROWRES=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/r.json")
code=$(reserve 0.2)
[ "$code" = 409 ] || fail "0.2 kW over the row admitted: HTTP $code $(cat "$WORK/r.json")"
gate 0.2 >"$WORK/g.json"
$PY - "$WORK/g.json" <<'PYEOF' || fail "the row does not count the reservation: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
r = c["row_power"]
assert abs(r["pending_kw"] - 1.0) < 1e-6 and abs(r["observed"] - 0.088) < 1e-6, r
assert r["pass"] is False and c["pool_power"]["pass"] is True and d["decision"] == "deny", d
PYEOF
curl -sf "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$ROWRES" >/dev/null || fail "release of $ROWRES"
pass "row r1: 1 kW admitted, 0.2 kW refused (0.088 kW left of 8 kW); pool p1 counted beside it"

# The loop's CDU with 0.5 kW of capacity left over the heat it removes now.
topology_policy electrical-3 "$($PY -c "print(round($HEAT + 0.5, 6))")"
gate 0.3 >"$WORK/g.json"
$PY - "$WORK/g.json" <<'PYEOF' || fail "loop l1 with 0.5 kW left: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
l = {x["name"]: x for x in d["checks"]}["loop_thermal"]
assert abs(l["observed"] - 0.5) < 0.05 and l["pass"] is True and d["decision"] == "allow", d
PYEOF
gate 1.0 >"$WORK/g.json" || true
$PY - "$WORK/g.json" <<'PYEOF' || fail "1 kW over loop l1 not denied: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
assert c["loop_thermal"]["pass"] is False and c["row_power"]["pass"] is True, c
assert d["decision"] == "deny", d
PYEOF
code=$(reserve 1.0)
[ "$code" = 409 ] || fail "1 kW over the loop's CDU admitted: HTTP $code $(cat "$WORK/r.json")"
pass "loop l1: 0.3 kW allowed, 1 kW denied and refused by loop_thermal (0.5 kW of CDU capacity left)"
# Best fit in a pool: rack rel2 (a second agent reading pdu-a only: 3.456
# kW of 20) beside rel (6.912 kW of 20). 10 kW for the pool lands on rel,
# where it strands the least (3.088 kW left against 6.544 on rel2); the
# previous model took the rack with the most headroom, rel2.
{
  echo "agent: {id: agent-rel2, rack: rel2, interval: 1s, state_dir: $WORK/state-rel2,"
  echo "        profiles_dir: $RP_SRC/packaging/profiles}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", linger: 5ms}"
  echo "snmp:"
  printf '  - {name: pdu-a, host: 127.0.0.1, port: %s, community_file: %s, profile: raritan-px}\n' \
    "$PORT_pdu_a" "$WORK/raritan-px.community"
} >"$WORK/agent-rel2.yaml"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-rel2.yaml" >"$WORK/agent-rel2.out" \
  2>"$WORK/agent-rel2.log" &
PIDS+=($!)
cat >"$WORK/policy.yaml" <<'YAML'
version: electrical-4
defaults:
  max_staleness: 10s
  power: {enabled: true, series: pdu.power, stat: latest, across: sum}
racks:
  - {id: rel, pool: p2, breaker_kw: 20, derating: 1.0, feed_a: pdu-a, feed_b: pdu-b}
  - {id: rel2, pool: p2, breaker_kw: 20, derating: 1.0}
YAML
in_force electrical-4
rel2_read() { curl -sf "$URL/v1/racks/rel2/gate?kw=0.1" | grep -q '"draw_kw":3.456'; }
wait_for 60 rel2_read || fail "rel2 has no power reading: $(curl -s "$URL/v1/racks/rel2/gate?kw=0.1" | head -c 800)"
code=$(curl -s -o "$WORK/p.json" -w '%{http_code}' "${AUTH[@]}" -X POST "$URL/v1/reservations" \
  -d "{\"pool\":\"p2\",\"kw\":10,\"owner\":\"dave\",\"end\":$(($(date +%s%3N) + 3600000))}")
[ "$code" = 201 ] || fail "10 kW for pool p2 refused: HTTP $code $(cat "$WORK/p.json")"
$PY - "$WORK/p.json" <<'PYEOF' || fail "pool p2: not best fit: $(cat "$WORK/p.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rack"] == "rel" and r["pool"] == "p2", r
PYEOF
POOLRES=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/p.json")
curl -sf "${AUTH[@]}" -X DELETE "$URL/v1/reservations/$POOLRES" >/dev/null || fail "release of $POOLRES"
pass "pool p2: 10 kW placed best fit on rel (3.088 kW left), not on rel2 with the most headroom"

cp "$WORK/policy-feeds.yaml" "$WORK/policy.yaml"
in_force electrical-1

kill "$PID_pdu_b"
stale_b() { gate 0.1 | grep -q '@pdu-b: stale'; }
wait_for 60 stale_b || fail "pdu-b silent, gate still trusts it: $(gate 0.1 | head -c 1500)"
gate 0.1 >"$WORK/g.json"
$PY - "$WORK/g.json" <<'PYEOF' || fail "pdu-b silent: $(cat "$WORK/g.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in d["checks"]}
assert d["decision"] == "deny", d
for name in ("feed_power", "phase_current", "branch_current"):
    assert c[name]["pass"] is False and c[name]["observed"] is None, c[name]
    assert "pdu-b" in c[name]["reason"] and "fails closed" in c[name]["reason"], c[name]
PYEOF
pass "pdu-b silent: feed, phase and branch checks fail closed naming pdu-b"
