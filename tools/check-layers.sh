#!/usr/bin/env bash
# Checks the core's layering (README "Layout"): a feature includes no other
# feature's header, services include no feature header and not the
# dispatcher, and lib/ includes nothing of the layers above it. The
# #include lines are the calls a file may make, so this keeps the shape
# honest without reading any code.
#
#   bash tools/check-layers.sh    # exit 1, naming each offending line
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

features=(calls presence devices messages channels attrs)
feature_headers=$(printf 'rtm_%s.h|' "${features[@]}")
feature_headers=${feature_headers%|}
rc=0

offend() {
    echo "layers: $1: $2" >&2
    rc=1
}

for f in plugin/features/*.c; do
    own=rtm_$(basename "$f" .c).h
    while IFS= read -r line; do
        offend "$f" "includes another feature's header: $line"
    done < <(grep -E "#include \"(${feature_headers}|rtm_dispatch\.h)\"" "$f" | grep -v "\"$own\"" || true)
done
for f in plugin/services/*.c; do
    while IFS= read -r line; do
        offend "$f" "a service includes a feature or the dispatcher: $line"
    done < <(grep -E "#include \"(${feature_headers}|rtm_dispatch\.h)\"" "$f" || true)
done
for f in plugin/lib/*.c; do
    while IFS= read -r line; do
        offend "$f" "lib/ includes a layer above it: $line"
    done < <(grep -E "#include \"(${feature_headers}|rtm_dispatch\.h|rtm_context\.h|rtm_users\.h|rtm_outbox\.h|rtm_timers\.h)\"" "$f" || true)
done
if ((rc == 0)); then
    echo "layers: features, services and lib include only what their layer may call"
fi
exit "$rc"
