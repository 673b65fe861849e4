#!/usr/bin/env bash
# Install notegraph into the current Python:
#   bash scripts/install.sh             notegraph
#   bash scripts/install.sh --test      and everything the test suite needs
#   bash scripts/install.sh --openvino  and sentence-transformers' OpenVINO backend (--backend openvino)
# torch comes first and pinned: an unpinned torch pulls several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
test=0
openvino=0
for arg in "$@"; do
  case "$arg" in
    --test) test=1 ;;
    --openvino) openvino=1 ;;
    *) echo "usage: bash scripts/install.sh [--test] [--openvino]" >&2; exit 2 ;;
  esac
done
extras=()
[[ $test == 1 ]] && extras+=(test)
[[ $openvino == 1 ]] && extras+=(openvino)
spec="."
if (( ${#extras[@]} )); then
  spec=".[$(IFS=,; echo "${extras[*]}")]"
fi
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -c constraints.txt -e "$spec"
if [[ $openvino == 1 ]]; then
  # optimum-intel without its dependencies (the extra lists them): it declares torchvision, whose PyPI
  # build does not load against the CPU torch and then breaks every transformers import
  $PY -m pip install -q -c constraints.txt --no-deps "optimum-intel==2.2.0"
fi
if [[ $test == 1 ]]; then
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
fi
