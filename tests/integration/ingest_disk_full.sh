#!/bin/bash
# The aggregator's disk full: its store on a small tmpfs that is filled up
# while frames keep coming, so that the LMDB map must grow into room the
# file system no longer has.
#  1. The aggregator stops ingesting with a clear error naming the store's
#     path and the full disk, and exits non-zero; it is never killed by
#     SIGBUS in the middle of a batch (what a write into an unallocatable
#     page of the memory-mapped file does), and no gate allows meanwhile.
#  2. Space freed and the aggregator restarted on the same store: every
#     frame is applied exactly once (offsets live in the same transactions
#     as the state, so nothing half-written remains).
# Needs root (mount); skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
MNT=$(mktemp -d /tmp/rackpulse-aggdisk.XXXXXX)
mount -t tmpfs -o size=16m tmpfs "$MNT" || { rmdir "$MNT"; echo "SKIP: cannot mount a tmpfs"; exit 77; }
trap 'cleanup; umount "$MNT" 2>/dev/null || umount -l "$MNT"; rmdir "$MNT"; [ "$FAILED" -eq 0 ] || exit 1' EXIT

# Enough new series (8 000 records) that the store must grow past what it
# allocated before the filler, whatever the frames' other writes cost (a
# dictionary sent again unchanged is no longer rewritten, issue 19).
RACKS=4 FRAMES=60 SERIES=2000
start_broker
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
cat >"$WORK/agg.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_max: 20, batch_wait: 20ms}
store: {path: $MNT/store, map_size_mb: 1, map_size_max_mb: 1024}
http: {port: $PORT}
policy: {version: test-1, max_staleness: 5s}
YAML
start_disk_agg() {
  echo "--- start $(date +%T.%N)" >>"$WORK/agg.log"
  "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/agg.yaml" >>"$WORK/agg.out" 2>>"$WORK/agg.log" &
  AGG=$!
  PIDS+=($AGG)
  wait_for 15 curl -sf "$URL/healthz" || fail "aggregator did not start: $(tail -3 "$WORK/agg.log")"
}
start_disk_agg
AGG_URL[disk]=$URL

# --- 1 ----------------------------------------------------------------------
# Whatever room the store has allocated now is all it gets: the rest of the
# file system is taken by a filler.
dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null || true
loadgen --racks $RACKS --frames $FRAMES --series $SERIES --dict-every 20 --rate 100 \
  >"$WORK/loadgen.out" 2>"$WORK/loadgen.log" || fail "loadgen: $(cat "$WORK/loadgen.log")"
rc=0
timeout 60 tail --pid="$AGG" -f /dev/null || fail "the aggregator kept running on a full disk"
wait "$AGG" || rc=$?
[ "$rc" -ne 0 ] || fail "the aggregator exited 0 on a full disk"
[ "$rc" -lt 128 ] || fail "the aggregator was killed by signal $((rc - 128)): $(tail -5 "$WORK/agg.log")"
grep -q "ingest stopped: store $MNT/store.*No space left on device" "$WORK/agg.log" \
  || fail "no clear disk-full error naming the store: $(tail -5 "$WORK/agg.log")"
pass "disk full: ingest stops with '$(grep -o "store $MNT/store[^(]*" "$WORK/agg.log" | head -1)', exit $rc, no SIGBUS"
set +e
"$RP_BIN/tools/rackpulsectl" --url "$URL" gate --rack r0001 --kw 1 >/dev/null 2>&1
g=$?
set -e
[ "$g" -ne 0 ] || fail "a gate allowed while the aggregator was down"

# --- 2 ----------------------------------------------------------------------
rm -f "$MNT/filler"
start_disk_agg
wait_for 60 check_agents disk $FRAMES $RACKS \
  || fail "after the restart: $(agent_totals disk) (agents frames duplicates gaps)"
pass "space freed, restarted: $(agent_totals disk | cut -d' ' -f2) frames of $RACKS agents, each applied once"
