#!/usr/bin/env bash
# Install what the tests need (scripts/setup.sh) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
