#!/usr/bin/env bash
# Builds the other Mosquitto brokers the plugin is tested on, into
# build-brokers/<version>/ (mosquitto, mosquitto_dynamic_security.so,
# build.log), for `bash tools/test.sh --broker <version>`.
#
#   bash tools/brokers.sh                 # every vendored version, and 2.0.21
#   bash tools/brokers.sh 2.1.2 2.0.21    # only these
#
# Vendored versions (mosquitto-<version>.tar.gz in ../shared/vendor, checked
# against its SHA256SUMS) are built with `make` the way the official Docker
# images build them; a version that is not vendored is looked up in Debian's
# bookworm-backports and its .deb unpacked (apt-get download, dpkg-deb -x),
# with a private apt state under build-brokers/apt/: the system's sources
# and what `apt-get install mosquitto` picks are never changed.
#
# A version already built from the same tarball checksum and flags (or
# unpacked from the same .deb) is kept: a second run is quick and offline.
# Exits non-zero when a tarball fails its checksum or a build fails; a
# version the archive does not serve is reported and skipped (its reason is
# in build-brokers/<version>/UNAVAILABLE).
#
# Environment: RTM_VENDOR_DIR (default: ../shared/vendor beside the repo),
# RTM_BROKERS_DIR (default: build-brokers in the repo), RTM_BUILD_JOBS
# (default 2), RTM_DEBIAN_MIRROR (default: the archive this machine's apt
# already uses for bookworm).
set -euo pipefail

usage() {
    sed -n '2,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vendor=${RTM_VENDOR_DIR:-$root/../shared/vendor}
out=${RTM_BROKERS_DIR:-$root/build-brokers}
jobs=${RTM_BUILD_JOBS:-2}
# The Debian archive this machine's apt serves bookworm from: backports are
# looked up there, and nowhere else.
system_mirror() {
    apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" {print $2; exit}'
}
mirror=${RTM_DEBIAN_MIRROR:-$(system_mirror)}
# The newest 2.0 that Debian 12 users get from bookworm-backports.
backports_default=2.0.21

versions=()
for arg in "$@"; do
    case "$arg" in
    -h | --help)
        usage
        exit 0
        ;;
    [0-9]*.[0-9]*.[0-9]*) versions+=("$arg") ;;
    *)
        echo "brokers: unknown argument: $arg (expected a version such as 2.1.2)" >&2
        exit 2
        ;;
    esac
done

# The versions vendored beside the repo, from SHA256SUMS.
vendored() {
    [[ -r "$vendor/SHA256SUMS" ]] || return 0
    sed -n 's/^[0-9a-f]\{64\}  mosquitto-\([0-9.]*\)\.tar\.gz$/\1/p' "$vendor/SHA256SUMS"
}

if ((${#versions[@]} == 0)); then
    mapfile -t versions < <(vendored)
    if ((${#versions[@]} == 0)); then
        echo "brokers: no mosquitto-*.tar.gz listed in $vendor/SHA256SUMS" >&2
        echo "brokers: set RTM_VENDOR_DIR to the folder with the vendored sources" >&2
        exit 1
    fi
    versions+=("$backports_default")
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)

# The `make` variables, as the official Docker images pass them
# (docker/2.0-openssl and docker/2.1-ubuntu/Dockerfile in the 2.1.2
# tarball: CFLAGS="-Wall -O2", WITH_ADNS=no WITH_DOCS=no WITH_SRV=no
# WITH_SHARED_LIBRARIES=yes, TLS on by default), but for two listeners the
# plugin never sees and that would need more -dev packages: 2.0's
# websockets (libwebsockets) and 2.1's HTTP API (libmicrohttpd). 2.1's
# websockets are built in and stay on, as in its image. -g: readable stacks
# under valgrind; it changes no code and no exported symbol. WITH_STRIP only
# matters to `make install`, which is not run.
make_flags() {
    local v=$1
    local flags=("CFLAGS=-Wall -O2 -g" WITH_ADNS=no WITH_DOCS=no WITH_SRV=no
        WITH_SHARED_LIBRARIES=yes)
    case "$v" in
    2.0.*) flags+=(WITH_WEBSOCKETS=no) ;;
    *) flags+=(WITH_WEBSOCKETS=yes WITH_HTTP_API=no) ;;
    esac
    printf '%s\n' "${flags[@]}"
}

# "mosquitto version X" as `mosquitto -h` prints it (and exits non-zero).
version_of() {
    local text
    text=$("$1" -h 2>&1 || true)
    text=$(grep -m1 -o 'mosquitto version [^ ]*' <<<"$text" || true)
    echo "${text:-"$1 -h printed no version"}"
}

build_vendored() {
    local v=$1
    local tarball="$vendor/mosquitto-$v.tar.gz"
    local dest="$out/$v"
    local expected actual
    if [[ ! -r "$tarball" ]]; then
        echo "brokers: $v: $tarball is missing (set RTM_VENDOR_DIR to the vendored sources)" >&2
        return 1
    fi
    expected=$(sed -n "s/^\([0-9a-f]\{64\}\)  mosquitto-${v//./\\.}\.tar\.gz$/\1/p" \
        "$vendor/SHA256SUMS")
    if [[ -z "$expected" ]]; then
        echo "brokers: $v: mosquitto-$v.tar.gz is not listed in $vendor/SHA256SUMS" >&2
        return 1
    fi
    actual=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [[ "$actual" != "$expected" ]]; then
        echo "brokers: $v: $tarball has SHA256 $actual, SHA256SUMS says $expected: not building it" >&2
        return 1
    fi

    local flags
    mapfile -t flags < <(make_flags "$v")
    local stamp="mosquitto-$v.tar.gz $actual ${flags[*]}"
    if [[ -x "$dest/mosquitto" && -f "$dest/mosquitto_dynamic_security.so" &&
        "$(cat "$dest/source" 2>/dev/null)" == "$stamp" ]]; then
        echo "brokers: $v: cached in $dest (same tarball, same flags)"
        return 0
    fi

    local src="$out/src/$v"
    echo "brokers: $v: building from $tarball with make -j$jobs ${flags[*]}"
    rm -rf "$src" "$dest"
    mkdir -p "$src" "$dest"
    if ! tar -xzf "$tarball" -C "$src" --strip-components=1; then
        echo "brokers: $v: cannot extract $tarball into $src" >&2
        return 1
    fi
    local log="$dest/build.log"
    local dirs=(src plugins/dynamic-security)
    # 2.1 moved code both need into libcommon, which is built first.
    if [[ -d "$src/libcommon" ]]; then
        dirs=(libcommon "${dirs[@]}")
    fi
    local t0=$SECONDS d
    for d in "${dirs[@]}"; do
        if ! make -C "$src/$d" -j"$jobs" "${flags[@]}" >>"$log" 2>&1; then
            echo "brokers: $v: make -C $d failed; the end of $log:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
    done
    cp "$src/src/mosquitto" "$src/plugins/dynamic-security/mosquitto_dynamic_security.so" \
        "$dest/" || return 1
    # Written last: an interrupted build is never taken for a finished one.
    echo "$stamp" >"$dest/source"
    echo "brokers: $v: built in $((SECONDS - t0)) s: $dest/mosquitto, $(version_of "$dest/mosquitto")"
}

# Marks `v` unavailable with a reason; not an error.
unavailable() {
    local v=$1 reason=$2
    mkdir -p "$out/$v"
    rm -f "$out/$v/mosquitto" "$out/$v/source"
    echo "$reason" >"$out/$v/UNAVAILABLE"
    echo "brokers: $v: skipped: $reason"
}

fetch_backports() {
    local v=$1
    local dest="$out/$v"
    if [[ -x "$dest/mosquitto" && -f "$dest/source" ]]; then
        echo "brokers: $v: cached in $dest ($(cat "$dest/source"))"
        return 0
    fi
    # libwebsockets17: Debian's mosquitto links it (its package depends on
    # it); Debian 12's own 2.0.11 pulls in the rest.
    bash "$root/tools/deps.sh" libwebsockets17

    if [[ -z "$mirror" ]]; then
        unavailable "$v" "apt has no bookworm source to look up bookworm-backports in (set RTM_DEBIAN_MIRROR)"
        return 0
    fi
    local apt="$out/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main" \
        >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null)
    if ((EUID == 0)); then
        # The download goes to our own folder, which apt's _apt user may not
        # be able to write.
        opts+=(-o APT::Sandbox::User=root)
    fi
    echo "brokers: $v: looking it up in bookworm-backports ($mirror), private apt state in $apt"
    if ! apt-get "${opts[@]}" update >"$apt/update.log" 2>&1; then
        tail -n 5 "$apt/update.log" >&2
        unavailable "$v" "the package archive ($mirror bookworm-backports) could not be reached"
        return 0
    fi
    local served
    served=$(apt-cache "${opts[@]}" madison mosquitto | awk -F' *[|] *' '$3 ~ /bookworm-backports/ {print $2; exit}')
    if [[ "$served" != "$v"-* ]]; then
        unavailable "$v" "not served by the archive here (bookworm-backports has mosquitto ${served:-none})"
        return 0
    fi
    local sha
    sha=$(apt-cache "${opts[@]}" show "mosquitto=$served" | sed -n 's/^SHA256: //p' | head -n1)
    rm -rf "$dest"
    mkdir -p "$dest/deb"
    if ! (cd "$dest/deb" && apt-get "${opts[@]}" download "mosquitto=$served") >"$dest/build.log" 2>&1; then
        cat "$dest/build.log" >&2
        echo "brokers: $v: apt-get download mosquitto=$served failed" >&2
        return 1
    fi
    local deb
    deb=$(find "$dest/deb" -maxdepth 1 -name 'mosquitto_*.deb' | head -n1)
    if [[ -z "$deb" || "$(sha256sum "$deb" | cut -d' ' -f1)" != "$sha" ]]; then
        echo "brokers: $v: the downloaded .deb (${deb:-none}) does not match the archive's SHA256 $sha" >&2
        return 1
    fi
    dpkg-deb -x "$deb" "$dest/root" || return 1
    cp "$dest/root/usr/sbin/mosquitto" "$dest/mosquitto" || return 1
    local dynsec
    dynsec=$(find "$dest/root" -name mosquitto_dynamic_security.so | head -n1)
    if [[ -z "$dynsec" ]]; then
        echo "brokers: $v: $deb has no mosquitto_dynamic_security.so" >&2
        return 1
    fi
    cp "$dynsec" "$dest/" || return 1
    local missing
    missing=$(ldd "$dest/mosquitto" "$dest/mosquitto_dynamic_security.so" | grep 'not found' || true)
    if [[ -n "$missing" ]]; then
        echo "brokers: $v: libraries missing for $dest/mosquitto (install them with tools/deps.sh):" >&2
        echo "$missing" >&2
        return 1
    fi
    echo "$(basename "$deb") $sha" >"$dest/source"
    echo "brokers: $v: unpacked $(basename "$deb") into $dest: $(version_of "$dest/mosquitto")"
}

mapfile -t have < <(vendored)
failed=()
for v in "${versions[@]}"; do
    if printf '%s\n' "${have[@]}" | grep -qxF "$v"; then
        build_vendored "$v" || failed+=("$v")
    else
        fetch_backports "$v" || failed+=("$v")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "brokers: FAILED: ${failed[*]}" >&2
    exit 1
fi
