"""The ``aligned`` training mode: task-aligned assignment (TOOD, arXiv 2108.07755, as ultralytics'
v8 trainer uses it) on Darknet ``[yolo]`` heads, with alignment-weighted objectness. A darkyolo
extension; the network and its ``.cfg`` are unchanged.

Every slot (head, anchor, cell) whose cell centre lies inside a truth, or whose cell holds the
truth's centre (so that a truth smaller than a cell has candidates too), is a candidate for it. Its
alignment with the truth is ``score^alpha * IoU^beta`` (``score`` = objectness x the truth's class
probability of the slot's current prediction, ``IoU`` of its decoded box with the truth, both
detached; alpha 0.5, beta 6). Each truth takes its ``topk`` (10) best-aligned candidates; a slot
chosen by several truths keeps the one it overlaps most. A positive's weight ``t`` is its alignment
divided by the best alignment of its truth, so each truth's best slot is taught to score 1.

Each truth's Darknet slot (the cell holding its centre, at its best-shape anchor over all the cfg's
anchors, where the head has it) is also always a positive, with ``t = 1``: the fixed assignment that
PP-YOLOE and YOLOv6 use while their task-aligned one warms up, kept for the whole run. Early on the
alignment ranks slots by predictions that are still noise, and small truths, which few candidates
overlap, get none that learns to score. On BCCD val (30 epochs, 320) it raised mAP@.5 / mAP@[.5:.95]
from 0.740 / 0.391 to 0.781 / 0.421 (docs/benchmarks.md).

TOOD (and ultralytics) also multiply ``t`` by the truth's best IoU. That teaches small objects,
whose predicted boxes overlap their truths least while the network learns, to score low: on BCCD
val (30 epochs) the platelets' AP50 fell to 0.27 with the factor and was 0.48 without it, and the
median score of a found platelet 0.04 against 0.09 (docs/benchmarks.md). The IoU still orders the
positives of one truth, through ``IoU^beta`` in the alignment.

* **box**: ``sum t (1 - CIoU) / sum t`` (autograd through the head's decode), gain 7.5;
* **objectness**: BCE of every slot against ``t`` (0 off the positives), summed, ``/ sum t``;
* **classes**: BCE of the positives against their truth's one-hot class, summed, ``/ sum t``,
  gain 0.5.

The parts are multiplied by the micro-batch size (a sum over images, as every darkyolo loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou

from darkyolo.boxes import normalised_cxcywh_to_xyxy
from darkyolo.losses.assign import TruthBatch, best_anchor, cell_indices, head_view, mask_slots
from darkyolo.losses.scaled import bce, ciou_loss
from darkyolo.models.heads import YoloHead

TOPK, ALPHA, BETA = 10, 0.5, 6.0
BOX_GAIN, OBJ_GAIN, CLS_GAIN = 7.5, 1.0, 0.5


class AlignedLoss:
    """The ``aligned`` mode's loss over all ``[yolo]`` heads; parts ``box, obj, cls``."""

    part_names = ("box", "obj", "cls")

    def __init__(
        self, heads: Sequence[YoloHead], topk: int = TOPK, alpha: float = ALPHA, beta: float = BETA
    ) -> None:
        bad = [type(h).__name__ for h in heads if not isinstance(h, YoloHead)]
        if bad:
            raise ValueError(f"the aligned training mode needs [yolo] heads, got {bad[0]}")
        self.heads = list(heads)
        self.topk, self.alpha, self.beta = topk, alpha, beta
        # per head: the cfg's anchors [K, 2] in pixels, and the head's slot of each (-1: not its)
        self._all_anchors = [torch.tensor(h.spec.anchors, dtype=torch.float64) for h in heads]
        self._mask_lookup = [mask_slots(h.spec.mask, len(h.spec.anchors)) for h in heads]

    def __call__(
        self, raw_maps: Sequence[Tensor], truths: TruthBatch, input_hw: tuple[int, int], seen: int
    ) -> dict[str, Tensor]:
        levels = []  # per head: (coder, p [B, A, 5+C, H, W], boxes [B, S, 4], centres [S, 2])
        for head, raw in zip(self.heads, raw_maps, strict=True):
            p = head_view(raw, head.num_anchors, head.num_classes)
            anchors = head.anchor_scale(p.shape[-2:], input_hw).to(p.dtype)
            boxes = head.coder.decode_map(p[:, :, 0:4].movedim(2, -1), anchors)  # [B, A, H, W, 4]
            height, width = p.shape[-2:]
            ys, xs = torch.meshgrid(
                (torch.arange(height, device=p.device, dtype=p.dtype) + 0.5) / height,
                (torch.arange(width, device=p.device, dtype=p.dtype) + 0.5) / width,
                indexing="ij",
            )
            centres = torch.stack([xs, ys], dim=-1).expand(head.num_anchors, height, width, 2)
            levels.append((head.coder, p, boxes.flatten(1, 3), centres.reshape(-1, 2)))
        batch = raw_maps[0].shape[0]
        target, owner = self._assign(levels, truths, input_hw)  # [B, S], [B, S] (-1: none)
        norm = target.sum().clamp(min=1.0)
        box = obj = cls = levels[0][1].new_zeros(())
        start = 0
        for coder, p, boxes, _ in levels:
            size = boxes.shape[1]
            t, o = target[:, start : start + size], owner[:, start : start + size]
            start += size
            obj_raw = p[:, :, 4].flatten(1)  # [B, S] in (a, j, i) order, as boxes
            obj = obj + bce(coder, obj_raw, t).sum()
            b, s = (o >= 0).nonzero(as_tuple=True)
            if b.numel():
                m = o[b, s]
                loss = ciou_loss(boxes[b, s], truths.boxes[b, m].to(boxes.dtype), input_hw)
                box = box + (t[b, s] * loss).sum()
                cls_raw = p[:, :, 5:].movedim(2, -1).flatten(1, 3)[b, s]  # [P, C]
                onehot = F.one_hot(truths.classes[b, m], cls_raw.shape[-1]).to(cls_raw.dtype)
                cls = cls + bce(coder, cls_raw, onehot).sum()
        scale = batch / norm
        return {
            "box": box * BOX_GAIN * scale,
            "obj": obj * OBJ_GAIN * scale,
            "cls": cls * CLS_GAIN * scale,
        }

    @torch.no_grad()
    def _assign(
        self, levels: list, truths: TruthBatch, input_hw: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """Normalised alignment targets ``[B, S]`` and the owning truth column (-1: negative)."""
        boxes = torch.cat([lv[2] for lv in levels], dim=1).detach()  # [B, S, 4]
        centres = torch.cat([lv[3] for lv in levels], dim=0)  # [S, 2]
        scores = []
        for coder, p, _, _ in levels:
            obj = coder.probability(p[:, :, 4]).flatten(1)  # [B, S_l]
            cls = coder.probability(p[:, :, 5:]).movedim(2, -1).flatten(1, 3)  # [B, S_l, C]
            scores.append(obj.unsqueeze(-1) * cls)
        score = torch.cat(scores, dim=1).float()  # [B, S, C]
        truth = truths.boxes.to(boxes.dtype)  # [B, M, 4]
        batch, slots = boxes.shape[:2]
        cells = torch.cat(
            [
                torch.tensor([1.0 / lv[1].shape[-1], 1.0 / lv[1].shape[-2]]).expand(
                    lv[3].shape[0], 2
                )
                for lv in levels
            ]
        ).to(centres)  # [S, 2] cell width and height
        gap = (centres[None, None] - truth[..., None, 0:2]).abs()  # [B, M, S, 2]
        inside = (gap < truth[..., None, 2:4] / 2).all(-1) | (gap <= cells / 2).all(-1)
        inside &= truths.valid[..., None]  # [B, M, S]
        iou = torch.stack(
            [
                box_iou(
                    normalised_cxcywh_to_xyxy(truth[b], input_hw),
                    normalised_cxcywh_to_xyxy(boxes[b], input_hw),
                )
                for b in range(batch)
            ]
        ).clamp(min=0.0)  # [B, M, S]
        class_score = score.gather(2, truths.classes[:, None, :].expand(-1, slots, -1))  # [B, S, M]
        align = class_score.transpose(1, 2).pow(self.alpha) * iou.pow(self.beta)
        align = torch.where(inside, align, torch.zeros_like(align))
        k = min(self.topk, slots)
        top = align.topk(k, dim=-1).indices  # [B, M, k]
        chosen = torch.zeros_like(inside)
        chosen.scatter_(2, top, True)
        chosen &= inside & (align > 0)
        own = self._own_slots(levels, truths, input_hw)  # [B, M, S]
        chosen |= own
        # a slot chosen by several truths keeps the one it overlaps most
        overlap = torch.where(chosen, iou, torch.full_like(iou, -1.0))
        best = overlap.argmax(dim=1)  # [B, S]
        positive = chosen.any(dim=1)
        owner = torch.where(positive, best, torch.full_like(best, -1))
        keep = F.one_hot(best, truth.shape[1]).transpose(1, 2).bool() & chosen  # [B, M, S]
        align = torch.where(keep, align, torch.zeros_like(align))
        best_align = align.amax(dim=-1, keepdim=True).clamp(min=1e-9)
        target = torch.where(keep & own, torch.ones_like(align), align / best_align)
        return target.amax(dim=1).to(boxes.dtype), owner  # [B, S]

    def _own_slots(self, levels: list, truths: TruthBatch, input_hw: tuple[int, int]) -> Tensor:
        """Each valid truth's Darknet slot ``bool[B, M, S]``: its centre's cell at its best-shape
        anchor over all the cfg's anchors, in the head whose ``mask`` holds that anchor."""
        in_h, in_w = input_hw
        wh = truths.boxes[..., 2:4].double()  # [B, M, 2] normalised
        parts = []
        for (_, p, _, _), anchors, lookup in zip(
            levels, self._all_anchors, self._mask_lookup, strict=True
        ):
            num, height, width = p.shape[1], p.shape[-2], p.shape[-1]
            best = best_anchor(wh, (anchors / anchors.new_tensor([in_w, in_h])).to(wh.device))
            slot = lookup.to(wh.device)[best]  # [B, M]
            i, j = cell_indices(truths.boxes[..., :2], (height, width))
            index = (slot.clamp(min=0) * height + j) * width + i  # (a, j, i) order, as boxes
            own = torch.zeros(*slot.shape, num * height * width, dtype=torch.bool, device=wh.device)
            own.scatter_(2, index.unsqueeze(-1), (truths.valid & (slot >= 0)).unsqueeze(-1))
            parts.append(own)
        return torch.cat(parts, dim=-1)
