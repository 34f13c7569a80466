#!/usr/bin/env bash
# Installs the mosquitto-rtm package on this machine, runs Debian's broker
# with the package's example snippet, makes a call through it with the real
# clients, then purges the package and checks that nothing is left:
#
#   bash tests/package/test_package.sh path/to/mosquitto-rtm_VERSION_ARCH.deb
#
# Needs root; as anyone else it prints "SKIPPED: needs root" and exits 77.
# It refuses to run where mosquitto-rtm, any file of the package, or the
# conf.d files it writes already exist, or where a broker started from
# Debian's configuration holds its pid file: it never touches an operator's
# install. On any failure a trap stops the broker, removes the test's conf.d
# files and purges the package.
set -euo pipefail

readonly conf_dir=/etc/mosquitto/conf.d
readonly snippet=$conf_dir/mosquitto-rtm.conf
readonly test_conf=$conf_dir/zz-rtm-test.conf
readonly broker_log=/var/log/mosquitto/mosquitto.log
readonly run_dir=/run/mosquitto
readonly pid_file=$run_dir/mosquitto.pid
readonly store=/var/lib/mosquitto
readonly wait_seconds=10

note() { echo "test_package: $*"; }
fail() {
    echo "test_package: FAIL: $*" >&2
    exit 1
}

# What the trap undoes; each step clears its flag once it has been undone.
tmp=""
installed=false
made_run_dir=false
broker_pid=""
sub_pid=""

if ((EUID != 0)); then
    echo "SKIPPED: needs root (it installs and purges the package)"
    exit 77
fi
if (($# != 1)) || [[ ! -f "$1" ]]; then
    echo "usage: bash tests/package/test_package.sh MOSQUITTO_RTM.deb" >&2
    exit 2
fi
deb=$(realpath "$1")

# running PID: the process exists and is not a zombie waiting to be reaped.
running() {
    local state
    state=$(ps -o stat= -p "$1") || return 1
    [[ "$state" != Z* ]]
}

# wait_until WHAT COMMAND...: polls COMMAND until it succeeds, for at most
# wait_seconds.
wait_until() {
    local what=$1 deadline=$((SECONDS + wait_seconds))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out after ${wait_seconds} s waiting for $what"
        sleep 0.1
    done
}

not_running() { ! running "$1"; }

# stop PID: SIGTERM, then SIGKILL if it has not exited in time; reaps it.
stop() {
    local pid=$1 deadline=$((SECONDS + wait_seconds))
    kill -TERM "$pid" 2>/dev/null || true
    while running "$pid" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_broker() {
    [[ -n "$broker_pid" ]] || return 0
    stop "$broker_pid"
    # Killed, the broker leaves its pid file behind: only ours is removed.
    if [[ -f "$pid_file" && "$(cat "$pid_file")" == "$broker_pid" ]]; then
        rm -f "$pid_file"
    fi
    broker_pid=""
}

remove_test_confs() {
    rm -f "$snippet" "$test_conf"
}

purge_package() {
    "$installed" || return 0
    DEBIAN_FRONTEND=noninteractive apt-get purge -y mosquitto-rtm
    installed=false
}

remove_run_dir() {
    "$made_run_dir" || return 0
    rm -rf "$run_dir"
    made_run_dir=false
}

cleanup() {
    local rc=$?
    set +e
    [[ -n "$sub_pid" ]] && stop "$sub_pid"
    if [[ -n "$broker_pid" || "$installed" == true ]]; then
        note "restoring the machine after a failure"
        [[ -n "$tmp" ]] && tail -n +1 "$tmp"/*.out >&2 2>/dev/null
    fi
    stop_broker
    remove_test_confs
    purge_package
    remove_run_dir
    [[ -n "$tmp" ]] && rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# What a directory holds, one line per entry: name, type, size, mode, mtime.
snapshot() {
    find "$1" -mindepth 1 -printf '%P %y %s %m %T@\n' | sort
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The log lines this test's broker wrote: Debian's configuration appends to
# the machine's broker log, so everything before log_start is someone else's.
new_log() {
    tail -c +$((log_start + 1)) "$broker_log" 2>/dev/null
}

# (grep without -q in pipes: with pipefail, a grep that stops reading early
# would fail the pipe through the writer's SIGPIPE.)
log_has() {
    running "$broker_pid" || fail "the broker exited; its log:$(printf '\n%s' "$(new_log)")"
    new_log | grep -- "$1" >/dev/null
}

expect_file() {
    local path=$1 mode=$2 actual
    [[ -f "$path" ]] || fail "$path is not installed"
    actual=$(stat -c '%a %U:%G' "$path")
    [[ "$actual" == "$mode root:root" ]] || fail "$path is $actual, expected $mode root:root"
}

# ---------------------------------------------------------------- preconditions

status=$(dpkg-query -W -f='${Status}' mosquitto-rtm 2>/dev/null || true)
if [[ -n "$status" && "$status" != *" not-installed" ]]; then
    fail "mosquitto-rtm is already known to dpkg ($status): this test installs and purges it, so it only runs where it is absent"
fi
for tool in mosquitto_sub mosquitto_pub dpkg-architecture python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing (bash tools/deps.sh installs it)"
done
for path in "$snippet" "$test_conf" "$pid_file"; do
    [[ ! -e "$path" ]] || fail "$path exists: this test would overwrite it (a pid file means a broker runs from Debian's configuration)"
done
doc=/usr/share/doc/mosquitto-rtm
for path in /usr/share/mosquitto-rtm "$doc"; do
    [[ ! -e "$path" ]] || fail "$path exists: left from another install of mosquitto-rtm?"
done

# The package's paths, from the .deb itself (./usr/bin/ for a directory).
# None of its files may exist yet: dpkg would overwrite a file that no
# package owns. The directories that do not exist yet must be gone again
# after the purge.
mapfile -t deb_entries < <(dpkg-deb --fsys-tarfile "$deb" | tar -t)
((${#deb_entries[@]} > 0)) || fail "cannot list the files in $deb"
new_dirs=()
for entry in "${deb_entries[@]}"; do
    path=${entry#.}
    case "$path" in
        /) ;;
        */) [[ -d "$path" ]] || new_dirs+=("${path%/}") ;;
        *) [[ ! -e "$path" && ! -L "$path" ]] || fail "$path already exists: another install of mosquitto-rtm?" ;;
    esac
done

tmp=$(mktemp -d)
conf_before=$(snapshot "$conf_dir")
store_before=$(snapshot "$store")

# -------------------------------------------------------------------- install

note "installing $deb"
installed=true
DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb" || fail "apt-get could not install $deb"
mapfile -t pkg_paths < <(dpkg -L mosquitto-rtm)

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
expect_file "/usr/lib/$multiarch/mosquitto_rtm.so" 644
expect_file /usr/bin/rtm-token 755
expect_file /usr/share/man/man1/rtm-token.1.gz 644
for file in README.md docs/PROTOCOL.md docs/TOKENS.md copyright changelog.Debian.gz \
    examples/mosquitto-rtm.conf; do
    expect_file "$doc/$file" 644
done
# The browser demo, served by a websockets listener's http_dir.
for file in index.html boot.js rtm.js vendor/mqtt.esm.js; do
    expect_file "/usr/share/mosquitto-rtm/web/$file" 644
done
for path in "${pkg_paths[@]}"; do
    [[ -e "$path" ]] || fail "dpkg lists $path, which does not exist"
done

# The installed rtm-token works: a token it mints, it accepts.
export RTM_TOKEN_SECRET=package-test-secret
token=$(rtm-token --uid bob --ttl 60) || fail "rtm-token could not mint a token"
verdict=$(rtm-token --uid bob --check "$token") || true
[[ "$verdict" == ok ]] || fail "rtm-token --check of its own token said: $verdict"

# ------------------------------------------------------------- broker and call

# Debian's unit file makes the pid file's directory before it starts the broker.
if [[ ! -d "$run_dir" ]]; then
    made_run_dir=true
    install -d -m 740 -o mosquitto "$run_dir"
fi

port=$(free_port)
cp "$doc/examples/mosquitto-rtm.conf" "$snippet"
cat >"$test_conf" <<EOF
# Written by tests/package/test_package.sh, removed when it ends.
listener $port 127.0.0.1
allow_anonymous true
# Debian's mosquitto.conf sets persistence true before it reads conf.d; the
# later setting wins, so the test never writes the machine's store.
persistence false
EOF

log_start=$(stat -c %s "$broker_log" 2>/dev/null || echo 0)
note "starting /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf (listener 127.0.0.1:$port)"
/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf >"$tmp/broker.out" 2>&1 &
broker_pid=$!
# Plugins are loaded before the broker opens its listeners and says it runs.
wait_until "the broker to run (in $broker_log)" log_has "mosquitto version [0-9.]* running"
new_log | grep -- "mosquitto-rtm loaded" || fail "the broker runs without mosquitto-rtm:$(printf '\n%s' "$(new_log)")"

client=(-h 127.0.0.1 -p "$port")
# bob listens to his inbox for one message; -d shows when the SUBACK came,
# and stdbuf makes it show it at once rather than when its buffer fills.
stdbuf -oL mosquitto_sub "${client[@]}" -u bob -i bob-pkg -t rtm/u/bob/call -C 1 -W "$wait_seconds" -d \
    >"$tmp/bob.out" 2>&1 &
sub_pid=$!
bob_subscribed() {
    running "$sub_pid" || fail "bob's mosquitto_sub exited: $(cat "$tmp/bob.out")"
    grep -q '^Subscribed' "$tmp/bob.out"
}
wait_until "bob's subscription" bob_subscribed

presence=$(mosquitto_sub "${client[@]}" -i pkg-watch -t rtm/presence/bob -C 1 -W "$wait_seconds") ||
    fail "no presence message for bob"
[[ "$presence" == *'"uid":"bob","online":true'* ]] || fail "bob's presence is not online: $presence"
note "presence: $presence"

mosquitto_pub "${client[@]}" -u alice -i alice-pkg -t rtm/u/bob/call -q 1 \
    -m '{"type":"invite","id":"pkg-1"}' || fail "alice could not publish her invite"
wait_until "bob's mosquitto_sub to end" not_running "$sub_pid"
sub_status=0
wait "$sub_pid" || sub_status=$?
sub_pid=""
((sub_status == 0)) || fail "bob received no invite (mosquitto_sub exit $sub_status): $(cat "$tmp/bob.out")"
invite=$(grep '^{"type":"invite"' "$tmp/bob.out") || fail "no invite in: $(cat "$tmp/bob.out")"
for field in '"id":"pkg-1"' '"caller":"alice"' '"callee":"bob"' '"by":"alice"'; do
    [[ "$invite" == *"$field"* ]] || fail "the invite bob received lacks $field: $invite"
done
note "bob received: $invite"

stop_broker
[[ "$(snapshot "$store")" == "$store_before" ]] || fail "the broker changed $store"

# -------------------------------------------------------------------- removal

remove_test_confs
[[ "$(snapshot "$conf_dir")" == "$conf_before" ]] || fail "$conf_dir differs from before the test"
remove_run_dir

note "purging mosquitto-rtm"
purge_package
status=$(dpkg-query -W -f='${Status}' mosquitto-rtm 2>/dev/null || true)
[[ -z "$status" || "$status" == *" not-installed" ]] || fail "mosquitto-rtm is still $status"
for path in "${pkg_paths[@]}"; do
    if [[ ! -d "$path" && (-e "$path" || -L "$path") ]]; then
        fail "$path is left after the purge"
    fi
done
for path in "${new_dirs[@]}" /usr/share/mosquitto-rtm "$doc"; do
    [[ ! -e "$path" ]] || fail "$path is left after the purge"
done
[[ "$(dpkg-query -W -f='${Status}' mosquitto)" == "install ok installed" ]] ||
    fail "Debian's mosquitto package is no longer installed"

note "PASS: installed, made a call through Debian's broker, purged without a trace"
