#!/bin/bash
# The .deb packages install, upgrade, remove and purge cleanly with dpkg in
# a throwaway Debian 12 root (debootstrap --variant=minbase, entered with
# chroot), as on a fresh rack host:
#   1. tools/package.sh builds them (lintian must find no error), and once
#      more with a higher version for the upgrade; the .rpm's metadata is
#      checked (config files, ipmitool) and its payload installs and erases
#      in an empty rpm database; systemd-analyze verifies the units and
#      rates their sandbox.
#   2. dpkg -i, then apt-get -f install for the dependencies; the user
#      rackpulse exists, the state directory belongs to it, /etc/rackpulse
#      files are conffiles, the installed agent accepts its shipped config
#      (run as rackpulse), and a device profile from /usr/share/rackpulse.
#   3. An edited agent.yaml survives the upgrade to the higher version.
#   4. dpkg -r leaves only the conffiles; dpkg -P leaves nothing.
#
# The debootstrap result is cached in /var/cache/rackpulse-test (rebuilt
# when older than 30 days, RP_TEST_CACHE overrides the place), and so are
# the dependencies apt downloads: a warm run takes well under a minute.
source "$(dirname "$0")/lib.sh"

CACHE=${RP_TEST_CACHE:-/var/cache/rackpulse-test}
TAR=$CACHE/bookworm-root.tar
MIRROR=${RP_TEST_MIRROR:-http://deb.debian.org/debian}
ROOT=$WORK/root
MOUNTS=()

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount)"
for tool in debootstrap chroot dpkg-deb lintian rpm; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (bash tools/deps.sh)"
done

# Unmount (innermost first) everything mounted under DIR.
unmount_under() {
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$1/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}
# Runs before lib.sh's cleanup, which deletes $WORK: nothing may still be
# mounted there (rm -rf through a bind mount would empty the apt cache).
unmount_all() {
  unmount_under "$WORK"
  [ -z "${BUILD_ROOT:-}" ] || unmount_under "$BUILD_ROOT"
  if findmnt -rn -o TARGET | grep -qF -e "$WORK/" ${BUILD_ROOT:+-e "$BUILD_ROOT/"}; then
    echo "still mounted under $WORK ${BUILD_ROOT:-}: keeping them" >&2
    FAILED=1
    return
  fi
  [ -z "${BUILD_ROOT:-}" ] || rm -rf "$BUILD_ROOT"
}
trap 'unmount_all; cleanup' EXIT
trap 'exit 143' TERM INT

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# 1. Packages: the release, then a higher version for the upgrade.
t0=$(date +%s)
bash "$RP_SRC/tools/package.sh" --out "$WORK/v1" >"$WORK/package-v1.log" 2>&1 \
  || fail "tools/package.sh failed: $(tail -30 "$WORK/package-v1.log")"
V1=$(dpkg-deb -f "$WORK"/v1/rackpulse-agent_*.deb Version)
V2_UP="${V1%-*}+upgradetest"
bash "$RP_SRC/tools/package.sh" --out "$WORK/v2" --version "$V2_UP" --no-rpm --no-lintian \
  >"$WORK/package-v2.log" 2>&1 || fail "tools/package.sh --version failed: $(tail -30 "$WORK/package-v2.log")"
V2=$(dpkg-deb -f "$WORK"/v2/rackpulse-agent_*.deb Version)
dpkg --compare-versions "$V2" gt "$V1" || fail "upgrade version $V2 is not above $V1"
for p in agent aggregator tools; do
  [ -f "$(echo "$WORK"/v1/rackpulse-${p}_*.deb)" ] || fail "no rackpulse-$p .deb"
  [ -f "$(echo "$WORK"/v1/rackpulse-$p-*.rpm)" ] || fail "no rackpulse-$p .rpm"
done
grep -q "^lintian: clean\|^lintian:" "$WORK/package-v1.log" || fail "lintian did not run"
! grep -q "^  E: " "$WORK/package-v1.log" || fail "lintian errors: $(grep "E: " "$WORK/package-v1.log")"
dpkg-deb -f "$WORK"/v1/rackpulse-agent_*.deb Depends | grep -q "ipmitool" \
  || fail "rackpulse-agent does not depend on ipmitool"
dpkg-deb -f "$WORK"/v1/rackpulse-agent_*.deb Depends | grep -q "librdkafka1" \
  || fail "rackpulse-agent's Depends lack the runtime libraries"
dpkg-deb -f "$WORK"/v1/rackpulse-agent_*.deb Depends | grep -q "libcurl4" \
  || fail "rackpulse-agent does not depend on libcurl4 (loaded for Redfish, not linked)"
rpm -qpc "$WORK"/v1/rackpulse-agent-*.rpm | grep -qx /etc/rackpulse/agent.yaml \
  || fail "the agent .rpm does not mark agent.yaml %config"
rpm -qp --requires "$WORK"/v1/rackpulse-agent-*.rpm | grep -qx ipmitool \
  || fail "the agent .rpm does not require ipmitool"
rpm -qp --requires "$WORK"/v1/rackpulse-aggregator-*.rpm | grep -q "liblmdb.so" \
  || fail "the aggregator .rpm does not require liblmdb"
# The .rpm payloads install and erase together in an empty rpm database
# (no file conflicts; dependencies and scripts need an RPM distribution).
mkdir "$WORK/rpmroot"
rpm --root "$WORK/rpmroot" --initdb
rpm --root "$WORK/rpmroot" -i --nodeps --noscripts "$WORK"/v1/*.rpm >"$WORK/rpm.log" 2>&1 \
  || fail "rpm -i: $(cat "$WORK/rpm.log")"
configs=$(rpm --root "$WORK/rpmroot" -qc rackpulse-agent rackpulse-aggregator | sort | paste -sd' ')
[ "$configs" = "/etc/rackpulse/agent.yaml /etc/rackpulse/aggregator.yaml /etc/rackpulse/policy.yaml" ] \
  || fail "rpm config files: $configs"
rpm --root "$WORK/rpmroot" -e --noscripts rackpulse-agent rackpulse-aggregator rackpulse-tools \
  >>"$WORK/rpm.log" 2>&1 || fail "rpm -e: $(cat "$WORK/rpm.log")"
[ -z "$(find "$WORK/rpmroot/usr" "$WORK/rpmroot/etc" -type f 2>/dev/null)" ] || fail "rpm -e left files"
pass "packages $V1 (.deb, .rpm, lintian without errors) and $V2 built in $(( $(date +%s) - t0 )) s"

# The units as systemd reads them (the host's systemd-analyze, offline):
# valid, and sandboxed ("exposure" at most 2.0 of 10).
if command -v systemd-analyze >/dev/null; then
  mkdir "$WORK/x"
  for d in "$WORK"/v1/*.deb; do dpkg-deb -x "$d" "$WORK/x"; done
  for u in rackpulse-agent rackpulse-aggregator; do
    sed "s|/usr/bin/|$WORK/x/usr/bin/|g" "$WORK/x/usr/lib/systemd/system/$u.service" >"$WORK/$u.service"
    systemd-analyze verify --man=no "$WORK/$u.service" >"$WORK/verify.log" 2>&1 \
      || fail "systemd-analyze verify $u.service: $(cat "$WORK/verify.log")"
    systemd-analyze security --offline=true --threshold=20 "$WORK/$u.service" >"$WORK/security.log" 2>&1 \
      || fail "$u.service is exposed: $(tail -1 "$WORK/security.log")"
    grep -q "^User=rackpulse$" "$WORK/$u.service" || fail "$u.service does not run as rackpulse"
  done
  pass "systemd-analyze: both units verify; $(grep -h "Overall exposure" "$WORK/security.log")"
fi

# 2. The throwaway root: the cached debootstrap result, unpacked afresh.
mkdir -p "$CACHE/apt-archives/partial"
exec 8>"$CACHE/.lock"
flock 8   # one test at a time uses the cache
if [ ! -s "$TAR" ] || [ -n "$(find "$TAR" -mtime +30)" ]; then
  t0=$(date +%s)
  BUILD_ROOT=$CACHE/build-root.$$
  rm -rf "$BUILD_ROOT"
  debootstrap --variant=minbase bookworm "$BUILD_ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || fail "debootstrap failed: $(tail -20 "$WORK/debootstrap.log")"
  cat >"$BUILD_ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  in_root_build() { chroot "$BUILD_ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
  cp /etc/resolv.conf "$BUILD_ROOT/etc/resolv.conf"
  in_root_build apt-get -qq update >>"$WORK/debootstrap.log" 2>&1 || fail "apt-get update in the new root failed"
  in_root_build apt-get -qq clean
  tar -C "$BUILD_ROOT" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  rm -rf "$BUILD_ROOT"
  BUILD_ROOT=
  pass "debootstrap minbase bookworm cached in $TAR ($(( $(date +%s) - t0 )) s)"
fi
t0=$(date +%s)
mkdir "$ROOT"
tar -C "$ROOT" -xf "$TAR"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Services never start inside the root.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
mount --bind "$CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
mkdir -p "$ROOT/tmp/v1" "$ROOT/tmp/v2"
cp "$WORK"/v1/*.deb "$ROOT/tmp/v1/"
cp "$WORK"/v2/*.deb "$ROOT/tmp/v2/"

# 3. Install: dpkg alone stops at the missing libraries and ipmitool;
#    apt-get -f install brings them and finishes the configuration.
APT_OPTS=(-y -q -o APT::Keep-Downloaded-Packages=true -o Dpkg::Options::=--force-confdef
  -o Dpkg::Options::=--force-confold)
in_root apt-get -q update >"$WORK/apt.log" 2>&1 || fail "apt-get update: $(tail "$WORK/apt.log")"
# debs DIR: the .deb files in the root's /tmp/DIR, as paths inside the root.
debs() { (cd "$ROOT" && ls tmp/"$1"/*.deb | sed 's|^|/|'); }
in_root dpkg -i $(debs v1) >"$WORK/dpkg-install.log" 2>&1 || true
in_root apt-get "${APT_OPTS[@]}" -f install >>"$WORK/apt.log" 2>&1 \
  || fail "apt-get -f install: $(tail -20 "$WORK/apt.log")"
status() { in_root dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true; }
for p in rackpulse-agent rackpulse-aggregator rackpulse-tools; do
  [ "$(status $p)" = "install ok installed $V1" ] || fail "$p: $(status $p) $(cat "$WORK/dpkg-install.log")"
done
[ "$(status ipmitool | cut -d' ' -f1-3)" = "install ok installed" ] || fail "ipmitool not installed"

user=$(in_root getent passwd rackpulse) || fail "no user rackpulse"
IFS=: read -r _ _ uid _ _ home shell <<<"$user"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/rackpulse ] && [ "$shell" = /usr/sbin/nologin ] \
  || fail "rackpulse is not a system user without a shell: $user"
[ "$(in_root stat -c '%U:%G %a' /var/lib/rackpulse)" = "rackpulse:rackpulse 750" ] \
  || fail "state dir: $(in_root stat -c '%U:%G %a' /var/lib/rackpulse)"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' rackpulse-agent rackpulse-aggregator)
for f in agent.yaml aggregator.yaml policy.yaml; do
  grep -q "/etc/rackpulse/$f" <<<"$conffiles" || fail "/etc/rackpulse/$f is not a conffile: $conffiles"
done
for f in /usr/lib/systemd/system/rackpulse-agent.service /usr/lib/systemd/system/rackpulse-aggregator.service \
  /usr/share/rackpulse/proto/rackpulse.proto /usr/share/rackpulse/profiles/modbus/generic-cdu.yaml \
  /usr/share/man/man1/rackpulse-agent.1.gz /usr/share/man/man1/rackpulsectl.1.gz \
  /usr/share/rackpulse/dashboards/thermal.json /usr/share/rackpulse/prometheus/rackpulse-rules.yml \
  /usr/share/doc/rackpulse-tools/copyright; do
  [ -f "$ROOT$f" ] || fail "$f is not installed"
done
# The unit binds the agent's one-entry IANA registry over ipmitool's (see
# packaging/ipmitool/enterprise-numbers.txt): both ends exist, and the
# installed ipmitool accepts the stand-in (with an empty registry it stops
# with "Failed to initialize the OEM info dictionary" before any session).
bind=$(sed -n 's/^BindReadOnlyPaths=-//p' "$ROOT/usr/lib/systemd/system/rackpulse-agent.service")
[ -f "$ROOT${bind%%:*}" ] && [ -f "$ROOT${bind#*:}" ] \
  || fail "rackpulse-agent.service BindReadOnlyPaths: $bind: a side is missing"
IPMI_PASSWORD=none unshare -m sh -c 'mount --bind "$1${2%%:*}" "$1${2#*:}" && exec chroot "$1" ipmitool -I lanplus \
  -H 127.0.0.1 -p 9 -U nobody -E -N 1 -R 1 shell </dev/null' sh "$ROOT" "$bind" >"$WORK/pen.txt" 2>&1 || true
grep -q "session" "$WORK/pen.txt" && ! grep -qi "OEM info" "$WORK/pen.txt" \
  || fail "installed ipmitool refuses the stand-in registry: $(cat "$WORK/pen.txt")"
AS_USER=(chroot --userspec=rackpulse:rackpulse "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin)
"${AS_USER[@]}" rackpulse-agent --check-config >"$WORK/check-agent.txt" 2>&1 \
  || fail "installed agent refuses its shipped config: $(cat "$WORK/check-agent.txt")"
"${AS_USER[@]}" rackpulse-aggregator --check-config >"$WORK/check-agg.txt" 2>&1 \
  || fail "installed aggregator refuses its shipped config: $(cat "$WORK/check-agg.txt")"
"${AS_USER[@]}" rackpulsectl --help >/dev/null 2>&1 || fail "installed rackpulsectl does not run"
# The shipped policy, as aggregator.yaml's commented policy.file names it.
sed 's|^  # file: /etc/rackpulse/policy.yaml|  file: /etc/rackpulse/policy.yaml|' \
  "$ROOT/etc/rackpulse/aggregator.yaml" >"$ROOT/tmp/aggregator-policy.yaml"
grep -q "^  file: /etc/rackpulse/policy.yaml" "$ROOT/tmp/aggregator-policy.yaml" \
  || fail "aggregator.yaml no longer names /etc/rackpulse/policy.yaml"
"${AS_USER[@]}" rackpulse-aggregator -c /tmp/aggregator-policy.yaml --check-config \
  >"$WORK/check-policy.txt" 2>&1 || fail "the shipped policy.yaml is refused: $(cat "$WORK/check-policy.txt")"
cat >"$ROOT/tmp/profile.yaml" <<'EOF'
agent: {rack: r1, state_dir: /var/lib/rackpulse}
modbus:
  - {name: cdu1, host: 127.0.0.1, profile: generic-cdu}
EOF
if [ -d "$ROOT/usr/share/rackpulse/profiles/snmp" ]; then
  echo "snmp:" >>"$ROOT/tmp/profile.yaml"
  for prof in "$ROOT"/usr/share/rackpulse/profiles/snmp/*.yaml; do
    prof=$(basename "$prof" .yaml)
    echo "  - {name: pdu-$prof, host: 127.0.0.1, community_env: RP_COMMUNITY, profile: $prof}" \
      >>"$ROOT/tmp/profile.yaml"
  done
fi
"${AS_USER[@]}" RP_COMMUNITY=public rackpulse-agent -c /tmp/profile.yaml --check-config >"$WORK/check-profile.txt" 2>&1 \
  || fail "installed agent cannot load the shipped profiles: $(cat "$WORK/check-profile.txt")"
pass "installed $V1 with dpkg + apt-get -f install; user, state dir, conffiles; the agent accepts its shipped config and profiles ($(( $(date +%s) - t0 )) s)"

# 4. Upgrade with an edited conffile: the edit stays, the packages move on.
sed -i 's/^  rack: rack-01 /  rack: edited-a42 /' "$ROOT/etc/rackpulse/agent.yaml"
grep -q "rack: edited-a42" "$ROOT/etc/rackpulse/agent.yaml" || fail "could not edit agent.yaml"
mkdir -p "$ROOT/var/lib/rackpulse/spool" && touch "$ROOT/var/lib/rackpulse/spool/data.mdb"
in_root dpkg -i --force-confdef --force-confold $(debs v2) >"$WORK/dpkg-upgrade.log" 2>&1 \
  || fail "upgrade failed: $(tail -20 "$WORK/dpkg-upgrade.log")"
for p in rackpulse-agent rackpulse-aggregator rackpulse-tools; do
  [ "$(status $p)" = "install ok installed $V2" ] || fail "$p after upgrade: $(status $p)"
done
grep -q "rack: edited-a42" "$ROOT/etc/rackpulse/agent.yaml" || fail "the edited agent.yaml was replaced"
[ ! -e "$ROOT/etc/rackpulse/agent.yaml.dpkg-new" ] && [ ! -e "$ROOT/etc/rackpulse/agent.yaml.dpkg-dist" ] \
  || fail "dpkg left a new copy of agent.yaml beside the edited one"
[ -f "$ROOT/var/lib/rackpulse/spool/data.mdb" ] || fail "the upgrade lost the agent's state"
"${AS_USER[@]}" rackpulse-agent --check-config >"$WORK/check2.txt" 2>&1 \
  || fail "upgraded agent refuses the config: $(cat "$WORK/check2.txt")"
grep -q "rack edited-a42" "$WORK/check2.txt" || fail "the agent did not read the edited file: $(cat "$WORK/check2.txt")"
pass "upgraded to $V2: the edited /etc/rackpulse/agent.yaml and the state survive"

# 5. Remove keeps the conffiles; purge leaves nothing behind.
in_root dpkg -r rackpulse-agent rackpulse-aggregator rackpulse-tools >"$WORK/dpkg-remove.log" 2>&1 \
  || fail "remove failed: $(tail -20 "$WORK/dpkg-remove.log")"
[ "$(status rackpulse-agent | cut -d' ' -f1-3)" = "deinstall ok config-files" ] \
  || fail "after remove: $(status rackpulse-agent)"
[ ! -e "$ROOT/usr/bin/rackpulse-agent" ] && [ ! -e "$ROOT/usr/share/rackpulse" ] \
  || fail "remove left program files"
grep -q "rack: edited-a42" "$ROOT/etc/rackpulse/agent.yaml" || fail "remove deleted the edited conffile"
in_root dpkg -P rackpulse-agent rackpulse-aggregator rackpulse-tools >"$WORK/dpkg-purge.log" 2>&1 \
  || fail "purge failed: $(tail -20 "$WORK/dpkg-purge.log")"
for p in rackpulse-agent rackpulse-aggregator rackpulse-tools; do
  [ -z "$(status $p)" ] || [ "$(status $p | cut -d' ' -f1-3)" = "unknown ok not-installed" ] \
    || fail "$p after purge: $(status $p)"
done
left=$(cd "$ROOT" && find . -xdev \( -path ./tmp -o -path ./proc -o -path ./var/cache/apt \) -prune -o \
  -name '*rackpulse*' -print | grep -v '^./var/lib/dpkg/' || true)
[ -z "$left" ] || fail "purge left files behind: $left"
[ ! -e "$ROOT/var/lib/rackpulse" ] || fail "purge left /var/lib/rackpulse"
pass "remove keeps only the conffiles; purge removes everything (the system user stays, as Debian does)"
