#!/usr/bin/env bash
# The one test command: installs the official client SDKs into a local
# virtualenv, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
export OMNIROUTE_PYTHON="$PWD/$venv/bin/python"
export OMNIROUTE_REQUIRE_SDK=1

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
