"""Plots write non-empty PNG files and reject bad input clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkyolo.errors import DataError
from darkyolo.viz import plot_class_counts, plot_elbow, plot_pr_curves, plot_training_curves

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


def test_plot_pr_curves_from_result_and_from_mapping(tmp_path: Path) -> None:
    from darkyolo.evaluation.evaluator import DetectionEvaluator

    ev = DetectionEvaluator(["a", "b", "c"])
    box, far = [10.0, 10.0, 50.0, 50.0], [100.0, 100.0, 150.0, 150.0]
    ev.process(1, [box, far], [0, 1], [far, box, far], [0.9, 0.8, 0.7], [0, 0, 1], 200, 200)
    result = ev.compute()
    assert _is_png(plot_pr_curves(result, result.class_names, tmp_path / "pr.png"))
    grid = np.linspace(0, 1, 101)
    curves = {k: (grid, 1 - grid * 0.5 * k) for k in range(30)}  # many classes: no legend
    assert _is_png(plot_pr_curves(curves, [f"c{k}" for k in range(30)], tmp_path / "pr30.png"))
    assert _is_png(plot_pr_curves({}, [], tmp_path / "empty.png"))


def test_plot_training_curves_from_csv(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text(
        "epoch,loss_box,loss_obj,lr,map50,map,note\n"
        "0,1.5,2.0,0.001,,,warmup\n"
        "1,1.2,1.5,0.001,0.10,0.05,\n"
        "2,1.0,1.2,0.0001,0.20,0.09,done\n"
    )
    assert _is_png(plot_training_curves(log, tmp_path / "curves.png"))


def test_plot_training_curves_needs_epoch_or_step(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("time,loss\n1,2\n")
    with pytest.raises(DataError, match="'epoch' or 'step'"):
        plot_training_curves(log, tmp_path / "x.png")
    with pytest.raises(DataError, match="not found"):
        plot_training_curves(tmp_path / "missing.csv", tmp_path / "x.png")


def test_plot_class_counts(tmp_path: Path) -> None:
    assert _is_png(plot_class_counts([5, 0, 12], ["a", "b", "c"], tmp_path / "counts.png"))
    assert _is_png(plot_class_counts({1: 3}, ["a", "b"], tmp_path / "counts2.png"))
