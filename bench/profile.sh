#!/usr/bin/env bash
# bench/profile.sh [COUNT]: instructions the broker thread spends per message,
# counted by valgrind's callgrind, for plain QoS 1 messages without the plugin,
# invitations to an offline user without devices, and invitations to an
# offline user with one device (pushed to the C mock JPush, answering at
# once), without and with the README's vendor channels in jpush_options.
# Instruction counts do not depend on the machine's noise, so they
# show a change to the plugin's per-message work that the latency rows
# (J3, J11) cannot separate from it. Loopback only; about a minute.
#
#   bash bench/profile.sh            # 2000 messages per case
#   RTM_BENCH_BUILD=DIR bash bench/profile.sh   # profile another build
#   RTM_PROFILE_KEEP=1 bash bench/profile.sh    # keep the callgrind files
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
count=${1:-2000}
build=${RTM_BENCH_BUILD:-build-bench}
for tool in valgrind callgrind_annotate mosquitto mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || { echo "profile: $tool is missing" >&2; exit 1; }
done
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTM_TESTS=OFF -DRTM_SANITIZE=OFF \
    >/dev/null
cmake --build "$build" -j --target mosquitto_rtm rtm-loadgen rtm-mock-jpush >/dev/null
lg="$root/$build/rtm-loadgen"

out=$(mktemp -d)
chmod 755 "$out" # the broker may run as the mosquitto user
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "${RTM_PROFILE_KEEP:-}" ]]; then
        echo "profile: callgrind files kept in $out" >&2
    else
        rm -rf "$out"
    fi
}
trap cleanup EXIT

# broker NAME plain|rtm [MOCK_PORT [CONF_LINE]]: a broker under callgrind;
# sets $port, $pid.
broker() {
    local name=$1 kind=$2 f="$out/$1.conf"
    port=$("$lg" free-port)
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        echo "max_queued_messages 0"
        if ((EUID == 0)); then echo "user root"; fi
        if [[ "$kind" == rtm ]]; then
            echo "plugin $root/$build/mosquitto_rtm.so"
            echo "plugin_opt_other_topics allow"
            echo "plugin_opt_registry_listener 127.0.0.1:$port"
            echo "plugin_opt_busy_limit 1000000"
            echo "plugin_opt_invite_rate 1000000"
            if [[ -n "${3:-}" ]]; then
                echo "plugin_opt_jpush_app_key profile-key"
                echo "plugin_opt_jpush_master_secret profile-secret"
                echo "plugin_opt_jpush_endpoint http://127.0.0.1:$3"
                echo "${4:-}"
            fi
        fi
    } >"$f"
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/$name.cg" \
        mosquitto -c "$f" >"$out/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    "$lg" wait-port "$port" 60000 || { cat "$out/$name.log" >&2; exit 1; }
}

# finish NAME FUNCTION...: stops the broker; prints the main thread's
# inclusive instructions in each FUNCTION, per message. A function that
# never ran is an error: the case did not do what it is meant to.
finish() {
    local name=$1
    shift
    kill -INT "$pid"
    wait "$pid" || true
    callgrind_annotate --inclusive=yes --threshold=100 --show-percs=no "$out/$name.cg"-01 \
        2>/dev/null >"$out/$name.txt"
    local fn
    for fn in "$@"; do
        awk -v fn="$fn" -v n="$count" -v name="$name" '
            { gsub(",", "", $1) }
            $2 ~ ("(^|:)" fn "$") && !seen { seen = 1; printf "%-10s %-16s %9.0f Ir/message\n", name, fn, $1 / n }
            END { if (!seen) { printf "profile: %s: %s never ran\n", name, fn > "/dev/stderr"; exit 1 } }' \
            "$out/$name.txt"
    done
}

invites() {
    local i
    for ((i = 1; i <= count; i++)); do
        printf '{"type":"invite","id":"p%d","channel":"room-%d","content":"call from the profile"}\n' "$i" "$i"
    done
}

invites >"$out/invites.txt"

broker plain plain
mosquitto_pub -p "$port" -i plain-pub -q 1 -t bench/plain -l <"$out/invites.txt"
finish plain handle__publish

broker nodevice rtm
mosquitto_pub -p "$port" -u pc -i pc-pub -q 1 -t rtm/u/pn/call -l <"$out/invites.txt"
finish nodevice handle__publish on_message on_tick

mkdir -p "$out/mock"
"$root/$build/rtm-mock-jpush" --port 0 --state-dir "$out/mock" --app-key profile-key \
    --master-secret profile-secret >"$out/mock.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do [[ -s "$out/mock/port" ]] && break; sleep 0.1; done
# pushed NAME [CONF_LINE]: invitations to pd, offline with one device.
pushed() {
    local name=$1
    broker "$name" rtm "$(cat "$out/mock/port")" "${2:-}"
    mosquitto_pub -p "$port" -u pd -i pd-dev -q 1 -r -t rtm/u/pd/devices/phone \
        -m '{"provider":"jpush","platform":"android","token":"profile-token"}'
    # The caller's inbox gets one `pushed` event per invitation once its push
    # is answered: a persistent session subscribed before the invitations
    # (-E: exit once the broker has acknowledged) collects them all after.
    local sub=(mosquitto_sub -p "$port" -u pc -i pc-sub -c -q 1 -t rtm/u/pc/call)
    "${sub[@]}" -E
    mosquitto_pub -p "$port" -u pc -i pc-pub -q 1 -t rtm/u/pd/call -l <"$out/invites.txt"
    "${sub[@]}" -C "$count" -W 300 >"$out/$name.pushed" ||
        { echo "profile: $name: not every push was answered" >&2; exit 1; }
    local n
    n=$(grep -c '"type":"pushed"' "$out/$name.pushed" || true)
    ((n == count)) || { echo "profile: $name: $n pushed events, not $count" >&2; exit 1; }
    finish "$name" handle__publish on_message on_tick
}

pushed device
# The same with the vendor channels of the README's example, merged into
# every request's options.
pushed options 'plugin_opt_jpush_options {"classification":1,"third_party_channel":{"xiaomi":{"distribution":"ospush"},"huawei":{"distribution":"ospush"},"oppo":{"distribution":"ospush"},"vivo":{"distribution":"ospush","classification":1}}}'
