#!/bin/bash
# kill -9 of the aggregator at random moments while it ingests a stream,
# restarted each time: the final state equals that of a clean run into a
# second store, and every frame was applied exactly once (per-agent frame,
# duplicate and gap counters, which live in LMDB with the state).
#
# Each restart joins a fresh consumer group. Progress is the offsets in LMDB,
# never Kafka's group offsets, so the group does not matter to what is
# tested here; rejoining the old group would only wait for the dead member's
# session to time out (ingest_group.sh covers that hand-over).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

RACKS=8 AGENTS=2 FRAMES=250 SERIES=150 KILLS=5
TOTAL=$((RACKS * AGENTS * FRAMES))
BATCH_MAX=50

start_broker
start_agg ref ref-group      # the clean run, into its own store
start_agg crash crash-0
wait_for 20 assigned_since_start ref || fail "ref was assigned no partition"
wait_for 20 assigned_since_start crash || fail "crash was assigned no partition"

# A stream of $TOTAL frames over ~20 s, dictionaries every 50 frames.
loadgen --racks $RACKS --agents $AGENTS --frames $FRAMES --series $SERIES \
  --dict-every 50 --rate 200 >"$WORK/loadgen.out" 2>"$WORK/loadgen.log" &
LOADGEN=$!
PIDS+=($LOADGEN)

during=0
for i in $(seq $KILLS); do
  wait_for 20 assigned_since_start crash || fail "crash (run $i) was assigned no partition"
  # A random moment 0.2 .. 1.7 s into the run.
  sleep "$(printf '%d.%03d' $((RANDOM % 2)) $((RANDOM % 1000)))"
  sleep 0.2
  kill -0 "$LOADGEN" 2>/dev/null && during=$((during + 1))
  before=$(agent_totals crash | cut -d' ' -f2)
  kill9_agg crash
  echo "kill $i: after $before frame(s) applied"
  start_agg crash "crash-$i"
done
[ "$during" -ge 3 ] || fail "only $during kill(s) landed while the stream was published"

wait "$LOADGEN" || fail "the load generator failed: $(cat "$WORK/loadgen.log")"
wait_for 60 frames_applied_are ref $TOTAL || fail "ref: $(agent_totals ref), want $TOTAL frames"
wait_for 60 frames_applied_are crash $TOTAL \
  || fail "crash: $(agent_totals crash), want $TOTAL frames"
pass "$KILLS kill -9 ($during while publishing), all $TOTAL frames applied after restarts"

check_agents ref $FRAMES $((RACKS * AGENTS)) || fail "clean run: counters are wrong"
check_agents crash $FRAMES $((RACKS * AGENTS)) || fail "crashed run: counters are wrong"
pass "every agent: $FRAMES frames, 0 duplicates, 0 gaps, in both stores"

n=$(compare_racks crash ref) || fail "state after crashes differs from the clean run"
pass "/v1/racks/{rack} equal to the clean run's for all $n racks"

# Restarts resumed from LMDB offsets, not from the beginning.
grep -Eq "assigned rackpulse.frames \[[0-9]+\] from offset [1-9]" "$WORK/crash.log" \
  || fail "no restart resumed from a stored offset"
grep -q "LMDB map grown" "$WORK/crash.log" "$WORK/ref.log" || fail "the map never grew"
pass "restarts resume at stored offsets; the map grew from 1 MiB under kills"

stop_agg crash
stop_agg ref
pass "both aggregators stop cleanly on SIGTERM"
