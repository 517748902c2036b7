#!/bin/bash
# SNMPv3 (USM) against Debian's snmpd with a private configuration:
#  1. authPriv SHA/AES (passphrases in 0600 files), authNoPriv SHA
#     (passphrase in the environment), authPriv SHA-256/AES: values read,
#     engine ID discovered without blocking (SNMP_FLAGS_DONT_PROBE and our
#     own asynchronous probe);
#  2. a wrong authentication passphrase and an unknown user: down with
#     snmpd's report as the reason; two devices naming the same engine and
#     user with different passphrases: an error naming the other device,
#     never one device quietly using the other's keys;
#  3. no passphrase appears in the frame or the logs.
# The profile is a test one (snmpd has no PDU MIB): sysServices and the
# ifTable MTU column, written to the test's own agent.profiles_dir.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snmp_lib.sh"

start_snmpd \
  'createUser rpuser SHA "rp-auth-pass-1" AES "rp-priv-pass-1"' 'rouser rpuser priv' \
  'createUser rpauth SHA "rp-auth-pass-2"' 'rouser rpauth auth' \
  'createUser rp256 SHA-256 "rp-auth-pass-3" AES "rp-priv-pass-3"' 'rouser rp256 priv'
write_frame_py
mkdir -p "$WORK/profiles/snmp"
cat >"$WORK/profiles/snmp/host-test.yaml" <<'YAML'
description: test profile for snmpd (SNMPv2-MIB sysServices, IF-MIB ifMtu)
scalars:
  - {name: test.services, oid: 1.3.6.1.2.1.1.7.0}
tables:
  - name: interfaces
    columns: {mtu: 1.3.6.1.2.1.2.2.1.4}
    metrics:
      - {name: test.if.mtu, column: mtu, index: [ifindex]}
YAML
export PROFILES_DIR=$WORK/profiles
secret auth1 rp-auth-pass-1
secret priv1 rp-priv-pass-1
secret auth3 rp-auth-pass-3
secret priv3 rp-priv-pass-3
secret wrong rp-wrong-pass-9
export RP_TEST_AUTH2=rp-auth-pass-2

v3dev() { # NAME USER EXTRA
  printf '  - {name: %s, host: 127.0.0.1, port: %s, version: 3, user: %s, profile: host-test,\n' \
    "$1" "$SNMPD_PORT" "$2"
  printf '     timeout: 500ms, %s}\n' "$3"
}
{
  snmp_header
  v3dev priv rpuser "auth_pass_file: $WORK/auth1, priv_pass_file: $WORK/priv1"
  v3dev auth rpauth "security_level: authNoPriv, auth_pass_env: RP_TEST_AUTH2"
  v3dev sha256 rp256 "auth_protocol: SHA-256, priv_protocol: AES, auth_pass_file: $WORK/auth3, priv_pass_file: $WORK/priv3"
} >"$WORK/good.yaml"
once "$WORK/good.yaml" "$WORK/good.json"
snmpget -v3 -l authPriv -u rpuser -a SHA -A rp-auth-pass-1 -x AES -X rp-priv-pass-1 -On -Oqv \
  "127.0.0.1:$SNMPD_PORT" 1.3.6.1.2.1.2.2.1.4.1 >"$WORK/mtu1" || fail "snmpget failed"
$PY - "$WORK" "$(cat "$WORK/mtu1")" <<'PYEOF' || fail "v3 values: $(cat "$WORK/good.json")"
import sys; sys.path.insert(0, sys.argv[1])
from frame import load
f, dev, values, units, statuses = load(sys.argv[1] + "/good.json")
for name in ("priv", "auth", "sha256"):
    assert dev[name]["up"], dev[name]
    assert values[(name, "test.services", ())] == 72, values
    assert values[(name, "test.if.mtu", (("ifindex", "1"),))] == float(sys.argv[2]), values
assert not statuses, statuses
PYEOF
pass "v3 authPriv SHA/AES (files), authNoPriv SHA (environment), authPriv SHA-256/AES"

{
  snmp_header
  v3dev badpass rpuser "auth_pass_file: $WORK/wrong, priv_pass_file: $WORK/priv1"
  v3dev nouser nosuchuser "auth_pass_file: $WORK/auth1, priv_pass_file: $WORK/priv1"
} >"$WORK/bad.yaml"
once "$WORK/bad.yaml" "$WORK/bad.json"
{
  snmp_header
  v3dev first rpuser "auth_pass_file: $WORK/auth1, priv_pass_file: $WORK/priv1"
  v3dev second rpuser "auth_pass_file: $WORK/wrong, priv_pass_file: $WORK/priv1"
} >"$WORK/clash.yaml"
once "$WORK/clash.yaml" "$WORK/clash.json"
$PY - "$WORK" "$SNMPD_PORT" <<'PYEOF' || fail "v3 faults: $(cat "$WORK/bad.json" "$WORK/clash.json")"
import sys; sys.path.insert(0, sys.argv[1])
from frame import load
p = sys.argv[2]
f, dev, values, units, statuses = load(sys.argv[1] + "/bad.json")
assert not dev["badpass"]["up"] and dev["badpass"]["last_error"] == (
    f"badpass: 127.0.0.1:{p}: SNMPv3 rpuser: Authentication failure (incorrect password, community or key)"), dev
assert not dev["nouser"]["up"] and dev["nouser"]["last_error"] == (
    f"nouser: 127.0.0.1:{p}: SNMPv3 nosuchuser: Unknown user name"), dev
assert not values, values
f, dev, values, units, statuses = load(sys.argv[1] + "/clash.json")
up = [d for d in dev.values() if d["up"]]
down = [d for d in dev.values() if not d["up"]]
# whichever answer was read first holds the engine's user entry; the other
# device is refused with the reason, and no device reads with wrong keys
assert len(down) >= 1, dev
for d in down:
    other = "second" if d["device"] == "first" else "first"
    assert ("uses them with other credentials" in d["last_error"] and other in d["last_error"]) \
        or "Authentication failure" in d["last_error"], d
for d in up:
    assert d["device"] == "first", d
for d in down: print(d["last_error"])
PYEOF
pass "wrong passphrase and unknown user: down with snmpd's report; one engine and user with two passphrases: refused, never mixed"

for s in rp-auth-pass-1 rp-priv-pass-1 rp-auth-pass-2 rp-auth-pass-3 rp-priv-pass-3 rp-wrong-pass-9; do
  grep -rqF -- "$s" "$WORK"/*.json "$WORK"/*.json.log && fail "passphrase '$s' in a frame or log" || true
done
pass "no passphrase in frames or logs"
