"""Plots write non-empty PNG files and reject bad input clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkyolo.viz import plot_elbow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_plot_elbow_writes_png(tmp_path: Path) -> None:
    out = plot_elbow(
        [1, 2, 3, 4, 5, 6], [0.3, 0.45, 0.55, 0.6, 0.62, 0.63], tmp_path / "a" / "e.png", 5
    )
    assert _is_png(out)


def test_plot_elbow_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 ks but 3"):
        plot_elbow([1, 2], [0.1, 0.2, 0.3], tmp_path / "e.png")
