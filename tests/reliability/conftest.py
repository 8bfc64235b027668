"""Make the shared fuzzing helpers (``fuzzing.py`` beside this file) importable by the tests."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
