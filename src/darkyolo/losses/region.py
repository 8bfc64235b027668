"""YOLOv2 ``[region]`` loss with pjreddie Darknet's deltas (``docs/training.md`` section 1).

Per slot ``(b, a, j, i)`` of a ``[B, A*(5+C), H, W]`` raw map (``z``), with ``sigma`` the logistic:

* ``noobj``: ``0.5 * noobject_scale * sigma(z_o)^2`` where the decoded box's best IoU with the image's
  truths is ``<= thresh`` and no truth is assigned to the slot.
* ``prior`` (while ``seen < 12800`` images): ``0.5 * 0.01 * ((sigma(z_x) - .5)^2 + (sigma(z_y) - .5)^2
  + z_w^2 + z_h^2)`` on every slot no truth is assigned to (pull towards the anchor at the cell centre).
* For each truth, in order, at its cell and best anchor (``bias_match``: shape IoU with the anchors,
  else with the current predicted sizes there); a later truth on the same slot overwrites:

  * ``box``: ``0.5 * k * ((sigma(z_x) - t_x)^2 + (sigma(z_y) - t_y)^2 + (z_w - t_w)^2 + (z_h - t_h)^2)``,
    ``t_x = x W - i``, ``t_w = ln(w W / anchor_w)``, ``k = coord_scale * (2 - w h)`` (pjreddie since
    2017; ``size_scaled_coords=False`` gives the v2 release's and AlexeyAB's ``k = coord_scale``);
  * ``obj``: ``0.5 * object_scale * (sigma(z_o) - target)^2``, target 1, or with ``rescore`` the IoU
    of the current prediction with the truth (a constant);
  * ``cls``: ``class_scale * cross_entropy`` with softmax classes (the last truth's class), or
    ``class_scale * BCE-with-logits`` against the union of the slot's classes with ``softmax=0``.

``-d(loss)/dz`` equals Darknet's delta after ``backward_region_layer_gpu`` (``sigma'`` on x, y, obj).
Sums, not means: the trainer divides by the images per optimizer step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from darkyolo.boxes import box_iou_aligned, normalised_cxcywh_to_xyxy
from darkyolo.losses.assign import (
    TruthBatch,
    Writers,
    best_anchor,
    best_truth_iou,
    cell_indices,
    class_union,
    head_view,
    resolve_slots,
)
from darkyolo.models.heads import RegionHead

#: Darknet pulls every unassigned box towards its anchor while ``seen`` is below this many images.
PRIOR_IMAGES = 12800
#: Scale of that pull.
PRIOR_SCALE = 0.01


class RegionLoss:
    """The loss of one ``[region]`` head; call it with the head's raw map. Parts: see module doc."""

    part_names = ("box", "obj", "noobj", "cls", "prior")

    def __init__(
        self,
        head: RegionHead,
        *,
        prior_images: int = PRIOR_IMAGES,
        prior_scale: float = PRIOR_SCALE,
        size_scaled_coords: bool = True,
    ) -> None:
        self.head = head
        self.spec = head.spec
        self.prior_images = prior_images
        self.prior_scale = prior_scale
        self.size_scaled_coords = size_scaled_coords

    def __call__(
        self, raw: Tensor, truths: TruthBatch, input_hw: tuple[int, int], seen: int
    ) -> dict[str, Tensor]:
        """``raw: [B, A*(5+C), H, W]``; ``truths`` for the whole batch -> parts (scalar sums)."""
        spec, head = self.spec, self.head
        p = head_view(raw, head.num_anchors, head.num_classes)  # [B, A, 5+C, H, W]
        batch, anchors_n, _, height, width = p.shape
        dtype = p.dtype
        truths = truths.first(spec.max_boxes)
        boxes = truths.boxes.to(dtype)  # [B, M, 4]
        anchors = head.anchor_scale((height, width), input_hw).to(dtype)  # [A, 2] of the input
        coder = head.coder

        with torch.no_grad():
            pred = coder.decode_map(p[:, :, 0:4].movedim(2, -1), anchors)  # [B, A, H, W, 4]
            best_iou, _ = best_truth_iou(pred, truths, input_hw)

        # Writers: every truth at its cell and best anchor.
        i, j = cell_indices(boxes[..., :2], (height, width))  # [B, M]
        image = torch.arange(batch, device=p.device).view(-1, 1).expand_as(i)
        if spec.bias_match:
            candidates = anchors
        else:
            with torch.no_grad():  # current predicted sizes of all anchors in the truth's cell
                candidates = torch.exp(p[image, :, 2:4, j, i]) * anchors  # [B, M, A, 2]
        anchor = best_anchor(boxes[..., 2:4], candidates)
        writers = Writers(
            image.reshape(-1),
            anchor.reshape(-1),
            j.reshape(-1),
            i.reshape(-1),
            boxes.reshape(-1, 4),
            truths.classes.reshape(-1),
            truths.valid.reshape(-1),
        )
        assignment = resolve_slots(writers, (batch, anchors_n, height, width))
        weight = assignment.winner.to(dtype)
        z = p[writers.batch, writers.anchor, :, writers.row, writers.col]  # [R, 5+C]
        tx, ty, tw, th = coder.encode(
            writers.boxes, writers.col, writers.row, anchors[writers.anchor], (height, width)
        ).unbind(-1)
        k = spec.coord_scale * weight
        if self.size_scaled_coords:
            k = k * (2.0 - writers.boxes[:, 2] * writers.boxes[:, 3])
        sig_xy = coder.offsets(z[:, 0:2])
        box = (
            0.5
            * (
                k
                * (
                    (sig_xy[:, 0] - tx) ** 2
                    + (sig_xy[:, 1] - ty) ** 2
                    + (z[:, 2] - tw) ** 2
                    + (z[:, 3] - th) ** 2
                )
            ).sum()
        )

        if spec.rescore:
            with torch.no_grad():
                current = coder.decode(
                    z[:, 0:4], writers.col, writers.row, anchors[writers.anchor], (height, width)
                )
                target_obj = box_iou_aligned(
                    normalised_cxcywh_to_xyxy(current, input_hw),
                    normalised_cxcywh_to_xyxy(writers.boxes, input_hw),
                )
        else:
            target_obj = torch.ones_like(weight)
        obj = 0.5 * spec.object_scale * (weight * (torch.sigmoid(z[:, 4]) - target_obj) ** 2).sum()

        logits = z[:, 5:]
        if spec.softmax:
            per_row = F.cross_entropy(logits, writers.classes, reduction="none")
        else:
            target_cls = class_union(writers, assignment, head.num_classes, dtype)
            per_row = F.binary_cross_entropy_with_logits(logits, target_cls, reduction="none").sum(
                dim=1
            )
        cls = spec.class_scale * (weight * per_row).sum()

        free = ~assignment.positive  # [B, A, H, W]
        negative = (free & (best_iou <= spec.thresh)).to(dtype)
        noobj = 0.5 * spec.noobject_scale * (torch.sigmoid(p[:, :, 4]) ** 2 * negative).sum()

        if seen < self.prior_images:
            sig = torch.sigmoid(p[:, :, 0:2])
            pull = ((sig - 0.5) ** 2).sum(dim=2) + (p[:, :, 2:4] ** 2).sum(dim=2)
            prior = 0.5 * self.prior_scale * (pull * free.to(dtype)).sum()
        else:
            prior = p.new_zeros(())
        return {"box": box, "obj": obj, "noobj": noobj, "cls": cls, "prior": prior}
