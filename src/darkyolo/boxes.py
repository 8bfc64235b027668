"""Box conversions and the IoU forms torchvision does not provide.

Inside the code boxes are ``xyxy`` in absolute pixels of the image they belong to; labels and head
outputs are ``(cx, cy, w, h)`` normalised to 0..1 of that image and are converted at the edges with
:func:`normalised_cxcywh_to_xyxy`.

torchvision covers the rest and is used directly: ``torchvision.ops.box_iou`` (pairwise ``[N, M]``),
``generalized_box_iou(_loss)``, ``complete_box_iou(_loss)``, ``box_convert``. What is here:

* :func:`box_iou_aligned`: IoU of boxes paired element by element, broadcasting over any leading
  dimensions (``[..., 4]`` with ``[..., 4]`` -> ``[...]``). :func:`box_iou_batched` is its pairwise
  form for batches: ``[..., N, 4]`` with ``[..., M, 4]`` -> ``[..., N, M]`` (the per-image
  prediction-vs-truth matrix that ``box_iou`` gives only for one image).
* :func:`wh_iou`: IoU of two boxes that share a centre, from their ``(w, h)`` alone (anchor matching
  and k-means). Darknet computes this by zeroing both centres.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_convert

__all__ = ["box_iou_aligned", "box_iou_batched", "normalised_cxcywh_to_xyxy", "wh_iou"]

# Keeps 0/0 finite for empty boxes; far below any real union (a 1e-3 box has area 1e-6 normalised).
_TINY = 1e-12


def normalised_cxcywh_to_xyxy(boxes: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """``(cx, cy, w, h)`` in 0..1 of an image of ``image_hw = (height, width)`` -> ``xyxy`` pixels.

    ``boxes: Tensor[..., 4]`` -> ``Tensor[..., 4]`` (same dtype and device).
    """
    height, width = image_hw
    scale = boxes.new_tensor([width, height, width, height])
    return box_convert(boxes, "cxcywh", "xyxy") * scale


def box_iou_aligned(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of ``boxes1[k]`` with ``boxes2[k]``; ``xyxy`` ``Tensor[..., 4]`` broadcast -> ``Tensor[...]``.

    Disjoint or touching boxes give 0. Differentiable in both arguments.
    """
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    inter_w = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    inter_h = (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    inter = inter_w * inter_h
    union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
    return inter / union.clamp(min=_TINY)


def box_iou_batched(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU within each batch entry: ``[..., N, 4]`` x ``[..., M, 4]`` -> ``[..., N, M]``.

    ``xyxy`` boxes; leading dimensions broadcast. For one image this equals
    ``torchvision.ops.box_iou``.
    """
    return box_iou_aligned(boxes1.unsqueeze(-2), boxes2.unsqueeze(-3))


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of two boxes with the same centre: ``(w, h)`` ``Tensor[..., 2]`` broadcast -> ``Tensor[...]``.

    Both in the same units (any). ``min(w1, w2) * min(h1, h2) / (w1 h1 + w2 h2 - intersection)``.
    """
    inter = torch.minimum(wh1[..., 0], wh2[..., 0]) * torch.minimum(wh1[..., 1], wh2[..., 1])
    union = wh1[..., 0] * wh1[..., 1] + wh2[..., 0] * wh2[..., 1] - inter
    return inter / union.clamp(min=_TINY)
