#!/bin/bash
# The floor at a glance, through the real peers (pymodbus CDU -> two agents
# -> dev broker -> aggregator): GET /v1/floor, the per-rack metrics on
# /metrics (headroom, committed/reserved kW, flags, failing checks, agent
# spool), per-series and per-device export off by default and on with
# metrics.series and metrics.devices, and
# `rackpulsectl status` / `top` / `--json` ordering and content.
#   f1  breaker 120 kW: ~10.8 kW of power headroom, allowed
#   f2  breaker 200 kW: ~74.8 kW, but flagged (maintenance) so denied
#   f3  in the policy, never reports: denied, its missing evidence listed
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 30.0, "return_temp": 40.0, "flow": 120.0}'
cat >"$WORK/policy.yaml" <<'YAML'
version: floor-1
defaults:
  max_staleness: 10s
  power_margin_kw: 2
  supply_temp: {max: 40}
  power: {enabled: true, series: cdu.heat_load, stat: latest, across: sum}
  thermal: {enabled: true}
racks:
  - {id: f1, pool: p1, row: r1, loop: l1, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
  - {id: f2, pool: p1, row: r1, loop: l2, breaker_kw: 200, derating: 0.8, cdu_capacity_kw: 150}
  - {id: f3, pool: p1, row: r2, loop: l2, breaker_kw: 120, derating: 0.8, cdu_capacity_kw: 150}
YAML
(umask 077; echo "floor-test-token" >"$WORK/token")
AGG_POLICY="policy: {file: $WORK/policy.yaml}"
AGG_HTTP_EXTRA="token_file: $WORK/token"
start_aggregator
# The flag first: f2 is never evaluated without it.
curl -sf -X POST -H "Authorization: Bearer floor-test-token" "$URL/v1/flags" \
  -d "{\"rack\":\"f2\",\"flag\":\"maintenance\",\"owner\":\"ops\",\"expires_ms\":$(( $(date +%s) * 1000 + 3600000 )),\"reason\":\"pump swap\"}" \
  >/dev/null || fail "cannot set the flag on f2"
for r in f1 f2; do
  write_agent_config "$WORK/agent-$r.yaml" "$r" "$CDU"
  cat >>"$WORK/agent-$r.yaml" <<'YAML'
derived:
  - {name: cdu.delta_t, type: delta_t, return: cdu.return_temp, supply: cdu.supply_temp}
  - {name: cdu.heat_removed, type: heat_removed, return: cdu.return_temp,
     supply: cdu.supply_temp, flow: cdu.flow, coolant: water}
YAML
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-$r.yaml" >"$WORK/agent-$r.out" \
    2>"$WORK/agent-$r.log" &
  PIDS+=($!)
done

floor() { curl -sf "$URL/v1/floor" >"$WORK/floor.json"; }
j() { $PY -c "import json,sys; d=json.load(open('$WORK/floor.json')); r={x['rack']:x for x in d['racks']}; print($1)"; }
ready() {
  floor || return 1
  [ "$(j "r['f1']['decision'], r['f2']['power_headroom_kw'] is not None, r['f1']['thermal_headroom_kw'] is not None, r['f1']['delta_t'], 'flags' in [c['check'] for c in r['f2']['failing']]")" = "allow True True 10.0 True" ]
}
wait_for 60 ready || fail "the floor never showed f1 allowed and f2's headroom: $(head -c 2000 "$WORK/floor.json")"

# /v1/floor: every rack, with row, loop, headroom, flags, failing, missing.
[ "$(j "len(r)")" = 3 ] || fail "/v1/floor lists $(j "sorted(r)"), expected f1 f2 f3"
[ "$(j "r['f1']['row'], r['f1']['loop'], r['f2']['loop']")" = "r1 l1 l2" ] \
  || fail "rows/loops: $(j "[(x['rack'], x['row'], x['loop']) for x in d['racks']]")"
[ "$(j "round(r['f1']['power_headroom_kw'] - (96 - r['f1']['draw_kw'] - 2), 6)")" = "0.0" ] \
  || fail "f1 power headroom is not 120 x 0.8 - draw - 2: $(j "r['f1']")"
[ "$(j "r['f1']['supply_temp'], r['f2']['flags'], r['f2']['decision']")" = "30.0 ['maintenance'] deny" ] \
  || fail "f1 supply / f2 flag: $(j "r['f1']['supply_temp'], r['f2']")"
[ "$(j "'flags' in [c['check'] for c in r['f2']['failing']]")" = True ] \
  || fail "f2's failing checks lack flags: $(j "r['f2']['failing']")"
[ "$(j "r['f3']['decision'], r['f3']['age_s'], any('no frame' in m for m in r['f3']['missing'])")" = "deny None True" ] \
  || fail "f3 (never reported) is not shown missing: $(j "r['f3']")"
pass "/v1/floor: 3 racks with rows, loops, headroom, f2 flagged, f3's missing evidence"

# /metrics: the per-rack figures, and no per-series export by default.
curl -sf "$URL/metrics" >"$WORK/metrics.txt" || fail "/metrics"
metric() { awk -v k="$1" '$1 == k {print $2}' "$WORK/metrics.txt"; }
f1_power=$(j "r['f1']['power_headroom_kw']")
got=$(metric 'rackpulse_rack_headroom_kw{rack="f1",kind="power"}')
$PY -c "import sys; sys.exit(abs($got - $f1_power) > 1.0)" \
  || fail "rackpulse_rack_headroom_kw f1 power: $got, /v1/floor $f1_power"
[ "$(metric 'rackpulse_rack_power_limit_kw{rack="f2"}')" = 160 ] \
  || fail "f2 power limit: $(grep power_limit "$WORK/metrics.txt")"
[ "$(metric 'rackpulse_rack_reserved_kw{rack="f1"}')" = 0 ] || fail "f1 reserved kW"
[ -n "$(metric 'rackpulse_rack_committed_kw{rack="f1"}')" ] || fail "no committed kW for f1"
[ -n "$(metric 'rackpulse_rack_headroom_kw{rack="f1",kind="thermal"}')" ] || fail "no thermal headroom for f1"
[ "$(metric 'rackpulse_flag_active{rack="f2",flag="maintenance",owner="ops"}')" = 1 ] \
  || fail "f2's flag is not a metric"
[ "$(metric 'rackpulse_rack_check_failing{rack="f2",check="flags"}')" = 1 ] \
  || fail "f2's failing flags check is not a metric: $(grep check_failing "$WORK/metrics.txt")"
[ "$(metric 'rackpulse_rack_allowed{rack="f1"}') $(metric 'rackpulse_rack_allowed{rack="f3"}')" = "1 0" ] \
  || fail "rackpulse_rack_allowed f1/f3"
[ "$(metric 'rackpulse_rack_info{rack="f3",row="r2",loop="l2",pool="p1"}')" = 1 ] || fail "rack info f3"
[ -n "$(metric 'rackpulse_agent_spool_depth{agent="agent-f1",rack="f1"}')" ] \
  || fail "no spool depth for agent-f1: $(grep spool "$WORK/metrics.txt")"
[ "$(metric 'rackpulse_rack_devices_down{rack="f1"}')" = 0 ] || fail "f1 devices down"
! grep -q '^rackpulse_value{\|^rackpulse_window{' "$WORK/metrics.txt" \
  || fail "per-series metrics exported without metrics.series"
! grep -q '^rackpulse_device_up{' "$WORK/metrics.txt" \
  || fail "per-device metrics exported without metrics.devices"
pass "/metrics: headroom, limit, reserved, committed, flags, failing checks, spool; no per-series"

# status: worst first (f3 no data, f2 flagged, then f1), with content.
ctl status >"$WORK/status.txt" || fail "rackpulsectl status failed"
order=$(awk 'NR > 1 {print $1}' "$WORK/status.txt" | tr '\n' ' ')
[ "$order" = "f3 f2 f1 " ] || fail "status order: '$order'"$'\n'"$(cat "$WORK/status.txt")"
grep -E '^f2 +r1 +l2 +deny .*flags: maintenance.*failing: [a-z_,]*flags' "$WORK/status.txt" >/dev/null \
  || fail "status line of f2: $(grep '^f2' "$WORK/status.txt")"
grep -E '^f1 +r1 +l1 +allow +[0-9.]+ +[0-9.-]+ +30\.0 +10\.0 ' "$WORK/status.txt" >/dev/null \
  || fail "status line of f1: $(grep '^f1' "$WORK/status.txt")"
grep -E '^f3 .*missing: .*no frame received' "$WORK/status.txt" >/dev/null \
  || fail "status line of f3: $(grep '^f3' "$WORK/status.txt")"
[ "$(ctl status --row r1 | awk 'NR > 1 {print $1}' | tr '\n' ' ')" = "f2 f1 " ] || fail "status --row r1"
[ "$(ctl status --loop l2 | awk 'NR > 1 {print $1}' | tr '\n' ' ')" = "f3 f2 " ] || fail "status --loop l2"
ctl status --json --loop l1 >"$WORK/status.json" || fail "status --json"
$PY -c "
import json; d = json.load(open('$WORK/status.json'))
assert [r['rack'] for r in d['racks']] == ['f1'], d
assert d['racks'][0]['decision'] == 'allow' and d['racks'][0]['flags'] == [], d" \
  || fail "status --json: $(cat "$WORK/status.json")"
pass "status: worst first, filters, content, --json"

# top --count 2: two blocks, not a terminal so no escape codes.
ctl top --count 2 >"$WORK/top.txt" || fail "top failed"
[ "$(grep -c '^rackpulse top ' "$WORK/top.txt")" = 2 ] || fail "top blocks: $(cat "$WORK/top.txt")"
[ "$(grep -c '^f2 ' "$WORK/top.txt")" = 2 ] || fail "top lines: $(cat "$WORK/top.txt")"
! grep -q $'\033' "$WORK/top.txt" || fail "top wrote escape codes to a pipe"
pass "top --count 2: two plain blocks"

# Opt in: per-series metrics appear, bounded by series_max and counted.
kill -TERM "$AGG_PID"; wait "$AGG_PID" || fail "aggregator exit status $?"
AGG_EXTRA="metrics: {series: true, series_max: 5, devices: true}" start_aggregator
wait_for 30 sh -c "curl -sf '$URL/metrics' | grep -q '^rackpulse_metrics_series_capped_total [1-9]'" \
  || fail "series_max did not cap: $(curl -s "$URL/metrics" | grep -c '^rackpulse_\(value\|window\){')"
curl -sf "$URL/metrics" >"$WORK/metrics2.txt"
n=$(grep -c '^rackpulse_\(value\|window\){' "$WORK/metrics2.txt" || true)
[ "$n" = 5 ] || fail "metrics.series with series_max 5 exported $n per-series lines"
grep -q '^rackpulse_device_up{rack="f1",device="cdu1",kind="modbus"} 1' "$WORK/metrics2.txt" \
  || fail "metrics.devices: no device_up for f1: $(grep device_up "$WORK/metrics2.txt")"
pass "metrics.series/devices: per-series lines capped at series_max and counted; per-device lines"
