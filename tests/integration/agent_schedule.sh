#!/bin/bash
# agent_schedule: devices of one interval are scraped in the same turn of
# the loop (agent/scheduler.c), so that the loop wakes once for them and
# their jobs reach the thread pool together. Three CDUs every 1 s (one
# pymodbus simulator): the three sample blocks of each round carry their
# scrape's start time (SampleBlock.ts_ms); the spread within a round must
# be a few milliseconds at most (the first scrapes used to be spread over
# the interval: 9 and 18 ms apart for three devices). The median round is
# judged, so that one preemption of the loop on a loaded machine cannot
# fail the test.
source "$RP_SRC/tests/integration/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" sched "$CDU" "$CDU" "$CDU"
start_agent "$WORK/agent.yaml"
wait_agent_started
wait_for 90 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t rackpulse.frames -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 10 ]" ||
  fail "fewer than 10 frames on rackpulse.frames: $(tail -5 "$WORK/agent.log")"
kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -q -f '%S:%s' >"$WORK/frames.bin" 2>/dev/null
PYTHONPATH="$RP_SRC/tests/integration" python3 - "$WORK/frames.bin" "$RP_SRC/proto" <<'PY' || fail "devices of one interval are not scraped together (above)"
import statistics, sys
from frames_state import blocks, decode_each, field, messages
ts = sorted(int(field(b, "ts_ms")) for f in decode_each(messages(sys.argv[1]), sys.argv[2])
            for b in blocks(f, "samples"))
rounds, cur = [], [ts[0]]
for t in ts[1:]:  # a round: blocks less than 500 ms apart
    if t - cur[-1] < 500:
        cur.append(t)
    else:
        rounds.append(cur)
        cur = [t]
rounds.append(cur)
full = [r for r in rounds if len(r) == 3]
spreads = [r[-1] - r[0] for r in full]
print(f"{len(full)} rounds of 3 blocks, spread (ms): {spreads}")
if len(full) < 5:
    sys.exit(f"only {len(full)} rounds with a block of each of the 3 CDUs")
if statistics.median(spreads) > 3:
    sys.exit(f"median spread {statistics.median(spreads)} ms within a round (at most 3)")
PY
pass "three CDUs scraped in the same turn of the loop"
