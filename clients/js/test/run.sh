#!/bin/sh
# Runs the JS client's tests against a real broker (see README.md): all of them, or the test
# files given as arguments. RTM_BROKER, RTM_PLUGIN and RTM_PRELOAD pass through to the tests.
set -eu
cd "$(dirname "$0")/.."
if [ ! -d node_modules/mqtt ]; then
    echo "run.sh: mqtt.js is not installed: run 'npm ci' in $(pwd)" >&2
    exit 1
fi
# Test files only: on Node 20 a directory argument would also run the helpers as (empty) tests.
[ "$#" -gt 0 ] || set -- test/*.test.js
exec node --test "$@"
