#!/bin/bash
# `rackpulse-agent --once` against three ipmi_sim BMCs at once, one per way
# of reading them (persistent shell with a password file, one-shot children
# with the SDR cache, persistent shell with the password in the agent's
# environment; with BACKEND=freeipmi the same three BMCs are read in
# process, one RMCP+ session each): each BMC's inlet, exhaust, GPU, CPU, fan and PSU readings
# arrive with its own values, labels and units, and server power comes from
# the PSU sum (ipmi_sim has no DCMI), labelled as such. Also: a password
# file readable by others is refused as a configuration error.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

P1=$(free_udp_port); P2=$(free_udp_port); P3=$(free_udp_port)
start_bmc gpu1 "$P1" inlet_temp=21 exhaust_temp=35 gpu3_temp=71 ps1_input_power=1400 ps2_input_power=1420 &
start_bmc gpu2 "$P2" inlet_temp=23 exhaust_temp=41 gpu3_temp=80 ps1_input_power=2000 ps2_input_power=1980 &
start_bmc gpu3 "$P3" inlet_temp=26 exhaust_temp=44 gpu3_temp=66 ps1_input_power=900 ps2_input_power=960 &
wait
for n in gpu1 gpu2 gpu3; do
  PIDS+=("$(pgrep -f "ipmi_sim -c $WORK/bmc-$n/lan.conf")")
done

export RP_TEST_BMC_PASSWORD=admin
{
  ipmi_agent_head r1
  ipmi_bmc_yaml gpu1 "$P1"
  ipmi_bmc_yaml gpu2 "$P2" "session: oneshot"
  echo "  - {name: gpu3, host: 127.0.0.1, port: $P3, user: admin, password_env: RP_TEST_BMC_PASSWORD$BE}"
} >"$WORK/agent.yaml"

"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --check-config >"$WORK/check.txt" 2>&1 \
  || fail "--check-config refused a good config: $(cat "$WORK/check.txt")"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame.json" \
  2>"$WORK/agent.log" || fail "--once exited non-zero"
$PY - "$WORK/frame.json" "$BACKEND" <<'PYEOF' || fail "frame is wrong: $(head -c 3000 "$WORK/frame.json")"
import json, sys
f = json.load(open(sys.argv[1]))
backend = sys.argv[2]
dev = {d["device"]: d for d in f["devices"]}
names = {s["id"]: s for s in f["dictionary"]}
got = {}
for s in f["samples"]:
    d = names[s["series"]]
    labels = ",".join(f"{k}={v}" for k, v in sorted(d.get("labels", {}).items()))
    got[(s["device"], d["name"], labels)] = (s["value"], d["unit"])
want = {
    "gpu1": dict(inlet=21, exhaust=35, gpu3=71, ps1=1400, ps2=1420),
    "gpu2": dict(inlet=23, exhaust=41, gpu3=80, ps1=2000, ps2=1980),
    "gpu3": dict(inlet=26, exhaust=44, gpu3=66, ps1=900, ps2=960),
}
for name, w in want.items():
    assert dev[name]["up"] is True and dev[name]["kind"] == "ipmi", dev[name]
    def v(metric, labels=""):
        assert (name, metric, labels) in got, (name, metric, labels, sorted(k for k in got if k[0] == name))
        return got[(name, metric, labels)]
    assert v("server.inlet_temp") == (w["inlet"], "Cel")
    assert v("server.exhaust_temp") == (w["exhaust"], "Cel")
    assert v("gpu.temp", "gpu=3") == (w["gpu3"], "Cel")
    assert v("gpu.temp", "gpu=1") == (65, "Cel")
    assert v("cpu.temp", "cpu=1") == (55, "Cel")
    assert v("fan.speed", "fan=1") == (9000, "rpm")
    assert v("psu.input_power", "psu=1") == (w["ps1"], "W")
    assert v("psu.input_power", "psu=2") == (w["ps2"], "W")
    assert v("server.power", "source=psu_sum") == (w["ps1"] + w["ps2"], "W")
    assert (name, "server.power", "source=dcmi") not in got
    assert v("ipmi.timeouts")[0] == 0
    if backend == "freeipmi":
        assert v("ipmi.children")[0] == 0 and v("ipmi.sessions")[0] == 1, name
    else:
        assert v("ipmi.children")[0] >= 1 and (name, "ipmi.sessions", "") not in got, name
assert not f.get("statuses"), f.get("statuses")
PYEOF
pass "--once ($BACKEND): three BMCs (file, oneshot, env), each with its own values; power from psu_sum"

if [ "$BACKEND" = freeipmi ]; then
  # In process, only the sensors a series maps are read at each scrape:
  # the PSU status (discrete) reaches no frame and costs no request; all
  # of them with keep_unclassified (the frame above is the proof that
  # nothing a series maps was left out).
  for n in gpu1 gpu2 gpu3; do
    grep -q "ipmi: $n: 10 of its 11 sensors are read at each scrape" "$WORK/agent.log" \
      || fail "$n: not 10 of 11 sensors read: $(grep "$n" "$WORK/agent.log")"
  done
  { ipmi_agent_head r1; ipmi_bmc_yaml gpu1 "$P1" "keep_unclassified: true"; } >"$WORK/keep.yaml"
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/keep.yaml" --once >"$WORK/keep.json" 2>"$WORK/keep.log" \
    || fail "--once with keep_unclassified exited non-zero: $(tail -3 "$WORK/keep.log")"
  ! grep -q "sensors are read at each scrape" "$WORK/keep.log" \
    || fail "keep_unclassified: not every sensor is read: $(grep "each scrape" "$WORK/keep.log")"
  pass "--once (freeipmi): 10 of 11 sensors read, the one no series maps left out; all with keep_unclassified"

  # FreeIPMI's random bytes (each packet's IV, the session's nonces) come
  # from the agent's own ipmi_get_random() (agent/ipmi/ipmi_fi_random.c,
  # bound by symbol interposition): getrandom(2), not an open, read and
  # close of /dev/urandom per packet. (Jansson opens it once per process
  # to seed its hash tables, here for --once's JSON.) LeakSanitizer cannot
  # run under a tracer (it ptraces the process itself): this run counts
  # system calls only; the runs above check for leaks.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -e trace=openat,open,getrandom -o "$WORK/strace.txt" \
    "$RP_BIN/agent/rackpulse-agent" -c "$WORK/keep.yaml" --once >"$WORK/strace.json" 2>"$WORK/strace.log" \
    || fail "--once under strace exited non-zero: $(tail -3 "$WORK/strace.log")"
  ivs=$(grep -c 'getrandom(.*, 16, 0) *= 16' "$WORK/strace.txt" || true)
  opens=$(grep -c '"/dev/u\?random"' "$WORK/strace.txt" || true)
  [ "$ivs" -ge 10 ] || fail "fewer than 10 IVs drawn with getrandom for 11 readings: $ivs"
  [ "$opens" -le 1 ] || fail "/dev/urandom opened $opens times for $ivs packets: $(grep -m3 urandom "$WORK/strace.txt")"
  pass "--once (freeipmi): $ivs packets' random bytes by getrandom(2), /dev/urandom opened $opens time(s) in all"
fi

if [ "$BACKEND" = ipmitool ]; then
  [ -s "$WORK/state-r1/ipmi/gpu2.sdr" ] || fail "no SDR cache for the one-shot BMC in $WORK/state-r1/ipmi"
  [ ! -e "$WORK/state-r1/ipmi/gpu1.sdr" ] || fail "a persistent BMC got an SDR cache file"
  what="SDR cache file for the one-shot BMC only"
else
  # FreeIPMI reads the SDR through a file that is loaded and removed.
  left=$(ls -A "$WORK/state-r1/ipmi")
  [ -z "$left" ] || fail "SDR files left in $WORK/state-r1/ipmi: $left"
  [ "$(grep -c ": read the SDR: 11 sensors" "$WORK/agent.log")" -eq 3 ] \
    || fail "each BMC's SDR is not read once: $(cat "$WORK/agent.log")"
  what="each SDR read once, into memory (no file left)"
fi
grep -qi "gpu1: no DCMI power reading (.*\(Invalid command\|command invalid\)" "$WORK/agent.log" \
  || fail "the DCMI fallback is not logged: $(cat "$WORK/agent.log")"
[ "$(grep -c "no DCMI power reading" "$WORK/agent.log")" -eq 3 ] \
  || fail "the DCMI fallback is not logged once per BMC: $(cat "$WORK/agent.log")"
pass "$what; DCMI fallback logged once per BMC"
no_ipmitool_left
pass "no ipmitool left after --once"

# A sensor without a reading is a status, never a zero. ipmi_sim cannot
# drop a reading, but it honours "Set Sensor Event Enable" with scanning
# off (it answers with an error code, yet applies it): PS1 then reads
# "ns | Disabled" and the PSU sum is partial.
ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$P1" -U admin -f "$WORK/bmc-gpu1/passfile" \
  raw 0x04 0x28 0x09 0x00 >/dev/null 2>&1 || true
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame2.json" \
  2>"$WORK/agent2.log" || fail "--once exited non-zero"
$PY - "$WORK/frame2.json" <<'PYEOF' || fail "disabled sensor is wrong: $(head -c 3000 "$WORK/frame2.json")"
import json, sys
f = json.load(open(sys.argv[1]))
names = {s["id"]: s for s in f["dictionary"]}
def key(sid):
    d = names[sid]
    return (d["device"], d["name"], ",".join(f"{k}={v}" for k, v in sorted(d.get("labels", {}).items())))
vals = {key(s["series"]): s["value"] for s in f["samples"]}
st = {key(s["series"]): (s["status"], s["detail"]) for s in f["statuses"]}
assert st[("gpu1", "psu.input_power", "psu=1")] == ("READING_ABSENT", "PS1 Input Power: sensor disabled"), st
assert ("gpu1", "psu.input_power", "psu=1") not in vals, vals
assert vals[("gpu1", "psu.input_power", "psu=2")] == 1420, vals
assert st[("gpu1", "server.power", "source=psu_sum")] == (
    "READING_ERROR", "partial PSU sum: 1 of 2 PSUs read, at least 1420 W"), st
assert ("gpu1", "server.power", "source=psu_sum") not in vals, vals
assert vals[("gpu2", "server.power", "source=psu_sum")] == 3980, vals
assert [k for k in st if k[0] != "gpu1"] == [], st
PYEOF
pass "disabled PSU sensor: status ABSENT with its name, power sum flagged partial, no zeroes"

# A host powered off: its BMC answers, but none of the sensors a series
# maps is scanned (all ten disabled as above on gpu3; its PSU status, which
# no series maps, still reads). The BMC stays up, every series of it is a
# status naming its sensor, no sample and no power is made up, and the
# other BMCs are read as before. (Under freeipmi only mapped sensors are
# read, so "none of its sensors has a reading" is not what decides.)
for s in 1 2 3 4 5 6 7 8 9 10; do
  ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$P3" -U admin -f "$WORK/bmc-gpu3/passfile" \
    raw 0x04 0x28 "$s" 0x00 >/dev/null 2>&1 || true
done
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame3.json" \
  2>"$WORK/agent3.log" || fail "--once exited non-zero with gpu3 powered off"
$PY - "$WORK/frame3.json" <<'PYEOF' || fail "powered-off host is wrong: $(head -c 3000 "$WORK/frame3.json")"
import json, sys
f = json.load(open(sys.argv[1]))
names = {s["id"]: s for s in f["dictionary"]}
def key(sid):
    d = names[sid]
    return (d["device"], d["name"], ",".join(f"{k}={v}" for k, v in sorted(d.get("labels", {}).items())))
dev = {d["device"]: d for d in f["devices"]}
assert dev["gpu3"]["up"] is True and dev["gpu3"].get("last_error", "") == "", dev["gpu3"]
vals = {key(s["series"]) for s in f["samples"] if names[s["series"]]["device"] == "gpu3"
        and not names[s["series"]]["name"].startswith("ipmi.")}
assert vals == set(), vals
st = {key(s["series"]): (s["status"], s["detail"]) for s in f["statuses"]}
off = {k: v for k, v in st.items() if k[0] == "gpu3"}
want = {"server.inlet_temp": "Inlet Temp", "server.exhaust_temp": "Exhaust Temp", "cpu.temp": "CPU1 Temp",
        "fan.speed": "FAN1 RPM"}
for (d, name, labels), (status, detail) in off.items():
    if name == "server.power":
        assert (status, detail) == ("READING_ABSENT", "no PSU input power reading"), off
        continue
    assert status == "READING_ABSENT" and detail.endswith(": sensor disabled"), (name, status, detail)
    if name in want:
        assert detail == want[name] + ": sensor disabled", (name, detail)
assert len(off) == 11, sorted(off)  # 10 sensors and the PSU sum
assert [k for k in st if k[0] == "gpu2"] == [], st
assert any(names[s["series"]]["device"] == "gpu2" for s in f["samples"]), "gpu2 not read"
PYEOF
pass "a powered-off host (no mapped sensor scanned): BMC up, 11 series ABSENT naming their sensor, no samples, the others read"

# A password file that others can read is refused, naming file, line, key.
cp "$WORK/bmc-gpu1/passfile" "$WORK/open-passfile"
chmod 0644 "$WORK/open-passfile"
{
  ipmi_agent_head r2
  echo "  - {name: gpu1, host: 127.0.0.1, port: $P1, user: admin,"
  echo "     password_file: $WORK/open-passfile$BE}"
} >"$WORK/bad.yaml"
rc=0
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/bad.yaml" --check-config >/dev/null 2>"$WORK/err.txt" || rc=$?
[ "$rc" -eq 2 ] || fail "a 0644 password file: expected exit 2, got $rc"
grep -q "bad.yaml:5: ipmi\[0\]: password_file: .*open-passfile has mode 0644" "$WORK/err.txt" \
  || fail "message does not name the file and mode: $(cat "$WORK/err.txt")"
chmod 0640 "$WORK/open-passfile"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/bad.yaml" --check-config >/dev/null 2>"$WORK/err.txt" \
  || fail "a 0640 password file was refused: $(cat "$WORK/err.txt")"
pass "password file mode 0644 refused (exit 2, file:line and key named), 0640 accepted"
