"""Put ``support/`` on ``sys.path`` (tests use the shared builders with ``from tiny import``), keep
the picture-scan cache of this test session out of the user's home, and the tiny cfgs and small
real datasets (a few BCCD pictures) that the training, transfer and validation tests share."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_SUPPORT = str(Path(__file__).resolve().parent / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

os.environ["DARKYOLO_CACHE_DIR"] = tempfile.mkdtemp(prefix="darkyolo-test-cache-")

import pytest  # noqa: E402
from tiny import make_bccd_subset, tiny_cfg  # noqa: E402


@pytest.fixture
def bccd_small(tmp_path: Path) -> Path:
    """8 train and 4 valid BCCD pictures as a YOLO .data dataset."""
    return make_bccd_subset(tmp_path / "bccd", 8, 4)


@pytest.fixture
def tiny_cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.cfg"
    path.write_text(tiny_cfg())
    return path


@pytest.fixture
def make_cfg():
    """``make_cfg(batch_normalize=True, classes=3, size=64)`` -> tiny cfg text."""
    return tiny_cfg
