#!/bin/bash
# The BMC password never shows: not on any ipmitool child's command line
# (/proc/PID/cmdline, read while the agent runs), not in the environment of
# a child that reads it from a file, not in the agent's logs (at debug
# level) nor in the --once output, also when the password is wrong. The
# password is passed as ipmitool -f FILE or, with password_env, as
# IPMI_PASSWORD in the environment of the child alone (-E). With
# BACKEND=freeipmi no child runs at all: the password goes from the file or
# the agent's environment straight to FreeIPMI, and shows nowhere either.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ipmi_lib.sh"

SECRET='Rp-t3st-9QzX'   # not "admin": that is also the user name
P1=$(free_udp_port); P2=$(free_udp_port)
start_bmc s1 "$P1"
start_bmc s2 "$P2"
# Give both BMCs the test password (this setup command is not the agent's).
for b in "s1 $P1" "s2 $P2"; do
  set -- $b
  ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$2" -U admin -f "$WORK/bmc-$1/passfile" \
    user set password 2 "$SECRET" >/dev/null || fail "cannot set the password of $1"
done
printf '%s\n' "$SECRET" >"$WORK/secret-pass"
chmod 600 "$WORK/secret-pass"
printf 'wrong\n' >"$WORK/wrong-pass"
chmod 600 "$WORK/wrong-pass"
export RP_TEST_SECRET="$SECRET"

start_broker
{
  ipmi_agent_head rs
  echo "  - {name: s1, host: 127.0.0.1, port: $P1, user: admin, password_file: $WORK/secret-pass$BE}"
  echo "  - {name: s2, host: 127.0.0.1, port: $P2, user: admin, password_env: RP_TEST_SECRET$BE}"
  echo "  - {name: s3, host: 127.0.0.1, port: $P2, user: admin, password_file: $WORK/wrong-pass$BE}"
  echo "  - {name: s4, host: 127.0.0.1, port: $P1, user: admin, password_env: RP_TEST_SECRET,"
  echo "     session: oneshot$BE}"
} >"$WORK/agent.yaml"

"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --log-level debug \
  >"$WORK/agent.out" 2>"$WORK/agent.log" &
PIDS+=($!)
AGENT_PID=$!
# Every ipmitool talking to the two test BMCs (by port: the persistent
# shells' command lines name no file of $WORK, so ipmi_lib's match misses
# them, and the one-shot children live only milliseconds).
ipmitool_pids() { pgrep -f "[i]pmitool .*-p ($P1|$P2) " || true; }
if [ "$BACKEND" = freeipmi ]; then
  # In process: every BMC scraped (s3 refused), never a child, and the
  # agent's own command line and the process list free of the password.
  all_scraped() { for n in s1 s2 s4; do grep -q "$n: read the SDR" "$WORK/agent.log" || return 1; done; grep -q "s3: down" "$WORK/agent.log"; }
  wait_for 30 all_scraped || fail "not every BMC was scraped: $(cat "$WORK/agent.log")"
  [ -z "$(ipmitool_pids)" ] || fail "ipmitool children with backend freeipmi: $(ipmitool_pids)"
  if tr '\0' ' ' </proc/"$AGENT_PID"/cmdline | grep -q -- "$SECRET"; then fail "the password is on the agent's command line"; fi
  if ps -eo args | grep -v grep | grep -q -- "$SECRET"; then fail "the password is in ps output"; fi
  if tr '\0' '\n' </proc/"$AGENT_PID"/environ | grep -q "^IPMI_PASSWORD="; then fail "the agent put IPMI_PASSWORD in its environment"; fi
  pass "freeipmi: no child process, the password on no command line and in no new environment variable"
else
: >"$WORK/cmdlines.txt"
seen_env=0
for i in $(seq 150); do
  for pid in $(ipmitool_pids); do
    # Read each file once: a one-shot child may be gone a moment later.
    cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null || true)
    env=$(tr '\0' '\n' </proc/"$pid"/environ 2>/dev/null || true)
    [ -n "$cmd" ] && [ -n "$env" ] || continue
    echo "$cmd" >>"$WORK/cmdlines.txt"
    if [[ "$cmd" == *" -E "* ]]; then
      grep -qx "IPMI_PASSWORD=$SECRET" <<<"$env" && seen_env=$((seen_env + 1))
    elif grep -q -- "$SECRET" <<<"$env"; then
      fail "pid $pid (password from a file: $cmd) has the password in its environment"
    fi
  done
  # Under load the children come later: look for up to 15 s, stop once
  # both kinds were seen.
  if [ "$i" -ge 40 ] && grep -q -- "-f $WORK/secret-pass" "$WORK/cmdlines.txt" &&
     grep -q -- " -E " "$WORK/cmdlines.txt"; then
    break
  fi
  sleep 0.1
done
grep -q -- "-f $WORK/secret-pass" "$WORK/cmdlines.txt" || fail "no -f child seen: $(sort -u "$WORK/cmdlines.txt")"
grep -q -- " -E " "$WORK/cmdlines.txt" || fail "no -E child seen: $(sort -u "$WORK/cmdlines.txt")"
[ "$seen_env" -gt 0 ] || fail "no -E child had IPMI_PASSWORD in its environment"
if grep -q -- "$SECRET" "$WORK/cmdlines.txt"; then fail "the password is on a command line"; fi
if ps -eo args | grep -v grep | grep -q -- "$SECRET"; then fail "the password is in ps output"; fi
pass "$(sort -u "$WORK/cmdlines.txt" | grep -c .) distinct ipmitool command lines, none with the password; only -E children have it, in their environment"
fi

stop_agent
grep -q "s3: down: .*session refused" "$WORK/agent.log" || fail "the wrong password is not reported: $(cat "$WORK/agent.log")"
"$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent.yaml" --once --log-level debug \
  >"$WORK/frame.json" 2>"$WORK/once.log" || fail "--once exited non-zero"
grep -q '"server.inlet_temp"' "$WORK/frame.json" || fail "no readings in --once output"
for f in agent.log agent.out once.log frame.json; do
  if grep -q -- "$SECRET" "$WORK/$f"; then fail "the password is in $f"; fi
done
no_ipmitool_left
pass "the password is in none of the logs (debug), the --once output or the frame"
