#!/bin/bash
# bench/rack/run.sh: rackpulse-agent side by side with collectd on one
# simulated rack (issue 12).
#
#   bash bench/rack/run.sh [--bmcs N] [--pdus M] [--seconds S] [--build DIR]
#                          [--only collectd|rackpulse] [--ipmitool-registry standin|full]
#                          [--backends "ipmitool freeipmi"] [--rounds R]
#   --rounds R (default 1) runs the collectors R times in turn (collectd,
#   then each backend, then collectd again ...; round r >= 2 names them
#   NAME.rR, each to its own topic and state) and ends with each round's
#   ratios to collectd and their median: one run's ratio scatters by
#   +-15 % on a shared machine (BENCHMARKS.md, issue 25's third pass);
#   PERF=1 also profiles each collector's steady state (perf record -g -p;
#   its overhead is then in the steady-state CPU figures: profile in a
#   separate run);
#   KEEP=DIR keeps a copy of the work files (configs, logs, Kafka dumps);
#   NO_CGROUP=1 measures through /proc instead of a cgroup (a cross-check).
#
# Starts on loopback: N BMCs (ipmi_sim, tests/fixtures/ipmi_sim/start-bmc.sh;
# BMC i also listens on 127.12.0.i:623, because collectd's ipmi plugin has no
# port option: see shim/ipmi_sim), M PDUs (one snmpsimd serving M copies of
# the raritan-px fixture, community pduJ), one CDU (tools/cdu_sim.py,
# pymodbus) and the dev broker (rackpulse-devbroker). Then runs, one after
# the other, for S seconds each, against the same devices:
#   1. collectd (Debian collectd-core): ipmi plugin (OpenIPMI, one remote
#      <Instance> per BMC, every 5 s), snmp plugin (the 22 OIDs the
#      raritan-px profile maps, one GET per value as collectd does for
#      scalars, scaled by the fixture's decimal digits, every 1 s), modbus
#      plugin (the 8 registers of tests/fixtures/sim-cdu-device.yaml, every
#      1 s), write_kafka (JSON) to topic collectd.values;
#   2. rackpulse-agent, once per IPMI backend of --backends (default both:
#      rackpulse-ipmitool with persistent ipmitool shells, rackpulse-freeipmi
#      with FreeIPMI's library in process): the same devices, BMCs every
#      5 s, PDUs and CDU every 1 s, its defaults otherwise (edge statistics
#      for the default series), each run to its own topic
#      (rackpulse.BACKEND).
# Both run as the packaged rackpulse-agent.service runs the agent: in a
# mount namespace where ipmitool's IANA enterprise-number registry is the
# one-entry stand-in the package ships (packaging/ipmitool/; ipmitool 1.8.19
# otherwise loads 4.7 MB into every shell). --ipmitool-registry full runs
# them with the real registry instead. collectd does not use ipmitool.
# For each: CPU of the whole process tree from a cgroup made for the run
# (cgroup v1 cpuacct.usage, or v2 cpu.stat; counts exited children such as
# ipmitool), else from /proc (the process and its descendants, utime + stime,
# plus the cutime + cstime of the children they reaped); the same over the
# middle half of the run (steady state); CPU of the main process alone
# (/proc/PID/stat utime + stime), its peak RSS (VmHWM) and its children's
# RSS and PSS, read just before SIGTERM; values delivered to Kafka (kcat,
# then report.py, which prints the table). The Kafka JSON/protobuf
# encoding and delivery is part of each collector's cost.
# Defaults: 40 BMCs, 2 PDUs, 120 s per collector, build dir $RP_BIN or
# ./build. Needs: collectd-core, openipmi, ipmitool, snmpsim, snmp,
# python3-pymodbus, kcat, protobuf-compiler (tools/deps.sh, plus
# `apt-get install collectd-core`).
set -euo pipefail

BMCS=40 PDUS=2 SECS=120 BUILD=${RP_BIN:-build} ONLY="" REGISTRY=standin BACKENDS="ipmitool freeipmi" ROUNDS=1
while [ $# -gt 0 ]; do
  case $1 in
  --bmcs) BMCS=$2; shift 2 ;;
  --pdus) PDUS=$2; shift 2 ;;
  --seconds) SECS=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --only) ONLY=$2; shift 2 ;;
  --ipmitool-registry) REGISTRY=$2; shift 2 ;;
  --backends) BACKENDS=$2; shift 2 ;;
  --rounds) ROUNDS=$2; shift 2 ;;
  -h | --help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
  *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $BMCS =~ ^[0-9]+$ && $BMCS -le 254 && $PDUS =~ ^[0-9]+$ && $SECS =~ ^[0-9]+$ && $SECS -gt 0 ]] ||
  { echo "run.sh: --bmcs 0..254, --pdus >= 0 and --seconds > 0" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9]$ ]] || { echo "run.sh: --rounds 1..9" >&2; exit 2; }
case $ONLY in "" | collectd | rackpulse) ;; *) echo "run.sh: --only collectd|rackpulse" >&2; exit 2 ;; esac
case $REGISTRY in standin | full) ;; *) echo "run.sh: --ipmitool-registry standin|full" >&2; exit 2 ;; esac
for b in $BACKENDS; do
  case $b in ipmitool | freeipmi) ;; *) echo "run.sh: --backends: ipmitool and/or freeipmi" >&2; exit 2 ;; esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
export RP_SRC=$(cd "$HERE/../.." && pwd)
export RP_BIN=$(cd "$BUILD" && pwd)
for f in "$RP_BIN/agent/rackpulse-agent" "$RP_BIN/tools/rackpulse-devbroker"; do
  [ -x "$f" ] || { echo "run.sh: $f missing: build first" >&2; exit 2; }
done
for t in collectd ipmi_sim ipmitool sdrcomp snmpsimd snmpget kcat protoc unshare; do
  command -v "$t" >/dev/null || { echo "run.sh: $t not found (apt-get install collectd-core openipmi ipmitool snmpsim snmp kcat protobuf-compiler)" >&2; exit 2; }
done

source "$RP_SRC/tests/integration/lib.sh" # WORK, PIDS, cleanup, wait_for, free_port, start_cdu
source "$RP_SRC/tests/integration/snmp_lib.sh" # start_snmpsim, secret

# ---- measurement: a cgroup per run ----
CG_KIND=none CG_ROOT=""
if [ -n "${NO_CGROUP:-}" ]; then
  : # NO_CGROUP=1: the /proc method (a cross-check of the cgroup figures)
elif [ -w /sys/fs/cgroup/cpuacct ] && [ -e /sys/fs/cgroup/cpuacct/cpuacct.usage_user ]; then
  CG_KIND=v1 CG_ROOT=/sys/fs/cgroup/cpuacct/rackpulse-bench-rack.$$
elif [ -e /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
  CG_KIND=v2 CG_ROOT=/sys/fs/cgroup/rackpulse-bench-rack.$$
fi
[ "$CG_KIND" = none ] || mkdir "$CG_ROOT"
RUN_PID=""
BMC_PIDS=()
bench_cleanup() {
  local cg pid=""
  if [ -n "$RUN_PID" ]; then kill -TERM "$RUN_PID" 2>/dev/null || true; sleep 1; fi
  # The BMCs all at once (lib.sh's cleanup stops one at a time, and an
  # ipmi_sim takes seconds to exit on SIGTERM).
  for pid in "${BMC_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    for pid in "${BMC_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=""; done
    [ -n "$pid" ] || break
    sleep 0.2
  done
  for pid in "${BMC_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "$CG_KIND" != none ] && [ -d "$CG_ROOT" ]; then
    for cg in "$CG_ROOT"/*/; do
      [ -d "$cg" ] || continue
      for pid in $(cat "$cg/cgroup.procs"); do kill -KILL "$pid" 2>/dev/null || true; done
      for _ in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.1; done
      rmdir "$cg" 2>/dev/null || true
    done
    rmdir "$CG_ROOT" 2>/dev/null || true
  fi
  cleanup
}
trap 'bench_cleanup; [ "$FAILED" -eq 0 ] || exit 1' EXIT
trap 'FAILED=1; exit 130' INT TERM HUP

# cg_cpu DIR: "user_s sys_s" of everything that ran in the cgroup (v1: the
# total is cpuacct.usage, exact; its split by usage_user/usage_sys, which are
# sampled at clock ticks)
cg_cpu() {
  if [ "$CG_KIND" = v1 ]; then
    echo "$(cat "$1/cpuacct.usage") $(cat "$1/cpuacct.usage_user") $(cat "$1/cpuacct.usage_sys")" |
      awk '{u = $2 + $3 > 0 ? $2 / ($2 + $3) : 1; printf "%.3f %.3f\n", $1 * u / 1e9, $1 * (1 - u) / 1e9}'
  else
    awk '$1 == "user_usec" {u = $2} $1 == "system_usec" {s = $2}
         END {printf "%.3f %.3f\n", u / 1e6, s / 1e6}' "$1/cpu.stat"
  fi
}
TICK=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$TICK" '{sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / t}' "/proc/$1/stat"; }
# tree_cpu CGROUP_DIR PID: CPU seconds so far of the run's tree: the cgroup's,
# else (no cgroup) /proc: PID and its live descendants (utime + stime) plus
# the children they reaped (cutime + cstime)
tree_cpu() {
  if [ -n "$1" ]; then
    cg_cpu "$1" | awk '{printf "%.3f\n", $1 + $2}'
  else
    local k sum=0
    for k in "$2" $(descendants "$2"); do
      sum=$(awk -v t="$TICK" -v s="$sum" '{sub(/^.*\) /, ""); printf "%.3f", s + ($12 + $13 + $14 + $15) / t}' "/proc/$k/stat" 2>/dev/null || echo "$sum")
    done
    echo "$sum"
  fi
}
descendants() { # PID: every descendant's pid
  local kids k
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
  for k in $kids; do echo "$k"; descendants "$k"; done
}

# ---- the simulated rack ----
bmc_addr() { echo "127.12.0.$1"; }
echo "starting $BMCS ipmi_sim BMCs, $PDUS PDUs (snmpsim), 1 CDU (pymodbus), the dev broker..." >&2
chmod 755 "$WORK"
for i in $(seq "$BMCS"); do
  (PATH="$HERE/shim:$PATH" BMC_EXTRA_ADDR="$(bmc_addr "$i") 623" \
    sh "$RP_SRC/tests/fixtures/ipmi_sim/start-bmc.sh" "b$i" "$(free_udp_port)" "$WORK/bmc$i" \
    >"$WORK/bmc$i.pid" 2>"$WORK/bmc$i.log" || echo "b$i failed: $(cat "$WORK/bmc$i.log")" >&2) &
  if [ $((i % 8)) -eq 0 ]; then wait; fi
done
wait
for i in $(seq "$BMCS"); do
  [ -s "$WORK/bmc$i.pid" ] || fail "BMC b$i did not start"
  PIDS+=("$(cat "$WORK/bmc$i.pid")")
  BMC_PIDS+=("$(cat "$WORK/bmc$i.pid")")
  ipmitool -I lanplus -C 3 -N 1 -R 2 -H "$(bmc_addr "$i")" -U admin -f "$WORK/bmc$i/passfile" \
    mc info >/dev/null 2>&1 || fail "BMC b$i does not answer on $(bmc_addr "$i"):623"
done

export SNMPSIM_LOGGING=null # its request log would cost it CPU; it is not measured anyway
pdu_copies() {
  local j
  for ((j = 1; j <= PDUS; j++)); do
    cp "$RP_SRC/tests/fixtures/snmpsim/raritan-px.snmprec" "$WORK/snmpsim/data/pdu$j.snmprec"
    secret "pdu$j.community" "pdu$j"
  done
}
if [ "$PDUS" -gt 0 ]; then
  start_snmpsim pdu_copies
  wait_for 60 snmpget -v2c -c "pdu$PDUS" -t 1 -r 0 "127.0.0.1:$SIM_PORT" 1.3.6.1.2.1.1.3.0 ||
    fail "snmpsimd does not serve pdu$PDUS"
fi

CDU_PORT=$(free_port)
start_cdu "$CDU_PORT"

# round_suffix R: what names, topics and state of round R carry ("" for the first).
round_suffix() { [ "$1" -eq 1 ] && echo "" || echo ".r$1"; }

TOPICS=()
for r in $(seq "$ROUNDS"); do
  sfx=$(round_suffix "$r")
  TOPICS+=(--topic "rackpulse.ipmitool$sfx" --topic "rackpulse.freeipmi$sfx" --topic "collectd.values$sfx")
done
"$RP_BIN/tools/rackpulse-devbroker" "${TOPICS[@]}" \
  --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.out" 2>"$WORK/broker.log" &
PIDS+=($!)
wait_for 10 test -s "$WORK/bootstrap" || fail "dev broker did not start"
BOOTSTRAP=$(cat "$WORK/bootstrap")

# ---- collectd's configuration ----
# The raritan-px profile's 22 values: name|value OID|decimal digits OID|type|extra scale
RARITAN=1.3.6.1.4.1.13742.6
pdu_values() {
  local p o b
  echo "inlet-power|$RARITAN.5.2.3.1.4.1.1.5|$RARITAN.3.3.4.1.7.1.1.5|power|1"
  echo "inlet-energy|$RARITAN.5.2.3.1.4.1.1.8|$RARITAN.3.3.4.1.7.1.1.8|energy|0.001" # Wh -> kWh
  for p in 1 2 3; do
    echo "phase$p-current|$RARITAN.5.2.4.1.4.1.1.$p.1|$RARITAN.3.3.6.1.7.1.1.$p.1|current|1"
    echo "phase$p-voltage|$RARITAN.5.2.4.1.4.1.1.$p.4|$RARITAN.3.3.6.1.7.1.1.$p.4|voltage|1"
    echo "phase$p-power|$RARITAN.5.2.4.1.4.1.1.$p.5|$RARITAN.3.3.6.1.7.1.1.$p.5|power|1"
  done
  for b in 1 2 3; do
    echo "breaker$b-current|$RARITAN.5.3.3.1.4.1.$b.1|$RARITAN.3.4.4.1.7.1.$b.1|current|1"
  done
  for o in 1 2 3 4; do
    echo "outlet$o-current|$RARITAN.5.4.3.1.4.1.$o.1|$RARITAN.3.5.4.1.7.1.$o.1|current|1"
    echo "outlet$o-power|$RARITAN.5.4.3.1.4.1.$o.5|$RARITAN.3.5.4.1.7.1.$o.5|power|1"
  done
}
collectd_config() {
  local i j name oid doid type extra digits collect=""
  cat <<EOF
# generated by bench/rack/run.sh
Hostname "rack-bench"
FQDNLookup false
BaseDir "$WORK/collectd"
PIDFile "$WORK/collectd/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$WORK/collectd.log"
  Timestamp true
</Plugin>
LoadPlugin write_kafka
<Plugin write_kafka>
  Property "metadata.broker.list" "$BOOTSTRAP"
  <Topic "collectd.values">
    Format JSON
  </Topic>
</Plugin>
EOF
  if [ "$BMCS" -gt 0 ]; then
    printf '<LoadPlugin ipmi>\n  Interval 5\n</LoadPlugin>\n<Plugin ipmi>\n'
    for i in $(seq "$BMCS"); do
      printf '  <Instance "b%s">\n    Host "b%s"\n    Address "%s"\n    Username "admin"\n' \
        "$i" "$i" "$(bmc_addr "$i")"
      printf '    Password "%s"\n    AuthType "rmcp+"\n  </Instance>\n' "$(cat "$WORK/bmc$i/passfile")"
    done
    echo "</Plugin>"
  fi
  if [ "$PDUS" -gt 0 ]; then
    echo "LoadPlugin snmp"
    echo "<Plugin snmp>"
    while IFS='|' read -r name oid doid type extra; do
      digits=$(awk -F'|' -v o="$doid" '$1 == o {print $3}' "$RP_SRC/tests/fixtures/snmpsim/raritan-px.snmprec")
      [ -n "$digits" ] || fail "no decimal digits for $doid in raritan-px.snmprec"
      printf '  <Data "%s">\n    Type "%s"\n    Table false\n    TypeInstance "%s"\n' "$name" "$type" "$name"
      printf '    Scale %s\n    Values "%s"\n  </Data>\n' "$(awk -v d="$digits" -v x="$extra" 'BEGIN {printf "%.9g", x / 10 ^ d}')" "$oid"
      collect="$collect \"$name\""
    done < <(pdu_values)
    for j in $(seq "$PDUS"); do
      printf '  <Host "pdu%s">\n    Address "127.0.0.1:%s"\n    Version 2\n    Community "pdu%s"\n' "$j" "$SIM_PORT" "$j"
      printf '    Collect%s\n    Interval 1\n    Timeout 1\n    Retries 1\n  </Host>\n' "$collect"
    done
    echo "</Plugin>"
  fi
  # tests/fixtures/sim-cdu-device.yaml, register by register
  cat <<EOF
LoadPlugin modbus
<Plugin modbus>
  <Data "supply_temp">
    RegisterBase 0
    RegisterType Int16
    RegisterCmd ReadInput
    Type temperature
    Instance "supply"
    Scale 0.1
  </Data>
  <Data "return_temp">
    RegisterBase 1
    RegisterType Int16
    RegisterCmd ReadInput
    Type temperature
    Instance "return"
    Scale 0.1
  </Data>
  <Data "flow">
    RegisterBase 2
    RegisterType Uint16
    RegisterCmd ReadInput
    Type flow
    Instance "coolant"
    Scale 0.1
  </Data>
  <Data "dp">
    RegisterBase 3
    RegisterType Uint16
    RegisterCmd ReadInput
    Type pressure
    Instance "differential"
  </Data>
  <Data "heat_load">
    RegisterBase 4
    RegisterType FloatLE
    RegisterCmd ReadInput
    Type power
    Instance "heat_load_kw"
  </Data>
  <Data "level">
    RegisterBase 6
    RegisterType Uint16
    RegisterCmd ReadInput
    Type percent
    Instance "reservoir"
  </Data>
  <Data "alarms">
    RegisterBase 8
    RegisterType Uint16
    RegisterCmd ReadInput
    Type gauge
    Instance "alarms"
  </Data>
  <Data "pump_speed">
    RegisterBase 0
    RegisterType Uint16
    RegisterCmd ReadHolding
    Type percent
    Instance "pump"
    Scale 0.1
  </Data>
  <Host "cdu1">
    Address "127.0.0.1"
    Port "$CDU_PORT"
    Interval 1
    <Slave 1>
      Instance "cdu1"
      Collect "supply_temp"
      Collect "return_temp"
      Collect "flow"
      Collect "dp"
      Collect "heat_load"
      Collect "level"
      Collect "alarms"
      Collect "pump_speed"
    </Slave>
  </Host>
</Plugin>
EOF
}

# rackpulse_config BACKEND: the agent's configuration (ipmi_sim needs
# FreeIPMI's opensesspriv workaround).
rackpulse_config() {
  local i j be=""
  [ "$1" = freeipmi ] && be=", backend: freeipmi, workarounds: opensesspriv"
  echo "agent: {id: bench-rack-$1, rack: rack-bench, interval: 1s, state_dir: $WORK/rp-state-$1,"
  echo "        profiles_dir: $RP_SRC/packaging/profiles}"
  echo "kafka: {brokers: \"$BOOTSTRAP\", topic: rackpulse.$1}"
  if [ "$BMCS" -gt 0 ]; then
    echo "ipmi:"
    for i in $(seq "$BMCS"); do
      echo "  - {name: b$i, host: $(bmc_addr "$i"), port: 623, user: admin, password_file: $WORK/bmc$i/passfile, interval: 5s$be}"
    done
  fi
  if [ "$PDUS" -gt 0 ]; then
    echo "snmp:"
    for j in $(seq "$PDUS"); do
      echo "  - {name: pdu$j, host: 127.0.0.1, port: $SIM_PORT, community_file: $WORK/pdu$j.community, profile: raritan-px}"
    done
  fi
  echo "modbus:"
  sed -e "s/@NAME@/cdu1/" -e "s/@PORT@/$CDU_PORT/" "$RP_SRC/tests/fixtures/sim-cdu-device.yaml"
}

mkdir -p "$WORK/collectd"
collectd_config >"$WORK/collectd.conf"
for b in $BACKENDS; do rackpulse_config "$b" >"$WORK/rackpulse-$b.yaml"; done
collectd -t -C "$WORK/collectd.conf" >"$WORK/collectd-check.log" 2>&1 ||
  fail "collectd -t: $(cat "$WORK/collectd-check.log")"
for b in $BACKENDS; do
  "$RP_BIN/agent/rackpulse-agent" -c "$WORK/rackpulse-$b.yaml" --check-config >"$WORK/rp-check.log" 2>&1 ||
    fail "rackpulse-agent --check-config ($b): $(cat "$WORK/rp-check.log")"
done

# run NAME TOPIC CMD...: runs CMD for SECS seconds in a fresh cgroup; writes WORK/NAME.meas
# and every message of TOPIC to WORK/NAME.kcat.
run() {
  local name=$1 topic=$2 cg="" pid t0 t1 user sys main hwm crss=0 cpss=0 mpss=0 nkids=0 k r p method rc=0
  shift 2
  if [ "$REGISTRY" = standin ]; then # as rackpulse-agent.service's BindReadOnlyPaths (same pid: all exec)
    set -- unshare -m sh -c 'mount --bind "$0" /usr/share/misc/enterprise-numbers.txt && exec "$@"' \
      "$RP_SRC/packaging/ipmitool/enterprise-numbers.txt" "$@"
  fi
  echo "$name: ${SECS}s..." >&2
  t0=$(date +%s.%N)
  if [ "$CG_KIND" != none ]; then
    cg=$CG_ROOT/$name
    mkdir "$cg"
    sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@" \
      >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    method="cgroup $CG_KIND ($( [ "$CG_KIND" = v1 ] && echo cpuacct.usage || echo cpu.stat user_usec + system_usec)) of a cgroup made for the run, holding only the collector and its descendants, exited ones included"
  else
    /usr/bin/time -f '%U %S' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local tpid=$!
    for _ in $(seq 50); do pid=$(pgrep -P "$tpid" || true); [ -n "$pid" ] && break; sleep 0.1; done
    method="/usr/bin/time for the whole run: the collector and the descendants it reaped; /proc for the steady state: the live tree plus what it reaped (no cgroup used)"
  fi
  RUN_PID=$pid
  # The middle half of the run (steady state: sessions open, no start-up or
  # shutdown): tree CPU at its start and end, and with PERF=1 a profile of
  # the collector and its children (perf record -g -p), for report.py.
  local q w1 w2 c1 c2 m1 m2 perfpid=""
  q=$(awk -v s="$SECS" 'BEGIN {printf "%.3f", s / 4}')
  sleep "$q"
  w1=$(date +%s.%N) c1=$(tree_cpu "$cg" "$pid") m1=$(proc_cpu "$pid")
  if [ -n "${PERF:-}" ]; then
    perf record -q -g -o "$WORK/$name.perf.data" -p "$(echo "$pid" $(descendants "$pid") | tr ' ' ,)" \
      -- sleep "$(awk -v q="$q" 'BEGIN {print 2 * q}')" >"$WORK/$name.perf.log" 2>&1 &
    perfpid=$!
  fi
  sleep "$q"; sleep "$q"
  w2=$(date +%s.%N) c2=$(tree_cpu "$cg" "$pid") m2=$(proc_cpu "$pid")
  [ -z "$perfpid" ] || wait "$perfpid" || echo "$name: perf record failed: $(tail -3 "$WORK/$name.perf.log")" >&2
  sleep "$q"
  kill -0 "$pid" 2>/dev/null || fail "$name exited early: $(tail -5 "$WORK/$name.err")"
  main=$(proc_cpu "$pid")
  hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status")
  mpss=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
  cp "/proc/$pid/smaps" "$WORK/$name.smaps" 2>/dev/null || true # where the RSS is (KEEP=DIR)
  for k in $(descendants "$pid"); do
    r=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$k/status" 2>/dev/null || true)
    p=$(awk '$1 == "Pss:" {print $2}' "/proc/$k/smaps_rollup" 2>/dev/null || true)
    [ -n "$r" ] && { crss=$((crss + r)); cpss=$((cpss + ${p:-0})); nkids=$((nkids + 1)); }
  done
  kill -TERM "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "$name: still running 15 s after SIGTERM, killed" >&2; kill -KILL "$pid"; }
  if [ -n "${tpid:-}" ]; then wait "$tpid" 2>/dev/null || rc=$?; else wait "$pid" 2>/dev/null || rc=$?; fi
  RUN_PID=""
  t1=$(date +%s.%N)
  if [ -n "$cg" ]; then
    for _ in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.1; done
    [ -s "$cg/cgroup.procs" ] && echo "$name: processes left in its cgroup: $(cat "$cg/cgroup.procs" | tr '\n' ' ')" >&2
    read -r user sys < <(cg_cpu "$cg")
  else
    read -r user sys <"$WORK/$name.time"
  fi
  {
    echo "run_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')"
    echo "cpu_user_s=$user"
    echo "cpu_sys_s=$sys"
    echo "cpu_tree_s=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.3f", u + s}')"
    echo "cpu_main_s=$main"
    echo "hwm_kb=$hwm"
    echo "child_rss_kb=$crss"
    echo "child_pss_kb=$cpss"
    echo "main_pss_kb=$mpss"
    echo "children=$nkids"
    echo "exit_status=$rc"
    echo "steady_w1=$w1"
    echo "steady_w2=$w2"
    echo "steady_cpu_s=$(awk -v a="$c1" -v b="$c2" 'BEGIN {printf "%.3f", b - a}')"
    echo "steady_main_s=$(awk -v a="$m1" -v b="$m2" 'BEGIN {printf "%.3f", b - a}')"
    echo "cpu_method=$method"
  } >"$WORK/$name.meas"
  sleep 1
  kcat -C -b "$BOOTSTRAP" -t "$topic" -o beginning -e -q -f '%S:%s' >"$WORK/$name.kcat" 2>"$WORK/$name.kcat.log" ||
    fail "kcat on $topic: $(cat "$WORK/$name.kcat.log")"
}

# Round r >= 2: the same configurations to the round's own topics (and the
# agent with a new state directory), so that each round's dump holds its
# own run only.
for r in $(seq 2 "$ROUNDS"); do
  sfx=$(round_suffix "$r")
  sed "s/\"collectd.values\"/\"collectd.values$sfx\"/" "$WORK/collectd.conf" >"$WORK/collectd$sfx.conf"
  for b in $BACKENDS; do
    sed -e "s|topic: rackpulse.$b}|topic: rackpulse.$b$sfx}|" -e "s|state_dir: $WORK/rp-state-$b,|state_dir: $WORK/rp-state-$b$sfx,|" \
      "$WORK/rackpulse-$b.yaml" >"$WORK/rackpulse-$b$sfx.yaml"
    grep -q "topic: rackpulse.$b$sfx}" "$WORK/rackpulse-$b$sfx.yaml" ||
      fail "round $r: the agent's topic was not renamed in $WORK/rackpulse-$b$sfx.yaml"
  done
  grep -q "\"collectd.values$sfx\"" "$WORK/collectd$sfx.conf" ||
    fail "round $r: collectd's topic was not renamed in $WORK/collectd$sfx.conf"
done

NAMES=()
for r in $(seq "$ROUNDS"); do
  sfx=$(round_suffix "$r")
  ROUND_NAMES=()
  if [ "$ONLY" != rackpulse ]; then
    run "collectd$sfx" "collectd.values$sfx" collectd -f -C "$WORK/collectd$sfx.conf"
    ROUND_NAMES+=("collectd$sfx")
  fi
  if [ "$ONLY" != collectd ]; then
    for b in $BACKENDS; do
      run "rackpulse-$b$sfx" "rackpulse.$b$sfx" "$RP_BIN/agent/rackpulse-agent" -c "$WORK/rackpulse-$b$sfx.yaml"
      ROUND_NAMES+=("rackpulse-$b$sfx")
    done
  fi
  NAMES+=("${ROUND_NAMES[@]}")
  echo "${ROUND_NAMES[*]}" >"$WORK/round$r.names"
done

echo
echo "Rack: $BMCS BMCs (ipmi_sim, every 5 s), $PDUS PDUs (snmpsim raritan-px, every 1 s), 1 CDU (pymodbus, every 1 s); ${SECS} s per collector; ipmitool registry: $REGISTRY"
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(collectd -h | sed -n 's/^\(collectd [0-9][^,]*\).*/\1/p') (Debian $(dpkg-query -W -f '${Version}' collectd-core 2>/dev/null)); $(ipmitool -V); rackpulse $(git -C "$RP_SRC" describe --always --dirty 2>/dev/null || echo unknown)"
if [ -n "${KEEP:-}" ]; then # KEEP=DIR: a copy of the work files (configs, logs, kcat dumps)
  rm -rf "$KEEP" && mkdir -p "$(dirname "$KEEP")" && cp -r "$WORK" "$KEEP"
  echo "work files copied to $KEEP"
fi
if [ "$ROUNDS" -eq 1 ]; then
  $PY "$HERE/report.py" "$WORK" "$RP_SRC" "${NAMES[@]}"
else
  for r in $(seq "$ROUNDS"); do
    echo; echo "Round $r of $ROUNDS:"
    # shellcheck disable=SC2046 # the round's names, one word each
    RP_REPORT_JSON="$WORK/round$r.json" $PY "$HERE/report.py" "$WORK" "$RP_SRC" $(cat "$WORK/round$r.names")
  done
  echo
  $PY "$HERE/report.py" --rounds "$WORK"/round*.json
fi
if [ -n "${PERF:-}" ]; then # where the CPU went in the steady state, per collector
  for name in "${NAMES[@]}"; do
    [ -s "$WORK/$name.perf.data" ] || continue
    echo; echo "perf, $name (steady state; process and children): by command and object"
    perf report -i "$WORK/$name.perf.data" --no-children -g none --sort comm,dso --stdio \
      >"$WORK/$name.perf-dso.txt" 2>/dev/null || true
    grep -E '^ +[0-9]' "$WORK/$name.perf-dso.txt" | sed -n 1,12p || true
    echo "perf, $name: top symbols"
    perf report -i "$WORK/$name.perf.data" --no-children -g none --sort comm,dso,sym --stdio \
      >"$WORK/$name.perf-sym.txt" 2>/dev/null || true
    grep -E '^ +[0-9]' "$WORK/$name.perf-sym.txt" | sed -n 1,15p || true
  done
fi
[ ! -e "$WORK/collectd.log" ] || echo "collectd log: $(grep -ciE 'error|fail' "$WORK/collectd.log" || true) lines with error or fail"
for b in $BACKENDS; do
  [ ! -e "$WORK/rackpulse-$b.err" ] || echo "agent log ($b): $(grep -ciE 'error|warn' "$WORK/rackpulse-$b.err" || true) lines with error or warn"
done
