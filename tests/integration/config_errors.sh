#!/bin/bash
# Bad configuration is refused with exit 2 and a message naming the file,
# the line and the key; --check-config accepts the shipped defaults.
source "$(dirname "$0")/lib.sh"

AGENT="$RP_BIN/agent/rackpulse-agent"
AGG="$RP_BIN/aggregator/rackpulse-aggregator"

# expect_error PROGRAM FILE PATTERN: exits 2 and stderr matches PATTERN.
expect_error() {
  local prog=$1 file=$2 pattern=$3 rc=0
  "$prog" -c "$file" --check-config >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || fail "$file: expected exit 2, got $rc: $(cat "$WORK/err.txt")"
  grep -qE "$pattern" "$WORK/err.txt" \
    || fail "$file: message does not match '$pattern': $(cat "$WORK/err.txt")"
  pass "$(basename "$file"): $(cat "$WORK/err.txt")"
}

cat >"$WORK/unknown-key.yaml" <<'YAML'
agent:
  rack: r1
kafka:
  brokers: 127.0.0.1:9092
  lingr: 5ms
YAML
expect_error "$AGENT" "$WORK/unknown-key.yaml" "unknown-key.yaml:5: kafka.lingr: unknown key"

# A kafka.properties entry librdkafka refuses is found by --check-config,
# not at the start (agent and aggregator alike).
cat >"$WORK/kafka-prop.yaml" <<'YAML'
agent: {rack: r1}
kafka:
  brokers: 127.0.0.1:9092
  properties:
    socket.timeout.ms: soon
YAML
expect_error "$AGENT" "$WORK/kafka-prop.yaml" \
  "kafka-prop.yaml:5: kafka.properties.socket.timeout.ms: the Kafka client refuses it: Invalid value"
# The partitioner and the delivery guarantees are the agent's own: an
# agent that put a rack on another partition would feed a member that does
# not answer for it.
for key in partitioner acks enable.idempotence; do
  printf 'agent: {rack: r1}\nkafka:\n  brokers: 127.0.0.1:9092\n  properties:\n    %s: random\n' "$key" \
    >"$WORK/reserved-$key.yaml"
  expect_error "$AGENT" "$WORK/reserved-$key.yaml" \
    "reserved-$key.yaml:5: kafka.properties.$key: $key is set by rackpulse itself"
done
cat >"$WORK/agg-kafka-prop.yaml" <<'YAML'
kafka:
  brokers: 127.0.0.1:9092
  properties:
    no.such.property: 1
YAML
expect_error "$AGG" "$WORK/agg-kafka-prop.yaml" \
  "agg-kafka-prop.yaml:4: kafka.properties.no.such.property: the Kafka client refuses it: No such configuration property"

cat >"$WORK/wrong-type.yaml" <<'YAML'
agent:
  rack: r1
  interval: soon
YAML
expect_error "$AGENT" "$WORK/wrong-type.yaml" "wrong-type.yaml:3: agent.interval: expected a duration"

cat >"$WORK/bad-register.yaml" <<'YAML'
agent: {rack: r1}
modbus:
  - name: cdu1
    host: 127.0.0.1
    registers:
      - {name: cdu.supply_temp, function: input, address: 0, type: i16}
      - {name: cdu.flow, function: input, address: 1, type: float16}
YAML
expect_error "$AGENT" "$WORK/bad-register.yaml" \
  "bad-register.yaml:7: modbus\[0\]\.registers\[1\]: type 'float16' is not one of"

cat >"$WORK/missing-rack.yaml" <<'YAML'
agent:
  interval: 1s
YAML
expect_error "$AGENT" "$WORK/missing-rack.yaml" "missing-rack.yaml:2: agent.rack: required key is missing"

cat >"$WORK/bad-yaml.yaml" <<'YAML'
agent:
  rack: [r1
YAML
expect_error "$AGENT" "$WORK/bad-yaml.yaml" "bad-yaml.yaml:[0-9]+: "

expect_error "$AGENT" "$WORK/does-not-exist.yaml" "does-not-exist.yaml: No such file or directory"

cat >"$WORK/agg-wrong.yaml" <<'YAML'
http:
  port: 99999
YAML
expect_error "$AGG" "$WORK/agg-wrong.yaml" "agg-wrong.yaml:2: http.port: 99999 is outside 1..65535"

cat >"$WORK/secret.yaml" <<'YAML'
agent: {rack: r1}
kafka:
  properties:
    sasl.password: hunter2
YAML
expect_error "$AGENT" "$WORK/secret.yaml" "secret.yaml:4: kafka.properties.sasl.password: secrets are not accepted"
grep -q hunter2 "$WORK/err.txt" && fail "the secret was echoed in the error"

# A secret file others can read is refused; the secret is never echoed.
echo "kafka-hunter2" >"$WORK/sasl.pass"
chmod 0644 "$WORK/sasl.pass"
printf 'agent: {rack: r1}\nkafka:\n  sasl_password_file: %s\n' "$WORK/sasl.pass" >"$WORK/sasl.yaml"
expect_error "$AGENT" "$WORK/sasl.yaml" "sasl.yaml:3: kafka.sasl_password_file: .*mode 0644 lets others read it"
grep -q hunter2 "$WORK/err.txt" && fail "the SASL secret was echoed"
chmod 0600 "$WORK/sasl.pass"
"$AGENT" -c "$WORK/sasl.yaml" --check-config >/dev/null || fail "a 0600 secret file was refused"

"$AGENT" -c "$RP_SRC/packaging/config/agent.yaml" --check-config >/dev/null \
  || fail "the shipped agent.yaml does not validate"
"$AGG" -c "$RP_SRC/packaging/config/aggregator.yaml" --check-config >/dev/null \
  || fail "the shipped aggregator.yaml does not validate"
printf 'policy: {file: %s}\n' "$RP_SRC/packaging/config/policy.yaml" >"$WORK/agg-policy.yaml"
"$AGG" -c "$WORK/agg-policy.yaml" --check-config >/dev/null \
  || fail "the shipped policy.yaml does not validate"
pass "shipped default configs and policy validate"

cat >"$WORK/bad-policy.yaml" <<'YAML'
version: p1
defaults:
  supply_temp: {max: 40, stat: p97}
YAML
printf 'policy: {file: %s}\n' "$WORK/bad-policy.yaml" >"$WORK/agg-bad-policy.yaml"
expect_error "$AGG" "$WORK/agg-bad-policy.yaml" "bad-policy.yaml:3: defaults.supply_temp: stat 'p97' is not"

"$AGENT" --help >"$WORK/agent-help.txt" || fail "agent --help failed"
"$AGG" --help >"$WORK/agg-help.txt" || fail "aggregator --help failed"
grep -q "order" "$WORK/agent-help.txt" || fail "--help misses register keys"
grep -q "spool.max_frames" "$WORK/agent-help.txt" || fail "--help misses spool keys"
grep -q "policy.supply_temp_max" "$WORK/agg-help.txt" || fail "--help misses policy keys"
pass "--help lists the configuration keys"
