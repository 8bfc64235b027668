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
from torchvision.ops import batched_nms

from darkyolo.data.letterbox import Letterbox


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
) -> list[Detections]:
    """Decoded rows ``pred [B, N, 5+C]`` -> one :class:`Detections` per image (network pixels).

    * score = objectness x class probability; a row keeps its best class, or with ``multi_label``
      every class whose score passes (as Darknet does; better for mAP);
    * rows scoring below ``conf_thresh`` are dropped; ``classes`` keeps only those class indices;
    * NMS per class (``torchvision.ops.batched_nms``) at ``iou_thresh``;
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
        kept = batched_nms(boxes.float(), scores.float(), labels, iou_thresh)[:max_det]
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
