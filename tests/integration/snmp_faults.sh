#!/bin/bash
# SNMP faults through real peers (snmpsim, snmpd):
#  1. --once: a port where no agent listens, a wrong community, a wrong v3
#     passphrase (snmpd), a table that ends early (raritan-short: the outlet
#     value column meets endOfMibView while its decimal digits go on), a
#     value of the wrong type and a missing object (apc-badtype): each a
#     clear device status or reading status naming the device and the OID;
#     the healthy PDU beside them reads in full;
#  2. with the agent running (interval 500 ms, timeouts of 1 s x 2 tries on
#     the broken ones), the healthy PDUs are scraped on time: their scrape
#     counts keep up with the interval and no tick is skipped.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snmp_lib.sh"

start_snmpsim
start_snmpd 'createUser rpuser SHA "rp-auth-pass-1" AES "rp-priv-pass-1"' 'rouser rpuser priv'
write_frame_py
for c in raritan-px raritan-short apc-badtype apc-rpdu2; do secret "$c.community" "$c"; done
secret wrong.community no-such-community
secret auth.pass "not-the-auth-pass"
secret priv.pass "rp-priv-pass-1"
DEAD=$(free_udp_port)

dev() { # NAME PORT COMMUNITY PROFILE [extra]
  printf '  - {name: %s, host: 127.0.0.1, port: %s, community_file: %s, profile: %s%s}\n' \
    "$1" "$2" "$WORK/$3.community" "$4" "${5:+, $5}"
}
v3bad() {
  printf '  - {name: v3bad, host: 127.0.0.1, port: %s, version: 3, user: rpuser,\n' "$SNMPD_PORT"
  printf '     auth_pass_file: %s, priv_pass_file: %s, profile: apc-rpdu2%s}\n' \
    "$WORK/auth.pass" "$WORK/priv.pass" "${1:+, $1}"
}

# --- 1 ----------------------------------------------------------------------
{
  snmp_header
  dev good "$SIM_PORT" raritan-px raritan-px
  dev short "$SIM_PORT" raritan-short raritan-px
  dev badtype "$SIM_PORT" apc-badtype apc-rpdu2
  dev wrongcomm "$SIM_PORT" wrong apc-rpdu2 "timeout: 300ms, retries: 1"
  dev dead "$DEAD" raritan-px raritan-px "timeout: 300ms, retries: 0"
  v3bad "timeout: 300ms"
} >"$WORK/once.yaml"
start=$(date +%s%N)
once "$WORK/once.yaml" "$WORK/once.json"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
$PY - "$WORK" "$SIM_PORT" "$DEAD" "$SNMPD_PORT" <<'PYEOF' || fail "faults: see $WORK/once.json"
import sys; sys.path.insert(0, sys.argv[1])
from frame import load
sim, dead, snmpd = sys.argv[2:5]
f, dev, values, units, statuses = load(sys.argv[1] + "/once.json")
for name in ("good", "short", "badtype"):
    assert dev[name]["up"], dev[name]
e = dev["wrongcomm"]["last_error"]
assert not dev["wrongcomm"]["up"] and e == (f"wrongcomm: 127.0.0.1:{sim}: no answer within 0.3 s x 2 tries "
    "(down, unreachable, or a wrong community)"), e
e = dev["dead"]["last_error"]
assert not dev["dead"]["up"] and e.startswith(f"dead: 127.0.0.1:{dead}: "), e
e = dev["v3bad"]["last_error"]
assert not dev["v3bad"]["up"] and e == (f"v3bad: 127.0.0.1:{snmpd}: SNMPv3 rpuser: "
    "Authentication failure (incorrect password, community or key)"), e
for name in ("wrongcomm", "dead", "v3bad"):
    assert not [k for k in values if k[0] == name], name
good = [k for k in values if k[0] == "good"]
assert len(good) == 22 and not [k for k in statuses if k[0] == "good"], (good, statuses)
def L(**kw): return tuple(sorted((k, str(v)) for k, v in kw.items()))
st = {(n, l): s for (d, n, l), s in statuses.items() if d == "short"}
R = "1.3.6.1.4.1.13742.6.5.4.3.1.4.1"
assert st == {
  ("pdu.outlet.current", L(outlet=3)): ("READING_ABSENT", f"short: {R}.3.1: no value (digits present); column value: endOfMibView after 6 rows"),
  ("pdu.outlet.current", L(outlet=4)): ("READING_ABSENT", f"short: {R}.4.1: no value (digits present); column value: endOfMibView after 6 rows"),
  ("pdu.outlet.power", L(outlet=3)): ("READING_ABSENT", f"short: {R}.3.5: no value (digits present); column value: endOfMibView after 6 rows"),
  ("pdu.outlet.power", L(outlet=4)): ("READING_ABSENT", f"short: {R}.4.5: no value (digits present); column value: endOfMibView after 6 rows"),
}, st
assert values[("short", "pdu.outlet.current", L(outlet=2))] == 0 and \
       values[("short", "pdu.outlet.power", L(outlet=1))] == 320
st = {(n, l): s for (d, n, l), s in statuses.items() if d == "badtype"}
A = "1.3.6.1.4.1.318.1.1.26"
assert st == {
  ("pdu.energy", L(inlet=1)): ("READING_ABSENT", f"badtype: {A}.4.3.1.9.1: noSuchInstance"),
  ("pdu.phase.current", L(phase=2)): ("READING_ERROR", f"badtype: {A}.6.3.1.5.2: OCTET STRING where a number was expected"),
  ("pdu.outlet.current", L(outlet=4)): ("READING_ABSENT", f"badtype: {A}.9.4.3.1.6.4: -1: not supported by the device"),
}, st
assert values[("badtype", "pdu.phase.current", L(phase=1))] == 5.2
for d in ("wrongcomm", "dead", "v3bad"):
    print(dev[d]["last_error"])
PYEOF
[ "$ms" -lt 5000 ] || fail "--once took $ms ms: the timeouts are not bounding it"
pass "dead port, wrong community, wrong v3 passphrase: device down with the reason; short table, wrong type, noSuchInstance: reading statuses ($ms ms)"
for s in not-the-auth-pass rp-priv-pass-1 no-such-community; do
  grep -rqF "$s" "$WORK/once.json" "$WORK/once.json.log" && fail "secret '$s' in the output" || true
done

# --- 2 ----------------------------------------------------------------------
start_broker
{
  snmp_header 500ms
  dev good "$SIM_PORT" raritan-px raritan-px
  dev good2 "$SIM_PORT" apc-rpdu2 apc-rpdu2
  dev short "$SIM_PORT" raritan-short raritan-px
  dev wrongcomm "$SIM_PORT" wrong apc-rpdu2 "timeout: 1s, retries: 1"
  dev dead "$DEAD" raritan-px raritan-px "timeout: 1s, retries: 1"
  v3bad "timeout: 1s"
} >"$WORK/run.yaml"
start_agent "$WORK/run.yaml"
# (every frame so far: devices and status details are sent when they
# change, so the newest frame alone does not hold them all)
last_frame() {
  kcat -C -b "$BOOTSTRAP" -t rackpulse.frames -o beginning -e -f '%S:%s' 2>/dev/null >"$WORK/topic.kcat"
  $PY "$RP_SRC/tests/integration/frames_state.py" "$WORK/topic.kcat" "$RP_SRC/proto"
}
wait_for 20 sh -c "$(declare -f last_frame); BOOTSTRAP='$BOOTSTRAP' RP_SRC='$RP_SRC' WORK='$WORK' PY='$PY'; \
  last_frame | grep -q 'no answer within 1 s'" || fail "no frame with a PDU timed out"
last_frame >"$WORK/t0.txt"; t0=$(date +%s%N)
sleep 5
last_frame >"$WORK/t1.txt"; t1=$(date +%s%N)
$PY - "$WORK/t0.txt" "$WORK/t1.txt" "$(( (t1 - t0) / 1000000 ))" <<'PYEOF' \
  || fail "healthy PDUs not scraped on time: $(grep -A12 devices "$WORK/t1.txt")"
import re, sys
def devices(path):
    out = {}
    for block in re.findall(r"devices \{(.*?)\n\}", open(path).read(), re.S):
        name = re.search(r'device: "([^"]+)"', block).group(1)
        # proto3's text format leaves out fields that are zero: a device
        # not scraped yet has no "scrapes" line, one never failed no
        # "failures" line. Absent means 0.
        out[name] = {"scrapes": 0, "failures": 0, "skipped": 0}
        out[name].update({k: int(v) for k, v in re.findall(r"\b(scrapes|failures|skipped): (\d+)", block)})
        out[name]["up"] = "up: true" in block
        m = re.search(r'last_error: "([^"]*)"', block)
        out[name]["last_error"] = m.group(1) if m else ""
    return out
a, b, ms = devices(sys.argv[1]), devices(sys.argv[2]), int(sys.argv[3])
expected = ms / 500
for name in ("good", "good2", "short"):
    n = b[name]["scrapes"] - a[name]["scrapes"]
    assert b[name]["up"] and b[name].get("failures", 0) == 0, (name, b[name])
    # Paced by the others' 1 s timeouts (what this guards against) a PDU
    # would get at most ms / 2000 scrapes; half the interval's count leaves
    # room for a loaded machine and still tells the two apart.
    assert n >= 0.5 * expected, f"{name}: {n} scrapes in {ms} ms, expected ~{expected:.0f}"
    assert b[name].get("skipped", 0) == 0, (name, b[name])
for name in ("wrongcomm", "dead", "v3bad"):
    assert not b[name]["up"] and b[name].get("failures", 0) >= 1, (name, b[name])
print(f"in {ms} ms (interval 500 ms): " + ", ".join(
    f"{n} {b[n]['scrapes'] - a[n]['scrapes']} scrapes" for n in ("good", "good2", "short", "wrongcomm", "dead", "v3bad")))
PYEOF
pass "healthy PDUs scraped every 500 ms while three others time out or are refused"
t0=$(date +%s%N)
kill -TERM "$AGENT_PID"
rc=0; wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "agent exited $rc after SIGTERM: $(tail -20 "$WORK/agent.log")"
pass "agent stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms, exit 0"
