#!/bin/bash
# A change the ledger topic does not acknowledge is not made: with every
# partition of kafka.ledger_topic leaderless at the dev broker (its Produce
# requests fail, the frames and members topics go on), a flag set or
# cleared, a reservation created, extended or released, a device retired,
# an override granted is answered 503
# naming the topic and partition and saying nothing was changed; the
# member's ledger is as it was, the audit log holds none of them, and none
# reaches the topic once it has a leader again (then the same changes are
# answered 201/200 and are on the topic). Changes that follow an
# unacknowledged one are refused without waiting for the timeout again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

RACKS=4
site_setup ack 1h
CLUSTER_KEYS="ledger_ack_timeout: 3s"
start_control_broker
start_member a site
wait_for 60 settled 1 a || fail "a did not take the partitions: $(cluster_json a)"
loadgen --racks $RACKS --frames 2 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 frames_applied_are a $((RACKS * 2)) || fail "frames not applied: $(agent_totals a)"

exp=$(($(date +%s) * 1000 + 3600000))
# call METHOD PATH [BODY]: "HTTP status" into $code, the body into $WORK/ans.json.
call() {
  code=$(curl -s -o "$WORK/ans.json" -w '%{http_code}' "${AUTH[@]}" -X "$1" "${AGG_URL[a]}$2" \
    ${3:+-d "$3"})
}
flag_body() { echo "{\"rack\": \"$1\", \"flag\": \"maintenance\", \"owner\": \"ops\", \"expires_ms\": $exp}"; }
call POST /v1/flags "$(flag_body r0001)"
[ "$code" = 201 ] || fail "flag on r0001: HTTP $code $(cat "$WORK/ans.json")"
call POST /v1/reservations "{\"rack\": \"r0001\", \"kw\": 2.5, \"owner\": \"job-1\", \"end\": $exp}"
[ "$code" = 201 ] || fail "reservation on r0001: HTTP $code $(cat "$WORK/ans.json")"
RES=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/ans.json")
END=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["end_ms"])' "$WORK/ans.json")
pass "with the ledger topic up, a flag and a reservation are written (201)"

broker_control "partition_leader rackpulse.ledger 0 -1" "partition_leader rackpulse.ledger 1 -1" \
  "partition_leader rackpulse.ledger 2 -1" "partition_leader rackpulse.ledger 3 -1"
# refused WHAT: the answer was 503 naming the ledger topic, a partition and
# that nothing was changed.
refused() {
  [ "$code" = 503 ] || fail "$1 while the ledger topic has no leader: HTTP $code $(cat "$WORK/ans.json")"
  cat "$WORK/ans.json" >>"$WORK/refusals.json"
  grep -q 'ledger topic rackpulse.ledger partition [0-3] .*nothing was changed' "$WORK/ans.json" \
    || fail "$1: the 503 does not name the topic and partition: $(cat "$WORK/ans.json")"
}
call POST /v1/flags "$(flag_body r0002)"
refused "flag set on r0002"
call DELETE /v1/flags/r0001/maintenance
refused "flag clear on r0001"
call POST /v1/reservations "{\"rack\": \"r0002\", \"kw\": 3, \"owner\": \"job-2\", \"end\": $exp}"
refused "reservation on r0002"
call POST "/v1/reservations/$RES/extend" "{\"end\": $((exp + 600000))}"
refused "extend of $RES"
call DELETE "/v1/reservations/$RES"
refused "release of $RES"
call POST /v1/racks/r0002/devices/h1.bmc0/retire '{"owner": "ops"}'
refused "retirement of h1.bmc0 of r0002"
call POST /v1/overrides '{"rack": "r0002", "reason": "test", "for": "1h"}'
refused "override of r0002"
pass "every change the ledger topic did not acknowledge was answered 503 naming it"
# Once a partition did not acknowledge a change, the next ones are refused
# at once for ledger_ack_timeout instead of each waiting for it.
grep -q "did not acknowledge a change in the last 3000 ms; tried again in" "$WORK/refusals.json" \
  || fail "every refusal waited for the timeout: $(cat "$WORK/refusals.json")"
pass "after one unacknowledged change the partition refuses the next ones without waiting"

curl -sf "${AGG_URL[a]}/v1/flags" >"$WORK/flags.json" || fail "GET /v1/flags"
curl -sf "${AGG_URL[a]}/v1/reservations" >"$WORK/res.json" || fail "GET /v1/reservations"
curl -sf "${AGG_URL[a]}/v1/overrides" | grep -q '"overrides":\[\]' || fail "an override was granted: $(curl -s "${AGG_URL[a]}/v1/overrides")"
$PY - "$WORK/flags.json" "$WORK/res.json" "$RES" "$END" <<'PYEOF' || fail "the ledger changed"
import json, sys
flags = sorted((f["rack"], f["flag"]) for f in json.load(open(sys.argv[1]))["flags"])
assert flags == [("r0001", "maintenance")], flags
res = json.load(open(sys.argv[2]))["reservations"]
assert [(r["id"], r["state"], r["end_ms"]) for r in res] == [(sys.argv[3], "active", int(sys.argv[4]))], res
PYEOF
pass "the member's flags, reservations and overrides are as they were"

broker_control "partition_leader rackpulse.ledger 0 1" "partition_leader rackpulse.ledger 1 1" \
  "partition_leader rackpulse.ledger 2 1" "partition_leader rackpulse.ledger 3 1"
flag_written() { call POST /v1/flags "$(flag_body r0003)" && [ "$code" = 201 ]; }
wait_for 60 flag_written || fail "flags are not written once the topic has a leader again: HTTP $code $(cat "$WORK/ans.json")"
call DELETE "/v1/reservations/$RES"
[ "$code" = 200 ] || fail "release of $RES after the recovery: HTTP $code $(cat "$WORK/ans.json")"
# The audit log and the topic: the refused changes are in neither.
audit_has_release() {
  curl -sf "${AGG_URL[a]}/v1/audit?limit=1000" >"$WORK/audit.json" && grep -q '"reservation_release"' "$WORK/audit.json"
}
wait_for 30 audit_has_release || fail "the release is not in the audit log"
$PY - "$WORK/audit.json" <<'PYEOF' || fail "the audit log records a refused change"
import json, sys
a = json.load(open(sys.argv[1]))
acts = sorted((e["action"], e["rack"]) for e in a["decisions"] if e.get("action") not in (None, "placement"))
want = [("flag_set", "r0001"), ("flag_set", "r0003"), ("reservation_create", "r0001"),
        ("reservation_release", "r0001")]  # no device_retire
assert acts == want, acts
PYEOF
kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -o beginning -e -q -f '%k %s\n' 2>/dev/null >"$WORK/topic.txt"
grep -q '^r0003/flag/maintenance ' "$WORK/topic.txt" || fail "the flag set after the recovery is not on the topic: $(cat "$WORK/topic.txt")"
! grep -q '^r0002/' "$WORK/topic.txt" || fail "a refused change reached the topic: $(grep '^r0002/' "$WORK/topic.txt")"
[ "$(grep -c "^r0001/reservation/$RES .*\"state\":\"released\"" "$WORK/topic.txt")" = 1 ] \
  || fail "the release is not on the topic once: $(cat "$WORK/topic.txt")"
grep "^r0001/reservation/$RES " "$WORK/topic.txt" | grep -q "\"end_ms\":$((exp + 600000))" \
  && fail "the refused extend reached the topic"
grep -q '^r0001/flag/maintenance $' "$WORK/topic.txt" && fail "the refused flag clear reached the topic"
pass "after the recovery changes are written again; no refused change is on the topic or in the audit log"

# A member that takes partitions while the ledger topic has no leader cannot
# claim them (aggregator/claim.h): it does not answer for their racks (503,
# never an answer from a ledger it could not rebuild) until the topic is
# back; then it claims, rebuilds and answers.
stop_agg a
broker_control "partition_leader rackpulse.ledger 0 -1" "partition_leader rackpulse.ledger 1 -1" \
  "partition_leader rackpulse.ledger 2 -1" "partition_leader rackpulse.ledger 3 -1"
start_member a site
claim_failed() { grep -q "ledger not rebuilt: the claim of partition [0-3] was not acknowledged by rackpulse.ledger" "$WORK/a.log"; }
wait_for 60 claim_failed || fail "no claim was refused: $(grep -E 'changelog|cluster' "$WORK/a.log" | tail -5)"
gate_code() { curl -s -o "$WORK/gate.json" -w '%{http_code}' "${AGG_URL[a]}/v1/racks/r0001/gate?kw=0"; }
[ "$(gate_code)" = 503 ] || fail "r0001 answered while its partition is not claimed: $(gate_code) $(cat "$WORK/gate.json")"
pass "partitions that cannot be claimed are not answered (503)"
broker_control "partition_leader rackpulse.ledger 0 1" "partition_leader rackpulse.ledger 1 1" \
  "partition_leader rackpulse.ledger 2 1" "partition_leader rackpulse.ledger 3 1"
answered() { [ "$(gate_code)" = 200 ]; }
wait_for 60 answered || fail "r0001 is not answered once the ledger topic is back: $(cat "$WORK/gate.json")"
wait_for 30 settled 1 a || fail "a does not own every partition once the topic is back: $(cluster_json a)"
pass "once the ledger topic is back the member claims its partitions and answers"
stop_agg a
