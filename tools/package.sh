#!/usr/bin/env bash
# Builds the Debian package of mosquitto-rtm and checks it with lintian:
#
#   bash tools/package.sh [--test]
#
# Configures a fresh build-pkg/ (Release, no tests, prefix /usr, Debian's
# hardening flags from dpkg-buildflags), builds, runs `cpack -G DEB`, prints
# the .deb's path and runs lintian on it: errors fail, warnings are shown.
# --test then installs the package on this machine, makes a call through it
# and purges it again (tests/package/test_package.sh: root only; exit 77
# means it was skipped).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage() {
    echo "usage: bash tools/package.sh [--test]"
}

run_test=false
for arg in "$@"; do
    case "$arg" in
        --test) run_test=true ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
done

started=$SECONDS
bash tools/deps.sh lintian dpkg-dev file
# mqtt.js's browser bundle for the demo the package ships.
bash tools/js-deps.sh

# The flags a Debian package build uses (hardening=+all adds -z now). CMake
# reads CFLAGS and LDFLAGS from the environment but not CPPFLAGS, which
# carries -D_FORTIFY_SOURCE. CMAKE_C_FLAGS_RELEASE keeps Debian's -O2 (Release
# would add -O3) and drops asserts, as the tested RelWithDebInfo build does.
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS" LDFLAGS

build="build-pkg"
rm -rf "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DRTM_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$build" -j2
if [[ ! -f "$build/web/index.html" ]]; then
    echo "package: the build assembled no browser demo ($build/web); see the configure output" >&2
    exit 1
fi
(cd "$build" && cpack -G DEB)

debs=("$build"/mosquitto-rtm_*.deb)
if ((${#debs[@]} != 1)) || [[ ! -f "${debs[0]}" ]]; then
    echo "package: expected one $build/mosquitto-rtm_*.deb, found: ${debs[*]}" >&2
    exit 1
fi
deb="$root/${debs[0]}"
echo "package: $deb"

echo "package: lintian (errors fail, warnings are listed)"
lintian --fail-on error "$deb"
echo "package: built and checked in $((SECONDS - started)) s"

if "$run_test"; then
    bash tests/package/test_package.sh "$deb"
fi
