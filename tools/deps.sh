#!/bin/bash
# Installs what rackpulse needs to build, run and test on Debian 12, from
# Debian's packages only. Idempotent: skips apt when everything is present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  # libraries (see README, "Dependencies")
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler librdkafka-dev liblmdb-dev
  libmodbus-dev libmicrohttpd-dev libjansson-dev libyaml-dev libcurl4-openssl-dev
  libsnmp-dev libfreeipmi-dev
  # the audit log's hash chain (SHA-256) and HTTPS for the API
  nettle-dev libgnutls28-dev
  # tests: cmocka, and the real peers
  libcmocka-dev python3 python3-pymodbus python3-serial python3-serial-asyncio python3-yaml
  kcat protobuf-compiler curl socat prometheus procps
  openssl  # deploy_tls: a CA, server and client certificates made at test time
  ipmitool openipmi freeipmi-tools
  snmpsim snmpd snmp
  strace  # ipmi_once_freeipmi: FreeIPMI's random bytes without /dev/urandom
  faketime  # an agent whose clock runs ahead (gate_clock)
  redfishtool python3-sushy  # third-party Redfish clients that check the simulator (openssl above makes its certificate)
  # the incident-map page in a real browser (floor_page): headless Chromium
  chromium fonts-dejavu-core
  # fuzzing (tests/fuzz, build-fuzz/): clang and its libFuzzer runtime;
  # the unit tests under Valgrind
  clang libclang-rt-14-dev valgrind
  # the code style check (.clang-format)
  clang-format
  # packages (tools/package.sh) and their install test
  lintian rpm debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: need root to install packages (run as root, or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
