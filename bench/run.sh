#!/usr/bin/env bash
# Measures what mosquitto-rtm costs, side by side with the same broker
# without it, and prints one table (BENCHMARKS.md explains every row).
#
#   bash bench/run.sh [--quick] [--only GROUP[,GROUP...]] [--out DIR]
#
# Builds build-bench/ (RelWithDebInfo: the plugin, rtm-loadgen, core_scale,
# rtm-mock-jpush; RTM_BENCH_BUILD=DIR builds and measures DIR instead),
# then for each group of measurements starts fresh brokers on free 127.0.0.1
# ports (Debian's /usr/sbin/mosquitto with the plugin and without it, and the
# mock JPush for the push rows), runs build-bench/rtm-loadgen against them
# and stops them. With two or more CPUs the brokers run on CPU 1 and the
# load generator (and the mock) on CPU 0 (taskset). The push rows use the
# C mock JPush (bench/mock_jpush.c); RTM_BENCH_MOCK=python uses the tests'
# tests/mock_jpush/mock_jpush.py instead, as runs before it did.
# RTM_BENCH_PUSH_LOAD=F runs the push rows' unrelated traffic at F times the
# broker's capacity instead of 0.5 (how J3 depends on how busy the broker is).
#
# Prints the table in markdown and writes, in DIR (default
# build-bench/results): results.md (machine, commands, table: paste it into
# BENCHMARKS.md), results.csv, run.log (every repetition), the broker
# configurations and logs. Full run: about 12 minutes on 2 cores; --quick
# (smaller counts, one repetition): under two minutes once built. --only runs
# just the named groups: machine, core, lifecycle, unrelated, scale, presence,
# push, rtm (SPEC 8: peer and channel messages, joins, member counts, memory
# per membership and attribute).
#
# Installs nothing itself except through tools/deps.sh. Traffic stays on
# 127.0.0.1: proxies are unset for everything started here.
set -euo pipefail

usage() {
    sed -n '2,29s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

groups_all="machine core lifecycle unrelated scale presence push rtm"
quick=0
out=""
only=""
while (($# > 0)); do
    case "$1" in
    --quick) quick=1 ;;
    --out)
        out=${2:?--out needs a directory}
        shift
        ;;
    --only)
        only=${2:?--only needs a list of groups}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench: unknown argument: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

selected=" $groups_all "
if [[ -n "$only" ]]; then
    selected=" "
    for g in ${only//,/ }; do
        if [[ " $groups_all " != *" $g "* ]]; then
            echo "bench: unknown group in --only: $g (groups: $groups_all)" >&2
            exit 2
        fi
        selected+="$g "
    done
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${RTM_BENCH_BUILD:-build-bench}
build=${build%/}
out=${out:-$root/$build/results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
started=$SECONDS

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

# --- build ---------------------------------------------------------------------

bash tools/deps.sh
rm -f "$build/CMakeCache.txt"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTM_TESTS=OFF -DRTM_SANITIZE=OFF \
    >"$out/build.log"
cmake --build "$build" -j --target mosquitto_rtm rtm-loadgen core_scale rtm-mock-jpush \
    >>"$out/build.log"
lg=$root/$build/rtm-loadgen
plugin=$root/$build/mosquitto_rtm.so
mosquitto=/usr/sbin/mosquitto
echo "bench: built $build/ ($((SECONDS - started)) s)"

# --- sizes -----------------------------------------------------------------------

if ((quick)); then
    mode="quick"
    life=(--reps 1 --seconds 1 --warmup 0.3)
    unrel=(--reps 1 --seconds 1 --warmup 0.3)
    scale_runs=("50000 25000 2")
    conns=2000
    pres=(--reps 1)
    push=(--count 200 --reps 1 --seconds 1 --warmup 0.5)
    stall_s=1
    core_n=100000
    rtm=(--reps 1 --seconds 1 --warmup 0.3 --count 200 --drive 2)
    rtm_mem=(--count 2000)
else
    mode="full"
    life=(--reps 5 --seconds 3 --warmup 0.5)
    unrel=(--reps 5 --seconds 3 --warmup 0.5)
    scale_runs=("100000 20000 5" "1000000 20000 5")
    conns=10000
    pres=(--reps 3)
    push=(--count 1000 --reps 5 --seconds 3)
    stall_s=5
    core_n=1000000
    rtm=(--reps 5 --seconds 3 --warmup 0.5 --count 1000 --drive 5)
    rtm_mem=(--count 10000)
fi
if [[ -n "${RTM_BENCH_PUSH_LOAD:-}" ]]; then
    push+=(--load "$RTM_BENCH_PUSH_LOAD")
fi
if [[ -n "$only" ]]; then
    mode+=", only:${selected% }"
fi

# Presence needs one descriptor per connection in the load generator and in
# the broker, plus some: raise the soft limit to the hard one (and the hard
# one when allowed), else measure fewer connections and say so.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < conns + 1000)); then
    ulimit -n $((conns + 1000)) 2>/dev/null || true
fi
fd_limit=$(ulimit -n)
fd_note=""
if ((fd_limit < conns + 1000)); then
    fd_note="presence: the fd limit is $fd_limit (ulimit -n; raising it needs root or a higher"
    fd_note+=" hard limit), so $((fd_limit - 1000)) connections instead of $conns"
    conns=$((fd_limit - 1000))
    echo "bench: $fd_note" >&2
fi

# --- machine ---------------------------------------------------------------------

cpus=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p)
broker_pin=()
lg_pin=()
pin_note="no CPU pinning (one CPU, or no taskset)"
if ((cpus >= 2)) && command -v taskset >/dev/null 2>&1; then
    broker_pin=(taskset -c 1)
    lg_pin=(taskset -c 0)
    pin_note="brokers (all their threads) on CPU 1, load generator on CPU 0"
fi
# The mock JPush runs on the load generator's CPU, never on the brokers',
# and only on CPU time nobody else wants there, so that it slows neither the
# broker nor the load generator's measurements.
mock_kind=${RTM_BENCH_MOCK:-c}
if [[ "$mock_kind" != c && "$mock_kind" != python ]]; then
    echo "bench: RTM_BENCH_MOCK must be c or python, not $mock_kind" >&2
    exit 2
fi
mock_sched=(nice -n 19)
if chrt --idle 0 true 2>/dev/null; then
    mock_sched=(chrt --idle 0)
fi
if [[ "$mock_kind" == python ]]; then
    mock_cmd=(python3 tests/mock_jpush/mock_jpush.py)
    pin_note+="; mock JPush (Python) unpinned under ${mock_sched[*]}"
else
    mock_cmd=("${lg_pin[@]}" "$root/$build/rtm-mock-jpush")
    pin_note+="; mock JPush (bench/mock_jpush.c) ${lg_pin[*]:+on CPU 0 }under ${mock_sched[*]}"
fi
# `mosquitto -h` exits non-zero after printing its version.
broker_version=$({ "$mosquitto" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version /mosquitto /p')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n "$(git status --porcelain -- plugin include 2>/dev/null)" ]]; then
    commit+=" + uncommitted changes in plugin/ or include/"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_note=""
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
    busy_note="the load average was $load_before when the run started: other processes"
    busy_note+=" were using the CPUs, so expect noisy numbers (see BENCHMARKS.md)"
    echo "bench: warning: $busy_note" >&2
fi

# --- processes -------------------------------------------------------------------

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# conf NAME PORT [plugin|heap|rtm|push MOCK_PORT]: writes $out/NAME.conf (heap: plugin with
# plugin_opt_stats_heap; rtm: plugin with a peer and channel message rate the
# bench does not reach, so that it measures the cost and not the limit).
# queued=N sets max_queued_messages (default 0, no limit).
conf() {
    local name=$1 port=$2 kind=${3:-plain} f="$out/$1.conf"
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "set_tcp_nodelay true"
        echo "max_queued_messages ${queued:-0}"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        if ((EUID == 0)); then echo "user root"; fi
        if [[ "$kind" != plain ]]; then
            echo "per_listener_settings false"
            echo "plugin $plugin"
            echo "plugin_opt_other_topics allow"
            echo "plugin_opt_registry_listener 127.0.0.1:$port"
            echo "plugin_opt_stats_interval 1"
            echo "plugin_opt_busy_limit 1000000"
            echo "plugin_opt_invite_rate 1000000"
            echo "plugin_opt_max_invite_timeout 86400"
        fi
        # Walking the heap delays the broker thread (README, stats_heap):
        # only where no timing is measured.
        if [[ "$kind" == heap ]]; then
            echo "plugin_opt_stats_heap true"
        fi
        if [[ "$kind" == rtm ]]; then
            echo "plugin_opt_message_rate 100000"
            echo "plugin_opt_join_rate 100000"
        fi
        if [[ "$kind" == push ]]; then
            echo "plugin_opt_jpush_app_key bench-app-key"
            echo "plugin_opt_jpush_master_secret bench-master-secret"
            echo "plugin_opt_jpush_endpoint http://127.0.0.1:$4"
        fi
    } >"$f"
}

# start NAME [plugin|heap|rtm|push MOCK_PORT]: a broker on a free port; sets $port, $pid.
# A broker that does not start ends the run, or with soft_start=1 returns 1.
start() {
    local name=$1
    shift
    port=$("$lg" free-port)
    conf "$name" "$port" "$@"
    "${broker_pin[@]}" "$mosquitto" -c "$out/$name.conf" >"$out/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    if ! "$lg" wait-port "$port" 10000 || ! kill -0 "$pid" 2>/dev/null; then
        echo "bench: broker $name did not start; its log:" >&2
        cat "$out/$name.log" >&2
        if [[ -n "${soft_start:-}" ]]; then return 1; fi
        exit 1
    fi
}

stop() {
    local p
    for p in "$@"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}

# start_mock: the mock JPush on a free port; sets $mock_port, $mock_pid.
start_mock() {
    local dir="$out/mock"
    mkdir -p "$dir"
    rm -f "$dir/port"
    "${mock_sched[@]}" "${mock_cmd[@]}" --port 0 --state-dir "$dir" \
        --app-key bench-app-key --master-secret bench-master-secret >"$out/mock.log" 2>&1 &
    mock_pid=$!
    pids+=("$mock_pid")
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$dir/port" ]] && break
        sleep 0.1
    done
    mock_port=$(cat "$dir/port")
}

# --- results ---------------------------------------------------------------------

rows="$out/rows.tsv"
cmds="$out/commands.tsv"
: >"$rows"
: >"$cmds"
: >"$out/run.log"
timings=()

# loadgen GROUP ARGS...: runs rtm-loadgen, keeps its ROW lines under GROUP.
loadgen() {
    local group=$1
    shift
    local shown="$build/rtm-loadgen $*"
    printf '%s\t%s\n' "$group" "${lg_pin[*]}${lg_pin[*]:+ }$shown" >>"$cmds"
    echo "bench: $shown"
    echo "\$ $shown" >>"$out/run.log"
    local rc=0
    "${lg_pin[@]}" "$lg" "$@" >"$out/last.out" 2>&1 || rc=$?
    cat "$out/last.out" >>"$out/run.log"
    grep '^# ' "$out/last.out" || true
    awk -F'\t' -v g="$group" '$1 == "ROW" { print g "\t" $0 }' "$out/last.out" >>"$rows"
    if ((rc != 0)); then
        echo "bench: rtm-loadgen $1 exited with $rc" >&2
        tail -n 5 "$out/last.out" >&2
    fi
}

# phase GROUP NAME FUNCTION: runs a group (unless --only leaves it out) and
# records its wall time.
phase() {
    if [[ "$selected" != *" $1 "* ]]; then
        return 0
    fi
    local t0=$SECONDS
    echo
    echo "== $2"
    "$3"
    timings+=("$2: $((SECONDS - t0)) s")
}

# --- the measurements --------------------------------------------------------------

core_row() { # KEY WHAT UNIT VALUE TARGET_OP LIMIT TUNIT
    local verdict="-" target="-"
    if [[ "$5" != "-" ]]; then
        target="$5 $6${7:+ }$7"
        verdict=$(awk -v v="$4" -v op="$5" -v l="$6" 'BEGIN {
            ok = (op == "<=") ? v <= l : (op == "<") ? v < l : v >= l
            print ok ? "pass" : "miss" }')
    fi
    printf 'core\tROW\t%s\t%s\t%s\t%s\t-\t-\t%s\t%s\n' "$1" "$2" "$3" "$4" "$target" "$verdict" \
        >>"$rows"
}

# The core alone: one row per number core_scale prints that has a target,
# whatever its wording (bench/core_scale.c changes with the core).
run_core() {
    local shown="$build/core_scale $core_n" f="$out/core_scale.out"
    printf 'core\t%s\n' "${lg_pin[*]}${lg_pin[*]:+ }$shown" >>"$cmds"
    echo "bench: $shown"
    "${lg_pin[@]}" "$root/$build/core_scale" "$core_n" | tee "$f"
    local label n=0 line value note
    label="core alone ($(awk '/^invitations/ {print $2; exit}' "$f") pending, bench/core_scale)"
    while IFS= read -r line; do
        value=$(awk '{print $4}' <<<"$line")
        note=$(sed -n 's/.*bytes *//p' <<<"$line")
        n=$((n + 1))
        core_row "C1.$n" "$label: heap per pending invitation $note" B "$value" "<=" 256 B
    done < <(grep '^heap per invitation' "$f")
    core_row C2 "$label: heap per online user $(sed -n 's/^heap per online user.*bytes *//p' "$f")" \
        B "$(awk '/^heap per online user/ {print $5; exit}' "$f")" "<=" 200 B
    core_row C3 "$label: tick when nothing is due" us \
        "$(awk '/^idle tick/ {print $3; exit}' "$f")" "<" 1000 us
    core_row C4 "$label: time per invite" us "$(awk '/^invite / {print $2; exit}' "$f")" - - -
}

# The machine's own stalls (M rows), with every CPU busy and nothing else
# running: how much of a p99 in milliseconds the machine explains.
run_machine() {
    loadgen machine stalls --seconds "$stall_s"
}

# The full run adds a second broker without the plugin: the A/A control
# (L9, L10; U6, U7), how far two identical brokers differ in this run.
run_lifecycle() {
    start life-plain
    local p1=$port b1=$pid control=() b2=()
    if ((!quick)); then
        start life-control
        control=(--control "$port:$pid")
        b2=("$pid")
    fi
    start life-rtm plugin
    loadgen lifecycle lifecycle --plain "$p1:$b1" --rtm "$port:$pid" "${control[@]}" "${life[@]}"
    stop "$b1" "$pid" "${b2[@]}"
}

run_unrelated() {
    start unrel-plain
    local p1=$port b1=$pid control=() b2=()
    if ((!quick)); then # the A/A control: a second broker without the plugin
        start unrel-control
        control=(--control "$port:$pid")
        b2=("$pid")
    fi
    start unrel-rtm plugin
    loadgen unrelated unrelated --plain "$p1:$b1" --rtm "$port:$pid" "${control[@]}" \
        "${unrel[@]}"
    stop "$b1" "$pid" "${b2[@]}"
}

run_scale() {
    local spec count rate idle
    for spec in "${scale_runs[@]}"; do
        read -r count rate idle <<<"$spec"
        start "scale-$count" plugin
        loadgen "scale $count" scale --rtm "$port:$pid" --count "$count" --rate "$rate" \
            --idle "$idle"
        stop "$pid"
    done
}

run_presence() {
    start pres-plain
    local p1=$port b1=$pid
    start pres-rtm heap
    loadgen presence presence --plain "$p1:$b1" --rtm "$port:$pid" --count "$conns" \
        "${pres[@]}"
    stop "$b1" "$pid"
}

run_push() {
    start_mock
    start push-rtm push "$mock_port"
    loadgen push push --rtm "$port:$pid" --mock "$mock_port:$mock_pid" "${push[@]}"
    stop "$pid" "$mock_pid"
}

# SPEC 8 (R rows): messages, joins and member counts on one pair of
# brokers; memory per membership and attribute on a fresh broker with the
# heap walked (plugin_opt_stats_heap), where nothing is timed. A plugin
# without SPEC 8 refuses plugin_opt_message_rate: then the baseline alone.
# Mosquitto 2.0.11 with max_queued_messages 0 never delivers what a plugin
# publishes to one client (the plugin's joined answers and errors), so these
# brokers have a limit instead, one the bench never reaches.
rtm_note=""
run_rtm() {
    queued=1000000 start rtm-plain
    local p1=$port b1=$pid side=() b2=()
    if queued=1000000 soft_start=1 start rtm-rtm rtm; then
        side=(--rtm "$port:$pid")
        b2=("$pid")
    else
        rtm_note="rtm: the plugin refused its configuration (no SPEC 8 in this build?):"
        rtm_note+=" the baseline alone, the plugin's columns read n/a"
        echo "bench: $rtm_note" >&2
    fi
    loadgen rtm rtm --plain "$p1:$b1" "${side[@]}" "${rtm[@]}"
    stop "${b2[@]}"
    if ((${#side[@]} > 0)); then
        queued=1000000 start rtm-memory heap
        side=(--rtm "$port:$pid")
        b2=("$pid")
    fi
    loadgen "rtm memory" rtm-memory --plain "$p1:$b1" "${side[@]}" "${rtm_mem[@]}"
    stop "$b1" "${b2[@]}"
}

echo "bench: $mode run; machine: $cpus x $cpu_model; $broker_version; load average $load_before"
phase machine "the machine's stalls" run_machine
phase core "core alone (bench/core_scale)" run_core
phase lifecycle "call lifecycle" run_lifecycle
phase unrelated "unrelated traffic" run_unrelated
phase scale "scale: pending invitations" run_scale
phase presence "presence" run_presence
phase push "push" run_push
phase rtm "messages, channels and attributes (SPEC 8)" run_rtm
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
total=$((SECONDS - started))

# --- the table -----------------------------------------------------------------------

# A value with its unit, unless it is "-" or "n/a".
table() {
    echo "| key | measurement | with plugin | baseline | ratio | target | result |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' '
        function v(x, u) { return (x == "-" || x == "n/a") ? x : x " " u }
        { r = ($8 == "-" || $8 == "n/a") ? $8 : $8 "x"
          printf "| %s | %s | %s | %s | %s | %s | %s |\n", $3, $4, v($6, $5), v($7, $5), r, $9, $10 }
    ' "$rows"
}

summary() {
    awk -F'\t' '$10 == "pass" {p++} $10 == "miss" {m++} $10 == "n/a" {n++}
        END { printf "%d targets: %d pass, %d miss, %d n/a\n", p + m + n, p, m, n }' "$rows"
}

{
    echo "## Results ($mode run)"
    echo
    echo "- Machine: $cpus CPUs, $cpu_model; Linux $(uname -r); $(nproc --all) CPUs online"
    echo "- Broker: $broker_version (/usr/sbin/mosquitto), libmosquitto" \
        "$(pkg-config --modversion libmosquitto 2>/dev/null || echo '?') in the load generator"
    echo "- Plugin: commit $commit, built RelWithDebInfo in $build/"
    echo "- Pinning: $pin_note"
    echo "- Load average before / after: $load_before / $load_after; run took $total s" \
        "($(printf '%s; ' "${timings[@]}" | sed 's/; $//'))"
    if [[ -n "$fd_note" ]]; then echo "- Note: $fd_note"; fi
    if [[ -n "$rtm_note" ]]; then echo "- Note: $rtm_note"; fi
    if [[ -n "$busy_note" ]]; then echo "- Warning: $busy_note"; fi
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    table
    echo
    echo "$(summary). Ratios are with plugin / baseline: medians of per-repetition ratios where"
    echo "there are repetitions, except J2, J5, J10 and P4 (ratios of the pooled values or of"
    echo "medians); a target on a ratio is marked x."
    echo
    echo "Commands (ports and pids are this run's; the broker configurations are in $out):"
    echo
    awk -F'\t' '{ printf "- %s: `%s`\n", $1, $2 }' "$cmds"
} >"$out/results.md"

{
    echo "key,measurement,unit,with_plugin,baseline,ratio,target,result,command"
    awk -F'\t' 'NR == FNR { cmd[$1] = $2; next }
        function q(s) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
        { print q($3) "," q($4) "," q($5) "," q($6) "," q($7) "," q($8) "," q($9) "," q($10) \
              "," q(cmd[$1]) }' "$cmds" "$rows"
} >"$out/results.csv"

echo
cat "$out/results.md"
echo
echo "bench: wrote $out/results.md, $out/results.csv and $out/run.log ($total s)"
