#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, replays their
# checked-in seed corpus, then fuzzes each target for a bounded time.
#
#   bash tools/fuzz.sh               # 60 seconds per target
#   bash tools/fuzz.sh --seconds N   # N seconds per target
#
# Everything goes to build-fuzz/: the build, each target's working corpus
# (a fresh copy of tests/fuzz/corpus/<target>/, which is never written to),
# its log, and what the fuzzer finds, in build-fuzz/artifacts/<target>/.
# Exits non-zero when the build fails, when a seed fails, or when a target
# finds a crash, a leak or a timeout; each finding is printed with the
# command that reproduces it. Works from any directory.
set -euo pipefail

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

seconds=60
while (($# > 0)); do
    case "$1" in
    --seconds)
        seconds=${2:-}
        shift $(($# > 1 ? 2 : 1))
        ;;
    --seconds=*)
        seconds=${1#--seconds=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "fuzz: unknown argument: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
done
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: --seconds needs a whole number of seconds, at least 1 (got '$seconds')" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# clang for libFuzzer; libclang-rt-14-dev holds its runtime (libclang_rt.fuzzer).
bash tools/deps.sh clang libclang-rt-14-dev

dir=build-fuzz
targets=(fuzz_topic fuzz_payload fuzz_core fuzz_guard)

# A fresh configuration every time, as tools/test.sh does: only the cache
# goes, so a second run rebuilds only what changed.
rm -f "$dir/CMakeCache.txt"
echo "fuzz: configuring $dir"
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTM_FUZZ=ON -DRTM_TESTS=OFF \
    -DRTM_SANITIZE=OFF
echo "fuzz: building ${targets[*]}"
cmake --build "$dir" -j --target fuzz

echo "fuzz: replaying the seed corpus (ctest -L fuzz)"
ctest --test-dir "$dir" --output-on-failure --no-tests=error -L fuzz

# fuzz_one TARGET: fuzzes TARGET for $seconds; returns non-zero on a finding.
fuzz_one() {
    local t=$1
    local work=$dir/corpus/$t art=$dir/artifacts/$t log=$dir/logs/$t.log
    rm -rf "$work" "$art"
    mkdir -p "$work" "$art" "$dir/logs"
    cp tests/fuzz/corpus/"$t"/* "$work"/
    echo "fuzz: $t for $seconds s (log: $log)"
    local rc=0
    "$dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$art/" -print_final_stats=1 "$work" >"$log" 2>&1 || rc=$?
    # A crash, leak, timeout or out-of-memory leaves an artifact behind;
    # slow-unit-* files are only a note.
    local findings
    findings=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | sort)
    if ((rc == 0)) && [[ -z "$findings" ]]; then
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed 's/^/    /'
        return 0
    fi
    echo "fuzz: $t FAILED (exit status $rc); the end of its log:"
    tail -n 60 "$log" | sed 's/^/    /'
    local f
    for f in $findings; do
        echo "fuzz: finding: $f"
        echo "    reproduce: $dir/tests/fuzz/$t $f"
        echo "    once fixed, keep it as a seed: cp $f tests/fuzz/corpus/$t/<what-it-was>"
    done
    return 1
}

failed=()
for t in "${targets[@]}"; do
    fuzz_one "$t" || failed+=("$t")
done

if ((${#failed[@]} > 0)); then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran $seconds s each without a finding"
