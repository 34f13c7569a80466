#!/usr/bin/env bash
# Fails when the plugin imports a Mosquitto symbol that a broker does not
# export: such a plugin does not load there ("undefined symbol").
#
#   bash tools/check-symbols.sh build/mosquitto_rtm.so build-brokers/*/mosquitto
#
# The plugin's imports are its undefined mosquitto_* dynamic symbols
# (`nm -D --undefined-only`); a broker's exports are its defined dynamic
# symbols (`nm -D --defined-only`). A `make`-built broker (the Docker images,
# tools/brokers.sh) exports only what its src/linker.syms lists, while Debian
# 12's CMake-built 2.0.11 exports every function, so a plugin that loads
# there can still fail elsewhere: check against make-built brokers.
# Prints every missing symbol with the brokers that lack it; exits 1 then,
# 2 on a usage error (no such file, not an ELF object).
set -euo pipefail
# sort and comm must agree on the order.
export LC_ALL=C

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

if (($# < 2)) || [[ "$1" == -h || "$1" == --help ]]; then
    usage
    [[ "${1:-}" == -h || "${1:-}" == --help ]] && exit 0
    exit 2
fi

if ! command -v nm >/dev/null 2>&1; then
    echo "check-symbols: nm not found (binutils)" >&2
    exit 2
fi

plugin=$1
shift

# The names of the dynamic symbols `nm -D` lists with `mode`, without any
# @VERSION suffix; fails when nm cannot read the file.
dynsyms() {
    local mode=$1 file=$2 out
    if [[ ! -f "$file" ]]; then
        echo "check-symbols: $file: no such file" >&2
        return 2
    fi
    if ! out=$(nm -D "$mode" "$file" 2>&1); then
        echo "check-symbols: nm -D $mode $file failed: $out" >&2
        return 2
    fi
    awk '{ sub(/@.*/, "", $NF); print $NF }' <<<"$out" | sort -u
}

undefined=$(dynsyms --undefined-only "$plugin") || exit 2
imports=$(grep '^mosquitto_' <<<"$undefined" || true)
count=$(grep -c . <<<"$imports" || true)
echo "check-symbols: $plugin imports $count mosquitto_* symbol(s)"
if ((count == 0)); then
    echo "check-symbols: $plugin imports no mosquitto_* symbol: is it the plugin?" >&2
    exit 2
fi

missing=0
for broker in "$@"; do
    exports=$(dynsyms --defined-only "$broker") || exit 2
    lacking=$(comm -23 <(echo "$imports") <(echo "$exports"))
    if [[ -z "$lacking" ]]; then
        echo "check-symbols: ok: $broker exports all $count"
        continue
    fi
    while read -r sym; do
        echo "check-symbols: MISSING: $broker does not export $sym, which $plugin imports"
        missing=$((missing + 1))
    done <<<"$lacking"
done

if ((missing > 0)); then
    echo "check-symbols: FAILED: $missing missing symbol(s); the plugin will not load on those" \
        "brokers (use only symbols in every version's src/linker.syms)" >&2
    exit 1
fi
echo "check-symbols: every broker exports every symbol the plugin imports"
