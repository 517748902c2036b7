#!/bin/bash
# Two aggregators that are members of one site (cluster.member_id): any
# member answers for any rack.
#   - each member publishes its address and assignment on the members topic
#     and sees the other's (GET /v1/cluster): every partition has an owner;
#   - a gate asked at the member that does not own the rack is forwarded to
#     the owner: the answer says who answered (answered_by and
#     X-Rackpulse-Answered-By: the owner by the producers' partitioner) and
#     who forwarded it (X-Rackpulse-Forwarded-By);
#   - the hop limit: a request that has already been forwarded
#     cluster.max_hops times is refused (508) by a non-owner, never sent on;
#   - mutations are forwarded too (a flag set and cleared, a reservation
#     made, extended and released by id through the non-owner are applied
#     by the owner), with the caller's token;
#   - site-wide queries fan out and merge: /v1/racks lists every rack once
#     from either member, placement ranks racks of both, the audit log and
#     flags hold what either member wrote;
#   - every audit record is also on the audit topic (kafka.audit_topic),
#     keyed by rack, with the member that wrote it in the "member" header,
#     as a third-party consumer (kcat) reads it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"

RACKS=8
AGG_KAFKA_EXTRA="audit_topic: rackpulse.audit"
site_setup forward 1h
start_broker
start_member a
start_member b
wait_for 60 settled 2 a b || fail "the members did not settle: $(cluster_json a) $(cluster_json b)"
pass "a and b see each other on the members topic and every partition has an owner"

loadgen --racks $RACKS --frames 3 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
racks_known() {
  local n
  n=$(curl -sf "${AGG_URL[a]}/v1/racks" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["racks"]))')
  [ "$n" = "$RACKS" ]
}
wait_for 30 racks_known || fail "racks not known: $(curl -s "${AGG_URL[a]}/v1/racks")"

forwarded=0
for i in $(seq 1 $RACKS); do
  rack=$(printf r%04d "$i")
  owner=$(owner_of "$rack" a)
  [ "$owner" = "$(owner_of "$rack" b)" ] || fail "a and b disagree on the owner of $rack"
  for at in a b; do
    read -r status by hby hfwd decision <<<"$(gate "$at" "$rack")"
    [ "$status" = 200 ] || fail "gate of $rack at $at: HTTP $status ($(cat "$WORK/gate.b"))"
    [ "$by" = "$owner" ] && [ "$hby" = "$owner" ] \
      || fail "gate of $rack at $at answered by $by/$hby, its owner is $owner"
    if [ "$at" != "$owner" ]; then
      [ "$hfwd" = "$at" ] || fail "gate of $rack at $at: X-Rackpulse-Forwarded-By is '$hfwd'"
      forwarded=$((forwarded + 1))
    else
      [ "$hfwd" = "-" ] || fail "gate of $rack at its owner $at claims a forward ($hfwd)"
    fi
  done
done
[ "$forwarded" = "$RACKS" ] || fail "$forwarded forwarded gates, expected $RACKS"
pass "every gate asked at the non-owner was forwarded and answered by the owner ($forwarded racks)"

# The hop limit (cluster.max_hops: 2).
rack=r0001
owner=$(owner_of $rack a)
other=$([ "$owner" = a ] && echo b || echo a)
read -r status by _ _ _ <<<"$(gate "$other" $rack -H "X-Rackpulse-Hops: 2")"
[ "$status" = 508 ] || fail "a request past the hop limit at $other: HTTP $status"
grep -q "hop limit" "$WORK/gate.b" || fail "508 does not say why: $(cat "$WORK/gate.b")"
[ "$by" = "$other" ] || fail "the 508 does not name $other as the answering member"
read -r status by _ _ _ <<<"$(gate "$other" $rack -H "X-Rackpulse-Hops: 1")"
[ "$status" = 200 ] && [ "$by" = "$owner" ] || fail "one hop left: HTTP $status by $by"
read -r status by _ _ _ <<<"$(gate "$owner" $rack -H "X-Rackpulse-Hops: 7")"
[ "$status" = 200 ] && [ "$by" = "$owner" ] || fail "the owner refused a request with hops: $status"
pass "past cluster.max_hops a non-owner answers 508 (hop limit); the owner still answers"

# A flag set and cleared through the non-owner is applied by the owner.
exp=$(( $(date +%s) * 1000 + 600000 ))
code=$(curl -s -o "$WORK/flag.json" -w '%{http_code}' "${AUTH[@]}" -X POST \
  -d "{\"rack\": \"$rack\", \"flag\": \"maintenance\", \"owner\": \"ops\", \"expires_ms\": $exp}" \
  "${AGG_URL[$other]}/v1/flags")
[ "$code" = 201 ] || fail "flag through $other: HTTP $code $(cat "$WORK/flag.json")"
grep -q "\"answered_by\":\"$owner\"" "$WORK/flag.json" || fail "flag not set by $owner: $(cat "$WORK/flag.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
  -d "{\"rack\": \"$rack\", \"flag\": \"maintenance\", \"owner\": \"ops\", \"expires_ms\": $exp}" \
  "${AGG_URL[$other]}/v1/flags")
[ "$code" = 401 ] || fail "a forwarded flag without a token: HTTP $code"
curl -sf "${AGG_URL[$owner]}/v1/flags?rack=$rack" | grep -q '"maintenance"' || fail "the owner has no flag"
pass "a flag set at the non-owner with the token is applied by the owner (without it: 401)"

# A reservation made, extended and released through the non-owner, by id.
code=$(curl -s -o "$WORK/res.json" -w '%{http_code}' "${AUTH[@]}" -X POST "${AGG_URL[$other]}/v1/reservations" \
  -d "{\"rack\": \"$rack\", \"kw\": 1.5, \"owner\": \"job-1\", \"end\": $exp}")
[ "$code" = 201 ] && grep -q "\"answered_by\":\"$owner\"" "$WORK/res.json" \
  || fail "reservation through $other: HTTP $code $(cat "$WORK/res.json")"
id=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/res.json")
code=$(curl -s -o "$WORK/ext.json" -w '%{http_code}' "${AUTH[@]}" -X POST \
  "${AGG_URL[$other]}/v1/reservations/$id/extend" -d "{\"end\": $((exp + 60000))}")
[ "$code" = 200 ] && grep -q "\"answered_by\":\"$owner\"" "$WORK/ext.json" \
  || fail "extend $id through $other: HTTP $code $(cat "$WORK/ext.json")"
code=$(curl -s -o "$WORK/rel.json" -w '%{http_code}' "${AUTH[@]}" -X DELETE "${AGG_URL[$other]}/v1/reservations/$id")
[ "$code" = 200 ] && grep -q "\"answered_by\":\"$owner\"" "$WORK/rel.json" \
  || fail "release $id through $other: HTTP $code $(cat "$WORK/rel.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X DELETE "${AGG_URL[$other]}/v1/reservations/nosuchid")
[ "$code" = 404 ] || fail "an unknown reservation through $other: HTTP $code"
curl -sf "${AGG_URL[$other]}/v1/reservations" | $PY -c '
import json, sys
r = json.load(sys.stdin)["reservations"]
assert [(x["id"], x["state"]) for x in r] == [(sys.argv[1], "released")], r' "$id" \
  || fail "the site does not list $id once, released"
pass "a reservation made, extended and released by id through the non-owner is the owner's"

# Site-wide queries, from either member (the audit log is written in
# batches: wait for it).
site_ok() {
  local at=$1
  curl -sf "${AGG_URL[$at]}/v1/racks" >"$WORK/racks-$at.json" || return 1
  curl -sf "${AGG_URL[$at]}/v1/placement?kw=1&count=$RACKS" >"$WORK/place-$at.json" || return 1
  curl -sf "${AGG_URL[$at]}/v1/audit?limit=1000" >"$WORK/audit-$at.json" || return 1
  curl -sf "${AGG_URL[$at]}/v1/flags" >"$WORK/flags-$at.json" || return 1
  $PY - "$WORK" "$at" "$RACKS" "$rack" 2>"$WORK/site-$at.err" <<'PYEOF'
import json, sys
work, at, n, flagged = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
load = lambda f: json.load(open("%s/%s-%s.json" % (work, f, at)))
racks, place, audit, flags = load("racks"), load("place"), load("audit"), load("flags")
names = [r["rack"] for r in racks["racks"]]
assert names == ["r%04d" % i for i in range(1, n + 1)], names
assert sorted(m["member"] for m in racks["members"]) == ["a", "b"], racks["members"]
assert racks["incomplete"] is False and racks["unowned_partitions"] == [], racks
ranked = place["racks"] + place["excluded"]
assert sorted(r["rack"] for r in ranked) == names, ranked
scores = [r["score"] for r in place["racks"]]
assert scores == sorted(scores, reverse=True), scores
# every gate of the loop above (2 per rack) and of the hop checks is in the
# audit log, once; each forwarded change once (audited by the owner)
ids = [d["decision_id"] for d in audit["decisions"]]
assert len(ids) == len(set(ids)), len(ids)
gates = [d for d in audit["decisions"] if d.get("action") is None]
assert len(gates) == 2 * n + 2, len(gates)
actions = sorted(d["action"] for d in audit["decisions"] if d.get("action") not in (None, "placement"))
assert actions == ["flag_set", "reservation_create", "reservation_extend", "reservation_release"], actions
times = [d["evaluated_at_ms"] for d in audit["decisions"]]
assert times == sorted(times)
assert [(f["rack"], f["flag"]) for f in flags["flags"]] == [(flagged, "maintenance")], flags
PYEOF
}
for at in a b; do
  wait_for 15 site_ok $at || fail "site-wide answers at $at are wrong: $(cat "$WORK/site-$at.err")"
done
pass "GET /v1/racks, placement, audit and flags fan out to both members and merge, from either"

code=$(curl -s -o "$WORK/del.json" -w '%{http_code}' "${AUTH[@]}" -X DELETE \
  "${AGG_URL[$other]}/v1/flags/$rack/maintenance")
[ "$code" = 200 ] && grep -q "\"answered_by\":\"$owner\"" "$WORK/del.json" \
  || fail "clearing through $other: HTTP $code $(cat "$WORK/del.json")"
[ "$(curl -sf "${AGG_URL[$other]}/v1/flags" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["flags"]))')" = 0 ] \
  || fail "the flag is still listed"
pass "the flag cleared through the non-owner is gone from the site"

# The audit topic holds every decision of the merged audit log, keyed by
# rack, with the member that decided (the rack's owner) in its header.
audit_on_topic() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.audit -o beginning -e -q -f '%k\t%h\t%s\n' \
    >"$WORK/audit-topic.txt" 2>/dev/null
  $PY - "$WORK/audit-topic.txt" "$WORK/audit-a.json" "$WORK/owners.txt" <<'PYEOF'
import json, sys
topic = {}
for line in open(sys.argv[1]):
    key, headers, value = line.rstrip("\n").split("\t", 2)
    d = json.loads(value)
    assert d["rack"] == key, (key, d)
    topic[d["decision_id"]] = (key, headers)
owners = dict(l.split() for l in open(sys.argv[3]))
api = json.load(open(sys.argv[2]))["decisions"]
for d in api:
    if d.get("action") is not None:
        continue  # changes and placements: the gates are checked here
    key, headers = topic[d["decision_id"]]
    assert headers == "member=" + owners[d["rack"]], (d["rack"], headers, owners[d["rack"]])
PYEOF
}
for i in $(seq 1 $RACKS); do r=$(printf r%04d "$i"); echo "$r $(owner_of "$r" a)"; done >"$WORK/owners.txt"
wait_for 20 audit_on_topic || fail "the audit topic does not hold the audit log: $(head -3 "$WORK/audit-topic.txt")"
pass "every audit record is on rackpulse.audit, keyed by rack, with the deciding member named"
