#!/bin/bash
# Prometheus (Debian's `prometheus`) scrapes the aggregator's /metrics on
# loopback, with its own configuration and storage in $WORK; queries through
# its HTTP API return the rack's supply temperature, a window statistic and
# the ingest counters, as the aggregator holds them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

command -v prometheus >/dev/null || fail "prometheus is not installed (bash tools/deps.sh)"
start_broker
# Per-series export (rackpulse_value, rackpulse_window) is opt-in.
AGG_EXTRA="metrics: {series: true}" start_agg p
wait_for 20 assigned_since_start p || fail "no partition assigned"
loadgen --racks 2 --frames 3 --series 12 --rack-prefix pr 2>"$WORK/loadgen.log" \
  || fail "loadgen failed"
wait_for 20 frames_applied_are p 6 || fail "frames not applied: $(agent_totals p)"
# Rack 1, agent 1, seq 3: 250 + (1*31 + 1*7 + 0*3 + 3) % 100 = 291 -> 29.1 Cel.
curl -sf "${AGG_URL[p]}/v1/racks/pr0001" | grep -q '"cdu.supply_temp@cdu1":{[^}]*"value":29.1' \
  || fail "the aggregator does not hold 29.1: $(curl -s "${AGG_URL[p]}/v1/racks/pr0001" | head -c 400)"

PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
cat >"$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: rackpulse
    static_configs: [{targets: ["127.0.0.1:${AGG_PORT[p]}"]}]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
PROM_PID=$!
wait_for 30 curl -sf "$PROM/-/ready" || fail "prometheus did not become ready"

# query PROMQL: the single value of an instant query, or nothing.
query() {
  curl -sf "$PROM/api/v1/query" --data-urlencode "query=$1" | $PY -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
if len(r) == 1: print(r[0]["value"][1])'
}
supply='rackpulse_value{job="rackpulse",rack="pr0001",series="cdu.supply_temp",device="cdu1",unit="Cel"}'
supply_is_29_1() { [ "$(query "$supply")" = "29.1" ]; }
wait_for 30 supply_is_29_1 \
  || fail "prometheus has no supply temperature 29.1: $(curl -s "$PROM/api/v1/query" --data-urlencode "query=$supply")"
pass "Prometheus query $supply = 29.1"

p95=$(query 'rackpulse_window{rack="pr0001",series="cdu.supply_temp",window="300",stat="p95"}')
[ "$p95" = "30.1" ] || fail "window p95 over 300 s: '$p95', expected 30.1"
frames=$(query 'rackpulse_ingest_frames_total{outcome="applied"}')
[ "$frames" = "6" ] || fail "applied frames through prometheus: '$frames'"
up=$(query 'up{job="rackpulse"}')
[ "$up" = "1" ] || fail "the scrape target is not up: '$up'"
pass "Prometheus has the window p95 (30.1), the ingest counter (6) and the target up"

# The frame lag histogram: every bucket (27 bounds and +Inf, fine between
# 0.25 and 5 s) parsed, each frame counted once, and histogram_quantile
# answers from it.
buckets=$(query 'count(rackpulse_ingest_frame_lag_seconds_bucket{job="rackpulse"})')
[ "$buckets" = "28" ] || fail "lag histogram buckets through prometheus: '$buckets', expected 28"
inf=$(query 'rackpulse_ingest_frame_lag_seconds_bucket{le="+Inf"}')
[ "$inf" = "6" ] || fail "lag histogram +Inf bucket: '$inf', expected 6"
p99=$(query 'histogram_quantile(0.99, rackpulse_ingest_frame_lag_seconds_bucket)')
[ -n "$p99" ] && [ "$p99" != "NaN" ] || fail "histogram_quantile over the lag histogram: '$p99'"
pass "Prometheus reads the lag histogram's 28 buckets (6 frames, p99 estimate $p99 s)"

kill -TERM "$PROM_PID"
wait "$PROM_PID" 2>/dev/null || true
stop_agg p
pass "prometheus and the aggregator stop cleanly"
