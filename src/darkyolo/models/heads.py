"""Detection heads: turn a raw map into boxes (Darknet's direct location prediction).

A raw map is ``[B, A*(5+C), H, W]``; channel ``a*(5+C)+k`` holds, for anchor ``a``,
``k = tx, ty, tw, th, to, class logits...``. Decoding gives ``[B, H*W*A, 5+C]`` rows
``(cx, cy, w, h, objectness, class probabilities)`` with ``cx, cy, w, h`` normalised to the network
input, rows ordered (y, x, anchor) as OpenCV's Darknet importer orders them.

The box formulas (classic and ``new_coords``) live in :class:`~darkyolo.models.coder.BoxCoder`.
``[region]`` (v2) anchors are grid cells and classes are a softmax (or sigmoids);
``[yolo]`` (v3) anchors are input pixels and classes are independent sigmoids (with ``new_coords``
the conv before the head already applied the logistic).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darkyolo.darknet.cfg import RegionSpec, YoloSpec
from darkyolo.models.coder import BoxCoder


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
        self.coder = BoxCoder.for_spec(spec)
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
        return self.coder.anchor_scale(self.anchors, grid_hw, input_hw)

    def class_probabilities(self, logits: Tensor) -> Tensor:
        return self.coder.probability(logits)

    def decode(self, raw: Tensor, input_hw: tuple[int, int]) -> Tensor:
        """Raw map ``[B, A*(5+C), H, W]`` -> ``[B, H*W*A, 5+C]`` (see module docstring).

        A half-precision map (autocast) is decoded in float32: bfloat16 keeps 8 significant bits,
        so cell offsets and boxes would be rounded by up to a pixel at 320."""
        if raw.dtype in (torch.float16, torch.bfloat16):
            raw = raw.float()
        p = self.split(raw)
        b, h, w = p.shape[:3]
        ys = torch.arange(h, device=raw.device, dtype=raw.dtype).view(1, h, 1, 1)
        xs = torch.arange(w, device=raw.device, dtype=raw.dtype).view(1, 1, w, 1)
        anchors = self.anchor_scale((h, w), input_hw).to(raw.dtype)
        box = self.coder.decode(p[..., 0:4], xs, ys, anchors, (h, w))
        obj = self.coder.probability(p[..., 4:5])
        cls = self.class_probabilities(p[..., 5:])
        out = torch.cat([box, obj, cls], dim=-1)
        return out.reshape(b, h * w * self.num_anchors, 5 + self.num_classes)


class RegionHead(DetectionHead):
    """``[region]`` (YOLOv2): anchors in grid cells, softmax (or sigmoid) classes."""

    def class_probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits, dim=-1) if self.spec.softmax else torch.sigmoid(logits)


class YoloHead(DetectionHead):
    """``[yolo]`` (YOLOv3): anchors in input pixels, independent sigmoid classes."""

    spec: YoloSpec
