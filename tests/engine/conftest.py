"""Tiny cfgs and small real datasets (a few BCCD pictures) for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import make_bccd_subset, tiny_cfg


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
