#!/usr/bin/env bash
# Builds mosquitto-rtm and runs every test with ctest: unit, integration, the
# JavaScript client's (node --test) and the browser demo's (chromium).
#
#   bash tools/test.sh              # build/, RelWithDebInfo
#   bash tools/test.sh --sanitize   # build-asan/, AddressSanitizer + UBSan
#   bash tools/test.sh --valgrind   # build/, integration tests only, with
#                                   # every broker under valgrind memcheck
#   bash tools/test.sh --broker 2.1.2            # build/, integration tests
#   bash tools/test.sh --broker /path/mosquitto  # only, on another broker
#
# --valgrind sets RTM_VALGRIND=1 (tests/integration/harness.h): a test fails
# on any leak or invalid access with a frame in the plugin; the harness waits
# longer (RTM_TIME_SCALE, default 5) and widens its timing tolerances.
#
# --broker runs the integration tests on that broker instead of Debian's
# (RTM_BROKER), with the same plugin build. A version (2.0.22, 2.1.2,
# 2.0.21) is built or fetched into build-brokers/<version>/ by
# tools/brokers.sh (cached); a path is used as it is. test_coexist_dynsec
# loads the mosquitto_dynamic_security.so beside the broker when there is
# one, else Debian's; RTM_DYNSEC_PLUGIN overrides that.
#
# Exits non-zero when the build fails, when any test fails, or when no test
# was found at all. Works from any directory.
set -euo pipefail

usage() {
    sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

sanitize=0
valgrind=0
broker=
while (($# > 0)); do
    case "$1" in
    --sanitize) sanitize=1 ;;
    --valgrind) valgrind=1 ;;
    --broker)
        if (($# < 2)) || [[ -z "$2" ]]; then
            echo "test: --broker needs a version (2.1.2) or the path of a mosquitto binary" >&2
            exit 2
        fi
        broker=$2
        shift
        ;;
    --broker=*) broker=${1#--broker=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "test: unknown argument: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

if ((sanitize && valgrind)); then
    echo "test: --sanitize and --valgrind do not go together (ASan and valgrind both track memory)" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The browsers of the demo's tests; npm packages for them and the JS client.
bash tools/deps.sh chromium firefox-esr
bash tools/js-deps.sh

# Only --broker picks another broker, whatever the caller's environment says.
unset RTM_BROKER
if [[ -z "$broker" ]]; then
    unset RTM_DYNSEC_PLUGIN
elif [[ "$broker" == */* ]]; then
    if [[ ! -f "$broker" || ! -x "$broker" ]]; then
        echo "test: --broker $broker: not an executable file" >&2
        exit 2
    fi
    RTM_BROKER=$(cd "$(dirname "$broker")" && pwd)/$(basename "$broker")
elif [[ "$broker" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    brokers_dir=${RTM_BROKERS_DIR:-$root/build-brokers}
    bash tools/brokers.sh "$broker"
    RTM_BROKER=$brokers_dir/$broker/mosquitto
    if [[ ! -x "$RTM_BROKER" ]]; then
        echo "test: no broker $broker: $(cat "$brokers_dir/$broker/UNAVAILABLE" 2>/dev/null ||
            echo "tools/brokers.sh made no $RTM_BROKER")" >&2
        exit 1
    fi
else
    echo "test: --broker $broker: expected a version such as 2.1.2 or a path with a '/'" >&2
    exit 2
fi
if [[ -n "${RTM_BROKER:-}" ]]; then
    export RTM_BROKER
    echo "test: integration tests on $RTM_BROKER"
fi

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
    fi
fi

# The unit tests run no broker: with --valgrind or --broker only the
# integration tests run.
if ((valgrind)) || [[ -n "${RTM_BROKER:-}" ]]; then
    ctest_args+=(-L integration)
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
