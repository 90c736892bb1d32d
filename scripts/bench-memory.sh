#!/usr/bin/env bash
# The memory hit, measured against a saved baseline so a regression shows before it lands.
#
#   scripts/bench-memory.sh save [name]    on the base commit: run the memory bench and save
#                                          criterion's baseline `name` (default: main)
#   scripts/bench-memory.sh [name]         on your change: run it and compare with `name`
#   scripts/bench-memory.sh --instructions instructions per `fn(u64) -> u64` hit (callgrind,
#                                          needs valgrind), without and with a TTL
#
# Extra arguments after `--` go to criterion (a filter: `-- 'fn\(u64\)'`).
set -euo pipefail
cd "$(dirname "$0")/.."

instructions() {
    command -v valgrind >/dev/null 2>&1 || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
    cargo build --release --example hits >/dev/null
    local bin=target/release/examples/hits
    for ttl in "" ttl; do
        local counts=()
        for calls in 1 1000001; do
            counts+=("$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$calls" $ttl 2>&1 \
                | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')")
        done
        echo "instructions per hit${ttl:+ (with a TTL)}: $(( (counts[1] - counts[0]) / 1000000 ))"
    done
}

case "${1:-}" in
    --instructions) instructions ;;
    save) shift; name="${1:-main}"; shift || true; [ "${1:-}" = "--" ] && shift
          cargo bench --bench memory -- --save-baseline "$name" "$@" ;;
    *) name="${1:-main}"; shift || true; [ "${1:-}" = "--" ] && shift
       cargo bench --bench memory -- --baseline "$name" "$@" ;;
esac
