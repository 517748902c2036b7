#!/bin/bash
# Faults of the IPMI collector, each a clear device status while the good
# BMC keeps being read on time:
#   dead   a UDP port with nothing behind it          -> "no answer from the BMC"
#   badpw  a real ipmi_sim with the wrong password    -> "session refused by the BMC"
#   hung   an ipmitool that never answers              -> killed at its deadline
# The hung child is tests/fixtures/fake-ipmitool-hang (via ipmitool_path):
# ipmi_sim cannot be made to hang ipmitool on demand, and it is the one case
# that needs a stub. It ignores SIGTERM and waits in a child process, so the
# agent has to kill the whole process group and escalate to SIGKILL.
# With BACKEND=freeipmi (in process) the hung BMC is a real ipmi_sim that
# was stopped (SIGSTOP): it never answers, and FreeIPMI's session timeout
# is the deadline; the ipmitool-only parts (child slots, SDR cache file,
# shell processes) are checked for the absence of children instead.
# First with --once, then with the agent running (frames through the dev
# broker to the aggregator), including a BMC that stops answering in the
# middle of its session (SIGSTOP, then SIGCONT: down with a clear reason,
# then read again through a new session), and finally: no ipmitool process,
# nor anything in the process groups they ran in, outlives the agent.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

GOOD=$(free_udp_port); OTHER=$(free_udp_port); DEAD=$(free_udp_port)
start_bmc good "$GOOD" inlet_temp=22
start_bmc other "$OTHER"
printf 'not-the-password\n' >"$WORK/wrong-pass"
cp "$WORK/bmc-good/passfile" "$WORK/idle-pass" # the idle BMC's shell is told apart by it
chmod 600 "$WORK/wrong-pass"
FAKE="$RP_SRC/tests/fixtures/fake-ipmitool-hang"
if [ "$BACKEND" = freeipmi ]; then
  FROZEN=$(free_udp_port)
  start_bmc frozen "$FROZEN"
  kill -STOP "$BMC_PID_frozen"
  HUNG="{name: hung, host: 127.0.0.1, port: $FROZEN, user: admin, password_file: $WORK/wrong-pass,"
  HUNG_KEYS="timeout: 2s, kill_grace: 1s$BE}"
  HUNG_ERR="no answer from the BMC in 3.0 s" # FreeIPMI's session timeout: 2 s + the 1 s interval
else
  HUNG="{name: hung, host: 127.0.0.1, port: $OTHER, user: admin, password_file: $WORK/wrong-pass,"
  HUNG_KEYS="ipmitool_path: $FAKE, timeout: 2s, kill_grace: 1s}"
  HUNG_ERR="ipmitool killed"
fi

write_config() {
  {
    ipmi_agent_head rf
    # A generous deadline: three sessions share this ipmi_sim, and a loaded
    # machine (CI runs tests side by side) can take seconds to answer: an
    # ipmitool `sdr elist` once took more than 6 s in a CI run.
    ipmi_bmc_yaml good "$GOOD" "timeout: 20s"
    echo "  - {name: cached, host: 127.0.0.1, port: $GOOD, user: admin, session: oneshot,"
    echo "     password_file: $WORK/bmc-good/passfile$BE}"
    # Idle between scrapes for longer than a message's deadline (1 s): its
    # session must survive the 3 s interval (FreeIPMI calls a session dead
    # once idle for longer than its timeout).
    echo "  - {name: idle, host: 127.0.0.1, port: $GOOD, user: admin, interval: 3s, retries: 0,"
    echo "     password_file: $WORK/idle-pass$BE}"
    echo "  - {name: dead, host: 127.0.0.1, port: $DEAD, user: admin, password_file: $WORK/wrong-pass$BE}"
    echo "  - {name: badpw, host: 127.0.0.1, port: $OTHER, user: admin, password_file: $WORK/wrong-pass$BE}"
    echo "  - $HUNG"
    echo "     $HUNG_KEYS"
  } >"$WORK/agent.yaml"
}

# 1. --once: one frame with every device's status.
write_config
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once >"$WORK/frame.json" \
  2>"$WORK/once.log" || fail "--once exited non-zero"
$PY - "$WORK/frame.json" "$DEAD" "$OTHER" "$BACKEND" "${FROZEN:-}" <<'PYEOF' || fail "frame is wrong: $(head -c 4000 "$WORK/frame.json")"
import json, sys
f = json.load(open(sys.argv[1]))
dead, other, backend, frozen = sys.argv[2:6]
dev = {d["device"]: d for d in f["devices"]}
assert dev["good"]["up"] is True, dev["good"]
for n in ("dead", "badpw", "hung"):
    assert dev[n]["up"] is False and dev[n]["failures"] == 1, dev[n]
e = {n: dev[n]["last_error"] for n in dev}
assert e["dead"].startswith(f"dead: 127.0.0.1:{dead}: no answer from the BMC in "), e["dead"]
assert e["badpw"].startswith(f"badpw: 127.0.0.1:{other}: session refused by the BMC"), e["badpw"]
assert "wrong user name or password" in e["badpw"], e["badpw"]
if backend == "freeipmi":
    assert e["hung"].startswith(f"hung: 127.0.0.1:{frozen}: no answer from the BMC in 3.0 s"), e["hung"]
else:
    assert e["hung"] == f"hung: 127.0.0.1:{other}: opening the session: no answer within 2 s; ipmitool killed", e["hung"]
names = {s["id"]: s for s in f["dictionary"]}
vals = {(s["device"], names[s["series"]]["name"]): s["value"] for s in f["samples"]}
assert vals[("good", "server.inlet_temp")] == 22, vals
assert vals[("hung", "ipmi.timeouts")] == 1, vals
assert vals[("good", "ipmi.timeouts")] == 0, vals
assert not any(d in ("dead", "badpw", "hung") and m.startswith(("server.", "gpu.", "psu."))
               for d, m in vals), vals
PYEOF
pass "--once: dead, wrong password and hung BMCs are down with their reasons; good BMC read"
no_ipmitool_left
pass "--once: nothing left behind"

# 1b. The agent-wide limit on ipmitool children: three hung BMCs with
#     agent.ipmi_max_children 1 are tried one after the other (queued),
#     never two children at once. (ipmitool only: no children otherwise.)
if [ "$BACKEND" = ipmitool ]; then
{
  echo "agent: {id: agent-rq, rack: rq, interval: 1s, state_dir: $WORK/state-rq, ipmi_max_children: 1}"
  echo "ipmi:"
  for n in 1 2 3; do
    echo "  - {name: h$n, host: 127.0.0.1, port: $OTHER, user: admin, password_file: $WORK/wrong-pass,"
    echo "     ipmitool_path: $FAKE, timeout: 1s, kill_grace: 200ms}"
  done
} >"$WORK/queue.yaml"
start=$(date +%s.%N)
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/queue.yaml" --once >"$WORK/queue.json" 2>"$WORK/queue.log" &
qpid=$!
most=0
while kill -0 "$qpid" 2>/dev/null; do
  # process groups, not processes: a child's own fork (the fake's `sleep`)
  # matches too until it has exec'd
  n=$(for p in $(ipmitool_pids); do ps -o pgid= -p "$p" 2>/dev/null; done | sort -u | grep -c . || true)
  [ "$n" -le "$most" ] || most=$n
  sleep 0.05
done
wait "$qpid" || fail "--once (queue) exited non-zero"
took=$($PY -c "import time; print(f'{time.time() - $start:.1f}')")
[ "$most" -eq 1 ] || fail "expected one ipmitool child at a time, saw $most"
$PY -c "import sys; sys.exit(not $took >= 3.3)" || fail "three 1 s deadlines in a queue took only $took s"
[ "$(grep -o 'no answer within 1 s; ipmitool killed' "$WORK/queue.json" | wc -l)" -eq 3 ] \
  || fail "not every queued BMC timed out: $(cat "$WORK/queue.json")"
pass "ipmi_max_children 1: three hung BMCs killed one after the other in $took s, never two children at once"
fi

# 2. The agent running: the good BMC is scraped every interval while the
#    others fail (the hung one is killed at every attempt).
start_broker
start_aggregator
write_config
start_agent "$WORK/agent.yaml"
wait_for 15 sh -c "curl -sf '$URL/v1/racks/rf' | grep -q '\"good\"'" \
  || fail "no frame from the agent reached the aggregator: $(tail -5 "$WORK/agent.log")"
# The hung BMC has failed twice (each attempt takes its deadline, and the
# scheduler backs off) before the good one's timing is sampled.
hung_twice() { curl -sf "$URL/v1/racks/rf" | $PY -c 'import json,sys; r=json.load(sys.stdin); sys.exit(not (r["devices"]["hung"]["failures"] >= 2 and r["series"]["ipmi.timeouts@hung"]["value"] >= 2))'; }
wait_for 40 hung_twice || fail "the hung BMC did not fail twice: $(curl -sf "$URL/v1/racks/rf" | head -c 1500)"
SIDS=""
samples="$WORK/samples.txt"
: >"$samples"
for i in $(seq 12); do
  curl -sf "$URL/v1/racks/rf" >"$WORK/rack-$i.json" || fail "GET /v1/racks/rf"
  echo "$(date +%s.%N) $WORK/rack-$i.json" >>"$samples"
  for pid in $(ipmitool_pids); do
    SIDS="$SIDS $(ps -o sid= -p "$pid" 2>/dev/null || true)"
  done
  sleep 0.5
done
$PY - "$samples" "$HUNG_ERR" <<'PYEOF' || fail "the good BMC was not scraped on time"
import json, sys
hung_err = sys.argv[2]
rows = [l.split() for l in open(sys.argv[1])]
first, last = json.load(open(rows[0][1])), json.load(open(rows[-1][1]))
secs = float(rows[-1][0]) - float(rows[0][0])
g0, g1 = first["devices"]["good"], last["devices"]["good"]
scraped = g1["scrapes"] - g0["scrapes"]
frames_s = (g1["reported_ms"] - g0["reported_ms"]) / 1000.0
# interval 1 s, frames every 1 s: one scrape per frame interval, give or
# take the one in flight at either end
assert frames_s >= 4 and scraped >= round(frames_s) - 1, (scraped, frames_s, g0, g1)
# well under the hung BMC's 2 s deadline + 1 s grace: never waited on it
assert g1["failures"] == 0 and g1["up"] and g1["scrape_ms"] < 2000, g1
d = last["devices"]
i0, i1 = first["devices"]["idle"], d["idle"]
assert i1["failures"] == 0 and i1["up"] and i1["scrapes"] - i0["scrapes"] >= 1, (i0, i1)
assert not d["dead"]["up"] and "no answer from the BMC" in d["dead"]["last_error"], d["dead"]
assert not d["badpw"]["up"] and "session refused" in d["badpw"]["last_error"], d["badpw"]
assert not d["hung"]["up"] and hung_err in d["hung"]["last_error"], d["hung"]
assert d["hung"]["failures"] >= 2, d["hung"]
s = last["series"]
assert s["ipmi.timeouts@hung"]["value"] >= 2, s.get("ipmi.timeouts@hung")
assert s["server.inlet_temp@good"]["value"] == 22, s
print(f"good: {scraped} scrapes in {frames_s:.0f} s of frames; hung: {d['hung']['failures']} failures, "
      f"{s['ipmi.timeouts@hung']['value']:.0f} kills")
PYEOF
pass "running: good BMC scraped every interval, the others down with reasons"
bmc_set good inlet_temp 29
wait_for 10 sh -c "curl -sf '$URL/v1/racks/rf' | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"series\"][\"server.inlet_temp@good\"][\"value\"] != 29)'" \
  || fail "a new inlet temperature did not come through the persistent session"
pass "a changed reading arrives through the persistent session"

# 3. The BMC restarts: both ways of reading it fail while it is away (the
#    one-shot SDR cache is dropped, the shell is ended), then recover.
CACHE="$WORK/state-rf/ipmi/cached.sdr"
[ "$BACKEND" = freeipmi ] || [ -s "$CACHE" ] || fail "no SDR cache for the one-shot BMC"
down() { curl -sf "$URL/v1/racks/rf" | $PY -c "import json,sys; d=json.load(sys.stdin)['devices']; sys.exit(not (d['good']['up'] == $1 and d['cached']['up'] == $1))"; }
kill -TERM "$BMC_PID_good"
wait_for 30 down False || fail "good/cached not down while their BMC is away"
if [ "$BACKEND" = ipmitool ]; then
  [ ! -e "$CACHE" ] || fail "the SDR cache survived a failed read"
  grep -q "cached: dropping the SDR cache" "$WORK/agent.log" || fail "cache drop not logged"
fi
start_bmc good "$GOOD"
wait_for 30 down True || fail "good/cached did not recover after the BMC restarted: $(curl -sf "$URL/v1/racks/rf")"
[ "$BACKEND" = freeipmi ] || wait_for 5 test -s "$CACHE" || fail "the SDR cache was not dumped again"
# freeipmi: the first scrape after a failure compares the repository's
# signature, and the restarted BMC's new SDR (its addition time) is read.
[ "$BACKEND" = ipmitool ] || grep -q "good: read the SDR: 11 sensors; the SDR repository changed" "$WORK/agent.log" \
  || fail "the restarted BMC's SDR was not read again: $(grep 'SDR' "$WORK/agent.log")"
pass "BMC restart: both sessions down (ipmitool: SDR cache dropped), then up again"

# 3b. The BMC stops answering in the middle of its session (SIGSTOP): both
#     devices go down within their deadline with "no answer", the others
#     keep their state; once it answers again (SIGCONT) both are read
#     through a new session (freeipmi: ipmi.sessions grows).
series() { curl -sf "$URL/v1/racks/rf" | $PY -c "import json,sys; print(json.load(sys.stdin)['series'].get('$1', {}).get('value', -1))"; }
before=$(series ipmi.sessions@good)
kill -STOP "$BMC_PID_good"
wait_for 40 down False || { kill -CONT "$BMC_PID_good"; fail "good/cached not down while their BMC is stopped"; }
curl -sf "$URL/v1/racks/rf" | $PY -c "
import json, sys
d = json.load(sys.stdin)['devices']
for n in ('good', 'cached'):
    assert 'no answer' in d[n]['last_error'], d[n]
" || { kill -CONT "$BMC_PID_good"; fail "a stopped BMC is not reported as not answering"; }
kill -CONT "$BMC_PID_good"
wait_for 30 down True || fail "good/cached did not recover after the BMC answered again: $(curl -sf "$URL/v1/racks/rf")"
if [ "$BACKEND" = freeipmi ]; then
  after=$(series ipmi.sessions@good)
  $PY -c "import sys; sys.exit(not $after > $before >= 1)" || fail "no new session after the stall: $before -> $after"
fi
pass "BMC stopped mid-session: down with 'no answer', then read again"

# 4. SIGHUP: an unchanged BMC keeps its session (same shell process); a
#    changed one gets a new shell and the old one is ended.
if [ "$BACKEND" = freeipmi ]; then
  # The sessions counter says whether the BMC (and its session) was kept.
  sessions_good() { series ipmi.sessions@good; }
  sessions_are() { $PY -c "import sys; sys.exit(float('$(sessions_good)') != float('$1'))"; }
  reloads_are() { [ "$(grep -c 'reloaded .*agent.yaml' "$WORK/agent.log")" -ge "$1" ]; }
  old=$(sessions_good)
  [ "$old" != -1 ] || fail "no ipmi.sessions series for the good BMC"
  kill -HUP "$AGENT_PID"
  wait_for 10 reloads_are 1 || fail "no reload logged"
  sleep 2.5
  sessions_are "$old" || fail "an unchanged BMC lost its session on reload ($old -> $(sessions_good))"
  sed -i "s/timeout: 20s/timeout: 21s/" "$WORK/agent.yaml"
  kill -HUP "$AGENT_PID"
  wait_for 10 reloads_are 2 || fail "no second reload logged"
  wait_for 10 sessions_are 1 || fail "the changed BMC did not start over with a new session: $(sessions_good)"
  pass "reload: unchanged BMC keeps its session ($old opened), a changed one opens a new one"
else
shell_pid() { pgrep -f "[i]pmitool .*-p $GOOD .*-f $WORK/bmc-good/passfile -C 3 shell" || true; }
wait_for 10 test -n "$(shell_pid)" || fail "no persistent shell for the good BMC"
old=$(shell_pid)
kill -HUP "$AGENT_PID"
wait_for 10 grep -q "reloaded .*agent.yaml" "$WORK/agent.log" || fail "no reload logged"
sleep 1.5
[ "$(shell_pid)" = "$old" ] || fail "an unchanged BMC lost its session on reload ($old -> $(shell_pid))"
sed -i "s/timeout: 20s/timeout: 21s/" "$WORK/agent.yaml"
kill -HUP "$AGENT_PID"
wait_for 10 sh -c "[ -n \"\$(pgrep -f '[i]pmitool .*-p $GOOD .*-f $WORK/bmc-good/passfile -C 3 shell')\" ] && ! kill -0 $old 2>/dev/null" \
  || fail "the changed BMC's old shell $old is still there, or no new one: $(shell_pid)"
pass "reload: unchanged BMC keeps shell $old; a changed one gets shell $(shell_pid), the old one ended"
fi

stop_agent
no_ipmitool_left
for sid in $(echo "$SIDS" | tr ' ' '\n' | sort -u); do
  left=$(pgrep -s "$sid" || true)
  [ -z "$left" ] || fail "processes left in session $sid: $(ps -o pid,args -p "$(echo $left | tr ' ' ,)")"
done
if [ "$BACKEND" = freeipmi ]; then
  [ -z "$SIDS" ] || fail "ipmitool children ran with backend freeipmi"
  kill -CONT "$BMC_PID_frozen"
  pass "after SIGTERM: no ipmitool child ever ran"
  exit 0
fi
[ -n "$SIDS" ] || fail "no ipmitool child was seen while the agent ran"
pass "after SIGTERM: no ipmitool, and nothing in their sessions ($(echo "$SIDS" | tr ' ' '\n' | sort -u | grep -c .) seen), is left"
