"""Detection heads: turn a raw map into boxes (Darknet's direct location prediction).

A raw map is ``[B, A*(5+C), H, W]``; channel ``a*(5+C)+k`` holds, for anchor ``a``,
``k = tx, ty, tw, th, to, class logits...``. Decoding gives ``[B, H*W*A, 5+C]`` rows
``(cx, cy, w, h, objectness, class probabilities)`` with ``cx, cy, w, h`` normalised to the network
input, rows ordered (y, x, anchor) as OpenCV's Darknet importer orders them:

* cx = (x + sigmoid(tx)) / W, cy = (y + sigmoid(ty)) / H  (offset inside the cell)
* w = anchor_w * exp(tw) / norm_w, h likewise           (scale of the anchor)

``[region]`` (v2) anchors are grid cells (norm = grid size) and classes are a softmax;
``[yolo]`` (v3) anchors are input pixels (norm = input size) and classes are independent sigmoids.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darkyolo.darknet.cfg import RegionSpec, YoloSpec


def _wh_tensor(w: int | Tensor, h: int | Tensor, like: Tensor) -> Tensor:
    """``[w, h]`` as a tensor like ``like``; sizes read from a traced shape stay symbolic, so an
    ONNX export keeps dynamic input sizes (``new_tensor([w, h])`` would freeze them)."""
    return torch.stack([torch.as_tensor(w), torch.as_tensor(h)]).to(like)


class DetectionHead(nn.Module):
    """Base head: holds its anchors and decodes the raw map of the layer before it."""

    sources: tuple[int, ...]
    anchors: Tensor  # [A, 2] (w, h), grid cells for [region], input pixels for [yolo]

    def __init__(self, spec: RegionSpec | YoloSpec, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.spec = spec
        self.sources = sources
        self.num_classes = spec.classes
        self.num_anchors = len(spec.mask)
        chosen = [spec.anchors[m] for m in spec.mask]
        self.register_buffer("anchors", torch.tensor(chosen, dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """The raw map passes through unchanged; decoding is a separate step."""
        return x

    def split(self, raw: Tensor) -> Tensor:
        """``[B, A*(5+C), H, W]`` -> ``[B, H, W, A, 5+C]`` (raw values, OpenCV's row order)."""
        b, _, h, w = raw.shape
        return raw.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 3, 4, 1, 2)

    def anchor_scale(self, grid_hw: tuple[int, int], input_hw: tuple[int, int]) -> Tensor:
        """Anchor (w, h) as a fraction of the input, ``[A, 2]``."""
        raise NotImplementedError

    def class_probabilities(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def xy_offsets(self, t_xy: Tensor) -> Tensor:
        """Offset of the box centre inside its cell, in cells."""
        return torch.sigmoid(t_xy)

    def decode(self, raw: Tensor, input_hw: tuple[int, int]) -> Tensor:
        """Raw map ``[B, A*(5+C), H, W]`` -> ``[B, H*W*A, 5+C]`` (see module docstring)."""
        p = self.split(raw)
        b, h, w = p.shape[:3]
        ys = torch.arange(h, device=raw.device, dtype=raw.dtype).view(1, h, 1, 1)
        xs = torch.arange(w, device=raw.device, dtype=raw.dtype).view(1, 1, w, 1)
        xy = self.xy_offsets(p[..., 0:2])
        cx = (xy[..., 0] + xs) / w
        cy = (xy[..., 1] + ys) / h
        wh = torch.exp(p[..., 2:4]) * self.anchor_scale((h, w), input_hw).to(raw.dtype)
        obj = torch.sigmoid(p[..., 4:5])
        cls = self.class_probabilities(p[..., 5:])
        out = torch.cat([cx.unsqueeze(-1), cy.unsqueeze(-1), wh, obj, cls], dim=-1)
        return out.reshape(b, h * w * self.num_anchors, 5 + self.num_classes)


class RegionHead(DetectionHead):
    """``[region]`` (YOLOv2): anchors in grid cells, softmax (or sigmoid) classes."""

    def anchor_scale(self, grid_hw: tuple[int, int], input_hw: tuple[int, int]) -> Tensor:
        h, w = grid_hw
        return self.anchors / _wh_tensor(w, h, self.anchors)

    def class_probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits, dim=-1) if self.spec.softmax else torch.sigmoid(logits)


class YoloHead(DetectionHead):
    """``[yolo]`` (YOLOv3): anchors in input pixels, independent sigmoid classes."""

    spec: YoloSpec

    def anchor_scale(self, grid_hw: tuple[int, int], input_hw: tuple[int, int]) -> Tensor:
        h, w = input_hw
        return self.anchors / _wh_tensor(w, h, self.anchors)

    def xy_offsets(self, t_xy: Tensor) -> Tensor:
        scale = self.spec.scale_x_y
        if scale == 1.0:
            return torch.sigmoid(t_xy)
        return torch.sigmoid(t_xy) * scale - (scale - 1.0) / 2.0

    def class_probabilities(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)
