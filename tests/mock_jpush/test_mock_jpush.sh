#!/usr/bin/env bash
# Self-test of mock_jpush.py: starts one mock over plain HTTP and one over TLS,
# each in its own temp dir, and checks with the curl CLI every behaviour the
# integration tests rely on. Every check compares exact output; any difference
# fails.
#
#   bash tests/mock_jpush/test_mock_jpush.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mock="$here/mock_jpush.py"
key=selftest-key
secret=selftest-secret
auth="Basic $(printf '%s' "$key:$secret" | base64)"
push_body='{"platform":"all","audience":{"registration_id":["r1"]}}'
# The interpreter itself: a version-manager shim (pyenv) costs ~0.5 s a start.
python=$(python3 -c 'import sys; print(sys.executable)')

# Every request stays on 127.0.0.1: no proxy may take it elsewhere.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

work=$(mktemp -d)
dir=""
mock_pid=""
base=""
tls_opts=()

phase=""

trap 'rm -rf "$work"' EXIT

# Each phase runs in its own subshell and kills its own mock on the way out.
# shellcheck disable=SC2317  # called from the EXIT trap
kill_mock() {
    if [[ -n "$mock_pid" ]] && kill -0 "$mock_pid" 2>/dev/null; then
        kill -KILL "$mock_pid" 2>/dev/null || true
    fi
}

fail() {
    echo "FAIL [$phase]: $*" >&2
    if [[ -n "$dir" && -f "$dir/mock.log" ]]; then
        echo "mock log:" >&2
        sed 's/^/  | /' "$dir/mock.log" >&2
    fi
    exit 1
}

expect_eq() { # what actual expected
    [[ "$2" == "$3" ]] || fail "$1: got [$2], expected [$3]"
}

now_ms() { # bash 5's clock, no fork
    local us=${EPOCHREALTIME/[.,]/}
    echo $((us / 1000))
}

# --- talking to the mock ------------------------------------------------------

# call PATH [CURL_ARGS...]: prints "HTTP_CODE BODY"; returns curl's exit status.
call() {
    local path=$1 out code rc=0
    shift
    out="$dir/body.$BASHPID" # unique: every call runs in its own subshell
    : >"$out"
    code=$(curl -sS --noproxy '*' --max-time 5 "${tls_opts[@]}" -o "$out" -w '%{http_code}' \
        "$@" "$base$path" 2>>"$dir/curl.err") || rc=$?
    printf '%s %s' "$code" "$(<"$out")"
    return "$rc"
}

# push [BODY [CURL_ARGS...]]: a well-formed JPush request.
push() {
    local body=${1:-$push_body}
    shift || true
    call /v3/push -u "$key:$secret" -H 'Content-Type: application/json' -d "$body" "$@"
}

control() { call "/_mock/$1" -H 'Content-Type: application/json' -d "$2"; }

# The recorded requests, one "seq status auth_ok content_type body" per line.
summary_py=$(
    cat <<'EOF'
import json, sys
status, _, body = sys.argv[2].partition(" ")
print(status)
for e in json.loads(body):
    h = e["headers"]
    print(e["seq"], e["method"], e["path"], e["answer"]["status"],
          h.get("Authorization") == sys.argv[1], h.get("Content-Type"),
          json.dumps(e["body"], separators=(",", ":")))
EOF
)
summarize() { "$python" -c "$summary_py" "$auth" "$1"; }

# --- starting and stopping ----------------------------------------------------

start_mock() { # NAME [MOCK_ARGS...]
    dir="$work/$1"
    mkdir -p "$dir"
    shift
    "$python" "$mock" --port 0 --state-dir "$dir" --app-key "$key" --master-secret "$secret" \
        "$@" 2>"$dir/mock.log" &
    mock_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s "$dir/port" ]] && break
        kill -0 "$mock_pid" 2>/dev/null || fail "the mock exited at start"
        sleep 0.1
    done
    [[ -s "$dir/port" ]] || fail "no $dir/port after 10 s"
    port=$(<"$dir/port")
    [[ "$port" =~ ^[0-9]+$ ]] || fail "port file holds [$port]"
}

# --- checks -------------------------------------------------------------------

check_auth_and_format() {
    local denied='401 {"error":{"code":1004,"message":"Authen failed"}}'
    expect_eq "no Authorization" \
        "$(call /v3/push -H 'Content-Type: application/json' -d "$push_body")" "$denied"
    expect_eq "wrong secret" "$(call /v3/push -u "$key:wrong" -H 'Content-Type: application/json' \
        -d "$push_body")" "$denied"
    expect_eq "form content type" "$(call /v3/push -u "$key:$secret" -d "$push_body")" \
        '400 {"error":{"code":1003,"message":"Content-Type must be application/json"}}'
    expect_eq "array body" "$(push '[1]')" \
        '400 {"error":{"code":1003,"message":"the body must be a JSON object"}}'
    expect_eq "rejections recorded" "$(summarize "$(call /_mock/requests)")" "200
1 POST /v3/push 401 False application/json $push_body
2 POST /v3/push 401 False application/json $push_body
3 POST /v3/push 400 True application/x-www-form-urlencoded $push_body
4 POST /v3/push 400 True application/json [1]"
    expect_eq "two 401 log lines" "$(grep -c 'POST /v3/push -> 401 (auth)$' "$dir/mock.log")" 2
    expect_eq "bad behaviour" "$(control behaviour '{"mode":"bogus"}')" \
        '400 {"error":"mode must be \"ok\" or \"status\""}'
    expect_eq "reset" "$(control reset '')" '200 {"reset":true}'
    expect_eq "nothing recorded after reset" "$(call /_mock/requests)" '200 []'
}

check_ok_and_wait() {
    local started elapsed
    expect_eq "first push" "$(push)" '200 {"sendno":"0","msg_id":"1"}'
    expect_eq "sendno echoed, chunked body" \
        "$(push '{"options":{"sendno":7}}' -H 'Transfer-Encoding: chunked')" \
        '200 {"sendno":"7","msg_id":"2"}'
    local two="200
1 POST /v3/push 200 True application/json $push_body
2 POST /v3/push 200 True application/json {\"options\":{\"sendno\":7}}"
    expect_eq "requests" "$(summarize "$(call /_mock/requests)")" "$two"
    expect_eq "wait for 2" "$(summarize "$(call '/_mock/wait?count=2&timeout_ms=5000')")" "$two"

    started=$(now_ms)
    expect_eq "wait for 3 times out" \
        "$(summarize "$(call '/_mock/wait?count=3&timeout_ms=300')")" "$two"
    elapsed=$(($(now_ms) - started))
    ((elapsed >= 300)) || fail "wait returned after $elapsed ms, before its 300 ms timeout"

    # A waiter is woken by the push it waits for, long before its timeout.
    (
        s=$(now_ms)
        call '/_mock/wait?count=3&timeout_ms=4000' >"$dir/waited"
        echo $(($(now_ms) - s)) >"$dir/waited_ms"
    ) &
    local waiter=$!
    sleep 0.3 # let the waiter block first
    expect_eq "third push" "$(push)" '200 {"sendno":"0","msg_id":"3"}'
    wait "$waiter"
    expect_eq "woken waiter" "$(summarize "$(<"$dir/waited")" | wc -l)" 4
    elapsed=$(<"$dir/waited_ms")
    ((elapsed < 2000)) || fail "the waiter returned after $elapsed ms, not at the push"
}

check_error_answers() {
    control behaviour '{"mode":"status","status":429,"headers":{"Retry-After":"2","X-Rate-Limit-Reset":"5"},"times":1}' >/dev/null
    expect_eq "429" "$(push "" -D "$dir/headers")" \
        '429 {"error":{"code":2002,"message":"Request times out of limit"}}'
    expect_eq "429 headers" "$(grep -E '^(Retry-After|X-Rate-Limit-Reset):' "$dir/headers" | tr -d '\r')" \
        "Retry-After: 2
X-Rate-Limit-Reset: 5"
    expect_eq "after the 429" "$(push)" '200 {"sendno":"0","msg_id":"4"}'

    control behaviour '{"status":400,"times":1}' >/dev/null
    expect_eq "1011" "$(push)" '400 {"error":{"code":1011,"message":"cannot find user by this audience"}}'
    expect_eq "after the 1011" "$(push)" '200 {"sendno":"0","msg_id":"5"}'

    control behaviour '[{"status":500,"times":2},{"status":503,"body":"gateway down","times":1}]' >/dev/null
    control behaviour '{"status":502}' >/dev/null # the answer once the queue is empty
    local e500='500 {"error":{"code":1000,"message":"Server Internal error"}}'
    expect_eq "queue 1" "$(push)" "$e500"
    expect_eq "queue 2" "$(push)" "$e500"
    expect_eq "queue 3" "$(push)" "503 gateway down"
    expect_eq "new default" "$(push)" '502 {"error":{"code":1000,"message":"Server Internal error"}}'
    expect_eq "reset" "$(control reset '')" '200 {"reset":true}'
    expect_eq "behaviours after reset" "$(call /_mock/behaviour)" \
        '200 {"queue":[],"default":{"status":200,"body":null,"headers":{},"delay_ms":0,"hang":false,"drop":false,"times":null}}'
    expect_eq "default after reset" "$(push)" '200 {"sendno":"0","msg_id":"1"}'
}

check_delay_drop_hang() {
    local started elapsed out rc hanging
    control behaviour '{"delay_ms":400,"times":1}' >/dev/null
    started=$(now_ms)
    expect_eq "delayed" "$(push)" '200 {"sendno":"0","msg_id":"2"}'
    elapsed=$(($(now_ms) - started))
    ((elapsed >= 400)) || fail "the delayed answer came after $elapsed ms"

    control behaviour '{"drop":true,"times":1}' >/dev/null
    rc=0
    out=$(push) || rc=$?
    expect_eq "dropped: no answer" "$out" "000 "
    ((rc != 0)) || fail "curl succeeded on a dropped connection"
    expect_eq "after the drop" "$(push)" '200 {"sendno":"0","msg_id":"3"}'

    # A hanging answer holds one connection; another request is answered at once,
    # while the hanging client still waits (2 s leave room on a busy machine).
    control behaviour '{"hang":true,"times":1}' >/dev/null
    push "" --max-time 2 >"$dir/hung" &
    hanging=$!
    expect_eq "the hanging request arrived" \
        "$(summarize "$(call '/_mock/wait?count=5&timeout_ms=3000')" | wc -l)" 6
    started=$(now_ms)
    expect_eq "answered during a hang" "$(push "" --max-time 1)" '200 {"sendno":"0","msg_id":"4"}'
    elapsed=$(($(now_ms) - started))
    kill -0 "$hanging" 2>/dev/null || fail "the hanging request ended before the second was answered"
    rc=0
    wait "$hanging" || rc=$?
    expect_eq "hanging curl times out" "$rc" 28
    expect_eq "hanging curl got nothing" "$(<"$dir/hung")" "000 "
    ((elapsed < 1000)) || fail "the concurrent request took $elapsed ms"
    # The handler is released when the client gives up.
    wait_for_log 'POST /v3/push -> hung, no answer; released after [0-9]+ ms$'
}

check_tls() {
    local rc=0
    expect_eq "server cert signed by ca.pem" \
        "$(openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem")" "$dir/server.pem: OK"
    curl -sS --noproxy '*' --max-time 5 -o /dev/null "$base/_mock/requests" 2>/dev/null || rc=$?
    expect_eq "curl without --cacert refuses the mock (60)" "$rc" 60
    expect_eq "DNS:localhost in the certificate" \
        "$(curl -sS --noproxy '*' --max-time 5 --cacert "$dir/ca.pem" \
            --resolve "localhost:$port:127.0.0.1" -w ' %{http_code}' \
            "https://localhost:$port/_mock/requests")" "[] 200"
    wait_for_log '127[.]0[.]0[.]1:[0-9]+ TLS handshake failed: '
}

# SIGTERM while an answer hangs: the mock exits 0 within 2 s, removes its port
# file and disconnects the hanging client.
check_sigterm() {
    local client started elapsed rc=0
    control reset '' >/dev/null
    control behaviour '{"hang":true}' >/dev/null
    push "" --max-time 8 >/dev/null &
    client=$!
    expect_eq "the hanging request arrived" \
        "$(summarize "$(call '/_mock/wait?count=1&timeout_ms=3000')" | wc -l)" 2
    started=$(now_ms)
    kill -TERM "$mock_pid"
    wait_for_exit "$mock_pid" 2000
    wait "$mock_pid" || rc=$?
    mock_pid=""
    expect_eq "mock exit status after SIGTERM" "$rc" 0
    [[ ! -e "$dir/port" ]] || fail "port file left behind"
    grep -q ' stopping on SIGTERM$' "$dir/mock.log" || fail "no 'stopping on SIGTERM' in the log"
    rc=0
    wait "$client" || rc=$?
    ((rc != 0)) || fail "the hanging client got an answer"
    elapsed=$(($(now_ms) - started))
    ((elapsed < 3000)) || fail "the hanging client was released after $elapsed ms"
}

# wait_for_log REGEX: the mock logs a line matching REGEX within 3 s.
wait_for_log() {
    local i
    for ((i = 0; i < 60; i++)); do
        grep -qE "^mock_jpush [0-9:.]+ $1" "$dir/mock.log" && return 0
        sleep 0.05
    done
    fail "no log line matching [$1]"
}

# wait_for_exit PID MS: PID (our child) has exited, or is a zombie, within MS.
wait_for_exit() {
    local i state
    for ((i = 0; i < $2 / 50; i++)); do
        state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone)
        [[ "$state" == Z || "$state" == gone ]] && return 0
        sleep 0.05
    done
    fail "pid $1 still running $2 ms after SIGTERM"
}

run_checks() {
    check_auth_and_format
    check_ok_and_wait
    check_error_answers
    check_delay_drop_hang
    check_sigterm
}

run_phase() { # NAME [MOCK_ARGS...]
    phase=$1
    trap kill_mock EXIT
    start_mock "$@"
    if [[ "$phase" == tls ]]; then
        base="https://127.0.0.1:$port"
        tls_opts=(--cacert "$dir/ca.pem")
        check_tls
    else
        base="http://127.0.0.1:$port"
    fi
    run_checks
    echo "ok: mock_jpush over ${base%%:*}"
}

# The two phases are independent (own mock, own port, own dir): run them at once.
run_phase plain &
plain=$!
run_phase tls --tls &
tls=$!
status=0
wait "$plain" || status=1
wait "$tls" || status=1
exit "$status"
