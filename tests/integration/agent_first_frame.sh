#!/bin/bash
# The agent's first frame waits for every device's first scrape
# (agent.first_frame_wait), so that its dictionary names every series at
# once instead of going again a frame later.
#   1. A BMC that answers only 2.5 s after the agent started (ipmi_sim
#      stopped, then continued), beside a CDU that answers at once: the
#      first frame on the topic carries the dictionary with the BMC's
#      series and the CDU's, and none of the next frames carries it again.
#      (Without the wait, frame 1 names the CDU's series only and the
#      dictionary goes again when the BMC's appear.)
#   2. The wait is bounded: with first_frame_wait 1s and the BMC still
#      stopped, the first frame goes without it and the agent says so,
#      naming the BMC.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
BMC=$(free_udp_port)
start_bmc slow "$BMC"

# agent_yaml RACK WAIT: the CDU and the BMC, frames every second.
agent_yaml() {
  echo "agent: {id: agent-$1, rack: $1, interval: 1s, state_dir: $WORK/state-$1, first_frame_wait: $2}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", topic: frames.$1, linger: 5ms}"
  echo "modbus:"
  sed -e "s/@NAME@/cdu1/" -e "s/@PORT@/$CDU/" "$RP_SRC/tests/fixtures/sim-cdu-device.yaml"
  echo "ipmi:"
  ipmi_bmc_yaml slow "$BMC" "timeout: 20s, retries: 10, retry_interval: 1s"
}

# frames RACK: one line per frame on its topic: seq, the number of series
# its dictionary names (0: none), and whether the BMC's are among them.
frames() {
  kcat -C -b "$BOOTSTRAP" -t "frames.$1" -o beginning -e -q -f '%S:%s' >"$WORK/frames-$1.bin" 2>/dev/null
  $PY - "$WORK/frames-$1.bin" "$RP_SRC/proto" <<'PYEOF'
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.environ["RP_SRC"], "tests", "integration"))
from frames_state import messages  # the kcat dump split into messages
for msg in messages(sys.argv[1]):
    txt = subprocess.run(["protoc", "--decode=rackpulse.v1.Frame", "-I", sys.argv[2],
                          "rackpulse.proto"], input=msg, capture_output=True, check=True).stdout.decode()
    lines = txt.splitlines()
    seq = next(l.split()[1] for l in lines if l.startswith("seq:"))
    series, bmc, inside = 0, 0, False
    for l in lines:  # the top-level dictionary { ... } blocks
        if l == "dictionary {":
            series, inside = series + 1, True
        elif l == "}":
            inside = False
        elif inside and l.strip() == 'device: "slow"':
            bmc = 1
    print(seq, series, bmc)
PYEOF
}
nframes() { kcat -C -b "$BOOTSTRAP" -t "frames.$1" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l; }

# 1. The BMC answers 2.5 s after the agent started.
kill -STOP "$BMC_PID_slow"
agent_yaml r1 20s >"$WORK/r1.yaml"
start_agent "$WORK/r1.yaml"
wait_agent_started
sleep 2.5
kill -CONT "$BMC_PID_slow"
wait_for 40 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t frames.r1 -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 5 ]" \
  || fail "fewer than 5 frames: $(tail -5 "$WORK/agent.log")"
frames r1 >"$WORK/r1.txt"
echo "frames (seq, series in the dictionary, BMC named): $(head -5 "$WORK/r1.txt" | tr '\n' ' ')"
read -r seq nd bmc < <(head -1 "$WORK/r1.txt")
[ "$seq" = 1 ] || fail "the first frame on the topic is not seq 1: $(head -3 "$WORK/r1.txt")"
[ "$nd" -gt 0 ] && [ "$bmc" = 1 ] \
  || fail "frame 1's dictionary does not name the BMC's series: $(head -5 "$WORK/r1.txt")"
again=$(head -5 "$WORK/r1.txt" | awk 'NR > 1 && $2 > 0' | wc -l)
[ "$again" -eq 0 ] || fail "the dictionary went again in frames 2-5: $(head -5 "$WORK/r1.txt")"
! grep -q "first frame sent before every device's first scrape" "$WORK/agent.log" \
  || fail "the wait ran out: $(grep "first frame" "$WORK/agent.log")"
pass "a BMC answering 2.5 s late: frame 1 names its series and the CDU's ($nd), frames 2-5 carry no dictionary"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || fail "the agent did not exit cleanly"

# 2. The wait is bounded.
kill -STOP "$BMC_PID_slow"
agent_yaml r2 1s >"$WORK/r2.yaml"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/r2.yaml" >"$WORK/agent2.out" 2>"$WORK/agent2.log" &
PIDS+=($!)
A2=$!
wait_for 20 sh -c "[ \$(kcat -C -b $BOOTSTRAP -t frames.r2 -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l) -ge 1 ]" \
  || fail "no first frame while the BMC does not answer: $(tail -5 "$WORK/agent2.log")"
grep -q "first frame sent before every device's first scrape finished (agent.first_frame_wait 1000 ms): slow not yet" \
  "$WORK/agent2.log" || fail "the bounded wait is not logged: $(grep -i "first\|slow" "$WORK/agent2.log")"
read -r seq nd bmc < <(frames r2 | head -1)
[ "$seq" = 1 ] && [ "$nd" -gt 0 ] && [ "$bmc" = 0 ] \
  || fail "frame 1 should name the CDU's series only: $seq $nd $bmc"
kill -CONT "$BMC_PID_slow"
kill -TERM "$A2"
wait "$A2" 2>/dev/null || true
pass "first_frame_wait 1s with the BMC silent: frame 1 goes without it, logged naming the BMC"
