"""Truth preparation, cells, anchors, slot resolution and the ignore IoU."""

from __future__ import annotations

import pytest
import torch

from darkyolo.errors import DataError
from darkyolo.losses.assign import (
    TruthBatch,
    Writers,
    best_anchor,
    best_truth_iou,
    cell_indices,
    class_union,
    prepare_truths,
    resolve_slots,
)


def test_prepare_truths_pads_per_image_in_order() -> None:
    targets = torch.tensor(
        [
            [1, 3, 0.5, 0.5, 0.2, 0.2],
            [0, 1, 0.1, 0.2, 0.3, 0.4],
            [1, 2, 0.6, 0.6, 0.0005, 0.2],  # too small
            [1, 0, 0.7, 0.7, 0.1, 0.1],
        ]
    )
    truths = prepare_truths(targets, batch_size=3, num_classes=4)
    assert truths.boxes.shape == (3, 3, 4)
    assert truths.valid.tolist() == [[True, False, False], [True, False, True], [False] * 3]
    assert truths.classes[1].tolist()[0::2] == [3, 0]
    assert truths.boxes[1, 2].tolist() == pytest.approx([0.7, 0.7, 0.1, 0.1])
    assert truths.dropped_small == 1 and truths.dropped_over_max == 0
    assert torch.isfinite(truths.boxes.log()).all()  # padding holds a usable dummy box


def test_prepare_truths_cuts_to_max_before_dropping_small() -> None:
    rows = [[0, 0, 0.5, 0.5, 0.0001, 0.1]] + [[0, 0, 0.5, 0.5, 0.1, 0.1]] * 3
    truths = prepare_truths(torch.tensor(rows), batch_size=1, num_classes=1, max_boxes=2)
    assert truths.valid.tolist() == [[False, True]]
    assert truths.dropped_small == 1 and truths.dropped_over_max == 2
    assert truths.first(1).valid.tolist() == [[False]]


def test_prepare_truths_empty() -> None:
    truths = prepare_truths(torch.zeros(0, 6), batch_size=2, num_classes=3)
    assert truths.valid.shape == (2, 1) and not truths.valid.any()


def test_prepare_truths_clamps_tiny_overshoot() -> None:
    truths = prepare_truths(torch.tensor([[0, 0, 1.0000002, 0.5, 0.2, 1.0004]]), 1, 1)
    assert truths.boxes[0, 0].tolist() == pytest.approx([1.0, 0.5, 0.2, 1.0])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0, 0, float("nan"), 0.5, 0.1, 0.1], "not a finite number"),
        ([0, 0, 1.2, 0.5, 0.1, 0.1], "outside 0..1"),
        ([0, 0, 0.5, 0.5, -0.1, 0.1], "outside 0..1"),
        ([0, 5, 0.5, 0.5, 0.1, 0.1], "class is not an integer in 0..4"),
        ([0, 1.5, 0.5, 0.5, 0.1, 0.1], "class is not an integer"),
        ([2, 0, 0.5, 0.5, 0.1, 0.1], "image index is not an integer in 0..1"),
    ],
)
def test_prepare_truths_rejects_malformed_rows(row: list[float], message: str) -> None:
    targets = torch.tensor([[0, 0, 0.5, 0.5, 0.1, 0.1], row])
    with pytest.raises(DataError, match=rf"targets row 1 .*{message}"):
        prepare_truths(targets, batch_size=2, num_classes=5)


def test_prepare_truths_rejects_a_wrong_shape() -> None:
    with pytest.raises(DataError, match=r"\[T, 6\]"):
        prepare_truths(torch.zeros(3, 5), batch_size=1, num_classes=1)


def test_cell_indices_floor_and_last_cell() -> None:
    xy = torch.tensor([[0.25, 0.0], [0.2499, 0.999], [1.0, 1.0]])
    i, j = cell_indices(xy, (3, 4))
    assert i.tolist() == [1, 0, 3]
    assert j.tolist() == [0, 2, 2]


def test_best_anchor_ties_go_to_the_lower_index() -> None:
    anchors = torch.tensor([[1.0, 2.0], [2.0, 1.0], [1.5, 1.5]])
    assert best_anchor(torch.tensor([[1.0, 2.0], [2.0, 1.0], [1.0, 1.0]]), anchors).tolist() == [
        0,
        1,
        0,  # IoU 1/2 with anchors 0 and 1, 1/2.25 with anchor 2
    ]


def writers(slots: list[tuple[int, int, int, int]], classes: list[int], active: list[bool]):
    b, a, j, i = (torch.tensor(v) for v in zip(*slots))
    n = len(slots)
    return Writers(b, a, j, i, torch.full((n, 4), 0.5), torch.tensor(classes), torch.tensor(active))


def test_resolve_slots_last_writer_wins() -> None:
    w = writers(
        [(0, 1, 0, 0), (0, 1, 0, 0), (1, 0, 1, 1), (0, 1, 0, 0), (0, 0, 0, 0)],
        classes=[0, 1, 2, 0, 1],
        active=[True, True, True, False, False],
    )
    result = resolve_slots(w, (2, 2, 2, 2))
    assert result.winner.tolist() == [False, True, True, False, False]
    assert result.owner[:3].tolist() == [1, 1, 2]
    assert result.positive.sum().item() == 2
    assert result.positive[0, 1, 0, 0] and result.positive[1, 0, 1, 1]
    union = class_union(w, result, 3)
    assert union[1].tolist() == [1.0, 1.0, 0.0]  # classes of rows 0 and 1; row 3 is inactive
    assert union[2].tolist() == [0.0, 0.0, 1.0]


def test_best_truth_iou_ignores_invalid_and_other_images() -> None:
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]], [[0.1, 0.1, 0.1, 0.1]] * 2])
    truths = TruthBatch(
        boxes, torch.zeros(2, 2, dtype=torch.long), torch.tensor([[False, True], [False, False]])
    )
    pred = torch.tensor([[[0.5, 0.5, 0.5, 0.5]], [[0.1, 0.1, 0.1, 0.1]]])  # [B, 1, 4]
    best, index = best_truth_iou(pred, truths, (100, 100))
    assert best.flatten().tolist() == pytest.approx([0.16, 0.0])
    assert index[0].tolist() == [1]
