#!/bin/bash
# libcurl is loaded only when a Redfish device is configured
# (agent/redfish/redfish_curl.c): the agent is not linked to it, so a rack
# host without Redfish BMCs does not map its stack (about 4 MB resident).
#  1. An agent with one CDU and no Redfish device runs with no libcurl,
#     libssh2, LDAP or GnuTLS mapped.
#  2. A SIGHUP that adds a Redfish device loads it: the reload is applied
#     and libcurl is then mapped.
#  3. On a host where libcurl cannot be loaded (hidden by a bind mount in a
#     private mount namespace), a configuration with a Redfish device is
#     refused by --check-config naming the file, the line of the device and
#     the library; the same configuration without it is accepted there.
source "$(dirname "$0")/lib.sh"

start_broker
CDU=$(free_port)
start_cdu "$CDU"
write_agent_config "$WORK/agent.yaml" lc "$CDU"
start_agent "$WORK/agent.yaml"
wait_agent_started

maps() { awk '{print $6}' "/proc/$AGENT_PID/maps" | grep -E "$1" | sort -u; }
[ -z "$(maps 'libcurl|libssh2|libldap|libgnutls')" ] ||
  fail "libcurl's stack is mapped with no Redfish device: $(maps 'libcurl|libssh2|libldap|libgnutls' | tr '\n' ' ')"

# 2. A Redfish device added by a reload (no service behind it: the device
#    is down, which is a status; the point is the library).
cp "$WORK/agent.yaml" "$WORK/agent-rf.yaml"
echo 'not-a-real-password' >"$WORK/rf-password"
chmod 600 "$WORK/rf-password"
cat >>"$WORK/agent-rf.yaml" <<YAML
redfish:
  - {name: bmc-rf, host: 127.0.0.1, port: $(free_port), user: admin, password_file: $WORK/rf-password, insecure: true}
YAML
cp "$WORK/agent-rf.yaml" "$WORK/agent.yaml"
kill -HUP "$AGENT_PID"
wait_for 20 grep -q "^.*reloaded .*agent.yaml" "$WORK/agent.log" || fail "reload not applied: $(tail -5 "$WORK/agent.log")"
[ -n "$(maps libcurl)" ] || fail "a Redfish device was configured but libcurl is not loaded"
kill -0 "$AGENT_PID" || fail "the agent exited"

# 3. libcurl missing: refused at the device's line, naming the library.
lib=$(ldconfig -p | awk '$1 == "libcurl.so.4" && /x86-64|x86_64|64bit/ {print $NF; exit}')
[ -n "$lib" ] || lib=$(ldconfig -p | awk '$1 == "libcurl.so.4" {print $NF; exit}')
[ -e "$lib" ] || fail "libcurl.so.4 not found with ldconfig -p"
hidden() { unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" "$@"; }
rc=0
hidden "$RP_BIN/agent/rackpulse-agent" -c "$WORK/agent-rf.yaml" --check-config >"$WORK/check.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "--check-config accepted a Redfish device without libcurl: $(cat "$WORK/check.out")"
line=$(grep -n "name: bmc-rf" "$WORK/agent-rf.yaml" | cut -d: -f1)
grep -q "agent-rf.yaml:$line" "$WORK/check.out" || fail "the error does not name agent-rf.yaml:$line: $(cat "$WORK/check.out")"
grep -q "libcurl" "$WORK/check.out" || fail "the error does not name libcurl: $(cat "$WORK/check.out")"
write_agent_config "$WORK/no-rf.yaml" lc "$CDU"
hidden "$RP_BIN/agent/rackpulse-agent" -c "$WORK/no-rf.yaml" --check-config >"$WORK/check2.out" 2>&1 ||
  fail "without libcurl, a configuration with no Redfish device was refused: $(cat "$WORK/check2.out")"
echo "PASS: libcurl only with a Redfish device; refused clearly where it is missing"
