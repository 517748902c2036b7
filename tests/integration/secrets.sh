#!/bin/bash
# Secrets other than BMC passwords (ipmi_secrets.sh has those) stay out of
# sight: the aggregator's API token (http.token_file) and the agent's Kafka
# SASL password (kafka.sasl_password_file).
#   1. A secret file others can read, or its group write, is refused with a
#      clear error naming the file, its mode and the fix: the aggregator does
#      not start, the agent's --check-config fails; a SASL password written
#      in kafka.properties is refused, and not echoed.
#   2. With 0600 and 0640 files both run: Modbus (tools/cdu_sim.py) -> agent
#      -> dev broker -> aggregator; the token works for changes, a missing or
#      wrong one gets 401.
#   3. Neither secret appears in any log (debug level), in /proc/PID/cmdline
#      or /proc/PID/environ of either daemon, in `rackpulse-agent --once`,
#      in /metrics, in the API's answers (401s included) nor in
#      rackpulsectl's output.
source "$(dirname "$0")/lib.sh"

TOKEN='rp-tok-7Hq2ZkV9sWc4'
SASL='rp-sasl-X4mW8pLcT1'
# The test's own files name the secrets; everything the daemons produce is
# collected under $WORK/seen/ and searched at the end.
mkdir -p "$WORK/seen"
printf '%s\n' "$TOKEN" >"$WORK/token"
printf '%s\n' "$SASL" >"$WORK/sasl"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift

# --- 1. refused secret files ----------------------------------------------
# The aggregator reads its token at start: a bad mode stops it (exit 1).
AGG_CFG="$WORK/agg-refused.yaml"
cat >"$AGG_CFG" <<YAML
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $WORK/store-refused}
http: {port: $(free_port), token_file: $WORK/token}
YAML
for mode in 0644 0604 0660; do
  chmod "$mode" "$WORK/token"
  rc=0
  timeout 20 "$RP_BIN/aggregator/rackpulse-aggregator" -c "$AGG_CFG" --log-level debug \
    >"$WORK/seen/agg-$mode.out" 2>"$WORK/seen/agg-$mode.log" || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "aggregator with a $mode token file: exit $rc"
  grep -q "$WORK/token: mode $mode lets others read it or its group write it: at most 0640" \
    "$WORK/seen/agg-$mode.log" || fail "no clear error for mode $mode: $(cat "$WORK/seen/agg-$mode.log")"
done
pass "token files with mode 0644, 0604, 0660 refused at start, naming file, mode and fix"

write_agent_config "$WORK/agent.yaml" s1 "$CDU"
# librdkafka's own debug output (its configuration included) goes to the
# agent's log too.
KAFKA_EXTRA="sasl_password_file: $WORK/sasl, properties: {debug: \"conf,security,broker\"}"
sed -i "s|linger: 5ms}|linger: 5ms, $KAFKA_EXTRA}|" "$WORK/agent.yaml"
grep -q sasl_password_file "$WORK/agent.yaml" || fail "could not add sasl_password_file"
chmod 0644 "$WORK/sasl"
rc=0
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --check-config \
  >"$WORK/seen/check-0644.out" 2>"$WORK/seen/check-0644.log" || rc=$?
[ "$rc" -eq 2 ] || fail "agent --check-config with a 0644 SASL password file: exit $rc"
grep -q "kafka.sasl_password_file: $WORK/sasl: mode 0644 lets others read it" \
  "$WORK/seen/check-0644.log" || fail "no clear error: $(cat "$WORK/seen/check-0644.log")"
# A password written in the config itself is refused, without repeating it.
sed "s|properties: {debug: \"conf,security,broker\"}|properties: {sasl.password: \"$SASL\"}|" \
  "$WORK/agent.yaml" >"$WORK/agent-inline.yaml"
rc=0
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-inline.yaml" --check-config \
  >"$WORK/seen/check-inline.out" 2>"$WORK/seen/check-inline.log" || rc=$?
[ "$rc" -eq 2 ] && grep -q "secrets are not accepted in the config file" "$WORK/seen/check-inline.log" \
  || fail "sasl.password in kafka.properties not refused (exit $rc): $(cat "$WORK/seen/check-inline.log")"
rm -f "$WORK/agent-inline.yaml" # it holds the secret itself: not the daemons' output
pass "agent: a 0644 SASL password file and a password in kafka.properties refused (exit 2)"

# --- 2. 0600 / 0640 files work --------------------------------------------
chmod 0600 "$WORK/sasl"
chmod 0640 "$WORK/token"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --check-config \
  >"$WORK/seen/check-0600.out" 2>"$WORK/seen/check-0600.log" \
  || fail "agent refused a 0600 SASL password file: $(cat "$WORK/seen/check-0600.log")"
AGG_HTTP_EXTRA="token_file: $WORK/token" AGG_EXTRA=$'log_level: debug\nmetrics: {series: true}' start_aggregator
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --log-level debug \
  >"$WORK/seen/agent.out" 2>"$WORK/seen/agent.log" &
PIDS+=($!)
AGENT_PID=$!
wait_for 30 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' gate --rack s1 --kw 1 \
  >'$WORK/seen/gate.txt' 2>&1" || fail "no allow from the gate: $(cat "$WORK/seen/gate.txt")"
pass "agent (0600 SASL password file) delivers, aggregator (0640 token file) answers"

code() { curl -s -o "$WORK/seen/$1.json" -w '%{http_code}' "${@:2}"; }
body='{"rack": "s1", "flag": "maintenance", "owner": "secrets-test", "expires_ms": 9999999999999}'
[ "$(code flag-none -X POST -d "$body" "$URL/v1/flags")" = 401 ] || fail "no token: not 401"
[ "$(code flag-wrong -X POST -H "Authorization: Bearer ${TOKEN}x" -d "$body" "$URL/v1/flags")" = 401 ] \
  || fail "wrong token: not 401"
[ "$(code flag-prefix -X POST -H "Authorization: Bearer ${TOKEN:0:8}" -d "$body" "$URL/v1/flags")" = 401 ] \
  || fail "a prefix of the token: not 401"
[ "$(code flag-ok -X POST -H "Authorization: Bearer $TOKEN" -d "$body" "$URL/v1/flags")" = 201 ] \
  || fail "the right token: not 201: $(cat "$WORK/seen/flag-ok.json")"
chmod 0600 "$WORK/token"
"$RP_BIN/tools/rackpulsectl" --url "$URL" --token-file "$WORK/token" flags clear --rack s1 \
  --flag maintenance >"$WORK/seen/ctl-clear.out" 2>&1 || fail "rackpulsectl flags clear failed"
pass "changes: 401 without the token, with a wrong one or a prefix; 201/200 with it"

# --- 3. nowhere to be seen -------------------------------------------------
for p in "$AGG_PID" "$AGENT_PID"; do
  tr '\0' '\n' <"/proc/$p/cmdline" >"$WORK/seen/cmdline-$p" || fail "no /proc/$p"
  tr '\0' '\n' <"/proc/$p/environ" >"$WORK/seen/environ-$p" || fail "no /proc/$p"
done
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once --log-level debug \
  >"$WORK/seen/once.json" 2>"$WORK/seen/once.log" || fail "--once failed: $(tail -3 "$WORK/seen/once.log")"
grep -q '"rack_id": "s1"' "$WORK/seen/once.json" || fail "--once printed no frame"
curl -sf "$URL/metrics" >"$WORK/seen/metrics.txt" || fail "GET /metrics"
grep -q '^rackpulse_value{rack="s1"' "$WORK/seen/metrics.txt" || fail "/metrics has no values"
for path in /v1/racks /v1/racks/s1 /v1/flags /v1/audit /v1/reservations "/v1/racks/s1/gate?kw=1"; do
  curl -s "$URL$path" >"$WORK/seen/api-$(echo "$path" | tr -c 'a-z0-9\n' _).json"
done
"$RP_BIN/tools/rackpulsectl" --url "$URL" --token-file "$WORK/token" flags set --rack s1 \
  --flag scale-back --owner secrets-test --for 10m >"$WORK/seen/ctl-set.out" 2>&1 \
  || fail "rackpulsectl flags set failed: $(cat "$WORK/seen/ctl-set.out")"
# Let both daemons log a few more cycles (deliveries, gate decisions), then
# stop them: what they log on the way out counts too.
sleep 2
kill -TERM "$AGENT_PID" "$AGG_PID"
wait "$AGENT_PID" "$AGG_PID" 2>/dev/null || true
cp "$WORK/aggregator.log" "$WORK/aggregator.out" "$WORK/seen/"
grep -q "CONFWARN\|conf\|security" "$WORK/seen/agent.log" \
  || fail "the agent's log has no librdkafka debug lines"
n=$(ls "$WORK/seen" | wc -l)
if grep -r -l -F -e "$TOKEN" -e "$SASL" "$WORK/seen" >"$WORK/leaks.txt"; then
  fail "a secret shows in: $(cat "$WORK/leaks.txt")"
fi
# The same, for a fragment (a truncated log line or a hex dump would not
# hold the whole secret).
if grep -r -l -F -e "${TOKEN:4:10}" -e "${SASL:5:10}" "$WORK/seen" >"$WORK/leaks.txt"; then
  fail "part of a secret shows in: $(cat "$WORK/leaks.txt")"
fi
pass "neither secret in $n logs, outputs, answers, cmdlines and environments"
