#!/bin/bash
# The Redfish simulator (tools/redfishsim) speaks Redfish as real services
# do: Debian's third-party clients redfishtool and python3-sushy read it
# over verified TLS with sessions (login, reads, logout), and it answers
# $expand, $select, ETags and 401 as the standard says.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redfish_lib.sh"

start_redfishsim s rack:rack1
PORT=$(rf_port s rack1)
CA=$WORK/tls-s/cert.pem
# Both clients honour the environment's CA bundle over their own options.
export REQUESTS_CA_BUNDLE=$CA
unset CURL_CA_BUNDLE

# 1. redfishtool: a session, the chassis collection, a CDU read raw.
rt() { redfishtool -r "127.0.0.1:$PORT" -u admin -p "$RF_PASSWORD" -S Always -A Session "$@"; }
rt Chassis list >"$WORK/rt-chassis.json" 2>"$WORK/rt.log" || fail "redfishtool Chassis list: $(cat "$WORK/rt.log")"
grep -q '"/redfish/v1/Chassis/Tray1"' "$WORK/rt-chassis.json" || fail "no tray: $(cat "$WORK/rt-chassis.json")"
grep -q '"/redfish/v1/Chassis/PowerShelf1"' "$WORK/rt-chassis.json" || fail "no power shelf"
rt raw GET /redfish/v1/ThermalEquipment/CDUs/1/SecondaryCoolantConnectors/1 >"$WORK/rt-conn.json" 2>>"$WORK/rt.log" \
  || fail "redfishtool raw GET: $(cat "$WORK/rt.log")"
$PY - "$WORK/rt-conn.json" <<'PYEOF' || fail "coolant connector: $(cat "$WORK/rt-conn.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["@odata.type"].startswith("#CoolantConnector."), c
assert c["SupplyTemperatureCelsius"]["Reading"] == 30.0 and c["FlowLitersPerMinute"]["Reading"] == 120.0, c
PYEOF
pass "redfishtool reads the chassis and the CDU's coolant connector over a session"

# 2. sushy: session auth, the service root, Chassis, the older Thermal and
#    Power resources, SessionService; its session is deleted at the end.
$PY - "$PORT" "$CA" "$RF_PASSWORD" <<'PYEOF' >"$WORK/sushy.out" 2>&1 || fail "sushy: $(cat "$WORK/sushy.out")"
import sys, warnings
warnings.simplefilter("ignore")
import sushy
from sushy import auth
port, ca, pw = sys.argv[1:4]
a = auth.SessionAuth(username="admin", password=pw)
s = sushy.Sushy("https://127.0.0.1:%s/redfish/v1" % port, verify=ca, auth=a)
assert s.redfish_version == "1.18.0", s.redfish_version
members = {c.identity: c for c in s.get_chassis_collection().get_members()}
assert set(members) == {"Tray1", "PowerShelf1"}, members
tray = members["Tray1"]
assert str(tray.chassis_type).endswith("RACK_MOUNT"), tray.chassis_type
temps = {t.name: t.reading_celsius for t in tray.thermal.temperatures}
assert temps["Inlet Temp"] == 24.0 and temps["GPU3 Temp"] == 63.5, temps
assert len(s.get_session_service().sessions.members_identities) >= 1
assert s.get_event_service().identity == "EventService"
a.close()
print("sushy ok")
PYEOF
grep -q "sushy ok" "$WORK/sushy.out" || fail "sushy: $(cat "$WORK/sushy.out")"
rf_stats s rack1 >"$WORK/stats.json"
$PY - "$WORK/stats.json" <<'PYEOF' || fail "sessions: $(cat "$WORK/stats.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["logins"] >= 2 and s["logouts"] >= 2, s   # redfishtool's and sushy's
PYEOF
pass "sushy reads Chassis, Thermal, SessionService and EventService; both clients log out"

# 3. The standard's behaviour the collector relies on: 401 without
#    credentials, ETag + If-None-Match -> 304, $expand of a collection,
#    $select, a wrong CA refused by a third-party TLS client.
U="https://127.0.0.1:$PORT/redfish/v1"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" "$U/Chassis")
[ "$code" = 401 ] || fail "no credentials: HTTP $code, expected 401"
etag=$(curl -sf -D - -o /dev/null --cacert "$CA" -u "admin:$RF_PASSWORD" "$U/Chassis" | tr -d '\r' | sed -n 's/^ETag: //p')
[ -n "$etag" ] || fail "no ETag"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" -u "admin:$RF_PASSWORD" -H "If-None-Match: $etag" "$U/Chassis")
[ "$code" = 304 ] || fail "If-None-Match: HTTP $code, expected 304"
curl -sf --cacert "$CA" -u "admin:$RF_PASSWORD" "$U/ThermalEquipment/CDUs/1/Pumps?\$expand=.(\$levels=1)" \
  | grep -q '"PumpSpeedPercent"' || fail "\$expand did not embed the pumps"
curl -sf --cacert "$CA" -u "admin:$RF_PASSWORD" "$U/Chassis/Tray1/EnvironmentMetrics?\$select=PowerWatts" \
  >"$WORK/sel.json"
grep -q PowerWatts "$WORK/sel.json" && ! grep -q TemperatureCelsius "$WORK/sel.json" \
  || fail "\$select: $(cat "$WORK/sel.json")"
(umask 077; mkdir "$WORK/other") && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 1 -subj /CN=other -keyout "$WORK/other/k.pem" -out "$WORK/other/c.pem" 2>/dev/null
if curl -s -o /dev/null --cacert "$WORK/other/c.pem" "$U/"; then fail "curl accepted a wrong CA"; fi
pass "401, ETag/304, \$expand, \$select, and TLS verification against the generated certificate"
