#!/usr/bin/env bash
# Builds mosquitto-rtm and runs every test (unit and integration) with ctest.
#
#   bash tools/test.sh              # build/, RelWithDebInfo
#   bash tools/test.sh --sanitize   # build-asan/, AddressSanitizer + UBSan
#
# Exits non-zero when the build fails, when any test fails, or when no test
# was found at all. Works from any directory.
set -euo pipefail

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

sanitize=0
for arg in "$@"; do
    case "$arg" in
    --sanitize) sanitize=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "test: unknown argument: $arg" >&2
        usage >&2
        exit 2
        ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash tools/deps.sh

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if ((sanitize)); then
    dir=build-asan
    # Debian's mosquitto is not built with ASan, so an instrumented plugin
    # cannot be dlopen()ed into it unless the ASan runtime is loaded first:
    # the integration tests start the broker with LD_PRELOAD=$RTM_PRELOAD.
    libasan=$(gcc -print-file-name=libasan.so)
    if [[ "$libasan" != /* || ! -e "$libasan" ]]; then
        echo "test: gcc has no libasan.so (got '$libasan'); install gcc's libasan" >&2
        exit 1
    fi
    cmake_args+=(-DRTM_SANITIZE=ON "-DRTM_PRELOAD=$libasan")
    export ASAN_OPTIONS=detect_leaks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
    dir=build
    cmake_args+=(-DRTM_SANITIZE=OFF)
fi

# A fresh configuration every time: options cached by an earlier run (a
# manual -DRTM_SANITIZE=ON, an old RTM_PRELOAD) must not leak into this one.
# Only the cache goes; compiled objects stay, and make rebuilds those whose
# flags or sources changed, so a second run is quick.
rm -f "$dir/CMakeCache.txt"

echo "test: configuring $dir (${cmake_args[*]})"
cmake -S . -B "$dir" "${cmake_args[@]}"
echo "test: building $dir"
cmake --build "$dir" -j
echo "test: running tests in $dir"
# --no-tests=error: a build that registers no test is a failure, not a pass.
ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2
