"""Darknet's box coding, written once: raw head outputs <-> boxes, for every head kind.

The heads (decoding for inference and ONNX), the losses (decoding predictions, encoding MSE
targets) and the assignment all use :class:`BoxCoder`. A box is ``(cx, cy, w, h)`` normalised to
0..1 of the network input; a cell is ``(col, row)`` of a ``H x W`` grid; anchors are ``(w, h)``
normalised to the input (:meth:`BoxCoder.anchor_scale` converts the cfg's units).

For raw values ``t`` at cell ``(col, row)`` with anchor ``(a_w, a_h)`` and ``alpha = scale_x_y``:

* classic (``[region]``, ``[yolo]``): ``cx = (col + alpha*sigmoid(t_x) - (alpha-1)/2) / W``,
  ``w = a_w * exp(t_w)``; objectness and classes are ``sigmoid`` of their raw values;
* ``new_coords=1`` (AlexeyAB, scaled-YOLOv4): the conv before the head already applied the
  logistic, so ``t`` are probabilities: ``cx = (col + alpha*t_x - (alpha-1)/2) / W``,
  ``w = 4 * t_w^2 * a_w``; objectness and classes are ``t`` itself.

``[region]`` has no ``scale_x_y`` (alpha = 1) and its anchors are in grid cells; ``[yolo]``
anchors are in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from darkyolo.darknet.cfg import RegionSpec, YoloSpec


def _wh_tensor(w: int | Tensor, h: int | Tensor, like: Tensor) -> Tensor:
    """``[w, h]`` as a tensor like ``like``; sizes read from a traced shape stay symbolic, so an
    ONNX export keeps dynamic input sizes (``new_tensor([w, h])`` would freeze them)."""
    return torch.stack([torch.as_tensor(w), torch.as_tensor(h)]).to(like)


@dataclass(frozen=True)
class BoxCoder:
    """The decode of one head and its inverse (see the module docstring for the formulas).

    ``grid_anchors``: anchors are in grid cells (``[region]``), else input pixels (``[yolo]``).
    """

    grid_anchors: bool = False
    scale_x_y: float = 1.0
    new_coords: bool = False

    @classmethod
    def for_spec(cls, spec: RegionSpec | YoloSpec) -> BoxCoder:
        if isinstance(spec, RegionSpec):
            return cls(grid_anchors=True)
        return cls(scale_x_y=spec.scale_x_y, new_coords=spec.new_coords)

    # -- units ------------------------------------------------------------------------------

    def anchor_scale(
        self, anchors: Tensor, grid_hw: tuple[int, int], input_hw: tuple[int, int]
    ) -> Tensor:
        """``anchors [A, 2]`` in the cfg's units -> fractions of the input, ``[A, 2]``."""
        h, w = grid_hw if self.grid_anchors else input_hw
        return anchors / _wh_tensor(w, h, anchors)

    @property
    def offset_range(self) -> tuple[float, float]:
        """The interval a box centre can reach inside its cell, in cells."""
        shift = (self.scale_x_y - 1.0) / 2.0
        return -shift, 1.0 + shift

    # -- activations ------------------------------------------------------------------------

    def probability(self, raw: Tensor) -> Tensor:
        """Objectness (and ``[yolo]`` class) raw values -> probabilities."""
        return raw if self.new_coords else torch.sigmoid(raw)

    def offsets(self, t_xy: Tensor) -> Tensor:
        """Raw ``(t_x, t_y)`` -> the centre's offset inside its cell, in cells."""
        p = self.probability(t_xy)
        if self.scale_x_y == 1.0:
            return p
        return p * self.scale_x_y - (self.scale_x_y - 1.0) / 2.0

    def sizes(self, t_wh: Tensor, anchor_wh: Tensor) -> Tensor:
        """Raw ``(t_w, t_h)`` and anchors (fractions of the input) -> box ``(w, h)``, same units."""
        if self.new_coords:
            return 4.0 * t_wh * t_wh * anchor_wh
        return torch.exp(t_wh) * anchor_wh

    # -- boxes ------------------------------------------------------------------------------

    def decode(
        self,
        raw_box: Tensor,
        col: Tensor,
        row: Tensor,
        anchor_wh: Tensor,
        grid_hw: tuple[int, int] | tuple[Tensor, Tensor],
    ) -> Tensor:
        """Raw ``(t_x, t_y, t_w, t_h)`` ``[..., 4]`` -> ``(cx, cy, w, h)`` ``[..., 4]`` normalised.

        ``col``, ``row`` broadcast to ``[...]`` (cell indices), ``anchor_wh`` to ``[..., 2]``.
        """
        height, width = grid_hw
        offset = self.offsets(raw_box[..., 0:2])
        cx = (col + offset[..., 0]) / width
        cy = (row + offset[..., 1]) / height
        wh = self.sizes(raw_box[..., 2:4], anchor_wh)
        return torch.stack([cx, cy, wh[..., 0], wh[..., 1]], dim=-1)

    def encode(
        self, boxes: Tensor, col: Tensor, row: Tensor, anchor_wh: Tensor, grid_hw: tuple[int, int]
    ) -> Tensor:
        """Darknet's MSE targets: the outputs that :meth:`decode` maps back to ``boxes``.

        ``boxes [..., 4]`` normalised -> ``(offset_x, offset_y, t_w, t_h)`` ``[..., 4]``: the centre's
        offset in the cell ``x W - col`` (compared with :meth:`offsets`), and the raw size
        ``ln(w / a_w)``, or ``sqrt(w / (4 a_w))`` with ``new_coords``.
        """
        height, width = grid_hw
        ox = boxes[..., 0] * width - col
        oy = boxes[..., 1] * height - row
        ratio = boxes[..., 2:4] / anchor_wh
        t_wh = torch.sqrt(ratio / 4.0) if self.new_coords else torch.log(ratio)
        return torch.stack([ox, oy, t_wh[..., 0], t_wh[..., 1]], dim=-1)

    def decode_map(self, p: Tensor, anchor_wh: Tensor) -> Tensor:
        """A head's raw map as ``[B, A, H, W, 4]`` (box channels last) -> boxes ``[B, A, H, W, 4]``.

        ``anchor_wh [A, 2]`` normalised to the input.
        """
        height, width = p.shape[2], p.shape[3]
        cols = torch.arange(width, device=p.device, dtype=p.dtype)
        rows = torch.arange(height, device=p.device, dtype=p.dtype).view(height, 1)
        return self.decode(p, cols, rows, anchor_wh.view(-1, 1, 1, 2), (height, width))
