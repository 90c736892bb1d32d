#!/usr/bin/env bash
# Creates target/mongoeco-venv with the MongoDB-protocol test server (PyPI mongoeco[wire]),
# unless it is there already, and prints the venv's python on the last line of stdout.
# mongoeco needs CPython >= 3.13: a working `python3.13`, else pyenv's 3.13.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/mongoeco-venv"
package='mongoeco[wire]==4.11.0'
marker="$venv/.installed-mongoeco-4.11.0"

if [ -f "$marker" ] && "$venv/bin/python" -c 'import mongoeco.wire.proxy' 2>/dev/null; then
    echo "$PWD/$venv/bin/python"
    exit 0
fi

python=""
if command -v python3.13 >/dev/null 2>&1 && python3.13 -c 1 >/dev/null 2>&1; then
    python="python3.13"
elif command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.13*/bin/python3.13; do
        if [ -x "$candidate" ] && "$candidate" -c 1 >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
if [ -z "$python" ]; then
    echo "the MongoDB test server (PyPI mongoeco) needs CPython 3.13: install it (e.g. pyenv install 3.13) and run this again" >&2
    exit 1
fi

echo "creating $venv with $python and $package" >&2
rm -rf "$venv"
mkdir -p target
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2
touch "$marker"
echo "$PWD/$venv/bin/python"
