#!/usr/bin/env bash
# The peers' own environment for the benchmarks that run them: .venv-peers with the same torch
# pair as darkyolo and ultralytics (kept apart so its requirements never touch darkyolo's).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv-peers/bin/python ] || python3 -m venv .venv-peers
.venv-peers/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv-peers/bin/pip install -q 'ultralytics==8.4.*'
.venv-peers/bin/python -c "import ultralytics; print('ultralytics', ultralytics.__version__)"
