#!/bin/bash
# A site of N aggregator members (issue 19): the same load through the dev
# broker into 1, 2 and 3 members of one cluster, on this one machine.
#
#   bash bench/bench_cluster.sh [BUILD_DIR]      (default: build)
#
# For each N in $MEMBERS (default "1 2 3"):
# 1. throughput: WARMUP rounds create every record, then ROUNDS rounds (one
#    frame per rack each) published at once; for each member, the samples
#    it applied (rackpulse_ingest_samples_total) over its CPU time (utime +
#    stime, /proc/PID/stat) until every rack's owner holds the last round:
#    samples per second per core of each member;
# 2. lag: LAG_SECONDS paced at one frame per rack per second (wall-clock
#    frame times); each member's histogram rackpulse_ingest_frame_lag_seconds,
#    summed over members, gives the site's p50 and p99 (bucket bounds);
# 3. gate latency: GATES sequential gate requests over one kept-alive
#    connection (Python http.client) at member 1, for racks member 1 owns
#    (answered there) and, with N > 1, for racks it does not own (forwarded
#    to the owner, which answers): p50 and p99 of each.
# Environment: RACKS (300) SERIES (1000) WARMUP (2) ROUNDS (5) LAG_SECONDS
# (15) GATES (2000) MEMBERS ("1 2 3") PARTITIONS (6) SYNC (meta).
# Everything shares this machine's cores: the broker, the load generator and
# every member, so per-core figures are the meaningful ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RACKS=${RACKS:-300} SERIES=${SERIES:-1000} WARMUP=${WARMUP:-2} ROUNDS=${ROUNDS:-5}
LAG_SECONDS=${LAG_SECONDS:-15} GATES=${GATES:-2000} MEMBERS=${MEMBERS:-"1 2 3"}
PARTITIONS=${PARTITIONS:-6} SYNC=${SYNC:-meta}
for b in tools/rackpulse-devbroker tools/rackpulse-loadgen aggregator/rackpulse-aggregator; do
  [ -x "$BUILD/$b" ] || { echo "bench_cluster: $BUILD/$b is missing (build first)" >&2; exit 2; }
done

PIDS=()
WORK=
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  PIDS=()
  [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "bench_cluster: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
TICKS=$(getconf CLK_TCK)

# run_site N: one site of N members, measured.
run_site() {
  local n=$1 i
  WORK=$(mktemp -d /tmp/rackpulse-bench-cluster.XXXXXX)
  "$BUILD/tools/rackpulse-devbroker" -p "$PARTITIONS" --bootstrap-file "$WORK/bootstrap" \
    >/dev/null 2>"$WORK/broker.log" &
  PIDS+=($!)
  for _ in $(seq 50); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
  BOOTSTRAP=$(cat "$WORK/bootstrap")
  declare -gA URL PID
  for i in $(seq 1 "$n"); do
    local port
    port=$(free_port)
    URL[$i]="http://127.0.0.1:$port"
    cat >"$WORK/m$i.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_max: 2000, batch_wait: 100ms}
store: {path: $WORK/store-$i, map_size_mb: 1024, map_size_max_mb: 65536, sync: $SYNC}
http: {port: $port, threads: 4, rate_limit: 0}
policy: {version: bench, max_staleness: 1h, supply_temp_max: 40}
flags: {automatic: false}
cluster: {member_id: m$i, heartbeat: 500ms, member_timeout: 3s}
log_level: warn
YAML
    "$BUILD/aggregator/rackpulse-aggregator" -c "$WORK/m$i.yaml" >/dev/null 2>"$WORK/m$i.log" &
    PID[$i]=$!
    PIDS+=($!)
  done
  # Settled: member 1 sees n live members owning every partition.
  local deadline=$(($(date +%s) + 120))
  until curl -sf "${URL[1]}/v1/cluster" | python3 -c "
import json, sys
c = json.load(sys.stdin)
live = [m for m in c['members'] if m['live']]
owned = sorted(p for m in live for p in m['partitions'])
ok = owned == list(range(c['partition_count'])) and all(m['partitions'] for m in live)
sys.exit(0 if len(live) == $n and ok else 1)" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the site of $n did not settle (see $WORK)"
    sleep 0.5
  done
  loadgen() { "$BUILD/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -q --racks "$RACKS" \
    --series "$SERIES" --dict-every 1000000000 "$@"; }
  # wait_round TS: every rack's newest frame (as the site lists it) has time TS.
  wait_round() {
    local deadline=$(($(date +%s) + 600))
    until curl -sf "${URL[1]}/v1/racks" | python3 -c "
import json, sys
r = json.load(sys.stdin)['racks']
sys.exit(0 if len(r) == $RACKS and all(x['last_frame_ms'] == $1 for x in r) else 1)"; do
      [ "$(date +%s)" -lt "$deadline" ] || die "the site did not catch up (see $WORK)"
      sleep 0.2
    done
  }
  metric_sum() { curl -sf "$1/metrics" | awk -v k="$2" '$1 == k {v = $2} END {print v}'; }
  local ts0 c0 c1 s0 s1
  ts0=$(($(now_ms) - (WARMUP + ROUNDS + 10) * 1000))
  loadgen --frames "$WARMUP" --ts-base "$ts0"
  wait_round $((ts0 + (WARMUP - 1) * 1000))
  for i in $(seq 1 "$n"); do
    c0[$i]=$(awk '{print $14 + $15}' "/proc/${PID[$i]}/stat")
    s0[$i]=$(metric_sum "${URL[$i]}" rackpulse_ingest_samples_total)
  done
  local t0 t1
  t0=$(now_ms)
  loadgen --frames "$ROUNDS" --seq-start $((WARMUP + 1)) --ts-base "$ts0"
  wait_round $((ts0 + (WARMUP + ROUNDS - 1) * 1000))
  t1=$(now_ms)
  echo "== $n member(s): $RACKS racks x $SERIES samples, $PARTITIONS partitions, store.sync $SYNC"
  for i in $(seq 1 "$n"); do
    c1=$(awk '{print $14 + $15}' "/proc/${PID[$i]}/stat")
    s1=$(metric_sum "${URL[$i]}" rackpulse_ingest_samples_total)
    python3 -c "
s, c = $s1 - ${s0[$i]}, ($c1 - ${c0[$i]}) / $TICKS
print('  m$i: %d samples in %.2f s CPU: %.2f M samples/s per core' % (s, c, s / c / 1e6 if c else 0))"
  done
  python3 -c "print('  site: %.2f M samples/s wall (%d samples in %.2f s)' % ($RACKS * $SERIES * $ROUNDS / (($t1 - $t0) / 1e3) / 1e6, $RACKS * $SERIES * $ROUNDS, ($t1 - $t0) / 1e3))"

  # Lag at the real cadence.
  for i in $(seq 1 "$n"); do curl -sf "${URL[$i]}/metrics" | grep '^rackpulse_ingest_frame_lag_seconds' >"$WORK/lag0-$i"; done
  loadgen --frames "$LAG_SECONDS" --seq-start $((WARMUP + ROUNDS + 1)) --rate "$RACKS"
  sleep 2
  for i in $(seq 1 "$n"); do curl -sf "${URL[$i]}/metrics" | grep '^rackpulse_ingest_frame_lag_seconds' >"$WORK/lag1-$i"; done
  python3 - "$WORK" "$n" "$((RACKS * SERIES))" <<'PYEOF'
import re, sys
work, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def read(path):
    b, cnt = {}, 0
    for line in open(path):
        m = re.match(r'rackpulse_ingest_frame_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[m.group(1)] = int(m.group(2))
        elif line.startswith("rackpulse_ingest_frame_lag_seconds_count"):
            cnt = int(line.split()[1])
    return b, cnt
tot, order, total = {}, [], 0
for i in range(1, n + 1):
    (b0, n0), (b1, n1) = read("%s/lag0-%d" % (work, i)), read("%s/lag1-%d" % (work, i))
    for le in b1:
        if le not in tot:
            order.append(le)
        tot[le] = tot.get(le, 0) + b1[le] - b0.get(le, 0)
    total += n1 - n0
def q(p):
    for le in order:
        if tot[le] >= p * total:
            return le
print("  lag: %d frames at %d samples/s offered: p50 <= %s s, p99 <= %s s" % (total, rate, q(0.5), q(0.99)))
PYEOF

  # Gate latency at member 1: racks it owns, and (n > 1) racks it forwards.
  curl -sf "${URL[1]}/v1/cluster" >"$WORK/cluster.json"
  python3 - "$WORK/cluster.json" "${URL[1]}" "$RACKS" "$GATES" <<'PYEOF'
import http.client, json, sys, time, urllib.parse, zlib
c = json.load(open(sys.argv[1]))
base, racks, gates = urllib.parse.urlparse(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mine = set(next(m for m in c["members"] if m["self"])["partitions"])
owned, other = [], []
for i in range(1, racks + 1):
    r = "r%04d" % i
    (owned if zlib.crc32(r.encode()) % c["partition_count"] in mine else other).append(r)
def run(label, names):
    if not names:
        return
    conn = http.client.HTTPConnection(base.hostname, base.port)
    lat, by = [], set()
    for k in range(gates):
        t = time.perf_counter()
        conn.request("GET", "/v1/racks/%s/gate?kw=1" % names[k % len(names)])
        resp = conn.getresponse()
        resp.read()
        lat.append(time.perf_counter() - t)
        by.add(resp.getheader("X-Rackpulse-Answered-By"))
        assert resp.status == 200, resp.status
    lat.sort()
    print("  gate at m1, %s (%d racks, answered by %s): p50 %.2f ms, p99 %.2f ms"
          % (label, len(names), ",".join(sorted(by)), lat[len(lat) // 2] * 1e3,
             lat[int(len(lat) * 0.99)] * 1e3))
run("owner", owned)
run("forwarded", other)
PYEOF
  cleanup
}

for n in $MEMBERS; do run_site "$n"; done
