#!/bin/bash
# HTTPS for the API, with certificates made by openssl at test time:
#  1. the aggregator serves HTTPS; curl (a third-party client) and
#     rackpulsectl verify it against the CA (--cacert) and refuse it without;
#  2. a client certificate whose common name a tokens_file line names
#     (cert:CN) authenticates as that client, with its roles, and the audit
#     says so; a certificate from another CA does not;
#  3. plain HTTP on a non-loopback address is refused at start.
source "$(dirname "$0")/lib.sh"

cd "$WORK"
openssl_quiet() { openssl "$@" >/dev/null 2>&1; }
make_tls_certs "$WORK"
openssl_quiet req -newkey rsa:2048 -nodes -subj "/CN=ci-bot" -keyout client.key -out client.csr
openssl_quiet x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem \
  || fail "openssl: client certificate"
# The same common name, from a CA the aggregator does not trust.
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ci-bot" \
  -keyout rogue.key -out rogue.pem || fail "openssl: rogue certificate"
chmod 0600 server.key client.key rogue.key
cd - >/dev/null

printf 'bot flag cert:ci-bot\n' >"$WORK/tokens"
chmod 0600 "$WORK/tokens"
start_broker
AGG_HTTP_EXTRA="tokens_file: $WORK/tokens, tls_cert: $WORK/server.pem, tls_key: $WORK/server.key, tls_client_ca: $WORK/ca.pem"
HTTP_PORT=$(free_port)
cat >"$WORK/aggregator.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_wait: 20ms}
store: {path: $WORK/store, map_size_mb: 64}
http: {port: $HTTP_PORT, $AGG_HTTP_EXTRA}
policy: {version: test-1}
YAML
"$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/aggregator.yaml" \
  >"$WORK/aggregator.out" 2>"$WORK/aggregator.log" &
PIDS+=($!)
AGG_PID=$!
URL="https://127.0.0.1:$HTTP_PORT"
wait_for 15 curl -sf --cacert "$WORK/ca.pem" "$URL/healthz" || fail "no HTTPS: $(cat "$WORK/aggregator.log")"
grep -q "serving on https://" "$WORK/aggregator.log" || fail "the log does not say https"

# 1. Verified with the CA; refused without it.
set +e
curl -s -o /dev/null "$URL/healthz"; rc=$?
set -e
[ "$rc" -eq 60 ] || fail "curl without the CA got rc $rc, not 60 (certificate not verified)"
ctl --cacert "$WORK/ca.pem" flags >/dev/null || fail "rackpulsectl --cacert could not list flags"
set +e
ctl flags >/dev/null 2>"$WORK/nocacert.txt"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -qi "certificate" "$WORK/nocacert.txt" \
  || fail "rackpulsectl without --cacert: rc $rc $(cat "$WORK/nocacert.txt")"
pass "HTTPS: curl and rackpulsectl verify the server with the CA and refuse it without"

# 2. A client certificate as the credential.
ctl --cacert "$WORK/ca.pem" --cert "$WORK/client.pem" --key "$WORK/client.key" --deploy-id dep-tls \
  flags set --rack r9 --flag maintenance --owner bot --for 1h >/dev/null \
  || fail "the client certificate did not authenticate"
code=$(curl -s -o "$WORK/rogue.txt" -w '%{http_code}' --cacert "$WORK/ca.pem" --cert "$WORK/rogue.pem" \
  --key "$WORK/rogue.key" -X POST -d '{"rack":"r9","flag":"evacuate","owner":"x","expires_ms":9999999999999}' \
  "$URL/v1/flags")
[ "$code" = 401 ] || fail "a certificate from another CA got $code: $(cat "$WORK/rogue.txt")"
code=$(curl -s -o "$WORK/role.txt" -w '%{http_code}' --cacert "$WORK/ca.pem" --cert "$WORK/client.pem" \
  --key "$WORK/client.key" -X POST -d '{"rack":"r9","reason":"x","for":"1m"}' "$URL/v1/overrides")
[ "$code" = 403 ] && grep -q "needs the role 'override'" "$WORK/role.txt" \
  || fail "the certificate's client exceeded its roles: $code $(cat "$WORK/role.txt")"
wait_for 10 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' --cacert '$WORK/ca.pem' --deploy-id dep-tls audit --json \
  | grep -q '\"auth\": \"cert\"'" || fail "the audit does not name the certificate's client"
ctl --cacert "$WORK/ca.pem" --deploy-id dep-tls audit --json | grep -q '"client": "bot"' \
  || fail "the audit's client is not bot"
pass "a client certificate (CN ci-bot) acts as client bot with its roles; another CA's is 401"

# 3. Plain HTTP only on loopback.
cat >"$WORK/plain.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $WORK/plain-store, map_size_mb: 16}
http: {listen: 0.0.0.0, port: $(free_port)}
YAML
set +e
timeout 20 "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/plain.yaml" >"$WORK/plain.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "not a loopback address: serve HTTPS" "$WORK/plain.log" \
  || fail "plain HTTP on 0.0.0.0 was not refused (rc $rc): $(cat "$WORK/plain.log")"
pass "plain HTTP on a non-loopback address is refused at start"
