#!/bin/bash
# The incident-map page at RACKS racks: RACKS racks in state (published by
# rackpulse-loadgen through the dev broker) under a policy of 10 rows x 4
# cooling loops, then (1) GET /v1/floor, the page's one request per
# refresh: size and latency over 20 requests, and (2) the page itself in
# headless Chromium for SECONDS of real time (several 2 s refreshes): the
# page's own figures of its last and slowest refresh (fetch and parse of
# the floor, DOM render), read from its #perf element.
#
#   [FLOOR_SHOT=floor.png] bash bench/bench_floor.sh [BUILD_DIR] [--racks N] [--seconds S]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
[ $# -gt 0 ] && shift
RACKS=1000 SECONDS_=12
while [ $# -gt 0 ]; do
  case $1 in
    --racks) RACKS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    *) echo "bench_floor: unknown option $1" >&2; exit 2 ;;
  esac
done
CHROMIUM=$(command -v chromium) || { echo "bench_floor: chromium is not installed (tools/deps.sh)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/rackpulse-bench-floor.XXXXXX)
PIDS=()
trap 'for ((i=${#PIDS[@]}-1;i>=0;i--)); do kill ${PIDS[$i]} 2>/dev/null || true; sleep 0.5; done; rm -rf "$WORK"' EXIT

"$BUILD/tools/rackpulse-devbroker" --bootstrap-file "$WORK/bs" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/bs" ] && break; sleep 0.1; done
BS=$(cat "$WORK/bs")
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "version: bench-floor"
  echo "defaults: {max_staleness: 1h, supply_temp: {max: 34}}"
  echo "racks:"
  for ((i = 1; i <= RACKS; i++)); do
    printf '  - {id: r%04d, row: row%02d, loop: loop%d, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}\n' \
      "$i" $(( (i - 1) * 10 / RACKS )) $(( (i - 1) % 4 ))
  done
} >"$WORK/policy.yaml"
cat >"$WORK/agg.yaml" <<YAML
kafka: {brokers: "$BS"}
store: {path: $WORK/store, map_size_mb: 512}
http: {port: $PORT, threads: 2, max_connections: 1024, rate_limit: 0}
policy: {file: $WORK/policy.yaml}
flags: {automatic: false}
log_level: warn
YAML
"$BUILD/aggregator/rackpulse-aggregator" -c "$WORK/agg.yaml" 2>"$WORK/agg.log" &
PIDS+=($!)
"$BUILD/tools/rackpulse-loadgen" -b "$BS" -r "$RACKS" -n 3 -s 20 -q
URL="http://127.0.0.1:$PORT"
for _ in $(seq 300); do
  n=$(curl -s "$URL/v1/racks" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["racks"]))' 2>/dev/null || echo 0)
  [ "$n" -ge "$RACKS" ] && break
  sleep 0.2
done
echo "racks in state: $n"
for _ in $(seq 20); do curl -s -o "$WORK/floor.json" -w '%{time_total}\n' "$URL/v1/floor"; done | sort -n >"$WORK/t"
echo "GET /v1/floor: $(wc -c <"$WORK/floor.json") bytes ($(gzip -c "$WORK/floor.json" | wc -c) gzipped);" \
  "20 requests: min $(head -1 "$WORK/t") s, median $(sed -n 10p "$WORK/t") s, max $(tail -1 "$WORK/t") s"
# Real time, not virtual time (under --virtual-time-budget performance.now()
# stands still while scripts run): Chromium is driven over the DevTools
# protocol on a pipe (--remote-debugging-pipe: fds 3 and 4, NUL-separated
# JSON), which Python's standard library can speak.
/usr/bin/python3 - "$CHROMIUM" "$URL/" "$SECONDS_" "$WORK" <<'PYEOF'
import json, os, subprocess, sys, time
chromium, url, seconds, work = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()
args = [chromium, "--headless", "--disable-gpu", "--no-first-run", "--user-data-dir=" + work + "/chromium",
        "--disable-extensions", "--disable-background-networking", "--window-size=1600,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--remote-debugging-pipe", url]
if os.getuid() == 0:
    args.insert(2, "--no-sandbox")
def fds():  # in the child: the protocol's pipe ends as fds 3 and 4
    r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
    os.dup2(r, 3); os.dup2(w, 4)
p = subprocess.Popen(args, preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
                     stderr=open(work + "/chromium.log", "w"))
os.close(to_chrome_r); os.close(from_chrome_w)
buf, n = b"", 0
def call(method, params=None, session=None):
    global buf, n
    n += 1
    msg = {"id": n, "method": method, "params": params or {}}
    if session: msg["sessionId"] = session
    os.write(to_chrome_w, json.dumps(msg).encode() + b"\0")
    while True:
        while b"\0" not in buf:
            chunk = os.read(from_chrome_r, 1 << 16)
            if not chunk: raise SystemExit("chromium closed the pipe")
            buf += chunk
        raw, buf = buf.split(b"\0", 1)
        m = json.loads(raw)
        if m.get("id") == n:
            return m.get("result", m)
time.sleep(seconds)
targets = call("Target.getTargets")["targetInfos"]
page = next(t for t in targets if t["type"] == "page")
session = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
r = call("Runtime.evaluate", {"expression": "JSON.stringify(Object.assign({}, document.getElementById('perf').dataset))",
                              "returnByValue": True}, session)
print("page (real time, %g s):" % seconds, r["result"]["value"])
if os.environ.get("FLOOR_SHOT"):  # FLOOR_SHOT=file.png: keep a screenshot of the floor
    import base64
    shot = call("Page.captureScreenshot", {"format": "png"}, session)
    open(os.environ["FLOOR_SHOT"], "wb").write(base64.b64decode(shot["data"]))
call("Browser.close")
p.wait(timeout=30)
PYEOF
