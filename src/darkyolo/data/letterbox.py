"""Letterbox: fit an image into the network size keeping its aspect ratio, grey bars around it.

Darknet's rule (``letterbox_image``): scale by the smaller of ``net_w / w`` and ``net_h / h``; the
side that fits is exactly the network side, the other is ``side * net / other`` rounded down; the
resized picture is placed at the integer offset ``((net_w - new_w) // 2, (net_h - new_h) // 2)`` and
the rest is filled with grey (0.5). Boxes move with the pixels: :class:`Letterbox` records the
per-axis scale and the offset, and maps ``xyxy`` pixel boxes both ways exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import torch

from darkyolo.errors import DataError

BoxArray = TypeVar("BoxArray", np.ndarray, torch.Tensor)

#: Darknet's grey for the bars, in 0..1.
FILL = 0.5


@dataclass(frozen=True)
class Letterbox:
    """How one image was letterboxed: original ``(h, w)``, network ``(h, w)``, scale and offset.

    ``scale_x = new_w / w`` and ``scale_y = new_h / h`` (they differ slightly after rounding);
    ``pad_x, pad_y`` are the left and top bar widths in network pixels.
    """

    original_hw: tuple[int, int]
    network_hw: tuple[int, int]
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int

    @property
    def resized_hw(self) -> tuple[int, int]:
        """Size of the picture inside the bars, in network pixels."""
        h, w = self.original_hw
        return round(h * self.scale_y), round(w * self.scale_x)

    def _vectors(self, boxes: BoxArray) -> tuple[BoxArray, BoxArray]:
        scale = [self.scale_x, self.scale_y, self.scale_x, self.scale_y]
        offset = [self.pad_x, self.pad_y, self.pad_x, self.pad_y]
        if isinstance(boxes, torch.Tensor):
            dtype = boxes.dtype if boxes.is_floating_point() else torch.float32
            return (
                torch.tensor(scale, dtype=dtype, device=boxes.device),
                torch.tensor(offset, dtype=dtype, device=boxes.device),
            )
        dtype = boxes.dtype if np.issubdtype(boxes.dtype, np.floating) else np.float64
        return np.asarray(scale, dtype=dtype), np.asarray(offset, dtype=dtype)

    def to_original(self, boxes: BoxArray, clip: bool = False) -> BoxArray:
        """``[..., 4]`` xyxy in network pixels -> xyxy in original-image pixels.

        With ``clip`` the result is clipped to the original image (then it is no longer invertible).
        """
        scale, offset = self._vectors(boxes)
        out = (boxes - offset) / scale
        if clip:
            h, w = self.original_hw
            out = clip_boxes(out, (h, w))
        return out

    def to_network(self, boxes: BoxArray) -> BoxArray:
        """``[..., 4]`` xyxy in original-image pixels -> xyxy in network pixels."""
        scale, offset = self._vectors(boxes)
        return boxes * scale + offset


def clip_boxes(boxes: BoxArray, hw: tuple[int, int]) -> BoxArray:
    """Clip ``[..., 4]`` xyxy boxes to an image of ``hw = (h, w)`` pixels (a new array)."""
    h, w = hw
    if isinstance(boxes, torch.Tensor):
        out = boxes.clone()
        out[..., 0::2] = out[..., 0::2].clamp(0, w)
        out[..., 1::2] = out[..., 1::2].clamp(0, h)
        return out
    out = np.array(boxes, copy=True)
    out[..., 0::2] = np.clip(out[..., 0::2], 0, w)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, h)
    return out


def letterbox_params(original_hw: tuple[int, int], network_hw: tuple[int, int]) -> Letterbox:
    """The :class:`Letterbox` for an ``original_hw`` image in a ``network_hw`` input (Darknet's rule)."""
    h, w = original_hw
    net_h, net_w = network_hw
    if h < 1 or w < 1:
        raise DataError(f"cannot letterbox an empty image of {w}x{h} pixels")
    if net_w * h <= net_h * w:  # width is the tighter side (net_w / w <= net_h / h)
        new_w, new_h = net_w, max(1, (h * net_w) // w)
    else:
        new_h, new_w = net_h, max(1, (w * net_h) // h)
    return Letterbox(
        original_hw=(h, w),
        network_hw=(net_h, net_w),
        scale_x=new_w / w,
        scale_y=new_h / h,
        pad_x=(net_w - new_w) // 2,
        pad_y=(net_h - new_h) // 2,
    )


def letterbox(
    image: np.ndarray, network_hw: tuple[int, int], fill: float = FILL
) -> tuple[np.ndarray, Letterbox]:
    """Letterbox an image into ``network_hw``.

    ``image``: ``[H, W, C]`` uint8 (0..255) or float (0..1). Returns a float32 ``[net_h, net_w, C]``
    array in 0..1 (bars at ``fill``) and the :class:`Letterbox` that maps boxes back.
    Resizing is bilinear (``cv2.INTER_LINEAR``), as Darknet's.
    """
    if image.ndim != 3:
        raise DataError(f"expected an [H, W, C] image, got shape {tuple(image.shape)}")
    box = letterbox_params(image.shape[:2], network_hw)
    new_h, new_w = box.resized_hw
    resized = image
    if (new_h, new_w) != image.shape[:2]:
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if resized.ndim == 2:  # cv2 drops a single channel axis
            resized = resized[:, :, None]
    out = np.full((*network_hw, image.shape[2]), fill, dtype=np.float32)
    window = out[box.pad_y : box.pad_y + new_h, box.pad_x : box.pad_x + new_w]
    if resized.dtype == np.uint8:
        np.multiply(resized, np.float32(1 / 255), out=window, casting="unsafe")
    else:
        window[...] = resized
    return out, box
