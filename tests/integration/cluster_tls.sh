#!/bin/bash
# Members that serve HTTPS (http.tls_cert; required off loopback) forward to
# each other over HTTPS, verifying the owner's certificate against
# cluster.tls_ca: member a has it and its forwards to b are answered by b;
# member b has not, so its forwards to a fail verification and are
# answered 503 naming the owner (never an answer from b's unfed store).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"
source "$(dirname "$0")/cluster_lib.sh"

make_tls_certs "$WORK"

RACKS=8
start_broker
declare -A PORT
# start_tls_member NAME [CA]: a member serving HTTPS, trusting CA for forwards.
start_tls_member() {
  local name=$1 ca=${2:-}
  PORT[$name]=$(free_port)
  cat >"$WORK/$name.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP", batch_wait: 20ms}
store: {path: $WORK/store-$name, map_size_mb: 16}
http: {port: ${PORT[$name]}, tls_cert: $WORK/server.pem, tls_key: $WORK/server.key}
cluster: {member_id: $name, advertise: "https://127.0.0.1:${PORT[$name]}", heartbeat: 300ms,
          member_timeout: 2s, session_timeout: 4s, forward_timeout: 3s${ca:+, tls_ca: $ca}}
YAML
  "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/$name.yaml" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  AGG_URL[$name]="https://127.0.0.1:${PORT[$name]}"
  wait_for 15 curl -sf --cacert "$WORK/ca.pem" "${AGG_URL[$name]}/healthz" || fail "member $name did not start"
}
start_tls_member a "$WORK/ca.pem"
start_tls_member b
cluster_json() { curl -sf --cacert "$WORK/ca.pem" "${AGG_URL[$1]}/v1/cluster"; }
wait_for 60 settled 2 a b || fail "the members did not settle: $(cluster_json a)"
loadgen --racks $RACKS --frames 2 --series 12 2>"$WORK/loadgen.log" || fail "loadgen failed"

gate_at() {
  curl -s --cacert "$WORK/ca.pem" -o "$WORK/g.json" -w '%{http_code}' "${AGG_URL[$1]}/v1/racks/$2/gate?kw=1"
}
known() { [ "$(gate_at "$1" "$2")" = 200 ]; }
to_b=0 to_a=0
for i in $(seq 1 $RACKS); do
  r=$(printf r%04d "$i")
  owner=$(owner_of "$r" a)
  if [ "$owner" = b ]; then
    wait_for 20 known a "$r" || fail "gate of $r at a: HTTP $(gate_at a "$r") $(cat "$WORK/g.json")"
    grep -q '"answered_by":"b"' "$WORK/g.json" || fail "gate of $r at a not answered by b: $(cat "$WORK/g.json")"
    to_b=$((to_b + 1))
  else
    code=$(gate_at b "$r")
    [ "$code" = 503 ] && grep -q '"owner":"a"' "$WORK/g.json" \
      || fail "gate of $r at b (no tls_ca): HTTP $code $(cat "$WORK/g.json")"
    to_a=$((to_a + 1))
  fi
done
[ "$to_b" -gt 0 ] && [ "$to_a" -gt 0 ] || fail "one member owns every rack"
grep -q "did not answer.*SSL\|did not answer.*certificate" "$WORK/b.log" \
  || fail "b does not say why a did not answer: $(grep forward "$WORK/b.log" | head -2)"
pass "over HTTPS: forwards verified with cluster.tls_ca are answered by the owner ($to_b racks); without it they fail verification and answer 503 naming the owner ($to_a racks)"
