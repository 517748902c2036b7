#!/bin/bash
# Builds the .deb and .rpm packages (rackpulse-agent, rackpulse-aggregator,
# rackpulse-tools) from a Release build with Debian's hardening flags, runs
# lintian on the .debs (any error fails), and prints the files it made.
#
#   bash tools/package.sh [--out DIR] [--version V] [--no-rpm] [--no-lintian]
#
#   --out DIR      where the packages go (default build-pkg/)
#   --version V    package version (default: the project's, from CMakeLists.txt)
#   --no-rpm       .debs only
#   --no-lintian   skip lintian
#
# The build tree is build-pkg/build (RP_PKG_BUILD overrides it); runs that
# share it take turns (flock). Packaging needs rpm (rpmbuild) and lintian
# besides the build dependencies: bash tools/deps.sh installs them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build-pkg
VERSION=""
RPM=1
LINTIAN=1
while [ $# -gt 0 ]; do
  case "$1" in
  --out) OUT=$2; shift 2 ;;
  --version) VERSION=$2; shift 2 ;;
  --no-rpm) RPM=0; shift ;;
  --no-lintian) LINTIAN=0; shift ;;
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BUILD=${RP_PKG_BUILD:-$ROOT/build-pkg/build}

bash "$ROOT/tools/deps.sh"
mkdir -p "$BUILD" "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$BUILD/.package.lock"
flock 9

# Debian's hardening flags (PIE is the compiler's default): fortify, stack
# protector, full RELRO, immediate binding.
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DRP_BUILD_TESTS=OFF -DRP_BUILD_BENCH=OFF -DRP_SANITIZE=OFF \
  -DCMAKE_C_FLAGS="$CFLAGS $CPPFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS" \
  -DRP_PACKAGE_VERSION="$VERSION" >"$BUILD/configure.log" \
  || { cat "$BUILD/configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" >"$BUILD/build.log" 2>&1 \
  || { tail -40 "$BUILD/build.log" >&2; exit 1; }

STAGE=$BUILD/cpack-out
rm -rf "$STAGE"
generators=DEB
[ "$RPM" -eq 1 ] && generators="DEB;RPM"
(cd "$BUILD" && cpack -G "$generators" -B "$STAGE") >"$BUILD/cpack.log" 2>&1 \
  || { tail -40 "$BUILD/cpack.log" >&2; exit 1; }

made=()
rm -f "$OUT"/rackpulse-*.deb "$OUT"/rackpulse-*.rpm   # earlier versions' files
for f in "$STAGE"/*.deb "$STAGE"/*.rpm; do
  [ -e "$f" ] || continue
  cp "$f" "$OUT/"
  made+=("$OUT/$(basename "$f")")
done
[ ${#made[@]} -gt 0 ] || { echo "package.sh: cpack made no packages" >&2; exit 1; }

if [ "$LINTIAN" -eq 1 ]; then
  debs=()
  for f in "${made[@]}"; do [[ $f == *.deb ]] && debs+=("$f"); done
  # Errors fail; warnings are listed (each one allowed has an override with
  # its reason in packaging/lintian/).
  rc=0
  lintian --fail-on error --tag-display-limit 0 "${debs[@]}" >"$BUILD/lintian.log" 2>&1 || rc=$?
  sed -i '/running with root privileges is not recommended/d' "$BUILD/lintian.log"
  [ "$rc" -eq 0 ] \
    || { cat "$BUILD/lintian.log" >&2; echo "package.sh: lintian found errors" >&2; exit 1; }
  if [ -s "$BUILD/lintian.log" ]; then
    echo "lintian:" && sed 's/^/  /' "$BUILD/lintian.log"
  else
    echo "lintian: clean"
  fi
fi
printf '%s\n' "${made[@]}"
