#!/bin/bash
# Ledger writes of one cluster member (issue 19): how long a reservation
# create, a flag set and a flag clear take to be answered, each one produced
# to kafka.ledger_topic and acknowledged (and, since the claims fence,
# read back from the partition) before it is committed and answered.
#
#   bash bench/bench_ledger_write.sh [BUILD_DIR]      (default: build)
#
# Starts the dev broker (tools/rackpulse-devbroker), one aggregator with
# cluster.member_id set, a power policy on racks r0001..r$RACKS (so
# reservations are admitted) and an API token, and sends two frames per
# rack with the load generator so every rack has readings. Then, over one
# kept-alive HTTP connection (Python http.client), WARMUP unmeasured rounds
# and WRITES measured rounds, each round: POST /v1/reservations (create,
# 201), POST /v1/flags (set maintenance, 201), DELETE /v1/flags/RACK/
# maintenance (clear, 200), on rack r0001.. in turn. Prints p50, p99 and
# max latency of each kind and the writes per second of the measured part.
# FOREIGN=1: before each write, another producer (kcat) appends a record to
# the rack's partition of the ledger topic (key RACK/bench-noise/N, a kind
# the member skips with a warning), so the member's read-back after that
# write has a record to read (without it, consecutive writes of one member
# leave nothing between its confirmed offset and its record: no Fetch).
# Writes per second are then the writes over the sum of their latencies
# (kcat's time left out).
# Environment: WRITES (300) WARMUP (20) RACKS (50) PARTITIONS (4) SYNC (meta)
# FOREIGN (0).
# The broker (librdkafka's mock cluster, in process), the member and the
# client share this machine's cores: run it under flock /tmp/quiet.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WRITES=${WRITES:-300} WARMUP=${WARMUP:-20} RACKS=${RACKS:-50}
PARTITIONS=${PARTITIONS:-4} SYNC=${SYNC:-meta} FOREIGN=${FOREIGN:-0}
[ "$FOREIGN" = 0 ] || command -v kcat >/dev/null || { echo "bench_ledger_write: FOREIGN=1 needs kcat" >&2; exit 2; }
for b in tools/rackpulse-devbroker tools/rackpulse-loadgen aggregator/rackpulse-aggregator; do
  [ -x "$BUILD/$b" ] || { echo "bench_ledger_write: $BUILD/$b is missing (build first)" >&2; exit 2; }
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
die() {
  echo "bench_ledger_write: $*" >&2
  [ -z "$WORK" ] || tail -n 20 "$WORK/m1.log" >&2 || true
  exit 1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# The commit the build was made from (its CMake source directory's HEAD).
build_commit() {
  local src
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null) || true
  [ -n "$src" ] && git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown
}

WORK=$(mktemp -d /tmp/rackpulse-bench-ledger.XXXXXX)
chmod 700 "$WORK"
"$BUILD/tools/rackpulse-devbroker" -p "$PARTITIONS" --bootstrap-file "$WORK/bootstrap" \
  >/dev/null 2>"$WORK/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
[ -s "$WORK/bootstrap" ] || die "the dev broker did not start (see $WORK/broker.log)"
BOOTSTRAP=$(cat "$WORK/bootstrap")

(umask 077 && echo "bench-token" >"$WORK/token")
{
  echo "version: bench-ledger"
  echo "defaults:"
  echo "  max_staleness: 1h"
  echo "  power_margin_kw: 0"
  echo "  power: {enabled: true, series: server.power, stat: latest, across: sum}"
  echo "racks:"
  for i in $(seq 1 "$RACKS"); do printf '  - {id: r%04d, breaker_kw: 100, derating: 0.8}\n' "$i"; done
} >"$WORK/policy.yaml"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
cat >"$WORK/m1.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_max: 200, batch_wait: 20ms}
store: {path: $WORK/store-1, map_size_mb: 64, map_size_max_mb: 1024, sync: $SYNC}
http: {port: $PORT, threads: 4, rate_limit: 0, token_file: $WORK/token}
policy: {file: $WORK/policy.yaml}
flags: {automatic: false}
cluster: {member_id: m1, heartbeat: 500ms, member_timeout: 3s}
log_level: warn
YAML
"$BUILD/aggregator/rackpulse-aggregator" -c "$WORK/m1.yaml" >/dev/null 2>"$WORK/m1.log" &
PIDS+=($!)

# Settled: the member is live and owns every partition.
deadline=$(($(date +%s) + 120))
until curl -sf "$URL/v1/cluster" 2>/dev/null | python3 -c "
import json, sys
c = json.load(sys.stdin)
live = [m for m in c['members'] if m['live']]
owned = sorted(p for m in live for p in m['partitions'])
sys.exit(0 if len(live) == 1 and owned == list(range(c['partition_count'])) else 1)" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the member did not take the partitions"
  sleep 0.3
done
"$BUILD/tools/rackpulse-loadgen" -b "$BOOTSTRAP" -q --racks "$RACKS" --frames 2 --series 12 \
  2>"$WORK/loadgen.log" || die "the load generator failed: $(cat "$WORK/loadgen.log")"
deadline=$(($(date +%s) + 120))
until curl -sf "$URL/v1/racks" | python3 -c "
import json, sys
sys.exit(0 if len(json.load(sys.stdin)['racks']) == $RACKS else 1)" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || die "not every rack's frames were applied"
  sleep 0.3
done

echo "== ledger writes, build $BUILD (commit $(build_commit)): $WRITES rounds after $WARMUP," \
  "$RACKS racks, $PARTITIONS partitions, store.sync $SYNC, foreign records $FOREIGN"
python3 - "$URL" "$WORK/token" "$RACKS" "$WARMUP" "$WRITES" "$FOREIGN" "$BOOTSTRAP" "$PARTITIONS" \
  <<'PYEOF' || die "a write failed"
import http.client, json, subprocess, sys, time, urllib.parse, zlib
base = urllib.parse.urlparse(sys.argv[1])
token = open(sys.argv[2]).read().strip()
racks, warmup, writes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
foreign, bootstrap, partitions = sys.argv[6] != "0", sys.argv[7], int(sys.argv[8])
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
end_ms = int(time.time() * 1000) + 6 * 3600 * 1000
lat = {"reservation create": [], "flag set": [], "flag clear": []}

def noise(rack, n):
    # A record by another producer on rack's partition (CRC-32 of the key,
    # as the members partition), before the member's next record there.
    p = zlib.crc32(rack.encode()) % partitions
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", "rackpulse.ledger", "-p", str(p),
                    "-k", "%s/bench-noise/%d" % (rack, n)], input=b"{}", check=True,
                   stderr=subprocess.DEVNULL)

def call(kind, method, path, body, want, keep):
    if foreign:
        noise(body["rack"] if body else path.split("/")[3], len(lat[kind]) + 100000 * keep)
    t = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter() - t
    if resp.status != want:
        sys.exit("%s %s: HTTP %d (wanted %d) %s" % (method, path, resp.status, want, data[:300]))
    if keep:
        lat[kind].append(dt)

t0 = None
for k in range(warmup + writes):
    if k == warmup:
        t0 = time.perf_counter()
    keep = k >= warmup
    rack = "r%04d" % (k % racks + 1)
    call("reservation create", "POST", "/v1/reservations",
         {"rack": rack, "kw": 0.1, "owner": "bench-%d" % k, "end": end_ms}, 201, keep)
    call("flag set", "POST", "/v1/flags",
         {"rack": rack, "flag": "maintenance", "owner": "bench", "expires_ms": end_ms}, 201, keep)
    call("flag clear", "DELETE", "/v1/flags/%s/maintenance" % rack, None, 200, keep)
wall = time.perf_counter() - t0
for kind, v in lat.items():
    v.sort()
    print("  %-18s n=%d  p50 %.2f ms  p99 %.2f ms  max %.2f ms"
          % (kind, len(v), v[len(v) // 2] * 1e3, v[min(len(v) - 1, int(len(v) * 0.99))] * 1e3,
             v[-1] * 1e3))
n = sum(len(v) for v in lat.values())
if foreign:
    busy = sum(sum(v) for v in lat.values())
    print("  all: %d writes, %.2f s answering them: %.1f writes/s (kcat left out)" % (n, busy, n / busy))
else:
    print("  all: %d writes in %.2f s: %.1f writes/s" % (n, wall, n / wall))
PYEOF
