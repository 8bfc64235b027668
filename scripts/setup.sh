#!/usr/bin/env bash
# Create .venv (once) with the pinned torch pair and darkyolo installed editable with test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  .venv/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1
fi
.venv/bin/pip install --quiet -e '.[test]'
