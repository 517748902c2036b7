# Helpers for the ingest tests (sourced after lib.sh, not run): aggregators
# with a name each (own store, HTTP port, log), the load generator, and
# readings of /metrics.
#
#   start_agg NAME [GROUP]    starts aggregator NAME in consumer group GROUP
#                             (default rackpulse-aggregator); its store is
#                             $WORK/store-NAME, its log $WORK/NAME.log;
#                             $AGG_EXTRA adds sections, $AGG_HTTP_EXTRA http
#                             keys, $AGG_KAFKA_EXTRA kafka keys,
#                             $AGG_STORE_EXTRA store keys
#   AGG_URL[NAME] AGG_PID[NAME]
#   metric NAME 'series{labels}'   one value from NAME's /metrics
#   agent_totals NAME         "agents frames duplicates gaps" summed over agents
#   loadgen ARGS...           rackpulse-loadgen against the dev broker

declare -A AGG_PID AGG_URL AGG_PORT

start_agg() {
  local name=$1 group=${2:-rackpulse-aggregator}
  local port=${AGG_PORT[$name]:-$(free_port)}
  AGG_PORT[$name]=$port
  # A 1 MiB map at start: every test also exercises the map's growth.
  cat >"$WORK/$name.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", group: "$group", batch_max: ${BATCH_MAX:-200}, batch_wait: 20ms${AGG_KAFKA_EXTRA:+, $AGG_KAFKA_EXTRA}}
store: {path: $WORK/store-$name, map_size_mb: 1, map_size_max_mb: 1024${AGG_STORE_EXTRA:+, $AGG_STORE_EXTRA}}
http: {port: $port${AGG_HTTP_EXTRA:+, $AGG_HTTP_EXTRA}}
${AGG_EXTRA:-}
YAML
  echo "--- start $(date +%T.%N) group $group" >>"$WORK/$name.log"
  "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/$name.yaml" \
    >>"$WORK/$name.out" 2>>"$WORK/$name.log" &
  PIDS+=($!)
  AGG_PID[$name]=$!
  AGG_URL[$name]="http://127.0.0.1:$port"
  wait_for 15 curl -sf "${AGG_URL[$name]}/healthz" || fail "aggregator $name did not start"
}

# kill9_agg NAME: kill -9, and reap it.
kill9_agg() {
  kill -KILL "${AGG_PID[$1]}" 2>/dev/null || true
  wait "${AGG_PID[$1]}" 2>/dev/null || true
}

# assigned_since_start NAME: the aggregator's latest run logged an assignment.
assigned_since_start() {
  awk '/^--- start/ {a = 0} /ingest: assigned/ {a = 1} END {exit !a}' "$WORK/$1.log"
}

metric() {
  curl -sf "${AGG_URL[$1]}/metrics" | awk -v k="$2" '$1 == k {print $2; exit}'
}

agent_totals() {
  curl -sf "${AGG_URL[$1]}/metrics" | awk '
    /^rackpulse_agent_frames_total\{/ {n++; f += $2}
    /^rackpulse_agent_duplicates_total\{/ {d += $2}
    /^rackpulse_agent_gaps_total\{/ {g += $2}
    END {printf "%d %d %d %d\n", n, f, d, g}'
}

# frames_applied_are NAME N: per-agent counters add up to N frames.
frames_applied_are() {
  local t
  t=$(agent_totals "$1") || return 1
  [ "$(echo "$t" | cut -d' ' -f2)" = "$2" ]
}

loadgen() { "$RP_BIN/tools/rackpulse-loadgen" -b "$BOOTSTRAP" "$@"; }

# check_agents NAME FRAMES AGENTS: every agent has exactly FRAMES frames,
# no duplicate and no gap, and there are AGENTS of them.
check_agents() {
  curl -sf "${AGG_URL[$1]}/metrics" >"$WORK/$1.metrics" || return 1
  $PY - "$WORK/$1.metrics" "$2" "$3" <<'PYEOF'
import re, sys
text, frames, agents = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
seen = {}
for m in re.finditer(r'^rackpulse_agent_(frames|duplicates|gaps)_total\{agent="([^"]+)"[^}]*\} (\d+)$',
                     text, re.M):
    seen.setdefault(m.group(2), {})[m.group(1)] = int(m.group(3))
bad = {a: c for a, c in seen.items() if c != {"frames": frames, "duplicates": 0, "gaps": 0}}
assert len(seen) == agents, "%d agents, expected %d" % (len(seen), agents)
assert not bad, "agents not applied exactly once: %s" % sorted(bad.items())[:5]
PYEOF
}

# compare_racks A B: /v1/racks/{rack} of every rack is the same in A and B,
# but for the age fields (they depend on when each was asked).
compare_racks() {
  $PY - "${AGG_URL[$1]}" "${AGG_URL[$2]}" <<'PYEOF'
import json, sys, urllib.request
def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k != "age_s"}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
a, b = sys.argv[1], sys.argv[2]
racks_a = sorted(r["rack"] for r in get(a, "/v1/racks")["racks"])
racks_b = sorted(r["rack"] for r in get(b, "/v1/racks")["racks"])
assert racks_a == racks_b, (racks_a, racks_b)
assert racks_a, "no racks"
for rack in racks_a:
    ra, rb = strip(get(a, "/v1/racks/" + rack)), strip(get(b, "/v1/racks/" + rack))
    if ra != rb:
        diff = [k for k in ra["series"] if ra["series"][k] != rb["series"].get(k)][:3]
        raise AssertionError("rack %s differs: series %s; %s vs %s" % (
            rack, diff, {k: v for k, v in ra.items() if k not in ("series", "stats", "devices")},
            {k: v for k, v in rb.items() if k not in ("series", "stats", "devices")}))
print(len(racks_a))
PYEOF
}

# stop_agg NAME: SIGTERM, and the aggregator must exit 0 (under the
# sanitizer build that includes no leak and no undefined behaviour).
stop_agg() {
  local pid=${AGG_PID[$1]} rc=0
  kill -TERM "$pid" 2>/dev/null || fail "aggregator $1 is not running"
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "aggregator $1 exited $rc on SIGTERM: $(grep -E 'Sanitizer|runtime error' "$WORK/$1.log" | head -3)"
}
