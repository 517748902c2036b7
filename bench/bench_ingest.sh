#!/bin/bash
# Aggregator ingest benchmark (issue 8): frames of 1 000 racks from the load
# generator through the dev broker into the aggregator's LMDB store.
#
#   bash bench/bench_ingest.sh [BUILD_DIR]      (default: build)
#
# 1. warm-up: WARMUP rounds (one frame per rack each) create every series'
#    record, so that the measured rounds update existing records as a
#    running site does;
# 2. throughput: ROUNDS rounds published at once; the aggregator's CPU time
#    (utime + stime from /proc/PID/stat) from before they are published until
#    every rack holds the last round gives samples per second per core;
# 3. lag: LAG_SECONDS of frames paced at one frame per rack per second (the
#    real cadence), stamped with the wall clock; the aggregator's histogram
#    rackpulse_ingest_frame_lag_seconds (frame time to the commit that made it
#    visible) gives the end-to-end lag: p50, p95 and p99 as the histogram
#    bucket that holds them, (lower, upper] in seconds, over all frames and
#    over those applied after the first LAG_SETTLE seconds (the start, when
#    every simulated agent sends its dictionary at once, left out).
# Environment: RACKS (1000) SERIES (samples per frame, 1000) WARMUP (3)
# ROUNDS (10) LAG_SECONDS (20) LAG_SETTLE (6) BATCH_MAX (2000) BATCH_WAIT (100ms) SYNC
# (store.sync: full, meta or periodic; default meta) PERF (0; 1 = perf
# record the throughput phase and print the profile) STATS_EVERY
# (0: frames of older agents, window statistics as doubles in every frame;
# N: as agents since issue 25, scaled statistics every N frames, which the
# aggregator keeps up to date from each frame's samples). DICT (hash: every
# dictionary named by its content hash, as agents since issue 17 send it;
# legacy: by dictionary_version, as older agents, which the aggregator
# rewrites whenever it is sent again).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RACKS=${RACKS:-1000} SERIES=${SERIES:-1000} WARMUP=${WARMUP:-3} ROUNDS=${ROUNDS:-10}
LAG_SECONDS=${LAG_SECONDS:-20} LAG_SETTLE=${LAG_SETTLE:-6} BATCH_MAX=${BATCH_MAX:-2000} BATCH_WAIT=${BATCH_WAIT:-100ms}
PERF=${PERF:-0} STATS_EVERY=${STATS_EVERY:-0} SYNC=${SYNC:-meta} DICT=${DICT:-hash}
case "$DICT" in hash) DICT_OPT=--dict-hash ;; legacy) DICT_OPT= ;; *) echo "bench_ingest: DICT must be hash or legacy" >&2; exit 2 ;; esac
for b in tools/rackpulse-devbroker tools/rackpulse-loadgen aggregator/rackpulse-aggregator; do
  [ -x "$BUILD/$b" ] || { echo "bench_ingest: $BUILD/$b is missing (build first)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/rackpulse-bench.XXXXXX)
PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "bench_ingest: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

"$BUILD/tools/rackpulse-devbroker" --bootstrap-file "$WORK/bootstrap" >/dev/null 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$WORK/bootstrap")
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
cat >"$WORK/aggregator.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_max: $BATCH_MAX, batch_wait: $BATCH_WAIT}
store: {path: $WORK/store, map_size_mb: 1024, map_size_max_mb: 65536, sync: $SYNC}
http: {port: $PORT}
YAML
"$BUILD/aggregator/rackpulse-aggregator" -c "$WORK/aggregator.yaml" >/dev/null 2>"$WORK/aggregator.log" &
AGG=$!
PIDS+=($AGG)
for _ in $(seq 100); do grep -q "ingest: assigned" "$WORK/aggregator.log" && break; sleep 0.1; done
grep -q "ingest: assigned" "$WORK/aggregator.log" || die "the aggregator was assigned nothing"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGG/stat"; }
loadgen() { "$BUILD/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -q --racks "$RACKS" --series "$SERIES" \
  --dict-every 1000000000 --stats-every "$STATS_EVERY" $DICT_OPT "$@"; }
# wait_round TS: until every rack's newest frame has time TS.
wait_round() {
  local deadline=$(($(date +%s) + 600))
  until curl -sf "$URL/v1/racks" | python3 -c "
import json, sys
r = json.load(sys.stdin)['racks']
sys.exit(0 if len(r) == $RACKS and all(x['last_frame_ms'] == $1 for x in r) else 1)"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the aggregator did not catch up (see $WORK)"
    kill -0 "$AGG" || die "the aggregator died: $(tail -3 "$WORK/aggregator.log")"
    sleep 0.1
  done
}

# Frame times of the warm-up and throughput rounds: fixed, in the past.
TS0=$(($(now_ms) - (WARMUP + ROUNDS + 10) * 1000))
echo "== rackpulse ingest: $RACKS racks x $SERIES samples a frame; batch_max $BATCH_MAX, batch_wait $BATCH_WAIT, store.sync $SYNC, dictionaries by $DICT"
loadgen --frames "$WARMUP" --ts-base "$TS0"
wait_round $((TS0 + (WARMUP - 1) * 1000))
echo "warm-up: $WARMUP rounds applied, store $(du -sm "$WORK/store" | cut -f1) MiB"

if [ "$PERF" = 1 ]; then
  perf record -F 999 -g -p "$AGG" -o "$WORK/perf.data" >/dev/null 2>&1 &
  PERF_PID=$!
fi
c0=$(cpu_ticks)
t0=$(now_ms)
loadgen --frames "$ROUNDS" --seq-start $((WARMUP + 1)) --ts-base "$TS0"
t_pub=$(now_ms)
wait_round $((TS0 + (WARMUP + ROUNDS - 1) * 1000))
t1=$(now_ms)
c1=$(cpu_ticks)
if [ "$PERF" = 1 ]; then
  kill -INT "$PERF_PID"
  wait "$PERF_PID" || true
fi
SAMPLES=$((RACKS * SERIES * ROUNDS))
python3 - "$SAMPLES" "$((RACKS * ROUNDS))" "$((c1 - c0))" "$TICKS" "$((t1 - t0))" \
  "$((t_pub - t0))" <<'PYEOF'
import sys
samples, frames, ticks, hz, wall_ms, pub_ms = (int(x) for x in sys.argv[1:])
cpu = ticks / hz
print("throughput: %d samples (%d frames) in %.2f s wall (published in %.2f s), "
      "aggregator CPU %.2f s" % (samples, frames, wall_ms / 1e3, pub_ms / 1e3, cpu))
print("  %.2f M samples/s per core of aggregator CPU (%.0f ns/sample); %.2f M samples/s wall"
      % (samples / cpu / 1e6, cpu * 1e9 / samples, samples / (wall_ms / 1e3) / 1e6))
PYEOF
echo "  store $(du -sm "$WORK/store" | cut -f1) MiB on disk"

# Lag: one frame per rack per second, wall-clock frame times.
histogram() {
  curl -sf "$URL/metrics" | grep '^rackpulse_ingest_frame_lag_seconds' >"$1"
}
lag_count() { awk '/^rackpulse_ingest_frame_lag_seconds_count/ {print $2}' "$1"; }
histogram "$WORK/lag0"
c0=$(cpu_ticks)
t0=$(now_ms)
loadgen --frames "$LAG_SECONDS" --seq-start $((WARMUP + ROUNDS + 1)) --rate "$RACKS" &
LOADGEN=$!
PIDS+=($LOADGEN)
# The load generator starts 1 000 agents at once: their first frames carry
# their dictionaries (1 000 series, ~53 kB a frame instead of ~4 kB), as
# after a site-wide agent restart; the aggregator already stores them
# (issue 19: it neither decodes a stored hash-named one nor rewrites an
# unchanged legacy one). A second snapshot after LAG_SETTLE seconds gives
# the lag of the steady state apart from that start.
sleep "$LAG_SETTLE"
histogram "$WORK/lag_settled"
wait "$LOADGEN"
# Every frame counted (the slowest ones are the p99), at most 60 s more.
want=$(($(lag_count "$WORK/lag0") + RACKS * LAG_SECONDS))
deadline=$(($(date +%s) + 60))
until histogram "$WORK/lag1" && [ "$(lag_count "$WORK/lag1")" -ge "$want" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the lag phase's frames were not all applied"
  sleep 0.2
done
c1=$(cpu_ticks)
t1=$(now_ms)
python3 - "$WORK/lag0" "$WORK/lag1" "$((c1 - c0))" "$TICKS" "$(((t1 - t0 + 999) / 1000))" \
  "$((RACKS * SERIES))" "$WORK/lag_settled" "$LAG_SETTLE" <<'PYEOF'
import re, sys
def read(path):
    b, s, n = {}, 0.0, 0
    for line in open(path):
        m = re.match(r'rackpulse_ingest_frame_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[m.group(1)] = int(m.group(2))
        elif line.startswith("rackpulse_ingest_frame_lag_seconds_sum"):
            s = float(line.split()[1])
        elif line.startswith("rackpulse_ingest_frame_lag_seconds_count"):
            n = int(line.split()[1])
    return b, s, n
(b0, s0, n0), (b1, s1, n1) = read(sys.argv[1]), read(sys.argv[2])
ticks, hz, secs, rate = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
bs, ss, ns = read(sys.argv[7])
settle = sys.argv[8]
def q(b0, b1, n, p):
    """The bucket that holds the p-quantile: (lower bound, upper bound]."""
    lower = "0"
    for le in sorted(b1, key=lambda le: float(le)):  # "+Inf" sorts last
        if b1[le] - b0.get(le, 0) >= p * n:
            return "(%s, %s]" % (lower, le)
        lower = le
    return "?"
def report(what, b0, s0, n0, b1, s1, n1):
    n = n1 - n0
    print("  %s: %d frames, mean %.3f s; p50 in %s s, p95 in %s s, p99 in %s s"
          % (what, n, (s1 - s0) / n if n else 0, q(b0, b1, n, 0.5), q(b0, b1, n, 0.95),
             q(b0, b1, n, 0.99)))
print("lag at %d samples/s offered (histogram buckets, seconds); aggregator at %.0f %% of a core"
      % (rate, 100.0 * ticks / hz / secs))
report("all frames", b0, s0, n0, b1, s1, n1)
report("after the first %s s" % settle, bs, ss, ns, b1, s1, n1)
PYEOF

if [ "$PERF" = 1 ]; then
  echo "== perf (throughput phase), by library"
  perf report -i "$WORK/perf.data" --no-children --stdio --sort dso 2>/dev/null \
    | grep -E '^ +[0-9]' | head -8
  echo "== top symbols"
  perf report -i "$WORK/perf.data" --no-children --stdio --sort dso,sym 2>/dev/null \
    | grep -E '^ +[0-9]' | head -20
fi
