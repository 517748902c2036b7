#!/bin/bash
# A second stop signal while the agent stops (Ctrl-C, then a service
# manager's SIGTERM a moment later) does not kill it: it logs that it is
# already stopping, exits 0 once its scrapes in flight have ended, and
# leaves no ipmitool behind. Before, the second signal met the default
# action: exit 143 with the persistent ipmitool shells orphaned.
# The stop is held open deterministically by a BMC whose ipmitool hangs
# (tests/fixtures/fake-ipmitool-hang, the stub ipmi_faults.sh uses): the
# agent waits for that scrape's 10 s deadline before it closes, and the
# second signal is sent inside that window.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

start_broker
BMC=$(free_udp_port)
start_bmc sig "$BMC" inlet_temp=24
{
  ipmi_agent_head rsig
  ipmi_bmc_yaml sig "$BMC"
  echo "  - {name: hung, host: 127.0.0.1, port: $BMC, user: admin, password_file: $WORK/bmc-sig/passfile,"
  echo "     ipmitool_path: $RP_SRC/tests/fixtures/fake-ipmitool-hang, timeout: 10s, kill_grace: 1s}"
} >"$WORK/agent.yaml"
start_agent "$WORK/agent.yaml"

# The persistent shell is up once the first scrape went through it.
wait_for 30 sh -c "pgrep -f '[i]pmitool.*$WORK.*shell' >/dev/null" \
  || fail "no persistent ipmitool shell: $(tail -5 "$WORK/agent.log")"
wait_for 30 sh -c "pgrep -f '[f]ake-ipmitool-hang' >/dev/null" \
  || fail "the hung BMC's scrape did not start: $(tail -5 "$WORK/agent.log")"

kill -INT "$AGENT_PID"
wait_for 5 grep -q "SIGINT: stopping" "$WORK/agent.log" || fail "no stop line: $(tail -5 "$WORK/agent.log")"
kill -0 "$AGENT_PID" || fail "the agent ended before its hung scrape's deadline"
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "SIGINT then SIGTERM: the agent exited with status $rc: $(tail -5 "$WORK/agent.log")"
grep -q "SIGTERM: already stopping" "$WORK/agent.log" \
  || fail "the second signal is not logged: $(tail -5 "$WORK/agent.log")"
no_ipmitool_left
! pgrep -f "[f]ake-ipmitool-hang.*$WORK" >/dev/null || fail "the hung ipmitool stub outlived the agent"
if grep -q "Sanitizer" "$WORK/agent.log"; then fail "sanitizer report: $(grep -A20 Sanitizer "$WORK/agent.log" | head -40)"; fi
pass "SIGINT then SIGTERM: the agent exits 0 after its flush, no ipmitool left"
