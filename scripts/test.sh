#!/usr/bin/env bash
# Installs the test servers that are missing (Debian packages), then runs every test.
# The tests start their own servers on free ports on 127.0.0.1; nothing here starts one.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing test servers: ${need[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The MongoDB-protocol test server (PyPI mongoeco, in target/mongoeco-venv; fast when present).
# Tests use a real MongoDB instead when CACHEX_TEST_MONGODB_URL is set.
scripts/mongo-venv.sh >/dev/null

cargo test --workspace --all-features
