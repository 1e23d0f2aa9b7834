#!/usr/bin/env bash
# The one test command: installs the official client SDKs into a local
# virtualenv, Debian's Chromium and the dashboard's npm packages (cached in
# git-ignored folders), checks the checked-in dashboard build is the build of
# its source, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
export OMNIROUTE_PYTHON="$PWD/$venv/bin/python"
export OMNIROUTE_REQUIRE_SDK=1

# Browser tests run in Debian's Chromium, driven by playwright-core (which
# downloads no browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd dashboard && npm ci --cache "$PWD/../.cache/npm" --prefer-offline --no-audit --no-fund --loglevel=error)
(cd dashboard && npm run --silent check)
# dashboard/dist is checked in (a fresh clone builds with cargo alone); it
# must be exactly what the locked toolchain builds from dashboard/src.
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
(cd dashboard && OUT="$fresh" node build.mjs)
if ! diff -r "$fresh" dashboard/dist >/dev/null; then
  echo "dashboard/dist is not the build of dashboard/src: run (cd dashboard && npm run build) and commit dist/" >&2
  exit 1
fi
export OMNIROUTE_REQUIRE_BROWSER=1

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
