#!/bin/bash
# The fence on the ledger topic (aggregator/claim.h): a member that lost a
# partition without knowing it (a zombie: cut off from the group
# coordinator, still reaching the brokers) cannot admit against its racks.
# The zombie's successor is played by kcat writing a claim of the
# partition, as another member's would be (the mock cluster cannot cut a
# member off from its coordinator alone).
#
# 1. The writer's read-back: a's tail of the partition is kept blind (the
#    broker leading it answers the tail's next Fetch 15 s late) while the
#    claim is written and a reservation is asked of a. a's owner check
#    passes, its record lands after the claim, and a reads the partition
#    back before it commits: 503 naming the claimer, not listed, a no
#    longer answers for the rack, and the void counter moves. (Without the
#    read-back a answers 201 and lists it.)
# 2. Restart: a claims the partition again (the group assigns it), and its
#    rebuild does not apply the void record.
# 3. The tail: a record written under a's old claim is void and ignored;
#    a record without a claim header (a third party, an operator) is still
#    applied; a later claim makes a stop answering for the partition within
#    seconds, no request involved.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"
source "$(dirname "$0")/delivery_lib.sh"

RACKS=8
site_setup fence 1h
start_split_broker

start_member a
wait_for 60 settled 1 a || fail "a did not take the partitions: $(cluster_json a)"
loadgen --racks $RACKS --frames 2 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
X=r0001
P=$($PY -c 'import sys, zlib; print(zlib.crc32(sys.argv[1].encode()) % 4)' "$X")
now=$(($(date +%s) * 1000))
exp=$((now + 3600000))
gate_code() { curl -s -o "$WORK/gate.json" -w '%{http_code}' "${AGG_URL[a]}/v1/racks/$X/gate?kw=0"; }
answered() { [ "$(gate_code)" = 200 ]; }
wait_for 30 answered || fail "$X is not answered at a: $(cat "$WORK/gate.json")"
claim_line() { grep -E "ledger of partition $P rebuilt from rackpulse.ledger: .* claimed at offset [0-9]+" "$WORK/a.log" | tail -1; }
[ -n "$(claim_line)" ] || fail "a's rebuild of partition $P names no claim: $(grep changelog "$WORK/a.log" | tail -3)"
CLAIM1=$(claim_line | sed -E 's/.*claimed at offset ([0-9]+).*/\1/')
kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -o "$CLAIM1" -c 1 -e -q -f '%k\n' >"$WORK/claim1.txt" 2>/dev/null
grep -q '^@claim/a/' "$WORK/claim1.txt" || fail "offset $CLAIM1 of partition $P is not a's claim: $(cat "$WORK/claim1.txt")"
pass "a claimed partition $P of the ledger topic (offset $CLAIM1) before it answered for $X"

# A frame of $X put on another partition (as a producer with another
# partitioner would): counted and logged with its place.
Q=$(((P + 1) % 4))
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -p "$P" -o beginning -c 1 -e -q -D '' -f '%s' >"$WORK/frame.bin" 2>/dev/null
[ -s "$WORK/frame.bin" ] || fail "no frame of $X on partition $P of rackpulse.frames"
kcat -P -b "$BOOTSTRAP" -t rackpulse.frames -p "$Q" -k "$X" "$WORK/frame.bin" || fail "kcat could not produce the frame"
misplaced() { [ "$(metric a rackpulse_ingest_frames_misplaced_total)" = 1 ]; }
wait_for 15 misplaced || fail "the misplaced frame is not counted: $(metric a rackpulse_ingest_frames_misplaced_total)"
grep -Eq "rackpulse.frames \[$Q\] offset [0-9]+: frame of rack $X \(agent [^)]+\) belongs to partition $P by librdkafka's default partitioner" "$WORK/a.log" \
  || fail "the misplaced frame is not logged: $(grep ingest "$WORK/a.log" | tail -3)"
pass "a frame of $X on partition $Q instead of $P is counted and logged with its place"

# put KEY VALUE [KCAT ARGS]: one record on the ledger topic's partition $P.
put() {
  printf '%s|%s\n' "$1" "$2" | kcat -P -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -K '|' "${@:3}" \
    || fail "kcat could not produce $1"
}
listed() { curl -sf "${AGG_URL[a]}/v1/reservations?rack=$X" | grep -q "\"owner\":\"$1\""; }
reserve() { # OWNER: the HTTP code into $WORK/res.code, the body into res.json
  curl -s -o "$WORK/res.json" -w '%{http_code}' "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/reservations" \
    -d "{\"rack\": \"$X\", \"kw\": 2, \"owner\": \"$1\", \"end\": $exp}" >"$WORK/res.code"
}
reserve job-before
[ "$(cat "$WORK/res.code")" = 201 ] || fail "a reservation on $X before any other claim: HTTP $(cat "$WORK/res.code") $(cat "$WORK/res.json")"
BEFORE=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/res.json")

# 1. The tail blind for 15 s; the claim; a reservation.
broker_control "partition_leader rackpulse.ledger $P 2" "fetch_delay 2 15000"
put "@claim/zz/$now" "{\"member\":\"zz\",\"partition\":$P,\"claimed_ms\":$now}" -H rackpulse-writer=zz
reserve job-zombie
[ "$(cat "$WORK/res.code")" = 503 ] || fail "a admitted on $X after zz's claim: HTTP $(cat "$WORK/res.code") $(cat "$WORK/res.json")"
grep -q "is void: member zz claimed the partition at offset" "$WORK/res.json" \
  || fail "the 503 does not come from a's read-back naming zz: $(cat "$WORK/res.json")"
listed job-zombie && fail "the refused reservation is listed"
[ "$(metric a rackpulse_ledger_topic_void_total)" -ge 1 ] || fail "void counter: $(metric a rackpulse_ledger_topic_void_total)"
not_answered() { [ "$(gate_code)" = 503 ]; }
wait_for 15 not_answered || fail "a still answers for $X after the claim: $(gate_code) $(cat "$WORK/gate.json")"
pass "a's record written after zz's claim is void: 503 naming zz, not listed, $X no longer answered by a"

# 2. Restart: a claims again; its void record stays void.
stop_agg a
start_member a
wait_for 60 settled 1 a || fail "a did not take the partitions back: $(cluster_json a)"
wait_for 30 answered || fail "$X is not answered at a after its restart: $(cat "$WORK/gate.json")"
CLAIM2=$(claim_line | sed -E 's/.*claimed at offset ([0-9]+).*/\1/')
[ "$CLAIM2" -gt "$CLAIM1" ] || fail "a's new claim ($CLAIM2) is not after its first ($CLAIM1)"
listed job-before || fail "the reservation made before zz's claim was lost: $(curl -s "${AGG_URL[a]}/v1/reservations?rack=$X")"
listed job-zombie && fail "a's rebuild applied its void record"
grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: record $X/reservation/[^ ]+ is void \(written under claim $CLAIM1, the partition's latest claim then was zz's" "$WORK/a.log" \
  || fail "the rebuild did not log the void record: $(grep changelog "$WORK/a.log" | tail -5)"
pass "after a restart a claims the partition again (offset $CLAIM2): the reservation before zz's claim is kept, the void one is not applied"

# 2b. A read-back that times out: both Fetch requests broker 2 answers next
# (the tail's and the writer's read-back, the only readers of partition $P)
# come 8 s late, past ledger_ack_timeout (5 s). The writer answers 503 "may
# take effect" and the partition is rebuilt under the same claim (a new
# claim could fence a member the group gave it to): the record turned out
# valid, so the reservation is listed after the rebuild.
# (A writer reads back only what others wrote since its last record: a
# third party's record first, so that there is something to read.)
flag_json() { echo "{\"rack\":\"$X\",\"flag\":\"$1\",\"owner\":\"ops\",\"reason\":\"\",\"set_ms\":$now,\"expires_ms\":$exp,\"source\":\"api\"}"; }
has_flag() { curl -sf "${AGG_URL[a]}/v1/flags" | grep -q "\"flag\":\"$1\""; }
put "$X/flag/scale-back" "$(flag_json scale-back)"
wait_for 15 has_flag scale-back || fail "the third party's flag was not applied"
broker_control "fetch_delay 2 8000" "fetch_delay 2 8000"
reserve job-unsure
[ "$(cat "$WORK/res.code")" = 503 ] || fail "a write whose read-back timed out: HTTP $(cat "$WORK/res.code") $(cat "$WORK/res.json")"
grep -q "could not be read back within 5000 ms .*it may take effect" "$WORK/res.json" \
  || fail "the 503 does not say the change may take effect: $(cat "$WORK/res.json")"
wait_for 30 listed job-unsure || fail "the record whose read-back timed out was not applied by the rebuild: $(curl -s "${AGG_URL[a]}/v1/reservations?rack=$X")"
wait_for 30 answered || fail "$X is not answered after the rebuild: $(cat "$WORK/gate.json")"
[ "$(claim_line | sed -E 's/.*claimed at offset ([0-9]+).*/\1/')" = "$CLAIM2" ] \
  || fail "the rebuild after the timeout made a new claim: $(claim_line)"
kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c '^@claim/a/' >"$WORK/claims.txt"
[ "$(cat "$WORK/claims.txt")" = 2 ] || fail "a wrote $(cat "$WORK/claims.txt") claims of partition $P, not 2"
pass "a read-back that timed out: 503 'may take effect', the partition rebuilt under the same claim, the valid record applied"

# 3. The tail: a record under a's old claim is void; one without a claim
# header is applied; a later claim fences a.
put "$X/flag/evacuate" "$(flag_json evacuate)" -H rackpulse-writer=a -H "rackpulse-claim=$CLAIM1"
put "$X/flag/maintenance" "$(flag_json maintenance)"
wait_for 15 has_flag maintenance || fail "a record without a claim header was not applied"
has_flag evacuate && fail "a record under a's old claim was applied"
grep -Eq "rackpulse.ledger \[$P\] offset [0-9]+: record $X/flag/evacuate by a is void \(written under claim $CLAIM1, this member's claim at $CLAIM2" "$WORK/a.log" \
  || fail "the tail did not log the void record: $(grep changelog "$WORK/a.log" | tail -5)"
pass "the tail ignores a record under an old claim and applies one without a claim header"

# A void record of a key that has a valid state (job-before at 99 kW under
# a's old claim): on a compacted topic it would hide that state from the
# next rebuild, so a writes its state again under its claim.
BEFORE_KEY="$X/reservation/$BEFORE"
kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -o beginning -e -q -f '%k|%s\n' 2>/dev/null \
  | grep "^$BEFORE_KEY|" | tail -1 | cut -d'|' -f2- | sed 's/"kw":2[.0-9]*/"kw":99/' >"$WORK/void_value.json"
grep -q '"kw":99' "$WORK/void_value.json" || fail "no record of $BEFORE_KEY on the topic: $(cat "$WORK/void_value.json")"
put "$BEFORE_KEY" "$(cat "$WORK/void_value.json")" -H rackpulse-writer=a -H "rackpulse-claim=$CLAIM1"
latest_valid() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.ledger -p "$P" -o beginning -e -q -f '%k|%h|%s\n' 2>/dev/null \
    | grep "^$BEFORE_KEY|" | tail -1 >"$WORK/latest.txt"
  grep -q "rackpulse-claim=$CLAIM2" "$WORK/latest.txt" && grep -q '"kw":2' "$WORK/latest.txt"
}
wait_for 15 latest_valid || fail "a did not write $BEFORE_KEY again under its claim: $(cat "$WORK/latest.txt")"
grep -q "$BEFORE_KEY written again under this member's claim" "$WORK/a.log" || fail "the re-write is not logged"
listed job-before || fail "job-before is no longer listed"
[ "$(metric a rackpulse_ledger_topic_reasserted_total)" -ge 1 ] || fail "reasserted counter: $(metric a rackpulse_ledger_topic_reasserted_total)"
pass "after a void record of $BEFORE_KEY, a wrote its valid state again (the key's latest record is valid)"

put "@claim/yy/$now" "{\"member\":\"yy\",\"partition\":$P}"
wait_for 15 not_answered || fail "a still answers for $X after yy's claim: $(gate_code)"
grep -Eq "rackpulse.ledger \[$P\]: member yy claimed the partition at offset [0-9]+ \(seen by the tail\)" "$WORK/a.log" \
  || fail "the fence is not logged: $(grep changelog "$WORK/a.log" | tail -3)"
[ "$(metric a rackpulse_ledger_topic_fenced_total)" -ge 1 ] || fail "fenced counter: $(metric a rackpulse_ledger_topic_fenced_total)"
code=$(curl -s -o "$WORK/res.json" -w '%{http_code}' "${AUTH[@]}" -X POST "${AGG_URL[a]}/v1/reservations" \
  -d "{\"rack\": \"$X\", \"kw\": 2, \"owner\": \"job-after-yy\", \"end\": $exp}")
[ "$code" = 503 ] || fail "a reservation on $X after yy's claim: HTTP $code $(cat "$WORK/res.json")"
pass "another claim seen by the tail: a stops answering for $X at once and refuses changes"
stop_agg a
