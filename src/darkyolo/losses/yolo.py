"""YOLOv3 ``[yolo]`` loss with pjreddie Darknet's deltas (``docs/training.md`` section 2).

Per slot ``(b, a, j, i)`` of a ``[B, A*(5+C), H, W]`` raw map ``z`` (``BCE`` is BCE-with-logits):

* ``noobj``: ``obj_normalizer * BCE(z_o, 0)`` where the decoded box's best IoU with the image's truths
  is ``<= ignore_thresh`` and no truth is assigned to the slot (the ignore rule).
* A slot whose best IoU is ``> truth_thresh`` (default 1: never) becomes a positive for that truth.
* Each truth, in order, goes to its cell and to the best shape-IoU anchor among **all** the cfg's
  anchors; if that anchor is not in this head's ``mask`` the head skips the truth (it still counts
  for the ignore rule). With ``iou_thresh < 1`` (AlexeyAB) the truth also goes to every other anchor
  of the head whose shape IoU with it exceeds ``iou_thresh``. A later truth on the same slot
  overwrites box and objectness:

  * ``box``: ``s * (alpha * (BCE(z_x, t_x') + BCE(z_y, t_y')) + 0.5 * ((z_w - t_w)^2 + (z_h - t_h)^2))``,
    ``s = iou_normalizer * (2 - w h)``, ``t_x = x W - i``, ``t_w = ln(w W_in / anchor_w)``; with
    ``scale_x_y = alpha`` (AlexeyAB) ``t' = (t + (alpha - 1)/2) / alpha`` (exact; alpha = 1 is pjreddie);
    with ``iou_loss=giou|ciou``: ``iou_normalizer * (1 - GIoU or CIoU)`` of the decoded box and the
    truth in input pixels (an approximation of AlexeyAB's hand-written delta, see training.md);
  * ``obj``: ``obj_normalizer * BCE(z_o, 1)``; with ``rescore=1`` (a darkyolo extension: Darknet's
    ``[region]`` key, not read by Darknet's ``[yolo]``) the target is the IoU of the slot's current
    decoded box with its truth (no gradient through the IoU), so the score learns box quality;
  * ``cls``: ``BCE(z_c, union of the slot's classes)``; ``label_smooth_eps = e`` maps targets 1, 0 to
    ``1 - e/2, e/2``.

``-d(loss)/dz`` equals Darknet's delta (no ``sigma'``: ``backward_yolo_layer`` passes it through).
``obj_normalizer``, ``iou_normalizer``, ``scale_x_y``, ``label_smooth_eps`` follow AlexeyAB and are
1, 1, 1, 0 by default (pjreddie). ``cls_normalizer`` only matters in AlexeyAB with
``counters_per_class``, which is not supported, so it has no effect. Sums, not means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss, generalized_box_iou_loss

from darkyolo.boxes import box_iou_aligned, normalised_cxcywh_to_xyxy, wh_iou
from darkyolo.losses.assign import (
    TruthBatch,
    Writers,
    best_anchor,
    best_truth_iou,
    box_targets,
    cell_indices,
    class_union,
    decode_cells,
    head_view,
    resolve_slots,
)
from darkyolo.models.heads import YoloHead

_IOU_LOSSES = {"giou": generalized_box_iou_loss, "ciou": complete_box_iou_loss}


class YoloLoss:
    """The loss of one ``[yolo]`` head; call it with the head's raw map. Parts: see module doc."""

    part_names = ("box", "obj", "noobj", "cls")

    def __init__(self, head: YoloHead) -> None:
        self.head = head
        self.spec = head.spec
        # Slot of each of the cfg's anchors in this head (first match in ``mask``), -1 if absent.
        lookup = [-1] * self.spec.num
        for slot, anchor in reversed(list(enumerate(self.spec.mask))):
            lookup[anchor] = slot
        self._mask_lookup = torch.tensor(lookup, dtype=torch.int64)
        self._mask = torch.tensor(self.spec.mask, dtype=torch.int64)
        self._all_anchors = torch.tensor(self.spec.anchors, dtype=torch.float64)  # [K, 2] pixels

    def __call__(
        self, raw: Tensor, truths: TruthBatch, input_hw: tuple[int, int], seen: int = 0
    ) -> dict[str, Tensor]:
        """``raw: [B, A*(5+C), H, W]``; ``truths`` for the whole batch -> parts (scalar sums)."""
        spec, head = self.spec, self.head
        p = head_view(raw, head.num_anchors, head.num_classes)  # [B, A, 5+C, H, W]
        batch, anchors_n, _, height, width = p.shape
        dtype, device = p.dtype, p.device
        grid_hw = (height, width)
        truths = truths.first(spec.max_boxes)
        boxes = truths.boxes.to(dtype)  # [B, M, 4]
        anchors = head.anchor_scale(grid_hw, input_hw).to(dtype)  # [A, 2] of the input
        cols = torch.arange(width, device=device, dtype=dtype)
        rows = torch.arange(height, device=device, dtype=dtype).view(height, 1)

        with torch.no_grad():
            pred = decode_cells(
                p[:, :, 0:4].movedim(2, -1),
                cols,
                rows,
                anchors.view(-1, 1, 1, 2),
                grid_hw,
                head.xy_offsets,
            )  # [B, A, H, W, 4]
            best_iou, best_index = best_truth_iou(pred, truths, input_hw)

        # Writers: positives from truth_thresh first, then every truth whose best anchor is ours.
        in_h, in_w = input_hw
        all_anchors = (self._all_anchors / self._all_anchors.new_tensor([in_w, in_h])).to(
            device, dtype
        )
        best_n = best_anchor(boxes[..., 2:4], all_anchors)  # [B, M] over all cfg anchors
        slot = self._mask_lookup.to(device)[best_n]
        valid = truths.valid & (slot >= 0)
        i, j = cell_indices(boxes[..., :2], grid_hw)
        image = torch.arange(batch, device=device).view(-1, 1).expand_as(i)
        classes = truths.classes
        if spec.iou_thresh < 1.0:
            # AlexeyAB: the truth also goes to every other anchor of this head whose shape IoU
            # exceeds iou_thresh. Rows become [B, M, A] so that later truths still win.
            mask_wh = all_anchors[self._mask.to(device)]  # [A, 2]
            shape_iou = wh_iou(boxes[..., 2:4].unsqueeze(-2), mask_wh)  # [B, M, A]
            slots = torch.arange(anchors_n, device=device).expand_as(shape_iou)
            valid = truths.valid.unsqueeze(-1) & (
                (slots == slot.unsqueeze(-1)) | (shape_iou > spec.iou_thresh)
            )
            slot = slots
            i, j, image, classes = (
                t.unsqueeze(-1).expand_as(slots) for t in (i, j, image, classes)
            )
            boxes = boxes.unsqueeze(-2).expand(*slots.shape, 4)
        writers = Writers(
            image.reshape(-1),
            slot.clamp(min=0).reshape(-1),
            j.reshape(-1),
            i.reshape(-1),
            boxes.reshape(-1, 4),
            classes.reshape(-1),
            valid.reshape(-1),
        )
        if spec.truth_thresh < 1.0:
            writers = Writers.cat(
                self._truth_thresh_writers(best_iou, best_index, truths, dtype), writers
            )
        assignment = resolve_slots(writers, (batch, anchors_n, height, width))
        weight = assignment.winner.to(dtype)
        z = p[writers.batch, writers.anchor, :, writers.row, writers.col]  # [R, 5+C]

        scale = spec.iou_normalizer * weight
        truth_xyxy = normalised_cxcywh_to_xyxy(writers.boxes, input_hw)

        def decode_rows() -> Tensor:  # [R, 4] normalised cx, cy, w, h of the written slots
            return decode_cells(
                z[:, 0:4],
                writers.col,
                writers.row,
                anchors[writers.anchor],
                grid_hw,
                head.xy_offsets,
            )

        if spec.iou_loss == "mse":
            tx, ty, tw, th = box_targets(writers, anchors, grid_hw)
            alpha = spec.scale_x_y
            shift = (alpha - 1.0) / 2.0
            bce_xy = F.binary_cross_entropy_with_logits(
                z[:, 0:2], (torch.stack([tx, ty], dim=1) + shift) / alpha, reduction="none"
            ).sum(dim=1)
            l2_wh = 0.5 * ((z[:, 2] - tw) ** 2 + (z[:, 3] - th) ** 2)
            size = 2.0 - writers.boxes[:, 2] * writers.boxes[:, 3]
            box = (scale * size * (alpha * bce_xy + l2_wh)).sum()
        else:
            per_row = _IOU_LOSSES[spec.iou_loss](
                normalised_cxcywh_to_xyxy(decode_rows(), input_hw), truth_xyxy
            )
            box = (scale * per_row).sum()

        if spec.rescore:  # BCE(z, IoU of the current box with its truth), as [region] rescore
            with torch.no_grad():
                iou = box_iou_aligned(
                    normalised_cxcywh_to_xyxy(decode_rows(), input_hw), truth_xyxy
                )
            target_obj = iou.clamp(min=0.0).to(dtype)
            per_row_obj = F.binary_cross_entropy_with_logits(z[:, 4], target_obj, reduction="none")
            obj = spec.obj_normalizer * (weight * per_row_obj).sum()
        else:
            obj = spec.obj_normalizer * (weight * F.softplus(-z[:, 4])).sum()  # BCE(z, 1)

        target_cls = class_union(writers, assignment, head.num_classes, dtype)
        if spec.label_smooth_eps:
            target_cls = target_cls * (1.0 - spec.label_smooth_eps) + 0.5 * spec.label_smooth_eps
        per_row_cls = F.binary_cross_entropy_with_logits(z[:, 5:], target_cls, reduction="none")
        cls = (weight * per_row_cls.sum(dim=1)).sum()

        negative = (~assignment.positive & (best_iou <= spec.ignore_thresh)).to(dtype)
        noobj = spec.obj_normalizer * (F.softplus(p[:, :, 4]) * negative).sum()  # BCE(z, 0)
        return {"box": box, "obj": obj, "noobj": noobj, "cls": cls}

    def _truth_thresh_writers(
        self, best_iou: Tensor, best_index: Tensor, truths: TruthBatch, dtype: torch.dtype
    ) -> Writers:
        """Slots whose prediction overlaps a truth by more than ``truth_thresh`` (one host sync).

        ``best_iou``, ``best_index``: ``[B, A, H, W]``. Each such slot is a positive for its best
        truth, with that truth's box relative to the slot's own cell and anchor (pjreddie).
        """
        b, a, j, i = (best_iou > self.spec.truth_thresh).nonzero(as_tuple=True)
        t = best_index[b, a, j, i]
        return Writers(
            b,
            a,
            j,
            i,
            truths.boxes[b, t].to(dtype),
            truths.classes[b, t],
            torch.ones_like(b).bool(),
        )
