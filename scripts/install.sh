#!/usr/bin/env bash
# Install notegraph (and with --test, everything the test suite needs) into the current Python.
# torch comes first and pinned: an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install -q torch==2.13.0
if [[ "${1:-}" == "--test" ]]; then
  $PY -m pip install -q -c constraints.txt -e ".[test]"
  # Real-browser tests: Debian's chromium (never `playwright install`), axe-core from npm.
  if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "note: chromium not installed; browser tests will skip (apt-get install chromium)" >&2
    fi
  fi
  if command -v npm >/dev/null 2>&1 && [[ ! -f .cache/axe/node_modules/axe-core/axe.min.js ]]; then
    npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4 >/dev/null
  fi
else
  $PY -m pip install -q -c constraints.txt -e .
fi
