"""The ``scaled`` training mode: how the scaled-YOLOv4 (``new_coords``) weights were trained,
on any Darknet ``[yolo]`` heads. A darkyolo extension; the network and its ``.cfg`` are unchanged.

Sources: WongKinYiu/ScaledYOLOv4 (branch yolov4-csp) ``utils/loss.py`` and ultralytics/yolov5
``utils/loss.py`` with ``data/hyps/hyp.scratch-low.yaml`` (``../shared/docs/training.md`` §6).
Per head (level) ``l`` with stride ``s_l``, anchors ``a`` in grid cells:

* **Anchors by shape ratio**: a truth goes to every anchor of the head with
  ``max(w/a_w, a_w/w, h/a_h, a_h/h) < anchor_ratio`` (4), not only to the best one.
* **Neighbour cells**: besides its own cell, a truth is positive in the two neighbouring cells
  nearest its centre (left or right, up or down: offset 0.5), when the head's decode can reach
  them (``scale_x_y >= 2``, as with ``new_coords``: centres in ``-0.5 .. 1.5`` of a cell).
* **Box**: ``mean(1 - CIoU)`` over the positives of the level (autograd through the decode).
* **Objectness**: BCE over every slot of the level, mean, against the detached CIoU of each
  positive clamped at 0 (0 elsewhere), times the level's balance ``{8: 4, 16: 1, 32: 0.4}[s_l]``
  (YOLOv5's ``[4, 1, 0.4]`` for strides 8, 16, 32; 0.1 beyond).
* **Classes**: BCE, mean over the positives and classes, targets one-hot.
* **Gains**: box 0.05, objectness 1 x (input side / 640)^2, classes 0.5 x classes / 80, each
  times 3 / levels (YOLOv5's). The parts returned are these means times the micro-batch size: a
  sum over images, as every darkyolo loss returns (the trainer divides by images per update).

With ``new_coords`` heads the map holds probabilities, so BCE is taken on them (the same gradient
on the conv's pre-activation as BCE-with-logits); classic heads use BCE-with-logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss

from darkyolo.boxes import normalised_cxcywh_to_xyxy
from darkyolo.losses.assign import TruthBatch, head_view
from darkyolo.models.coder import BoxCoder
from darkyolo.models.heads import YoloHead

#: a truth fits an anchor when no side ratio reaches this (YOLOv5's ``anchor_t``)
ANCHOR_RATIO = 4.0
BOX_GAIN, OBJ_GAIN, CLS_GAIN = 0.05, 1.0, 0.5
#: objectness weight per level, by stride (YOLOv5's balance)
BALANCE = {8: 4.0, 16: 1.0, 32: 0.4}
#: probabilities are kept this far from 0 and 1 in the BCE, and box sides from 0 in the CIoU
PROB_EPS = 1e-7


def ciou_loss(pred: Tensor, truth: Tensor, input_hw: tuple[int, int]) -> Tensor:
    """``1 - CIoU`` (torchvision's, on pixels) of matched rows ``[P, 4]`` ``(cx, cy, w, h)``
    normalised to the input -> ``[P]``. The predicted sides are floored at ``PROB_EPS``: a side
    that underflows to 0 (a ``new_coords`` probability of 0) gives the aspect term
    ``atan(w / h)`` a NaN gradient under a finite loss, and one such step turns every weight NaN
    (aquarium, AdamW at 0.0036, update 107)."""
    pred = torch.cat([pred[:, 0:2], pred[:, 2:4].clamp(min=PROB_EPS)], dim=1)
    return complete_box_iou_loss(
        normalised_cxcywh_to_xyxy(pred, input_hw), normalised_cxcywh_to_xyxy(truth, input_hw)
    )


def bce(coder: BoxCoder, raw: Tensor, target: Tensor) -> Tensor:
    """Elementwise BCE of probabilities (``new_coords`` maps) or logits against ``target``."""
    if coder.new_coords:  # written out: a NaN reaches the trainer's NaN handling, not an error
        p = raw.clamp(PROB_EPS, 1.0 - PROB_EPS)
        return -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p))
    return F.binary_cross_entropy_with_logits(raw, target, reduction="none")


class ScaledLoss:
    """The ``scaled`` mode's loss over all ``[yolo]`` heads; parts ``box, obj, cls`` (see module)."""

    part_names = ("box", "obj", "cls")

    def __init__(self, heads: Sequence[YoloHead], anchor_ratio: float = ANCHOR_RATIO) -> None:
        bad = [type(h).__name__ for h in heads if not isinstance(h, YoloHead)]
        if bad:
            raise ValueError(f"the scaled training mode needs [yolo] heads, got {bad[0]}")
        self.heads = list(heads)
        self.anchor_ratio = anchor_ratio

    def __call__(
        self, raw_maps: Sequence[Tensor], truths: TruthBatch, input_hw: tuple[int, int], seen: int
    ) -> dict[str, Tensor]:
        levels = len(self.heads)
        first = raw_maps[0]
        zero = first.new_zeros((), dtype=torch.float32 if first.dtype != torch.float64 else None)
        box, obj, cls = zero, zero, zero
        batch = first.shape[0]
        num_classes = self.heads[0].num_classes
        for head, raw in zip(self.heads, raw_maps, strict=True):
            p = head_view(raw, head.num_anchors, head.num_classes)  # [B, A, 5+C, H, W]
            height, width = p.shape[-2:]
            stride = input_hw[0] // height
            anchors = head.anchor_scale((height, width), input_hw).to(p.dtype)  # [A, 2] normalised
            b, a, j, i, t = self._positives(head.coder, truths, anchors, (height, width))
            target_obj = torch.zeros_like(p[:, :, 4])
            if b.numel():
                z = p[b, a, :, j, i]  # [P, 5+C]
                pred = head.coder.decode(z[:, 0:4], i, j, anchors[a], (height, width))
                loss = ciou_loss(pred, truths.boxes[b, t].to(p.dtype), input_hw)
                box = box + loss.mean()
                target_obj[b, a, j, i] = (1.0 - loss.detach()).clamp(min=0.0).to(p.dtype)
                onehot = F.one_hot(truths.classes[b, t], num_classes).to(p.dtype)
                cls = cls + bce(head.coder, z[:, 5:], onehot).mean()
            balance = BALANCE.get(stride, 0.1)
            obj = obj + balance * bce(head.coder, p[:, :, 4], target_obj).mean()
        side = max(input_hw) / 640.0
        scale = 3.0 / levels * batch
        return {
            "box": box * BOX_GAIN * scale,
            "obj": obj * OBJ_GAIN * side * side * scale,
            "cls": cls * CLS_GAIN * num_classes / 80.0 * scale,
        }

    def _positives(
        self, coder: BoxCoder, truths: TruthBatch, anchors: Tensor, grid_hw: tuple[int, int]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(image, anchor, row, col, truth column)`` of every positive slot, ``[P]`` each."""
        height, width = grid_hw
        boxes = truths.boxes.to(anchors.dtype)  # [B, M, 4]
        ratio = boxes[..., None, 2:4] / anchors  # [B, M, A, 2]
        worst = torch.maximum(ratio, 1.0 / ratio).amax(dim=-1)
        fits = truths.valid[..., None] & (worst < self.anchor_ratio)  # [B, M, A]
        b, m, a = fits.nonzero(as_tuple=True)
        grid = boxes.new_tensor([width, height])
        centre = boxes[b, m, 0:2] * grid  # in cells
        cells = [centre.floor()]
        low, high = coder.offset_range
        if low <= -0.5 and high >= 1.5:  # the decode reaches the two nearest neighbours
            frac = centre - centre.floor()
            left_up = (frac < 0.5) & (centre > 1.0)
            right_down = (frac > 0.5) & (centre < grid - 1.0)
            shifts = []
            for axis in range(2):
                step = torch.zeros(2, dtype=centre.dtype, device=centre.device)
                step[axis] = 1.0
                shifts.append((left_up[:, axis], -step))
                shifts.append((right_down[:, axis], step))
            index = [torch.arange(len(b), device=b.device)]
            for keep, step in shifts:
                index.append(keep.nonzero(as_tuple=True)[0])
                cells.append(centre[keep].floor() + step)
            rows = torch.cat(index)
            b, m, a = b[rows], m[rows], a[rows]
        cell = torch.cat(cells)
        i = cell[:, 0].long().clamp(0, width - 1)
        j = cell[:, 1].long().clamp(0, height - 1)
        return b, a, j, i, m
