"""The scaled training mode: YOLOv5's positives (shape ratio, neighbour cells), CIoU, IoU objectness."""

from __future__ import annotations

import math

import pytest
import torch

from darkyolo.darknet.cfg import YoloSpec
from darkyolo.losses import DetectionLoss
from darkyolo.losses.assign import prepare_truths
from darkyolo.losses.scaled import ScaledLoss
from darkyolo.models.heads import RegionHead, YoloHead


def head(**overrides) -> YoloHead:
    spec = dict(anchors=((32.0, 32.0), (128.0, 128.0)), mask=(0, 1), classes=2, num=2)
    spec.update(overrides)
    return YoloHead(YoloSpec(**spec), ())


def positives(h: YoloHead, rows: list[list[float]]) -> set[tuple[int, int, int, int]]:
    truths = prepare_truths(torch.tensor(rows, dtype=torch.float64), 1, 2)
    anchors = h.anchor_scale((4, 4), (128, 128)).double()
    b, a, j, i, _ = ScaledLoss([h])._positives(h.coder, truths, anchors, (4, 4))
    return set(zip(b.tolist(), a.tolist(), j.tolist(), i.tolist()))


def test_a_truth_takes_its_cell_and_two_neighbours_with_a_reaching_decode() -> None:
    # centre (0.3, 0.6) of a 4x4 grid: cell (1, 2) at fractions (0.2, 0.4) -> left and up neighbours
    rows = [[0, 1, 0.3, 0.6, 40 / 128, 40 / 128]]  # 40 px: ratio 1.25 to 32, 3.2 to 128: both fit
    found = positives(head(new_coords=True, scale_x_y=2.0), rows)
    cells = {(1, 2), (0, 2), (1, 1)}
    assert found == {(0, a, i_j[1], i_j[0]) for a in (0, 1) for i_j in cells}
    # the classic decode (centres inside the cell) keeps only the truth's own cell
    assert positives(head(), rows) == {(0, 0, 2, 1), (0, 1, 2, 1)}


def test_anchors_are_matched_by_shape_ratio() -> None:
    rows = [[0, 0, 0.5, 0.5, 20 / 128, 20 / 128]]  # 20 px: 1.6 to 32, 6.4 to 128
    assert {a for _, a, _, _ in positives(head(), rows)} == {0}


def test_losses_are_yolov5s_means_times_the_batch() -> None:
    """One truth exactly on a prediction: CIoU 1, so box 0 and the objectness target is 1."""
    h = head(new_coords=True, scale_x_y=2.0, anchors=((32.0, 32.0),), mask=(0,), num=1)
    raw = torch.full((2, 7, 4, 4), 0.5, dtype=torch.float64)  # p = .5: centre mid-cell, w = anchor
    targets = torch.tensor([[1, 1, 0.375, 0.375, 0.25, 0.25]], dtype=torch.float64)
    total, parts = DetectionLoss([h], "scaled")([raw], targets, (128, 128), 0)
    assert parts["box"].item() == pytest.approx(0.0, abs=1e-9)
    # objectness: 32 slots at p = .5; the one positive (centre on a cell's middle) has target 1
    obj = (math.log(2) * 31 + math.log(2)) / 32  # BCE(.5, 0) = BCE(.5, 1) = ln 2
    assert parts["obj"].item() == pytest.approx(obj * 0.4 * 0.2**2 * 3 * 2)  # stride 32: 0.4
    assert set(parts) == {"box", "obj", "cls"}
    cls_bce = math.log(2)  # p = .5 against one-hot
    assert parts["cls"].item() == pytest.approx(cls_bce * 0.5 * 2 / 80 * 3 * 2)
    assert total.item() == pytest.approx(sum(v.item() for v in parts.values()))


def test_the_scaled_mode_refuses_region_heads() -> None:
    from darkyolo.darknet.cfg import RegionSpec

    region = RegionHead(RegionSpec(anchors=((1.0, 1.0),), classes=2, num=1), ())
    with pytest.raises(ValueError, match=r"\[yolo\] heads"):
        DetectionLoss([region], "scaled")
