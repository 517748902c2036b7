#!/bin/bash
# The audit trail you can verify, with identities, roles and deploy
# correlation, through the real peers (pymodbus CDU -> agent -> dev broker
# -> aggregator):
#  1. named clients of a tokens file (mode checked) with roles: a change
#     without the role is 403 naming the role; the shared token still works
#     as client "shared";
#  2. gates, placement, flags and reservations carry the deploy fields
#     (flags, and CI variables) and the client in their audit entries;
#  3. `audit --deploy-id` tells one deploy's story in order;
#  4. `audit verify` passes on the export and on the LMDB file, and fails
#     (exit 1) on an edited entry, a removed one, a cut tail, and an edit of
#     the LMDB file itself.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU" --no-drift
cdu_set "$CDU" '{"supply_temp": 31.0}'
write_agent_config "$WORK/agent.yaml" r1 "$CDU"
# A tokens file looser than 0640 is refused at start, naming the rule.
printf 'ci reserve,flag ci-token-0123456789abcdef\n' >"$WORK/tokens"
chmod 0644 "$WORK/tokens"
AGG_HTTP_EXTRA="tokens_file: $WORK/tokens"
set +e
HTTP_PORT=$(free_port)
cat >"$WORK/bad.yaml" <<YAML
kafka: {brokers: "$BOOTSTRAP"}
store: {path: $WORK/bad-store, map_size_mb: 16}
http: {port: $HTTP_PORT, tokens_file: $WORK/tokens}
YAML
timeout 20 "$RP_BIN/aggregator/rackpulse-aggregator" -c "$WORK/bad.yaml" >"$WORK/bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "at most 0640" "$WORK/bad.log" \
  || fail "a 0644 tokens file was not refused (rc $rc): $(cat "$WORK/bad.log")"
pass "a tokens file readable by others is refused at start"

cat >"$WORK/tokens" <<'EOF2'
# name   roles            token
ci       reserve,flag     ci-token-0123456789abcdef
ops      override         ops-token-0123456789abcdef
reader   read             reader-token-0123456789ab
EOF2
chmod 0600 "$WORK/tokens"
printf 'ci-token-0123456789abcdef\n' >"$WORK/ci.tok"
printf 'reader-token-0123456789ab\n' >"$WORK/reader.tok"
printf 'shared-token-0123456789ab\n' >"$WORK/shared.tok"
chmod 0600 "$WORK"/*.tok
AGG_HTTP_EXTRA="tokens_file: $WORK/tokens, token_file: $WORK/shared.tok"
start_aggregator
start_agent "$WORK/agent.yaml"
wait_for 30 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' gate --rack r1 --kw 1 >/dev/null" \
  || fail "gate never allowed"

# 1. Roles.
set +e
ctl --token-file "$WORK/reader.tok" flags set --rack r1 --flag maintenance --owner x --for 1h \
  2>"$WORK/403.txt"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "HTTP 403: this needs the role 'flag'" "$WORK/403.txt" \
  || fail "a reader could set a flag or the refusal does not name the role: $(cat "$WORK/403.txt")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong-token-xxxxxxxx' \
  -d '{}' "$URL/v1/flags")
[ "$code" = 401 ] || fail "a wrong token got $code, not 401"
pass "a change without its role is 403 naming the role; a wrong token 401"

# 2. Deploy correlation: flags, and a CI's variables (GitHub Actions).
ctl --token-file "$WORK/ci.tok" --deploy-id dep-42 --commit 0a1b2c3 \
  --pipeline-url https://ci.example/p/42 --requester alice \
  flags set --rack r1 --flag scale-back --owner ci --for 1h >/dev/null || fail "ci could not set a flag"
GITHUB_RUN_ID=dep-42 GITHUB_SHA=0a1b2c3 GITHUB_SERVER_URL=https://github.example \
  GITHUB_REPOSITORY=acme/app GITHUB_ACTOR=bob \
  "$RP_BIN/tools/rackpulsectl" --url "$URL" gate --rack r1 --kw 2 --json >"$WORK/gate.json" || true
ctl --deploy-id dep-42 placement --kw 1 --json >"$WORK/placement.json" || fail "placement failed"
ctl --token-file "$WORK/ci.tok" --deploy-id dep-42 flags clear --rack r1 --flag scale-back >/dev/null \
  || fail "ci could not clear the flag"
ctl --token-file "$WORK/shared.tok" --deploy-id dep-43 gate --rack r1 --kw 1 >/dev/null \
  || fail "gate with the shared token failed"
$PY - "$WORK/gate.json" <<'PYEOF' || fail "the gate answer lacks its deploy: $(cat "$WORK/gate.json")"
import json, sys
g = json.load(open(sys.argv[1]))
assert g["deploy"] == {"deploy_id": "dep-42", "commit": "0a1b2c3",
    "pipeline_url": "https://github.example/acme/app/actions/runs/dep-42", "requester": "bob"}, g
assert g["client"] == "anonymous" and g["policy_version"] == "test-1", g
PYEOF
pass "gate decisions carry the CI's deploy fields (GitHub Actions variables)"

# 3. The deploy's story, in order, each entry with its client.
wait_for 10 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' --deploy-id dep-42 audit --json \
  | grep -q flag_clear" || fail "the story never showed the flag cleared"
ctl --deploy-id dep-42 audit --json >"$WORK/story.json"
$PY - "$WORK/story.json" <<'PYEOF' || fail "the story is wrong: $(cat "$WORK/story.json")"
import json, sys
s = json.load(open(sys.argv[1]))["decisions"]
kinds = [e.get("action", "gate") for e in s]
assert kinds == ["flag_set", "gate", "placement", "flag_clear"], kinds
assert [e["client"] for e in s] == ["ci", "anonymous", "anonymous", "ci"], s
seqs = [e["seq"] for e in s]
assert seqs == sorted(seqs), seqs
assert all(e["deploy"]["deploy_id"] == "dep-42" for e in s), s
assert s[0]["deploy"]["requester"] == "alice" and s[0]["deploy"]["commit"] == "0a1b2c3", s[0]
assert s[0]["record"]["deploy"]["deploy_id"] == "dep-42" and s[0]["record"]["client"] == "ci", s[0]
assert all("policy_version" in e for e in s), s
g = s[1]
assert any(c["name"] == "supply_temp" and abs(c["observed"] - 31.0) < 1e-9 for c in g["checks"]), g
ranked = s[2]["placement"]["racks"]
assert ranked and len(ranked[0]["decision_id"]) == 32, s[2]
PYEOF
ctl --deploy-id dep-42 audit >"$WORK/story.txt"
[ "$(wc -l <"$WORK/story.txt")" -eq 4 ] && grep -q "flag_set .*client ci" "$WORK/story.txt" \
  || fail "the human story is wrong: $(cat "$WORK/story.txt")"
pass "audit --deploy-id tells dep-42's story in order: flag set, gate, placement, flag clear"
wait_for 10 sh -c "'$RP_BIN/tools/rackpulsectl' --url '$URL' --deploy-id dep-43 audit --json \
  | grep -q '\"client\": \"shared\"'" || fail "the shared token is not client 'shared'"
pass "the shared token is client 'shared'"

# A policy reload (SIGHUP) is audited, by the aggregator itself.
kill -HUP "$AGG_PID"
wait_for 15 sh -c "curl -sf '$URL/v1/audit/export' | grep -q '\"action\":\"policy_reload\"'" \
  || fail "the SIGHUP reload was not audited"
curl -sf "$URL/v1/audit/export" | grep '"action":"policy_reload"' | grep -q '"client":"aggregator"' \
  || fail "the reload's entry does not name the aggregator"
pass "a SIGHUP policy reload is audited (client aggregator, policy version)"

# SIGHUP also reloads the clients: a client taken out of the file is
# refused at once, a new one is accepted; a file that does not load leaves
# the clients in force and the log says where.
cat >"$WORK/tokens" <<'EOF2'
ci       reserve,flag     ci-token-0123456789abcdef
oncall   flag             oncall-token-0123456789ab
EOF2
printf 'oncall-token-0123456789ab\n' >"$WORK/oncall.tok"
chmod 0600 "$WORK/tokens" "$WORK/oncall.tok"
kill -HUP "$AGG_PID"
wait_for 15 grep -q "clients reloaded: 3 client(s)" "$WORK/aggregator.log" \
  || fail "the tokens file was not reloaded: $(tail -5 "$WORK/aggregator.log")"
ctl --token-file "$WORK/oncall.tok" flags set --rack r1 --flag maintenance --owner oncall --for 1h \
  >/dev/null || fail "a client added to the tokens file is refused after SIGHUP"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$WORK/reader.tok")" \
  "$URL/v1/flags?rack=r1" -X DELETE)
[ "$code" = 401 ] || fail "a client taken out of the tokens file still got $code, not 401"
printf 'oncall flag s3cr3t\n' >"$WORK/tokens"
kill -HUP "$AGG_PID"
wait_for 15 grep -q "clients reload refused: $WORK/tokens:1:" "$WORK/aggregator.log" \
  || fail "a bad tokens file was not refused naming file:line: $(tail -5 "$WORK/aggregator.log")"
grep -q "s3cr3t" "$WORK/aggregator.log" && fail "the refused token reached the log"
ctl --token-file "$WORK/oncall.tok" flags clear --rack r1 --flag maintenance >/dev/null \
  || fail "after a refused reload the clients in force were lost"
pass "SIGHUP reloads the tokens file: a removed client 401, a new one accepted; a bad file refused naming file:line, the clients in force kept"

# 4. The chain verifies, from the API, a file, and the LMDB; edits fail it.
ctl audit verify >"$WORK/verify.txt" || fail "audit verify failed: $(cat "$WORK/verify.txt")"
ctl audit export --file "$WORK/export.jsonl" || fail "export failed"
n=$(wc -l <"$WORK/export.jsonl")
[ "$n" -ge 6 ] || fail "export has $n lines"
ctl audit verify --file "$WORK/export.jsonl" >/dev/null || fail "a clean export did not verify"
expect_broken() { # FILE WHAT PATTERN
  set +e
  ctl audit verify --file "$1" >"$WORK/out.txt" 2>&1; local rc=$?
  set -e
  [ "$rc" -eq 1 ] && grep -q "$3" "$WORK/out.txt" \
    || fail "$2 not caught (rc $rc): $(cat "$WORK/out.txt")"
}
sed '3s/"kw":[0-9.]*/"kw":99.0/' "$WORK/export.jsonl" >"$WORK/edited.jsonl"
cmp -s "$WORK/export.jsonl" "$WORK/edited.jsonl" && sed -i '3s/"client":"[a-z]*"/"client":"mallory"/' "$WORK/edited.jsonl"
expect_broken "$WORK/edited.jsonl" "an edited entry" "BROKEN: edited"
sed '4d' "$WORK/export.jsonl" >"$WORK/gap.jsonl"
expect_broken "$WORK/gap.jsonl" "a removed entry" "BROKEN: gap"
head -n -1 "$WORK/export.jsonl" >"$WORK/cut.jsonl"
expect_broken "$WORK/cut.jsonl" "a cut tail" "BROKEN: truncated"
pass "audit verify passes a whole export and exits 1 on an edit, a gap and a cut"

AUDIT_DIR="$WORK/store/ledger/audit"
ctl audit verify --ledger "$AUDIT_DIR" >"$WORK/lmdb.txt" \
  || fail "the LMDB of a running aggregator did not verify: $(cat "$WORK/lmdb.txt")"
kill -TERM "$AGG_PID"; wait "$AGG_PID" 2>/dev/null || true
ctl audit verify --ledger "$AUDIT_DIR" >"$WORK/lmdb.txt" || fail "the LMDB did not verify: $(cat "$WORK/lmdb.txt")"
# Edit the stored entries of client ci in place (same length, so LMDB
# still opens the file; every copy, as LMDB keeps old pages beside live ones).
$PY - "$AUDIT_DIR/data.mdb" <<'PYEOF' || fail "could not edit the LMDB file"
import sys
p = sys.argv[1]
b = open(p, "rb").read()
assert b.count(b'"client":"ci"') > 0
open(p, "wb").write(b.replace(b'"client":"ci"', b'"client":"XX"'))
PYEOF
set +e
ctl audit verify --ledger "$AUDIT_DIR" >"$WORK/lmdb.txt" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "BROKEN" "$WORK/lmdb.txt" \
  || fail "an edited LMDB file was not caught (rc $rc): $(cat "$WORK/lmdb.txt")"
pass "audit verify --ledger catches an entry edited in the LMDB file: $(cat "$WORK/lmdb.txt")"
