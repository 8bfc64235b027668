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

  * ``box`` with ``iou_loss=mse``: ``s * (alpha * (BCE(z_x, t_x') + BCE(z_y, t_y')) + 0.5 * ((z_w - t_w)^2 +
    (z_h - t_h)^2))``, ``s = iou_normalizer * (2 - w h)``, ``t_x = x W - i``, ``t_w = ln(w W_in /
    anchor_w)``; with ``scale_x_y = alpha`` (AlexeyAB) ``t' = (t + (alpha - 1)/2) / alpha`` (exact;
    alpha = 1 is pjreddie). With ``new_coords=1`` the map holds probabilities ``p`` (the conv applied
    the logistic) and Darknet's delta ``s (t - out)`` reaches ``p``: ``s/alpha * 0.5 (out_x - t_x)^2``
    with ``out_x = alpha p_x - (alpha-1)/2``, and ``s * 0.5 (p_w - t_w)^2`` with ``t_w = sqrt(w W_in /
    (4 anchor_w))``;
  * ``box`` with ``iou_loss=giou|diou|ciou``: the gradient is AlexeyAB's hand-written delta
    (:mod:`darkyolo.losses.iou`): ``iou_normalizer * dIoU/d(x, y, w, h)`` on the raw values, times
    ``exp(t_w)`` on w, h without ``new_coords``, non-finite values set to 0, clipped to
    ``+-max_delta``; the value reported is ``iou_normalizer * (1 - GIoU|DIoU|CIoU)``;
  * ``obj``: ``obj_normalizer * BCE(z_o, 1)``; with ``rescore=1`` (a darkyolo extension: Darknet's
    ``[region]`` key, not read by Darknet's ``[yolo]``) the target is the IoU of the slot's current
    decoded box with its truth (no gradient through the IoU), so the score learns box quality;
    with ``objectness_smooth=1`` (AlexeyAB) every slot's target is its best IoU with a truth when
    that exceeds ``ignore_thresh``, else 0 (positives included, as AB's deltas leave them), and
    nothing is ignored;
  * ``cls``: ``BCE(z_c, union of the slot's classes)``; ``label_smooth_eps = e`` maps targets 1, 0 to
    ``1 - e/2, e/2``.

With ``new_coords`` every ``BCE(z, t)`` above becomes ``0.5 (p - t)^2``: Darknet's delta ``t - p``
on a map that already went through the logistic.

``-d(loss)/dz`` equals Darknet's delta (no ``sigma'``: ``backward_yolo_layer`` passes it through).
Where two truths write one slot the later one wins (pjreddie); AlexeyAB accumulates box deltas.
``obj_normalizer``, ``iou_normalizer``, ``scale_x_y``, ``label_smooth_eps`` follow AlexeyAB and are
1, 1, 1, 0 by default (pjreddie). ``cls_normalizer`` only matters in AlexeyAB with
``counters_per_class``, which is not supported, so it has no effect. Sums, not means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from darkyolo.boxes import box_iou_aligned, normalised_cxcywh_to_xyxy, wh_iou
from darkyolo.losses.assign import (
    TruthBatch,
    Writers,
    best_anchor,
    best_truth_iou,
    cell_indices,
    class_union,
    head_view,
    mask_slots,
    resolve_slots,
)
from darkyolo.losses.iou import iou_gradient, iou_value
from darkyolo.models.coder import BoxCoder
from darkyolo.models.heads import YoloHead


def score_loss(coder: BoxCoder, raw: Tensor, target: Tensor) -> Tensor:
    """The loss whose ``-gradient`` on ``raw`` is Darknet's delta ``target - probability``
    (elementwise): BCE-with-logits, or ``0.5 (p - target)^2`` when the map already holds
    probabilities (``new_coords``)."""
    if coder.new_coords:
        return 0.5 * (raw - target) ** 2
    return F.binary_cross_entropy_with_logits(raw, target, reduction="none")


def darknet_box_delta(
    coder: BoxCoder, raw_box: Tensor, pred: Tensor, truth: Tensor, kind: str, max_delta: float
) -> Tensor:
    """AlexeyAB's ``delta_yolo_box`` for an IoU loss, before ``iou_normalizer``: ``[R, 4]`` on the
    raw ``(t_x, t_y, t_w, t_h)``. ``pred``/``truth``: decoded ``(cx, cy, w, h)`` rows, normalised."""
    pred = pred.clone()
    pred[:, 2:4] = torch.where(pred[:, 2:4] == 0, torch.ones_like(pred[:, 2:4]), pred[:, 2:4])
    delta = iou_gradient(pred, truth, kind)
    if not coder.new_coords:
        delta = torch.cat([delta[:, 0:2], delta[:, 2:4] * torch.exp(raw_box[:, 2:4])], dim=1)
    return delta


class YoloLoss:
    """The loss of one ``[yolo]`` head; call it with the head's raw map. Parts: see module doc."""

    part_names = ("box", "obj", "noobj", "cls")

    def __init__(self, head: YoloHead) -> None:
        self.head = head
        self.spec = head.spec
        self._mask_lookup = mask_slots(self.spec.mask, self.spec.num)
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
        coder = head.coder

        with torch.no_grad():
            pred = coder.decode_map(p[:, :, 0:4].movedim(2, -1), anchors)  # [B, A, H, W, 4]
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

        box_anchors = anchors[writers.anchor]

        def decode_rows() -> Tensor:  # [R, 4] normalised cx, cy, w, h of the written slots
            return coder.decode(z[:, 0:4], writers.col, writers.row, box_anchors, grid_hw)

        if spec.iou_loss == "mse":
            box = (
                spec.iou_normalizer
                * (weight * self._mse_box(coder, z, writers, box_anchors, grid_hw)).sum()
            )
        else:
            with torch.no_grad():
                current = decode_rows()
                delta = darknet_box_delta(
                    coder, z[:, 0:4], current, writers.boxes, spec.iou_loss, spec.max_delta
                )
                delta = torch.nan_to_num(
                    spec.iou_normalizer * delta, nan=0.0, posinf=0.0, neginf=0.0
                )
                delta = delta.clamp(-spec.max_delta, spec.max_delta) * weight.unsqueeze(1)
                value = (
                    spec.iou_normalizer
                    * (weight * (1.0 - iou_value(current, writers.boxes, spec.iou_loss))).sum()
                )
            surrogate = -(delta * z[:, 0:4]).sum()
            box = value + surrogate - surrogate.detach()

        if spec.objectness_smooth:  # every slot: its best IoU above ignore_thresh, else 0
            target_map = torch.where(
                best_iou > spec.ignore_thresh, best_iou, torch.zeros_like(best_iou)
            )
            per_slot = score_loss(coder, p[:, :, 4], target_map.to(dtype))
            positive = assignment.positive.to(dtype)
            obj = spec.obj_normalizer * (per_slot * positive).sum()
            noobj = spec.obj_normalizer * (per_slot * (1.0 - positive)).sum()
        else:
            if spec.rescore:  # BCE(z, IoU of the current box with its truth), as [region] rescore
                with torch.no_grad():
                    iou = box_iou_aligned(
                        normalised_cxcywh_to_xyxy(decode_rows(), input_hw),
                        normalised_cxcywh_to_xyxy(writers.boxes, input_hw),
                    )
                target_obj = iou.clamp(min=0.0).to(dtype)
            else:
                target_obj = torch.ones_like(weight)
            per_row_obj = score_loss(coder, z[:, 4], target_obj)
            obj = spec.obj_normalizer * (weight * per_row_obj).sum()
            negative = (~assignment.positive & (best_iou <= spec.ignore_thresh)).to(dtype)
            per_slot = score_loss(coder, p[:, :, 4], torch.zeros_like(p[:, :, 4]))
            noobj = spec.obj_normalizer * (per_slot * negative).sum()

        target_cls = class_union(writers, assignment, head.num_classes, dtype)
        if spec.label_smooth_eps:
            target_cls = target_cls * (1.0 - spec.label_smooth_eps) + 0.5 * spec.label_smooth_eps
        per_row_cls = score_loss(coder, z[:, 5:], target_cls)
        cls = (weight * per_row_cls.sum(dim=1)).sum()
        return {"box": box, "obj": obj, "noobj": noobj, "cls": cls}

    def _mse_box(
        self,
        coder: BoxCoder,
        z: Tensor,
        writers: Writers,
        box_anchors: Tensor,
        grid_hw: tuple[int, int],
    ) -> Tensor:
        """Darknet's MSE box loss per writer row before ``iou_normalizer``, ``[R]``."""
        tx, ty, tw, th = coder.encode(
            writers.boxes, writers.col, writers.row, box_anchors, grid_hw
        ).unbind(-1)
        alpha = coder.scale_x_y
        if coder.new_coords:  # delta (t - out) on p, out = alpha p - (alpha-1)/2
            out_xy = coder.offsets(z[:, 0:2])
            xy = ((out_xy[:, 0] - tx) ** 2 + (out_xy[:, 1] - ty) ** 2) / (2.0 * alpha)
        else:  # delta (t - out) on z: alpha * BCE against (t + shift) / alpha
            shift = (alpha - 1.0) / 2.0
            xy = alpha * F.binary_cross_entropy_with_logits(
                z[:, 0:2], (torch.stack([tx, ty], dim=1) + shift) / alpha, reduction="none"
            ).sum(dim=1)
        wh = 0.5 * ((z[:, 2] - tw) ** 2 + (z[:, 3] - th) ** 2)
        size = 2.0 - writers.boxes[:, 2] * writers.boxes[:, 3]
        return size * (xy + wh)

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
