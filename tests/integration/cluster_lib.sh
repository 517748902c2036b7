# Helpers for the cluster tests (sourced after lib.sh and ingest_lib.sh):
# aggregators that are members of one site (cluster.member_id = their name),
# and what the tests ask of them.
#
#   start_member NAME [GROUP]   start_agg NAME with a cluster section
#                               ($CLUSTER_KEYS: more keys of it)
#   cluster_json NAME           NAME's GET /v1/cluster
#   owner_of RACK NAME          the member that owns RACK's partition, as
#                               NAME's /v1/cluster says (partition by CRC-32,
#                               librdkafka's default partitioner)
#   settled N NAME...           each NAME sees N live members, each owning
#                               a partition, and every partition owned
#   power_policy VERSION STALENESS  a policy with a power check on racks
#                               r0001..r$RACKS (so reservations are admitted
#                               against it), used by the next start_member
#   gate NAME RACK [CURL ARGS]  "status answered_by header_answered_by
#                               header_forwarded_by decision" of a gate asked
#                               at NAME
#   start_split_broker          the dev broker with two brokers (needs
#                               delivery_lib.sh), every partition of the
#                               site's topics led by broker 1: a test moves
#                               one to broker 2 to slow or stop it alone
#   site_setup NAME STALENESS   the preamble of a site's test: files private
#                               (umask 077), the API token "NAME-token" for
#                               every member (AUTH: curl's header with it),
#                               and power_policy NAME-1 STALENESS

start_member() {
  local name=$1
  AGG_EXTRA="cluster: {member_id: $name, heartbeat: 300ms, member_timeout: 2s, session_timeout: 3s, forward_timeout: 3s${CLUSTER_KEYS:+, $CLUSTER_KEYS}}
${CLUSTER_EXTRA:-}" start_agg "$name" "${2:-rackpulse-aggregator}"
}

cluster_json() { curl -sf "${AGG_URL[$1]}/v1/cluster"; }

owner_of() {
  cluster_json "$2" | $PY -c '
import json, sys, zlib
c = json.load(sys.stdin)
p = zlib.crc32(sys.argv[1].encode()) % c["partition_count"]
owners = [m["member"] for m in c["members"] if m["live"] and p in m["partitions"]]
print(owners[0] if len(owners) == 1 else "none")' "$1"
}

settled() {
  local n=$1 name; shift
  for name in "$@"; do
    cluster_json "$name" | $PY -c '
import json, sys
c = json.load(sys.stdin)
live = [m for m in c["members"] if m["live"]]
owned = sorted(p for m in live for p in m["partitions"])
assert len(live) == int(sys.argv[1]) and owned == list(range(c["partition_count"])), c
assert all(m["partitions"] for m in live), c' "$n" \
      || return 1
  done
}

gate() {
  local name=$1 rack=$2; shift 2
  curl -s -D "$WORK/gate.h" -o "$WORK/gate.b" -w '%{http_code}' "$@" \
    "${AGG_URL[$name]}/v1/racks/$rack/gate?kw=1" >"$WORK/gate.s" || true
  $PY - "$WORK/gate.s" "$WORK/gate.h" "$WORK/gate.b" <<'PYEOF'
import json, sys
status = open(sys.argv[1]).read().strip() or "000"
hdr = {}
for line in open(sys.argv[2]).read().splitlines():
    if ":" in line:
        k, v = line.split(":", 1)
        hdr[k.strip().lower()] = v.strip()
try:
    body = json.load(open(sys.argv[3]))
except Exception:
    body = {}
print(status, body.get("answered_by", "-"), hdr.get("x-rackpulse-answered-by", "-"),
      hdr.get("x-rackpulse-forwarded-by", "-"), body.get("decision", "-"))
PYEOF
}

power_policy() {
  {
    echo "version: $1"
    echo "defaults:"
    echo "  max_staleness: $2"
    echo "  power_margin_kw: 0"
    echo "  power: {enabled: true, series: server.power, stat: latest, across: sum}"
    echo "racks:"
    for i in $(seq 1 "$RACKS"); do printf '  - {id: r%04d, breaker_kw: 100, derating: 0.8}\n' "$i"; done
  } >"$WORK/policy.yaml"
  CLUSTER_EXTRA="policy: {file: $WORK/policy.yaml}"
}

site_setup() {
  umask 077
  echo "$1-token" >"$WORK/token"
  AUTH=(-H "Authorization: Bearer $1-token")
  AGG_HTTP_EXTRA="token_file: $WORK/token"
  power_policy "$1-1" "$2"
}

start_split_broker() {
  "$RP_BIN/tools/rackpulse-devbroker" --brokers 2 --bootstrap-file "$WORK/bootstrap" \
    --control "$WORK/broker.ctl" >"$WORK/broker.out" 2>"$WORK/broker.log" &
  PIDS+=($!)
  BROKER_PID=$!
  wait_for 10 test -s "$WORK/bootstrap" || fail "dev broker did not start"
  BOOTSTRAP=$(cat "$WORK/bootstrap")
  local leaders=() t p
  for t in rackpulse.frames rackpulse.events rackpulse.members rackpulse.audit rackpulse.ledger; do
    for p in 0 1 2 3; do leaders+=("partition_leader $t $p 1"); done
  done
  broker_control "${leaders[@]}"
}
