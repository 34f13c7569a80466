#!/usr/bin/env bash
# Builds mosquitto-rtm and runs every test (unit and integration) with ctest.
#
#   bash tools/test.sh              # build/, RelWithDebInfo
#   bash tools/test.sh --sanitize   # build-asan/, AddressSanitizer + UBSan
#   bash tools/test.sh --valgrind   # build/, integration tests only, with
#                                   # every broker under valgrind memcheck
#
# --valgrind sets RTM_VALGRIND=1 (tests/integration/harness.h): a test fails
# on any leak or invalid access with a frame in the plugin; the harness waits
# longer (RTM_TIME_SCALE, default 5) and widens its timing tolerances.
#
# Exits non-zero when the build fails, when any test fails, or when no test
# was found at all. Works from any directory.
set -euo pipefail

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

sanitize=0
valgrind=0
for arg in "$@"; do
    case "$arg" in
    --sanitize) sanitize=1 ;;
    --valgrind) valgrind=1 ;;
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

if ((sanitize && valgrind)); then
    echo "test: --sanitize and --valgrind do not go together (ASan and valgrind both track memory)" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash tools/deps.sh

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
ctest_args=()
# Only --valgrind runs the brokers under valgrind, whatever the caller's
# environment says.
unset RTM_VALGRIND
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
    if ((valgrind)); then
        # The unit tests run no broker: only the integration tests, whose
        # brokers the harness starts under valgrind.
        export RTM_VALGRIND=1
        ctest_args+=(-L integration)
    fi
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
ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 "${ctest_args[@]}"
