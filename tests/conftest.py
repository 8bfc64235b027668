"""Put ``support/`` on ``sys.path`` (tests use the shared builders with ``from tiny import``), and
keep the picture-scan cache of this test session out of the user's home."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_SUPPORT = str(Path(__file__).resolve().parent / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

os.environ["DARKYOLO_CACHE_DIR"] = tempfile.mkdtemp(prefix="darkyolo-test-cache-")
