#!/usr/bin/env bash
# The test command: lint, type-check, then the whole suite (real model, real SQLite, real browser).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m ruff check notegraph tests benchmarks
$PY -m mypy
$PY -m pytest -q "$@"
