#!/usr/bin/env bash
# Installs the Debian packages needed to build, run and test mosquitto-rtm.
#
#   bash tools/deps.sh [EXTRA_PACKAGE...]
#
# Only packages that are not installed yet are installed, and `apt-get update`
# runs only when something is missing, so on a ready machine this is a quick
# no-op that needs neither root nor the network. Extra package names on the
# command line (e.g. clang-format for the CI style check) are added to the list.
#
# Set RTM_SKIP_DEPS=1 to skip this step entirely (e.g. on a machine whose
# dependencies come from somewhere else).
set -euo pipefail

packages=(
    build-essential      # gcc, make, libc headers
    cmake
    pkg-config
    mosquitto            # the broker the plugin loads into (also used by the integration tests)
    mosquitto-clients    # mosquitto_pub / mosquitto_sub, for the README walkthrough and tests
    mosquitto-dev        # mosquitto_broker.h, mosquitto_plugin.h
    libmosquitto-dev     # mosquitto.h (the client library, used by the integration tests)
    libcjson-dev
    libcurl4-openssl-dev
    ca-certificates      # the CA bundle libcurl verifies JPush (and the mock self-test) with
    libssl-dev           # libcrypto: HMAC-SHA256 and base64 of the login tokens
    libcmocka-dev        # unit tests
    python3              # the mock JPush server (tests/mock_jpush)
    openssl              # the mock JPush server's throwaway test CA
    curl                 # the mock JPush self-test
    valgrind             # bash tools/test.sh --valgrind: the integration tests' broker under memcheck
    "$@"
)

# Node.js and npm run the JavaScript client's tests and build the browser
# demo (tools/js-deps.sh). Many machines have NodeSource's nodejs, which ships
# its own npm and conflicts with Debian's npm package: Debian's are installed
# only when there is no npm at all.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

if [[ "${RTM_SKIP_DEPS:-0}" == 1 ]]; then
    echo "deps: RTM_SKIP_DEPS=1, not checking packages"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: this is not a Debian-like system (no dpkg-query/apt-get)." >&2
    echo "deps: install the equivalents of: ${packages[*]}" >&2
    echo "deps: then run again with RTM_SKIP_DEPS=1." >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "deps: missing: ${missing[*]}"

# apt-get needs root. CI runs as root; a developer either has sudo or is told
# exactly what to run.
if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    echo "deps: not root, using sudo"
    as_root=(sudo)
else
    echo "deps: not root and sudo is not available; as root, run:" >&2
    echo "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# `env` so the variable survives sudo's environment reset.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}"
