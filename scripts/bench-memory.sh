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

# Instructions of one run of the hits example: `calls` calls, with a TTL when `ttl` is given.
collected() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hits "$@" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

instructions() {
    command -v valgrind >/dev/null 2>&1 || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
    cargo build --release --example hits 2>&1 | tail -n 1 >&2
    one=$(collected 1)
    million=$(collected 1000001)
    echo "instructions per hit, no TTL: $(( (million - one) / 1000000 ))"
    one=$(collected 1 ttl)
    million=$(collected 1000001 ttl)
    echo "instructions per hit, with a TTL: $(( (million - one) / 1000000 ))"
}

case "${1:-}" in
    --instructions) instructions ;;
    save) shift; name="${1:-main}"; shift || true; [ "${1:-}" = "--" ] && shift
          cargo bench --bench memory -- --save-baseline "$name" "$@" ;;
    *) name="${1:-main}"; shift || true; [ "${1:-}" = "--" ] && shift
       cargo bench --bench memory -- --baseline "$name" "$@" ;;
esac
