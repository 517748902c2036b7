#!/bin/bash
# Each Redfish fault, through the real simulator, the agent, the dev broker
# and the aggregator (what each one proves is in docs/failure-modes.md):
#  slow service -> deadline status; 503 -> device status; a hung
#  connection -> deadline, and the other devices go on; a wrong CA ->
#  certificate verification fails; malformed JSON in one resource ->
#  statuses on its readings only; a session that expires -> 401 -> one
#  login again, no scrape lost; a resource that disappears (the layout
#  changes) -> walked again; the TelemetryService stream -> fewer polls,
#  and polling again when it stops; SIGTERM -> the sessions are deleted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redfish_lib.sh"

start_broker
echo '{"slow": {"faults": {"slow_ms": 2500}}, "busy": {"faults": {"status_503": true}},
       "hang": {"faults": {"hang": true}}, "old": {"layout": "legacy"}, "sub": {"layout": "subsystems"}}' >"$WORK/rf-f.json"
RF_SIM_ARGS="--sse-interval 0.5"   # reports well within the two intervals a push stays fresh
start_redfishsim f cdu:ok1 cdu:slow cdu:busy cdu:bad cdu:hang cdu:wrongca cdu:basic tray:old tray:sub
(umask 077; mkdir "$WORK/other")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/other/key.pem" \
  -out "$WORK/other/ca.pem" 2>/dev/null
{
  echo "agent: {id: agent-rff, rack: rff, interval: 1s, state_dir: $WORK/state}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", linger: 5ms}"
  echo "redfish:"
  for d in ok1 slow busy hang; do rf_device f "$d" "timeout: 1s"; done
  rf_device f bad "timeout: 1s, sse: false"   # polled every interval
  echo "  - {name: wrongca, host: 127.0.0.1, port: $(rf_port f wrongca), user: admin, password_file: $WORK/rf-password, ca_file: $WORK/other/ca.pem, timeout: 1s}"
  rf_device f basic "timeout: 1s, auth: basic"
  rf_device f old "timeout: 1s"
  rf_device f sub "timeout: 1s"
  (umask 077; echo "not-the-password" >"$WORK/wrong-password")
  echo "  - {name: wrongpw, host: 127.0.0.1, port: $(rf_port f basic), user: admin, password_file: $WORK/wrong-password, ca_file: $WORK/tls-f/cert.pem, timeout: 1s}"
  # The explicit opt-out for lab BMCs: the same service, not verified.
  echo "  - {name: lab, host: 127.0.0.1, port: $(rf_port f wrongca), user: admin, password_file: $WORK/rf-password, insecure: true, timeout: 1s}"
} >"$WORK/agent.yaml"
# 0. Configuration errors name the file, the line and the key.
cp "$WORK/rf-password" "$WORK/open-password" && chmod 644 "$WORK/open-password"
printf 'agent: {id: x, rack: x, state_dir: %s}\nredfish:\n  - {name: a, host: h, user: u, password_env: RF_UNSET_VAR_X}\n  - {name: b, host: h, user: u,\n     password_file: %s}\n  - {name: c, host: h, user: u, password_file: %s, auth: digest}\n' \
  "$WORK/state-x" "$WORK/open-password" "$WORK/rf-password" >"$WORK/bad.yaml"
check() { "$RP_BIN/agent/rackpulse-agent" -c "$WORK/bad.yaml" --check-config 2>&1; }
out=$(check || true)
echo "$out" | grep -q "bad.yaml:3: redfish\[0\]: password_env: the environment variable RF_UNSET_VAR_X is not set" \
  || fail "unset password_env: $out"
sed -i '3d' "$WORK/bad.yaml"
out=$(check || true)
echo "$out" | grep -q "bad.yaml:4: redfish\[0\]: password_file: .*0644" || fail "0644 password file: $out"
sed -i '3,4d' "$WORK/bad.yaml"
out=$(check || true)
echo "$out" | grep -q "bad.yaml:3: redfish\[0\]: auth: expected session or basic, got 'digest'" || fail "auth: $out"
pass "config errors name file:line and key (unset password_env, a 0644 password file, an unknown auth)"

AGG_POLICY="policy: {version: t-1, max_staleness: 5s, supply_temp_max: 40}"
start_aggregator
start_agent "$WORK/agent.yaml"

rack() { curl -sf "$URL/v1/racks/rff" >"$WORK/rack.json"; }
# rack_py EXPR: a Python condition on the rack state r (r["devices"], r["series"]).
rack_py() {
  rack || return 1
  $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); d=r.get("devices",{}); s=r.get("series",{}); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$WORK/rack.json" "$1"
}
dev_err() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["devices"][sys.argv[2]]["last_error"])' "$WORK/rack.json" "$1"; }

wait_for 40 rack_py 'd.get("ok1",{}).get("up") and d.get("bad",{}).get("up")' \
  || fail "ok1 and bad never up: $(cat "$WORK/rack.json" 2>/dev/null)"

# Older and newer tray firmware: Thermal/Power only, or ThermalSubsystem
# and PowerSubsystem without Sensors; the same metric names either way.
wait_for 30 rack_py '"server.power@old" in s and "server.power@sub" in s' \
  || fail "old/sub trays: $(cat "$WORK/rack.json")"
rack_py 's["server.power@old"]["value"] == 5200 and s["gpu.temp{gpu=2}@old"]["value"] == 60.0 and s["psu.input_power{psu=1}@old"]["value"] == 2590 and s["server.inlet_temp@old"]["value"] == 24.0' \
  || fail "the older Thermal/Power were not read: $(cat "$WORK/rack.json")"
rack_py 's["server.power@sub"]["value"] == 5200 and s["gpu.temp{gpu=3}@sub"]["value"] == 63.5 and s["psu.input_power{psu=0}@sub"]["value"] == 2610 and s["server.exhaust_temp@sub"]["value"] == 38.5' \
  || fail "ThermalSubsystem/PowerSubsystem were not read: $(cat "$WORK/rack.json")"
pass "trays with only Thermal/Power, or with ThermalSubsystem/PowerSubsystem and no Sensors, give the same metrics"

# 1. Slow and hung services: down by the deadline, while the others go on.
wait_for 30 rack_py '"slow" in d and not d["slow"]["up"] and "hang" in d and not d["hang"]["up"]' \
  || fail "slow/hang not down: $(cat "$WORK/rack.json")"
dev_err slow | grep -q "deadline of 1000 ms passed" || fail "slow: $(dev_err slow)"
dev_err hang | grep -q "deadline of 1000 ms passed" || fail "hang: $(dev_err hang)"
ts0=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["series"]["cdu.supply_temp@ok1"]["ts_ms"])' "$WORK/rack.json")
wait_for 20 rack_py "s['cdu.supply_temp@ok1']['ts_ms'] > $ts0 + 2000 and d['ok1']['up']" \
  || fail "ok1 stopped while others hung: $(cat "$WORK/rack.json")"
pass "slow and hung services are down with 'deadline of 1000 ms passed'; the others keep their pace"

# 2. 503 and a wrong CA: down, saying why.
wait_for 20 rack_py '"busy" in d and not d["busy"]["up"] and "wrongca" in d and not d["wrongca"]["up"]' \
  || fail "busy/wrongca not down: $(cat "$WORK/rack.json")"
dev_err busy | grep -q "HTTP 503" || fail "busy: $(dev_err busy)"
dev_err wrongca | grep -qi "certificate" || fail "wrongca: $(dev_err wrongca)"
wait_for 20 sh -c "grep -q 'wrongca: down' '$WORK/agent.log'" || fail "wrongca never logged down"
wait_for 20 rack_py '"wrongpw" in d and not d["wrongpw"]["up"] and d["basic"]["up"]' \
  || fail "wrongpw/basic: $(cat "$WORK/rack.json")"
dev_err wrongpw | grep -q "login to SessionService refused: HTTP 401" || fail "wrongpw: $(dev_err wrongpw)"
[ "$(rf_stats f basic | $PY -c 'import json,sys; print(json.load(sys.stdin)["logins"])')" = 0 ] \
  || fail "auth: basic made a session"
wait_for 20 rack_py '"lab" in d and d["lab"]["up"]' || fail "lab (insecure: true) not up: $(cat "$WORK/rack.json")"
grep -q "lab: https://127.0.0.1:$(rf_port f wrongca): insecure: true: the service's certificate is NOT verified" "$WORK/agent.log" \
  || fail "insecure: true was not logged"
pass "503, an unverified certificate and a wrong password are device statuses; auth: basic reads without a session; insecure: true reads the refused service and says so in the log"

# 3. Malformed JSON in one resource: statuses on its readings, the device up.
rf_set f '{"slow": {"faults": {"slow_ms": 2500}}, "busy": {"faults": {"status_503": true}},
           "hang": {"faults": {"hang": true}}, "bad": {"faults": {"malformed": "SecondaryCoolantConnectors"}}}'
wait_for 20 rack_py 's["cdu.supply_temp@bad"]["status"] == "error" and d["bad"]["up"]' \
  || fail "malformed connector: $(cat "$WORK/rack.json")"
rack_py '"malformed JSON" in s["cdu.supply_temp@bad"].get("detail","") and "SecondaryCoolantConnectors" in s["cdu.supply_temp@bad"]["detail"]' \
  || fail "the status does not name the URI and the cause: $(cat "$WORK/rack.json")"
rack_py 's["cdu.level@bad"]["status"] == "ok"' || fail "the other resources of bad suffered"
pass "malformed JSON in one resource: its readings are statuses naming the URI; the device stays up"

# 4. The session expires: 401, one login again, no scrape lost.
logins() { rf_stats f ok1 | $PY -c 'import json,sys; s=json.load(sys.stdin); print(s["logins"], s["unauthorized"])'; }
read -r l0 u0 <<<"$(logins)"
[ "$l0" -ge 1 ] || fail "ok1 has no session"
rf_set f '{"ok1": {"faults": {"expire_sessions": 1}}}'
wait_for 20 sh -c "[ \$(rf_stats() { curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats'; }; rf_stats | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"logins\"])') -gt $l0 ]" \
  || fail "no login again after the session expired: $(rf_stats f ok1)"
read -r l1 u1 <<<"$(logins)"
[ "$u1" -gt "$u0" ] || fail "the simulator never answered 401"
ts1=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["series"]["cdu.supply_temp@ok1"]["ts_ms"])' "$WORK/rack.json")
wait_for 20 rack_py "s['cdu.supply_temp@ok1']['ts_ms'] > $ts1 + 1500 and s['cdu.supply_temp@ok1']['status'] == 'ok'" \
  || fail "ok1 did not go on after the new login"
if grep -q "ok1: down" "$WORK/agent.log"; then fail "ok1 went down on an expired session: $(grep 'ok1: down' "$WORK/agent.log")"; fi
pass "an expired session: 401 -> login again ($l0 -> $l1 logins), ok1 never down"

# 5. SSE: while the stream runs, the CDU's pushed resources are not polled
#    each interval; when it stops, polling takes over.
CONN=/redfish/v1/ThermalEquipment/CDUs/1/SecondaryCoolantConnectors
gets() { rf_stats f ok1 | $PY -c 'import json,sys; g=json.load(sys.stdin)["gets"]; print(g.get("/redfish/v1/",0), g.get(sys.argv[1],0))' "$1"; }
wait_for 20 sh -c "curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats' | grep -q '\"sse_clients\": *[1-9]'" \
  || fail "the agent never opened the SSE stream"
read -r r0 c0 <<<"$(gets "$CONN")"
wait_for 30 sh -c "[ \$(curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats' | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"gets\"][\"/redfish/v1/\"])') -ge $((r0 + 6)) ]" \
  || fail "the agent stopped scraping ok1"
read -r r1 c1 <<<"$(gets "$CONN")"
[ $((c1 - c0)) -le $(((r1 - r0) / 2)) ] \
  || fail "with SSE the connector was polled $((c1 - c0)) times in $((r1 - r0)) scrapes"
rf_set f '{"ok1": {"faults": {"expire_sessions": 1, "sse_stop": true}}}'
wait_for 30 sh -c "[ \$(curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats' | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"gets\"].get(sys.argv[1],0))' '$CONN') -ge $((c1 + 4)) ]" \
  || fail "polling did not take over when the stream stopped"
grep -q "ok1: .*the SSE stream stopped" "$WORK/agent.log" || fail "the stream's end was not logged"
pass "SSE: $((c1 - c0)) connector polls in $((r1 - r0)) scrapes while pushed; polling again when the stream stopped"

# 6. A resource disappears (the CDU moves to CDUs/A): the layout is walked
#    again and the readings come from the new place.
rf_set f '{"ok1": {"layout": "moved", "faults": {"expire_sessions": 1, "sse_stop": true}}}'
wait_for 30 sh -c "curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats' | grep -q 'CDUs/A/SecondaryCoolantConnectors'" \
  || fail "the agent did not find the moved CDU: $(rf_stats f ok1)"
ts2=$($PY -c 'import time; print(int(time.time()*1000))')
wait_for 20 rack_py "s['cdu.supply_temp@ok1']['ts_ms'] > $ts2 and s['cdu.supply_temp@ok1']['status'] == 'ok' and d['ok1']['up']" \
  || fail "ok1's readings did not come back after the move: $(cat "$WORK/rack.json")"
[ "$(grep -c "ok1: .*resources to read" "$WORK/agent.log")" -ge 2 ] || fail "no second walk logged"
pass "a CDU that moved (404) is walked again; its readings come from CDUs/A"
kill -0 "$AGENT_PID" || fail "the agent died"

# 7. At shutdown the agent deletes its sessions (a BMC has few slots).
kill -TERM "$AGENT_PID"
wait_for 20 sh -c "curl -sf --cacert '$WORK/tls-f/cert.pem' 'https://127.0.0.1:$(rf_port f ok1)/_sim/stats' | grep -q '\"logouts\": *[1-9]'" \
  || fail "the agent did not delete its session on ok1 at shutdown: $(rf_stats f ok1)"
grep -q "SIGTERM" "$WORK/agent.log" || fail "the agent did not stop on SIGTERM"
pass "SIGTERM: the agent deleted its session (DELETE of its Location)"
