"""The aligned training mode: task-aligned positives inside each truth, IoU-aware objectness."""

from __future__ import annotations

import torch

from darkyolo.darknet.cfg import YoloSpec
from darkyolo.losses import DetectionLoss
from darkyolo.losses.aligned import AlignedLoss
from darkyolo.losses.assign import prepare_truths
from darkyolo.models.heads import YoloHead


def head(**overrides) -> YoloHead:
    spec = dict(anchors=((32.0, 32.0), (128.0, 128.0)), mask=(0, 1), classes=2, num=2)
    spec.update(overrides)
    return YoloHead(YoloSpec(**spec), ())


def test_aligned_mode_picks_the_best_aligned_slots_inside_each_truth() -> None:
    h = head(new_coords=True, scale_x_y=2.0)
    generator = torch.Generator().manual_seed(1)
    raw = torch.rand(1, 14, 8, 8, generator=generator, dtype=torch.float64)
    rows = [[0, 1, 0.5, 0.5, 0.6, 0.6], [0, 0, 0.125, 0.125, 0.1, 0.1]]
    truths = prepare_truths(torch.tensor(rows, dtype=torch.float64), 1, 2)
    loss = AlignedLoss([h], topk=5)
    p = raw.view(1, 2, 7, 8, 8)
    anchors = h.anchor_scale((8, 8), (128, 128)).double()
    boxes = h.coder.decode_map(p[:, :, 0:4].movedim(2, -1), anchors).flatten(1, 3)
    ys, xs = torch.meshgrid(
        (torch.arange(8.0) + 0.5) / 8, (torch.arange(8.0) + 0.5) / 8, indexing="ij"
    )
    centres = torch.stack([xs, ys], -1).expand(2, 8, 8, 2).reshape(-1, 2).double()
    target, owner = loss._assign([(h.coder, p, boxes, centres)], truths, (128, 128))
    # Darknet's slot, (anchor * 8 + row) * 8 + column: the big truth's is anchor 1 at cell (4, 4),
    # the small one's anchor 0 at cell (1, 1)
    darknet_slots = [(1 * 8 + 4) * 8 + 4, (0 * 8 + 1) * 8 + 1]
    for column, (_, _, cx, cy, w, h_) in enumerate(rows):
        mine = (owner[0] == column).nonzero().squeeze(1)
        assert 0 < len(mine) <= 5 + 1  # the top 5, and Darknet's slot
        # Darknet's slot is always a positive, taught to score 1
        own = darknet_slots[column]
        assert owner[0, own] == column and target[0, own] == 1.0
        gap = (centres[mine] - torch.tensor([cx, cy])).abs()
        inside = (gap < torch.tensor([w, h_]) / 2).all(1) | (gap <= 1 / 16).all(1)  # or its cell
        assert inside.all()
        # the truth's best-aligned positive is taught to score 1, the others their share of it
        assert target[0, mine].max() == 1.0 and (target[0, mine] > 0).all()
    assert (target[0][owner[0] < 0] == 0).all()
    total, parts = DetectionLoss([h], "aligned")(
        [raw], torch.tensor(rows, dtype=torch.float64), (128, 128), 0
    )
    assert torch.isfinite(total) and set(parts) == {"box", "obj", "cls"}


def test_a_predicted_side_of_zero_leaves_the_gradient_finite() -> None:
    """A new_coords height probability of exactly 0 (a logistic output that underflowed) makes
    CIoU's aspect term atan(w / h) differentiate to NaN under a finite loss; the sides are floored
    so that the update stays finite (it once turned every weight NaN in one step)."""
    h = head(new_coords=True, scale_x_y=2.0)
    raw = torch.full((1, 14, 8, 8), 0.5)
    raw[:, 3::7] = 0.0  # every slot's height probability
    raw.requires_grad_(True)
    rows = torch.tensor([[0, 1, 0.5, 0.5, 0.6, 0.6]])
    total, _ = DetectionLoss([h], "aligned")([raw], rows, (128, 128), 0)
    total.backward()
    assert torch.isfinite(total) and raw.grad is not None and torch.isfinite(raw.grad).all()
