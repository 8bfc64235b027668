"""From decoded rows to final detections: score filter -> class-aware NMS -> cap -> original pixels.

Decoded rows are ``[B, N, 5+C]``: ``cx, cy, w, h`` normalised to the network input, objectness,
class probabilities (see :mod:`darkyolo.models.heads`). A detection's score is objectness times
class probability. Boxes come out ``xyxy`` in network pixels; :func:`scale_to_original` maps them
through each image's :class:`~darkyolo.data.letterbox.Letterbox` to the original image's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_iou

from darkyolo.data.letterbox import Letterbox


@dataclass(frozen=True)
class NmsMethod:
    """How overlapping boxes of one class are suppressed (a ``[yolo]`` layer's ``nms_kind``).

    ``default``: greedy on IoU (Darknet's ``do_nms_sort``; ``torchvision.ops.batched_nms``).
    ``greedynms`` / ``diounms``: AlexeyAB's ``diounms_sort``, greedy on DIoU ``IoU - (d^2/c^2)^beta``
    (``d`` the centres' distance, ``c`` the enclosing box's diagonal), with ``beta`` 0.6 for
    ``greedynms`` and ``beta_nms`` for ``diounms``: boxes side by side survive more often.
    """

    kind: str = "default"
    beta: float = 0.6

    @classmethod
    def of(cls, model: object) -> NmsMethod:
        """What a model's last ``[yolo]`` layer says (Darknet reads the last layer's), else default."""
        inner = getattr(model, "module", model)
        heads = getattr(inner, "heads", None)
        if isinstance(heads, Sequence) and heads:
            spec = heads[-1].spec
            kind = getattr(spec, "nms_kind", "default")
            return cls(kind, 0.6 if kind == "greedynms" else getattr(spec, "beta_nms", 0.6))
        return getattr(inner, "nms", cls())


def diou_nms(
    boxes: Tensor, scores: Tensor, labels: Tensor, iou_thresh: float, beta: float, limit: int
) -> Tensor:
    """Greedy per-class DIoU NMS: indices of the kept boxes, best score first, at most ``limit``.

    A box is dropped when its DIoU with a kept box of its class exceeds ``iou_thresh``.
    """
    order = scores.argsort(descending=True)
    boxes, labels = boxes[order].double(), labels[order]
    alive = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    kept: list[int] = []
    position = 0
    while len(kept) < limit:
        remaining = alive[position:].nonzero()
        if remaining.numel() == 0:
            break
        i = position + int(remaining[0, 0])
        kept.append(i)
        alive[i] = False
        rest = alive.nonzero().squeeze(1)
        rest = rest[labels[rest] == labels[i]]
        if rest.numel():
            iou = box_iou(boxes[i : i + 1], boxes[rest])[0]
            low = torch.minimum(boxes[i, 0:2], boxes[rest, 0:2])
            high = torch.maximum(boxes[i, 2:4], boxes[rest, 2:4])
            diagonal = ((high - low) ** 2).sum(dim=1)
            distance = ((centres[i] - centres[rest]) ** 2).sum(dim=1)
            ratio = torch.where(diagonal > 0, distance / diagonal.clamp(min=1e-12), 0.0)
            diou = torch.where(diagonal > 0, iou - ratio**beta, iou)
            alive[rest[diou > iou_thresh]] = False
        position = i + 1
    return order[torch.tensor(kept, dtype=torch.int64, device=boxes.device)]


@dataclass
class Detections:
    """One image's detections: ``boxes [K, 4]`` xyxy pixels, ``scores [K]``, ``labels [K]`` int64.

    Sorted by descending score.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        return cls(
            torch.zeros((0, 4), device=device, dtype=dtype),
            torch.zeros((0,), device=device, dtype=dtype),
            torch.zeros((0,), device=device, dtype=torch.int64),
        )

    def to(self, device: torch.device | str) -> Detections:
        return Detections(self.boxes.to(device), self.scores.to(device), self.labels.to(device))

    def __getitem__(self, index: Tensor | slice) -> Detections:
        return Detections(self.boxes[index], self.scores[index], self.labels[index])


def rows_to_xyxy(rows: Tensor, input_hw: tuple[int, int]) -> Tensor:
    """``[..., >=4]`` rows (cx, cy, w, h normalised) -> ``[..., 4]`` xyxy in network pixels."""
    h, w = input_hw
    scale = rows.new_tensor([w, h])
    centre = rows[..., 0:2] * scale
    half = rows[..., 2:4] * scale / 2
    return torch.cat([centre - half, centre + half], dim=-1)


def postprocess(
    pred: Tensor,
    input_hw: tuple[int, int],
    conf_thresh: float = 0.25,
    iou_thresh: float = 0.45,
    max_det: int = 300,
    classes: Sequence[int] | None = None,
    multi_label: bool = False,
    max_candidates: int = 30000,
    nms: NmsMethod = NmsMethod(),
) -> list[Detections]:
    """Decoded rows ``pred [B, N, 5+C]`` -> one :class:`Detections` per image (network pixels).

    * score = objectness x class probability; a row keeps its best class, or with ``multi_label``
      every class whose score passes (as Darknet does; better for mAP);
    * rows scoring below ``conf_thresh`` are dropped; ``classes`` keeps only those class indices;
    * NMS per class at ``iou_thresh``, as ``nms`` says (a model's :meth:`NmsMethod.of`);
    * at most ``max_det`` detections per image, highest score first. Before NMS only the best
      ``max_candidates`` rows are kept (bounds the cost when a model fires everywhere).
    """
    if pred.ndim != 3 or pred.shape[-1] < 6:
        raise ValueError(f"expected decoded rows [B, N, 5+C], got {tuple(pred.shape)}")
    keep_classes = None
    if classes is not None:
        keep_classes = torch.as_tensor(list(classes), dtype=torch.int64, device=pred.device)
    results: list[Detections] = []
    for rows in pred:
        # score <= objectness: a cheap first cut before touching the class columns
        rows = rows[rows[:, 4] > conf_thresh]
        if rows.shape[0] == 0:
            results.append(Detections.empty(pred.device, pred.dtype))
            continue
        scores_all = rows[:, 5:] * rows[:, 4:5]  # [n, C]
        if multi_label:
            index, labels = (scores_all > conf_thresh).nonzero(as_tuple=True)
            scores = scores_all[index, labels]
        else:
            scores, labels = scores_all.max(dim=1)
            index = (scores > conf_thresh).nonzero(as_tuple=True)[0]
            scores, labels = scores[index], labels[index]
        if keep_classes is not None:
            chosen = torch.isin(labels, keep_classes)
            index, scores, labels = index[chosen], scores[chosen], labels[chosen]
        if scores.numel() > max_candidates:
            top = scores.topk(max_candidates).indices
            index, scores, labels = index[top], scores[top], labels[top]
        boxes = rows_to_xyxy(rows[index, :4], input_hw)
        if nms.kind == "default":
            kept = batched_nms(boxes.float(), scores.float(), labels, iou_thresh)[:max_det]
        else:
            kept = diou_nms(boxes, scores, labels, iou_thresh, nms.beta, max_det)
        results.append(Detections(boxes[kept], scores[kept], labels[kept]))
    return results


def scale_to_original(
    detections: Sequence[Detections], letterboxes: Sequence[Letterbox], clip: bool = True
) -> list[Detections]:
    """Map each image's boxes from network pixels to its original pixels (clipped to the image)."""
    if len(detections) != len(letterboxes):
        raise ValueError(f"{len(detections)} detection sets for {len(letterboxes)} letterboxes")
    return [
        Detections(box.to_original(d.boxes, clip=clip), d.scores, d.labels)
        for d, box in zip(detections, letterboxes)
    ]
