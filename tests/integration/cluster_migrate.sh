#!/bin/bash
# A single aggregator becomes the first member of a site and keeps its
# ledger: its flags go to the empty ledger topic when it starts as the
# first member (seeded), so a second member that takes some of the racks
# over knows their flags (rebuilt from the topic); the site lists each flag
# once, from the rack's owner. Device retirements go the same way: a device
# the single aggregator retired stays out of the power draw at the member
# that took its rack over (which replayed the device's frames). Overrides
# made at the first member follow their racks to b too (listed once by the
# site; one revoked at a, which holds a stale copy, is revoked at b).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"

RACKS=8
site_setup migrate 1h
start_broker
AGG_EXTRA=$CLUSTER_EXTRA start_agg a
loadgen --racks $RACKS --frames 2 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 frames_applied_are a $((RACKS * 2)) || fail "frames not applied: $(agent_totals a)"
exp=$(( $(date +%s) * 1000 + 3600000 ))
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/flags" \
    -d "{\"rack\": \"$r\", \"flag\": \"maintenance\", \"owner\": \"ops\", \"expires_ms\": $exp}")
  [ "$code" = 201 ] || fail "flag on $r: HTTP $code"
done
# draw NAME RACK: the power draw (kW) the gate at NAME counts for RACK.
draw() {
  curl -sf -H "X-Rackpulse-Hops: 1" "${AGG_URL[$1]}/v1/racks/$2/gate?kw=0" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print([c for c in d["checks"] if c["name"] == "power_headroom"][0]["draw_kw"])'
}
draw_is() { [ "$(draw "$1" "$2")" = "$3" ]; }
declare -A RETIRED_DRAW
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  before=$(draw a "$r") || fail "no power draw for $r at a"
  code=$(curl -s -o "$WORK/retire.json" -w '%{http_code}' "${AUTH[@]}" -X POST \
    "${AGG_URL[a]}/v1/racks/$r/devices/h1.bmc0/retire" -d '{"owner": "ops"}')
  [ "$code" = 200 ] || fail "retire h1.bmc0 of $r: HTTP $code $(cat "$WORK/retire.json")"
  RETIRED_DRAW[$r]=$(draw a "$r")
  [ "${RETIRED_DRAW[$r]}" != "$before" ] || fail "retiring h1.bmc0 did not change $r's draw ($before kW)"
done
stop_agg a
pass "a single aggregator holds a flag on each of $RACKS racks and retired a device of each"

# A group of its own: the single aggregator's group used the eager protocol,
# and the dev broker's group keeps it (a real cluster lets an empty group
# change protocol; a running one needs a rolling switch, see the README).
start_member a site
wait_for 30 grep -q "seeded with this member's" "$WORK/a.log" || fail "a did not seed the ledger topic"
wait_for 60 settled 1 a || fail "a did not take the partitions: $(cluster_json a)"
declare -A OVR
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  code=$(curl -s -o "$WORK/ovr.json" -w '%{http_code}' "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/overrides" \
    -d "{\"rack\": \"$r\", \"reason\": \"migration\", \"for\": \"1h\"}")
  [ "$code" = 201 ] || fail "override on $r: HTTP $code $(cat "$WORK/ovr.json")"
  OVR[$r]=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/ovr.json")
done
start_member b site
wait_for 60 settled 2 a b || fail "the members did not settle: $(cluster_json a)"
all_flags_once() {
  curl -sf "${AGG_URL[$1]}/v1/flags" | $PY -c '
import json, sys
f = json.load(sys.stdin)
got = sorted((x["rack"], x["flag"]) for x in f["flags"])
assert not f["incomplete"] and got == [("r%04d" % i, "maintenance") for i in range(1, int(sys.argv[1]) + 1)], got
' "$RACKS"
}
wait_for 20 all_flags_once b || fail "the site does not list every flag once: $(curl -s "${AGG_URL[b]}/v1/flags")"
b_racks=0
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  [ "$(owner_of "$r" a)" = b ] || continue
  curl -sf -H "X-Rackpulse-Hops: 1" "${AGG_URL[b]}/v1/flags?rack=$r" | grep -q maintenance \
    || fail "b owns $r but does not hold its flag"
  wait_for 30 draw_is b "$r" "${RETIRED_DRAW[$r]}" \
    || fail "b counts $(draw b "$r") kW for $r, not ${RETIRED_DRAW[$r]} kW without the retired h1.bmc0"
  b_racks=$((b_racks + 1))
done
[ "$b_racks" -gt 0 ] || fail "b owns no rack"
# overrides_are NAME RACK...: the site, asked at NAME, lists the overrides
# made above of these racks, once each.
overrides_are() {
  local name=$1; shift
  curl -sf "${AGG_URL[$name]}/v1/overrides" | $PY -c '
import json, sys
o = json.load(sys.stdin)
got = sorted((x["rack"], x["id"]) for x in o["overrides"])
want = sorted(zip(sys.argv[1::2], sys.argv[2::2]))
assert got == want, (got, want)' "$@"
}
want=()
for r in "${!OVR[@]}"; do want+=("$r" "${OVR[$r]}"); done
wait_for 20 overrides_are b "${want[@]}" || fail "the site does not list every override once: $(curl -s "${AGG_URL[b]}/v1/overrides")"
gone=""
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  if [ -z "$gone" ] && [ "$(owner_of "$r" a)" = b ]; then gone=$r; fi
done
code=$(curl -s -o "$WORK/revoke.json" -w '%{http_code}' "${AUTH[@]}" -X DELETE "${AGG_URL[a]}/v1/overrides/${OVR[$gone]}")
[ "$code" = 200 ] && grep -q '"answered_by":"b"' "$WORK/revoke.json" \
  || fail "revoking ${OVR[$gone]} of $gone at a: HTTP $code $(cat "$WORK/revoke.json")"
unset "OVR[$gone]"
want=()
for r in "${!OVR[@]}"; do want+=("$r" "${OVR[$r]}"); done
overrides_are a "${want[@]}" || fail "the revoked override is still listed: $(curl -s "${AGG_URL[a]}/v1/overrides")"
pass "as members, a seeded the ledger topic and b holds the flags, retirements and overrides of the $b_racks racks it took over"
