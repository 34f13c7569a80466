#!/usr/bin/env bash
# Installs the npm packages of the JavaScript client (clients/js: mqtt.js)
# and of the browser test (tests/browser: playwright-core), each from its
# package-lock.json:
#
#   bash tools/js-deps.sh
#
# `npm ci` runs only for a directory whose node_modules is missing or older
# than its lockfile, so on a ready checkout this is a quick no-op that needs
# no network. Needs node and npm (tools/deps.sh installs Debian's when npm is
# missing). Works from any directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! command -v npm >/dev/null 2>&1; then
    echo "js-deps: npm not found; bash tools/deps.sh installs Debian's nodejs and npm" >&2
    exit 1
fi

for dir in clients/js tests/browser; do
    lock=$root/$dir/package-lock.json
    if [[ ! -f "$lock" ]]; then
        continue
    fi
    # npm ci writes node_modules/.package-lock.json: it is older than the
    # lockfile when the lockfile changed since (a pull, a version bump).
    installed=$root/$dir/node_modules/.package-lock.json
    if [[ -f "$installed" && ! "$lock" -nt "$installed" ]]; then
        continue
    fi
    echo "js-deps: npm ci in $dir"
    npm ci --prefix "$root/$dir" --no-audit --no-fund
done
