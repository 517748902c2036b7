#!/bin/bash
# The owner of a ledger partition goes on reading it after its rebuild and
# applies what other writers add (a zombie member, any producer): with one
# member owning every partition, records a third party (kcat, no writer
# header) puts on kafka.ledger_topic -- a reservation, a flag, one that
# puts the rack over its power headroom -- are listed by the member and
# counted by its gate, each with a log line naming topic, partition,
# offset, key and writer (and a warning for the over-admission); a
# malformed record is logged and skipped and the next one applied; a
# record of a rack on a partition it does not belong to is ignored; the
# member's own records (writer header = its member id) are not applied
# again (its state after two quick writes is the latest), and their values
# (and the listing) do not carry the upkeep's bookkeeping. When a second
# member joins, a stops reading the partitions it gave up and the new
# owner applies what is added to them; when it stops, a takes them back,
# rebuilds them and reads them on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

RACKS=4
site_setup tail 1h
start_control_broker
start_member a site
wait_for 60 settled 1 a || fail "a did not take the partitions: $(cluster_json a)"
loadgen --racks $RACKS --frames 2 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 frames_applied_are a $((RACKS * 2)) || fail "frames not applied: $(agent_totals a)"

now=$(($(date +%s) * 1000))
exp=$((now + 3600000))
# partition_of RACK: its partition (CRC-32, as the members use).
partition_of() {
  cluster_json a | $PY -c 'import json, sys, zlib
print(zlib.crc32(sys.argv[1].encode()) % json.load(sys.stdin)["partition_count"])' "$1"
}
P=$(partition_of r0001)
OTHER=""
for r in r0002 r0003 r0004; do [ "$(partition_of $r)" != "$P" ] && OTHER=$r && break; done
# put KEY VALUE [KCAT ARGS]: one record on the ledger topic's partition $P.
put() {
  printf '%s|%s\n' "$1" "$2" | kcat -P -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -K '|' "${@:3}" \
    || fail "kcat could not produce $1"
}
res_json() { # ID RACK KW OWNER END
  echo "{\"id\":\"$1\",\"rack\":\"$2\",\"kw\":$3,\"start_ms\":$now,\"end_ms\":$5,\"class\":\"silver\",\"preemptible\":false,\"owner\":\"$4\",\"hosts\":[],\"outlets\":[],\"state\":\"active\",\"created_ms\":$now}"
}
flag_json() { echo "{\"rack\":\"$1\",\"flag\":\"$2\",\"owner\":\"ops\",\"reason\":\"\",\"set_ms\":$now,\"expires_ms\":$exp,\"source\":\"api\"}"; }
listed() { # PATH PYTHON-CONDITION-ON-d
  curl -sf "${AGG_URL[a]}$1" | $PY -c "import json, sys; d = json.load(sys.stdin); sys.exit(0 if ($2) else 1)"
}
has_res() { listed /v1/reservations "any(r['id'] == '$1' $2 for r in d['reservations'])"; }
has_flag() { listed /v1/flags "any(f['rack'] == '$1' and f['flag'] == '$2' for f in d['flags'])"; }

# The member's own writes: a reservation extended twice at once.
curl -sf -o "$WORK/own.json" "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/reservations" \
  -d "{\"rack\": \"r0001\", \"kw\": 2, \"owner\": \"job-own\", \"end\": $exp}" || fail "own reservation refused"
OWN=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/own.json")
for d in 600000 1200000; do
  curl -sf -o /dev/null "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/reservations/$OWN/extend" -d "{\"end\": $((exp + d))}" \
    || fail "extend of $OWN refused"
done
# An older state of it with this member's writer header: not applied.
put "r0001/reservation/$OWN" "$(res_json "$OWN" r0001 2 job-own "$exp")" -H rackpulse-writer=a

# A third party's reservation and flag, no writer header.
put r0001/reservation/kcat-1 "$(res_json kcat-1 r0001 7.5 kcat-job "$exp")"
put r0001/flag/maintenance "$(flag_json r0001 maintenance)"
wait_for 15 has_res kcat-1 "and r['kw'] == 7.5" || fail "the kcat reservation is not listed: $(curl -s "${AGG_URL[a]}/v1/reservations")"
wait_for 15 has_flag r0001 maintenance || fail "the kcat flag is not listed: $(curl -s "${AGG_URL[a]}/v1/flags")"
grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: applied r0001/reservation/kcat-1 written by \(no writer header\)" "$WORK/a.log" \
  || fail "no log line names the applied reservation: $(grep changelog "$WORK/a.log" | tail -5)"
reserved() {
  curl -s "${AGG_URL[a]}/v1/racks/r0001/gate?kw=1" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print([c for c in d["checks"] if c["name"] == "power_headroom"][0]["reserved_kw"])'
}
[ "$(reserved)" = 9.5 ] || fail "the gate counts $(reserved) kW reserved on r0001, not 7.5 + 2"
pass "a reservation and a flag a third party wrote to the topic are applied, logged and counted by the gate"

has_res "$OWN" "and r['end_ms'] == $((exp + 1200000))" || fail "own reservation is not at its latest end: $(curl -s "${AGG_URL[a]}/v1/reservations")"
grep -q "applied r0001/reservation/$OWN" "$WORK/a.log" && fail "the member applied its own record again"
pass "the member's own records are not applied again (its latest write stands)"

# When the upkeep last sent a running reservation's energy to the topic is
# a's own bookkeeping: its records on the topic and its answers never carry it.
upkept() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -o beginning -e -q -f '%k %s\n' 2>/dev/null \
    | grep "^r0001/reservation/$OWN " >"$WORK/own_topic.txt"
  grep -q '"energy"' "$WORK/own_topic.txt"
}
wait_for 30 upkept || fail "the upkeep did not publish the energy of $OWN: $(tail -1 "$WORK/own_topic.txt")"
grep -q published_ms "$WORK/own_topic.txt" && fail "a record of $OWN on the topic carries published_ms: $(grep published_ms "$WORK/own_topic.txt" | tail -1)"
curl -sf "${AGG_URL[a]}/v1/reservations" >"$WORK/listed.json" || fail "no reservation list"
grep -q published_ms "$WORK/listed.json" && fail "GET /v1/reservations shows published_ms: $(cat "$WORK/listed.json")"
pass "when a reservation last went to the topic is neither on the topic nor listed"

# A malformed record, one of a rack on another partition, then a good one.
put r0001/reservation/bad-1 '{not json'
# a rack name longer than any rack id: skipped before any check uses it
LONG=$(printf 'x%.0s' $(seq 200))
put "$LONG/flag/evacuate" '{"rack":"'"$LONG"'","flag":"evacuate"}'
[ -n "$OTHER" ] && put "$OTHER/flag/evacuate" "$(flag_json "$OTHER" evacuate)"
put r0001/flag/scale-back "$(flag_json r0001 scale-back)"
wait_for 15 has_flag r0001 scale-back || fail "the record after a malformed one is not applied"
grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: malformed record r0001/reservation/bad-1 by \(no writer header\) skipped" "$WORK/a.log" \
  || fail "the malformed record is not logged: $(grep changelog "$WORK/a.log" | tail -5)"
grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: malformed record x+(/flag/evacuate)? by \(no writer header\) skipped: no rack" "$WORK/a.log" \
  || fail "the record with an overlong rack is not skipped: $(grep changelog "$WORK/a.log" | tail -5)"
if [ -n "$OTHER" ]; then
  has_flag "$OTHER" evacuate && fail "a record of $OTHER on partition $P was applied"
  grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: record $OTHER/flag/evacuate by .* ignored" "$WORK/a.log" \
    || fail "the misplaced record is not logged as ignored"
fi
pass "a malformed record is skipped with its offset logged, a misplaced one ignored, and the tail goes on"

# Over-admission by another writer: kept, counted, and warned about.
put r0001/reservation/kcat-big "$(res_json kcat-big r0001 500 zombie-job "$exp")" -H rackpulse-writer=zombie
over_warned() { grep -q "reservation kcat-big of rack r0001 (500 kW, owner zombie-job) written by zombie puts the rack .* over its power headroom" "$WORK/a.log"; }
wait_for 15 over_warned || fail "no warning for the over-admission: $(grep changelog "$WORK/a.log" | tail -5)"
[ "$(reserved)" = 509.5 ] || fail "the gate counts $(reserved) kW reserved on r0001"
pass "a reservation another writer admitted over the headroom is kept, counted and warned about"

# A second member: a stops reading what it gives up, b reads what it takes.
start_member b site
wait_for 60 settled 2 a b || fail "a and b did not share the partitions: $(cluster_json a)"
for r in r0001 r0002 r0003 r0004; do [ "$(owner_of $r a)" = b ] && MOVED=$r && break; done
[ -n "${MOVED:-}" ] || fail "b owns none of the racks: $(cluster_json a)"
P=$(partition_of "$MOVED")
wait_for 15 grep -q "rackpulse.ledger \[$P\]: no longer read (revoked)" "$WORK/a.log" \
  || fail "a did not stop reading the partition of $MOVED: $(grep changelog "$WORK/a.log" | tail -3)"
put "$MOVED/flag/pause-admissions" "$(flag_json "$MOVED" pause-admissions)"
b_applied() { grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: applied $MOVED/flag/pause-admissions written by \(no writer header\)" "$WORK/b.log"; }
wait_for 15 b_applied || fail "b did not apply the record of $MOVED: $(grep changelog "$WORK/b.log" | tail -3)"
grep -q "$MOVED/flag/pause-admissions" "$WORK/a.log" && fail "a read a record of the partition it gave up"
pass "on a revoke the old owner stops reading the partition; the new owner applies what is added"

# b stops: a takes the partition back, rebuilds it (it read it before) and
# reads it on again.
kill -TERM "${AGG_PID[b]}"
wait "${AGG_PID[b]}" 2>/dev/null || true
wait_for 60 settled 1 a || fail "a did not take the partitions back: $(cluster_json a)"
put "$MOVED/flag/evacuate" "$(flag_json "$MOVED" evacuate)"
wait_for 15 has_flag "$MOVED" evacuate || fail "a does not apply records of the partition it took back: $(grep changelog "$WORK/a.log" | tail -3)"
has_flag "$MOVED" pause-admissions || fail "a's rebuild of the partition it took back lost b's record"
pass "a partition taken back is rebuilt and read on"
