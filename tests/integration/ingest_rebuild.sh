#!/bin/bash
# A store the disk gave back damaged is rebuilt from Kafka (store.sync:
# periodic may leave one after a system crash): the aggregator moves the
# damaged data file aside, says so, and applies every frame again from the
# beginning of the topic, each exactly once; reservations and flags (the
# ledger, in its own directory) are untouched. Periodic sync itself keeps
# the store exactly-once across kill -9.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

RACKS=6 FRAMES=5
umask 077
echo "rebuild-token" >"$WORK/token"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_broker
AGG_STORE_EXTRA="sync: periodic, sync_interval: 200ms"
start_agg a
loadgen --racks $RACKS --frames $FRAMES --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"
wait_for 30 frames_applied_are a $((RACKS * FRAMES)) || fail "frames not applied: $(agent_totals a)"
exp=$(( $(date +%s) * 1000 + 600000 ))
curl -sf -H "Authorization: Bearer rebuild-token" -X POST "${AGG_URL[a]}/v1/flags" \
  -d "{\"rack\": \"r0001\", \"flag\": \"maintenance\", \"owner\": \"ops\", \"expires_ms\": $exp}" \
  >/dev/null || fail "flag not set"

# kill -9 with periodic sync: nothing applied twice or lost.
kill9_agg a
loadgen --racks $RACKS --frames $FRAMES --seq-start $((FRAMES + 1)) --series 12 \
  2>>"$WORK/loadgen.log" || fail "loadgen failed"
# Another group: the killed member's session need not time out first (the
# offsets are the store's, not the group's).
start_agg a rebuild-2
wait_for 30 frames_applied_are a $((RACKS * 2 * FRAMES)) || fail "after kill -9: $(agent_totals a)"
check_agents a $((2 * FRAMES)) $RACKS || fail "after kill -9 a frame was lost or applied twice"
pass "store.sync periodic: exactly once across kill -9"

# Damage: both meta pages of the data file overwritten.
stop_agg a
dd if=/dev/urandom of="$WORK/store-a/data.mdb" bs=4096 count=2 conv=notrunc status=none
start_agg a rebuild-2
grep -q "store $WORK/store-a was damaged: moved aside to $WORK/store-a/data.mdb.damaged-" \
  "$WORK/a.log" || fail "the damage is not said: $(tail -5 "$WORK/a.log")"
ls "$WORK"/store-a/data.mdb.damaged-* >/dev/null || fail "the damaged file is not kept aside"
wait_for 30 frames_applied_are a $((RACKS * 2 * FRAMES)) || fail "not rebuilt: $(agent_totals a)"
check_agents a $((2 * FRAMES)) $RACKS || fail "the rebuilt store is not exactly once"
curl -sf "${AGG_URL[a]}/v1/flags?rack=r0001" | grep -q maintenance || fail "the ledger was lost"
pass "a damaged store is moved aside and rebuilt from Kafka, each frame once; the ledger is kept"
stop_agg a
