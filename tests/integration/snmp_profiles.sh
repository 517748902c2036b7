#!/bin/bash
# The three shipped PDU profiles against snmpsim serving data written from
# the vendors' MIBs (tests/fixtures/snmpsim/make_snmprec.py):
#  1. Raritan PX (decimal-digits columns), APC rPDU2 (fixed divisors, -1 =
#     not supported, scalars in one GET), ServerTech Sentry4: every value
#     with the right scaling, unit and labels, the same metric names;
#  2. the same values over v1 and with `bulk: false` (GETNEXT walks), and
#     with max_repetitions 2 (many GETBULKs per table);
#  3. a profile added by a user in agent.profiles_dir, without rebuilding;
#  4. configuration errors: a world-readable community file, an unset
#     environment variable, an unknown profile: exit 2 naming file:line:key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/snmp_lib.sh"

start_snmpsim
write_frame_py
for c in raritan-px apc-rpdu2 servertech-sentry4; do secret "$c.community" "$c"; done

dev() { # NAME COMMUNITY PROFILE [extra keys]
  printf '  - {name: %s, host: 127.0.0.1, port: %s, community_file: %s, profile: %s%s}\n' \
    "$1" "$SIM_PORT" "$WORK/$2.community" "$3" "${4:+, $4}"
}

# --- 1 and 2 ----------------------------------------------------------------
{
  snmp_header
  dev raritan raritan-px raritan-px
  dev apc apc-rpdu2 apc-rpdu2
  dev sentry servertech-sentry4 servertech-sentry4
  dev raritan-v1 raritan-px raritan-px "version: \"1\""
  dev apc-next apc-rpdu2 apc-rpdu2 "bulk: false"
  dev sentry-rep2 servertech-sentry4 servertech-sentry4 "max_repetitions: 2, max_varbinds: 2"
} >"$WORK/all.yaml"
once "$WORK/all.yaml" "$WORK/all.json"
$PY - "$WORK" <<'PYEOF' || fail "profile values: see $WORK/all.json"
import sys; sys.path.insert(0, sys.argv[1])
from frame import load
f, devices, values, units, statuses = load(sys.argv[1] + "/all.json")
for name, d in devices.items():
    assert d["up"] and d["kind"] == "snmp", d
def L(**kw): return tuple(sorted((k, str(v)) for k, v in kw.items()))
want = {
  "raritan": {
    ("pdu.power", L(inlet=1)): (3456, "W"), ("pdu.energy", L(inlet=1)): (123456.789, "kWh"),
    ("pdu.phase.current", L(phase=1)): (5.012, "A"), ("pdu.phase.current", L(phase=2)): (5.123, "A"),
    ("pdu.phase.current", L(phase=3)): (4.987, "A"),
    ("pdu.phase.voltage", L(phase=1)): (230, "V"), ("pdu.phase.voltage", L(phase=2)): (231, "V"),
    ("pdu.phase.voltage", L(phase=3)): (229, "V"),
    ("pdu.phase.power", L(phase=1)): (1150, "W"), ("pdu.phase.power", L(phase=2)): (1180, "W"),
    ("pdu.phase.power", L(phase=3)): (1126, "W"),
    ("pdu.breaker.current", L(breaker=1)): (5.2, "A"), ("pdu.breaker.current", L(breaker=2)): (4.8, "A"),
    ("pdu.breaker.current", L(breaker=3)): (0, "A"),
    ("pdu.outlet.current", L(outlet=1)): (1.424, "A"), ("pdu.outlet.current", L(outlet=2)): (0, "A"),
    ("pdu.outlet.current", L(outlet=3)): (2.048, "A"), ("pdu.outlet.current", L(outlet=4)): (0.512, "A"),
    ("pdu.outlet.power", L(outlet=1)): (320, "W"), ("pdu.outlet.power", L(outlet=2)): (0, "W"),
    ("pdu.outlet.power", L(outlet=3)): (460, "W"), ("pdu.outlet.power", L(outlet=4)): (115, "W"),
  },
  "apc": {
    ("pdu.power", L(inlet=1)): (3450, "W"), ("pdu.energy", L(inlet=1)): (9876.5, "kWh"),
    ("pdu.phase.current", L(phase=1)): (5.2, "A"), ("pdu.phase.current", L(phase=2)): (4.9, "A"),
    ("pdu.phase.current", L(phase=3)): (5.1, "A"),
    ("pdu.phase.voltage", L(phase=1)): (230, "V"), ("pdu.phase.voltage", L(phase=2)): (231, "V"),
    ("pdu.phase.voltage", L(phase=3)): (229, "V"),
    ("pdu.phase.power", L(phase=1)): (1150, "W"), ("pdu.phase.power", L(phase=2)): (1100, "W"),
    ("pdu.phase.power", L(phase=3)): (1200, "W"),
    ("pdu.breaker.current", L(breaker=1)): (7.2, "A"), ("pdu.breaker.current", L(breaker=2)): (8.1, "A"),
    ("pdu.outlet.current", L(outlet=1)): (1.2, "A"), ("pdu.outlet.current", L(outlet=2)): (0, "A"),
    ("pdu.outlet.current", L(outlet=3)): (2.1, "A"),
    ("pdu.outlet.power", L(outlet=1)): (276, "W"), ("pdu.outlet.power", L(outlet=2)): (0, "W"),
    ("pdu.outlet.power", L(outlet=3)): (480, "W"), ("pdu.outlet.power", L(outlet=4)): (50, "W"),
  },
  "sentry": {
    ("pdu.power", L(inlet=1)): (4321, "W"), ("pdu.energy", L(inlet=1)): (5678.9, "kWh"),
    ("pdu.phase.voltage", L(phase=1)): (230.1, "V"), ("pdu.phase.voltage", L(phase=2)): (231.0, "V"),
    ("pdu.phase.voltage", L(phase=3)): (229.5, "V"),
    ("pdu.phase.current", L(phase=1)): (6.12, "A"), ("pdu.phase.current", L(phase=2)): (5.98, "A"),
    ("pdu.phase.current", L(phase=3)): (6.05, "A"),
    ("pdu.phase.power", L(phase=1)): (1408, "W"), ("pdu.phase.power", L(phase=2)): (1381, "W"),
    ("pdu.phase.power", L(phase=3)): (1389, "W"),
    ("pdu.breaker.current", L(breaker=1)): (4.12, "A"), ("pdu.breaker.current", L(breaker=2)): (3.98, "A"),
    ("pdu.breaker.current", L(breaker=3)): (0, "A"),
    ("pdu.breaker.rating", L(breaker=1)): (20, "A"), ("pdu.breaker.rating", L(breaker=2)): (20, "A"),
    ("pdu.breaker.rating", L(breaker=3)): (20, "A"),
    ("pdu.outlet.current", L(outlet=1)): (1.2, "A"), ("pdu.outlet.current", L(outlet=2)): (0, "A"),
    ("pdu.outlet.current", L(outlet=3)): (2.5, "A"), ("pdu.outlet.current", L(outlet=4)): (0.75, "A"),
    ("pdu.outlet.power", L(outlet=1)): (276, "W"), ("pdu.outlet.power", L(outlet=2)): (0, "W"),
    ("pdu.outlet.power", L(outlet=3)): (575, "W"), ("pdu.outlet.power", L(outlet=4)): (172, "W"),
  },
}
twins = {"raritan-v1": "raritan", "apc-next": "apc", "sentry-rep2": "sentry"}
for dev in list(want) + list(twins):
    w = want[twins.get(dev, dev)]
    got = {(n, l): v for (d, n, l), v in values.items() if d == dev}
    exp = {k: v for k, (v, u) in w.items()}
    bad = {k: (got.get(k), exp.get(k)) for k in set(got) | set(exp)
           if k not in got or k not in exp or abs(got[k] - exp[k]) > 1e-9}
    assert not bad, (dev, bad)
    for (n, l), (v, u) in w.items():
        assert units[(dev, n, l)] == u, (dev, n, l, units[(dev, n, l)])
# the one status: APC outlet 4 current is -1 (not supported), never a zero
for dev in ("apc", "apc-next"):
    st = {(n, l): s for (d, n, l), s in statuses.items() if d == dev}
    assert list(st) == [("pdu.outlet.current", L(outlet=4))], st
    s, detail = st[("pdu.outlet.current", L(outlet=4))]
    assert s == "READING_ABSENT", s
    assert detail == f"{dev}: 1.3.6.1.4.1.318.1.1.26.9.4.3.1.6.4: -1: not supported by the device", detail
assert not [k for k in statuses if k[0] not in ("apc", "apc-next")], statuses
print("values:", len(values), "series over", len(devices), "PDUs")
PYEOF
pass "Raritan, APC and Sentry4 profiles: every value, unit and label; same over v1, GETNEXT and max_repetitions 2"

# --- 3: a profile added by a user --------------------------------------------
mkdir -p "$WORK/profiles/snmp"
cp "$RP_SRC"/packaging/profiles/snmp/*.yaml "$WORK/profiles/snmp/"
cat >"$WORK/profiles/snmp/my-raritan.yaml" <<'YAML'
description: a site's own variant, with the inlet current and frequency
tables:
  - name: inlet
    columns:
      value: 1.3.6.1.4.1.13742.6.5.2.3.1.4
      digits: 1.3.6.1.4.1.13742.6.3.3.4.1.7
    metrics:
      - {name: site.inlet.current, column: value, digits: digits, index: [1, inlet, 1], unit: A}
      - {name: site.inlet.frequency, column: value, digits: digits, index: [1, inlet, 23], unit: Hz}
YAML
{
  PROFILES_DIR=$WORK/profiles snmp_header
  dev mine raritan-px my-raritan
} >"$WORK/mine.yaml"
once "$WORK/mine.yaml" "$WORK/mine.json"
$PY - "$WORK" <<'PYEOF' || fail "user profile: $(cat "$WORK/mine.json")"
import sys; sys.path.insert(0, sys.argv[1])
from frame import load
f, devices, values, units, statuses = load(sys.argv[1] + "/mine.json")
assert values == {("mine", "site.inlet.current", (("inlet", "1"),)): 15.234,
                  ("mine", "site.inlet.frequency", (("inlet", "1"),)): 50.0}, values
PYEOF
pass "a profile dropped into agent.profiles_dir/snmp/ is used without rebuilding"

# --- 4: configuration errors ------------------------------------------------
secret open.community raritan-px 644
check_error() { # CONFIG_BODY EXPECTED_TEXT
  { snmp_header; printf '%s\n' "$1"; } >"$WORK/bad.yaml"
  rc=0
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/bad.yaml" --check-config >"$WORK/bad.out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "expected exit 2, got $rc: $(cat "$WORK/bad.out")"
  grep -qF -- "$2" "$WORK/bad.out" || fail "expected '$2' in: $(cat "$WORK/bad.out")"
  echo "  $(cat "$WORK/bad.out")"
}
check_error "  - {name: p, host: 127.0.0.1, community_file: $WORK/open.community, profile: apc-rpdu2}" \
  "bad.yaml:5: snmp[0]: community_file: $WORK/open.community has mode 0644"
check_error "  - {name: p, host: 127.0.0.1, community_env: RP_NO_SUCH_VAR, profile: apc-rpdu2}" \
  "bad.yaml:5: snmp[0]: community_env: the environment variable RP_NO_SUCH_VAR is not set"
check_error "  - {name: p, host: 127.0.0.1, community_env: HOME, profile: eaton-epdu}" \
  "bad.yaml:5: snmp[0].profile: "
check_error "  - {name: p, host: 127.0.0.1, community: public, profile: apc-rpdu2}" \
  "bad.yaml:5: snmp[0].community: unknown key"
check_error "  - {name: p, host: 127.0.0.1, version: 3, user: u, auth_pass_env: HOME, priv_pass_env: HOME, auth_protocol: SHA1024, profile: apc-rpdu2}" \
  "auth_protocol: 'SHA1024' is not"
grep -q "public" "$WORK/bad.out" && fail "a secret was echoed" || true
pass "config errors name file:line and key: group/world-readable secret, unset variable, unknown profile"
