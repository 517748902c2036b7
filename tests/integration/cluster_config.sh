#!/bin/bash
# The aggregator's Kafka settings and cluster section:
#   - kafka.properties pass through to librdkafka like the agent's (TLS,
#     SASL), checked by --check-config (an unknown key is named), and reach
#     the running clients (a TLS CA file that does not exist stops the start,
#     named);
#   - properties exactly-once depends on (enable.idempotence, acks,
#     isolation.level, ...) are refused with the key named, and so are
#     secrets (the SASL password comes from kafka.sasl_password_file);
#   - the cluster section is checked: member ids, advertise URL required
#     when listening on every address.
source "$(dirname "$0")/lib.sh"

AGG="$RP_BIN/aggregator/rackpulse-aggregator"

expect_error() {
  local file=$1 pattern=$2 rc=0
  "$AGG" -c "$file" --check-config >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || fail "$file: expected exit 2, got $rc: $(cat "$WORK/err.txt")"
  grep -qE "$pattern" "$WORK/err.txt" \
    || fail "$file: message does not match '$pattern': $(cat "$WORK/err.txt")"
  pass "$(basename "$file"): $(cat "$WORK/err.txt")"
}

# write NAME KAFKA-EXTRA [TOP-EXTRA]: an aggregator config.
write() {
  cat >"$WORK/$1.yaml" <<YAML
kafka:
  brokers: 127.0.0.1:1
${2:-}
store: {path: $WORK/store}
${3:-}
YAML
}

for key in enable.idempotence acks isolation.level enable.auto.commit partitioner group.id; do
  write "reserved-$key" "  properties: {security.protocol: plaintext, $key: x}"
  expect_error "$WORK/reserved-$key.yaml" \
    "reserved-$key.yaml:3: kafka.properties.$key: $key is set by rackpulse itself"
done

write secret "  properties: {sasl.password: hunter2}"
expect_error "$WORK/secret.yaml" "secret.yaml:3: kafka.properties.sasl.password: secrets are not accepted.*kafka.sasl_password_file"
grep -q hunter2 "$WORK/err.txt" && fail "the secret was echoed"

write unknown "  properties: {ssl.bogus.key: 1}"
expect_error "$WORK/unknown.yaml" "kafka.properties.ssl.bogus.key: .*(No such|Unknown|unknown)"

umask 077
printf 's3cret-sasl\n' >"$WORK/sasl"
write sasl "  properties: {security.protocol: sasl_plaintext, sasl.mechanisms: PLAIN, sasl.username: agg}
  sasl_password_file: $WORK/sasl"
"$AGG" -c "$WORK/sasl.yaml" --check-config >"$WORK/out.txt" 2>&1 || fail "SASL settings refused: $(cat "$WORK/out.txt")"
grep -q s3cret "$WORK/out.txt" && fail "the SASL password was printed"
pass "SASL properties with the password from a file are valid"

write nofile "  sasl_password_file: $WORK/missing"
expect_error "$WORK/nofile.yaml" "kafka.sasl_password_file: .*missing"

# The properties reach the running clients: a CA file that does not exist.
write tls "  properties: {security.protocol: ssl, ssl.ca.location: $WORK/no-such-ca.pem}" \
  "http: {port: $(free_port)}"
rc=0
timeout 30 "$AGG" -c "$WORK/tls.yaml" >"$WORK/tls.out" 2>"$WORK/tls.log" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the aggregator ran with a missing CA file (rc $rc)"
grep -q "ssl.ca.location" "$WORK/tls.log" || fail "the CA file's setting is not named: $(cat "$WORK/tls.log")"
pass "kafka.properties reach the Kafka clients: a missing ssl.ca.location stops the start, named"

write bad-member "" "cluster: {member_id: 'a b'}"
expect_error "$WORK/bad-member.yaml" "bad-member.yaml:[0-9]+: cluster.member_id: 'a b'"
write no-advertise "" "http: {listen: 0.0.0.0}
cluster: {member_id: agg-1}"
expect_error "$WORK/no-advertise.yaml" "cluster.advertise: required when http.listen is 0.0.0.0"
write bad-advertise "" "cluster: {member_id: agg-1, advertise: '10.0.0.5:8470'}"
expect_error "$WORK/bad-advertise.yaml" "cluster.advertise: '10.0.0.5:8470': expected http://host:port"
write good-member "" "cluster: {member_id: agg-1, advertise: 'http://10.0.0.5:8470'}"
"$AGG" -c "$WORK/good-member.yaml" --check-config >/dev/null 2>"$WORK/err.txt" \
  || fail "a valid cluster section refused: $(cat "$WORK/err.txt")"
"$AGG" --help | grep -q "cluster.member_id" || fail "--help does not list cluster.member_id"
pass "the cluster section is checked and listed in --help"

# Co-partitioning is checked at start: a ledger topic with another partition
# count (here auto-created by the broker with 4, the frames have 2) stops
# the member, naming both counts.
"$RP_BIN/tools/rackpulse-devbroker" -p 2 -t rackpulse.frames -t rackpulse.members \
  --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.out" 2>"$WORK/broker.log" &
PIDS+=($!)
wait_for 10 test -s "$WORK/bootstrap" || fail "dev broker did not start"
cat >"$WORK/mismatch.yaml" <<YAML
kafka: {brokers: "$(cat "$WORK/bootstrap")"}
store: {path: $WORK/store-mismatch}
http: {port: $(free_port)}
cluster: {member_id: agg-1}
YAML
rc=0
timeout 60 "$AGG" -c "$WORK/mismatch.yaml" >"$WORK/mismatch.out" 2>"$WORK/mismatch.log" || rc=$?
[ "$rc" = 1 ] || fail "a member ran with a ledger topic of another partition count (rc $rc)"
grep -q "kafka.ledger_topic rackpulse.ledger has 4 partitions and kafka.topic rackpulse.frames has 2" \
  "$WORK/mismatch.log" || fail "the mismatch is not named: $(cat "$WORK/mismatch.log")"
pass "a ledger topic not co-partitioned with the frames stops the member, both counts named"
