#!/usr/bin/env bash
# Checks the rtm-token CLI: it reproduces the SPEC's test vector, agrees with
# an independent HMAC (the openssl command line) for other inputs, checks
# tokens, and refuses bad arguments and short secrets.
#
#   bash tests/tools/test_rtm_token.sh path/to/rtm-token
set -euo pipefail

tool=${1:?usage: test_rtm_token.sh path/to/rtm-token}
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect NAME EXPECTED_OUTPUT EXPECTED_STATUS COMMAND...
expect() {
    local name=$1 want_out=$2 want_rc=$3
    shift 3
    local out rc=0
    out=$("$@" 2>"$tmp/stderr") || rc=$?
    if [[ "$out" != "$want_out" || "$rc" != "$want_rc" ]]; then
        fail "$name: got '$out' (exit $rc), want '$want_out' (exit $want_rc); stderr: $(cat "$tmp/stderr")"
    else
        echo "ok: $name"
    fi
}

vector=rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA
export RTM_TOKEN_SECRET=s3cret-for-tests

expect "SPEC test vector" "$vector" 0 "$tool" --uid bob --expiry 1893456000
expect "check the vector" "ok" 0 "$tool" --uid bob --check "$vector" --leeway 0
expect "the vector is not alice's" "bad signature" 1 "$tool" --uid alice --check "$vector"
expect "malformed token" "malformed" 1 "$tool" --uid bob --check "rtm1.x.y"
expect "expired token" "expired" 1 "$tool" --uid bob --check "$("$tool" --uid bob --expiry 1000)"

# An independent implementation: HMAC-SHA256 by openssl, base64url by hand.
independent() {
    local uid=$1 expiry=$2
    printf 'rtm1.%s.%s' "$uid" "$expiry" |
        openssl dgst -sha256 -hmac "$RTM_TOKEN_SECRET" -binary | openssl base64 -A |
        tr '+/' '-_' | tr -d '='
}
for uid in alice user.42@example.com a-b_c 0; do
    expiry=$((1700000000 + ${#uid} * 7919))
    expect "agrees with openssl for $uid" "rtm1.$expiry.$(independent "$uid" "$expiry")" 0 \
        "$tool" --uid "$uid" --expiry "$expiry"
done

printf '  s3cret-for-tests \nignored\n' >"$tmp/secret"
expect "secret file, read as the plugin reads it" "$vector" 0 \
    env -u RTM_TOKEN_SECRET "$tool" --secret-file "$tmp/secret" --uid bob --expiry 1893456000

now=$(date +%s)
token=$("$tool" --uid bob --ttl 60)
expiry=${token#rtm1.}
expiry=${expiry%%.*}
if [[ ! "$expiry" =~ ^[0-9]+$ ]] || ((expiry < now + 60 || expiry > now + 61)); then
    fail "--ttl 60 gave expiry $expiry at $now"
else
    echo "ok: --ttl"
fi

expect "short secret refused" "" 2 env RTM_TOKEN_SECRET=short "$tool" --uid bob --ttl 5
expect "no secret refused" "" 2 env -u RTM_TOKEN_SECRET "$tool" --uid bob --ttl 5
expect "invalid uid refused" "" 2 "$tool" --uid 'bob/x' --ttl 5
expect "expiry and ttl together refused" "" 2 "$tool" --uid bob --ttl 5 --expiry 9
expect "neither expiry nor ttl refused" "" 2 "$tool" --uid bob
expect "unknown argument refused" "" 2 "$tool" --uid bob --ttl 5 --secret s3cret-for-tests

if ((failures > 0)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all rtm-token checks passed"
