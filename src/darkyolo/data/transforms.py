"""Training augmentation and evaluation resizing; boxes move with the pixels.

Images are RGB ``uint8 [H, W, 3]`` (OpenCV does the pixel work); boxes are ``float32 [N, 4]``
``xyxy`` in pixels of the image they belong to, labels ``int64 [N]``.

Geometry (one ``cv2.warpAffine`` per image: resize, placement, crop and flip in a single pass):

* ``jitter`` (Darknet, pjreddie since Aug 2018; see the project's training notes, section 4): the
  picture gets a random aspect ratio ``(ow ± j·ow) / (oh ± j·oh)``, is scaled so that its long side
  (relative to the network's) spans ``s`` times the input (``s`` drawn from ``scale``; Darknet uses
  ``s = 1``) and lands at a random position on a grey canvas; whatever falls outside is cropped.
* ``square``: a random square crop of the shorter side, resized to the input.
* ``letterbox``: Darknet's letterbox (no randomness besides flip and colour).

With probability ``mosaic`` a sample is a mosaic instead (AlexeyAB's and ultralytics' idea; our own
geometry): a random split point in the middle 40% of each side cuts the canvas into four tiles, and
each tile shows a random crop of a different picture whose long side spans ``s`` times the input
(``s`` from ``scale``, aspect kept, as in the letterbox the network sees at evaluation), each flipped
on its own. HSV then applies to the whole canvas. More objects, contexts and crops per update.

Then a horizontal flip with probability ``flip`` and Darknet's HSV distortion: hue shifted by
``U(-hue, hue)`` of the colour circle, saturation and value multiplied by ``rand_scale``
(``U(1, s)``, inverted with probability one half).

Boxes are clipped to the canvas; a box keeps when its visible part is at least ``min_size`` pixels
on each side and ``min_visible`` of its area before clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from darkyolo.data.letterbox import Letterbox, letterbox, letterbox_params
from darkyolo.errors import OptionError

GEOMETRIES = ("jitter", "square", "letterbox")

#: canvas grey in uint8 (Darknet's 0.5)
FILL = 127


@dataclass(frozen=True)
class AugmentOptions:
    """What the training transform does (see the module docstring).

    Attributes:
        geometry: ``jitter`` | ``square`` | ``letterbox``.
        jitter: Darknet's ``jitter`` (aspect change of ± this fraction of each side).
        scale: range of the random zoom ``s`` of the placed picture (1, 1 is Darknet's).
        flip: probability of a horizontal flip.
        hue: hue shift range, a fraction of the colour circle (cfg ``hue``).
        saturation, exposure: Darknet's ``rand_scale`` ranges (cfg ``saturation``, ``exposure``).
        min_size: smallest visible box side kept, in output pixels.
        min_visible: smallest visible fraction of a box's area kept.
        mosaic: probability that a sample is a four-picture mosaic (:func:`mosaic`).
    """

    geometry: str = "jitter"
    jitter: float = 0.3
    scale: tuple[float, float] = (1.0, 1.0)
    flip: float = 0.5
    hue: float = 0.1
    saturation: float = 1.5
    exposure: float = 1.5
    min_size: float = 2.0
    min_visible: float = 0.25
    mosaic: float = 0.0

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise OptionError(f"geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        low, high = self.scale
        if not 0 < low <= high:
            raise OptionError(f"scale range must satisfy 0 < low <= high, got {self.scale}")
        if not 0 <= self.jitter < 1:
            raise OptionError(f"jitter must lie in [0, 1), got {self.jitter}")
        if not 0 <= self.mosaic <= 1:
            raise OptionError(f"mosaic probability must lie in [0, 1], got {self.mosaic}")


def rand_scale(rng: np.random.Generator, s: float) -> float:
    """Darknet's ``rand_scale``: ``U(1, s)``, inverted with probability one half."""
    value = rng.uniform(1.0, s) if s > 1 else 1.0
    return value if rng.random() < 0.5 else 1.0 / value


def random_zoom(scale: tuple[float, float], rng: np.random.Generator) -> float:
    """A zoom from ``U(low, high)``; no draw when the range is a single value."""
    return rng.uniform(*scale) if scale[1] > scale[0] else scale[0]


def jitter_params(
    image_hw: tuple[int, int],
    out_hw: tuple[int, int],
    jitter: float,
    scale: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """Darknet's jitter placement -> ``(sx, sy, dx, dy)``: out = in·s + d, in pixels."""
    oh, ow = image_hw
    h, w = out_hw
    dw, dh = jitter * ow, jitter * oh
    aspect = (ow + rng.uniform(-dw, dw)) / (oh + rng.uniform(-dh, dh))
    s = random_zoom(scale, rng)
    # the side that is relatively longer spans s times the network side (Darknet compares
    # new_ar with 1, i.e. assumes a square input; this generalises it to any input aspect)
    if aspect < w / h:
        nh = s * h
        nw = nh * aspect
    else:
        nw = s * w
        nh = nw / aspect
    dx = rng.uniform(min(0.0, w - nw), max(0.0, w - nw))
    dy = rng.uniform(min(0.0, h - nh), max(0.0, h - nh))
    return nw / ow, nh / oh, dx, dy


def square_crop_params(
    image_hw: tuple[int, int], out_hw: tuple[int, int], rng: np.random.Generator
) -> tuple[float, float, float, float]:
    """A random square crop of the shorter side resized to ``out_hw`` -> ``(sx, sy, dx, dy)``."""
    oh, ow = image_hw
    h, w = out_hw
    side = min(oh, ow)
    x0 = rng.uniform(0, ow - side) if ow > side else 0.0
    y0 = rng.uniform(0, oh - side) if oh > side else 0.0
    sx, sy = w / side, h / side
    return sx, sy, -x0 * sx, -y0 * sy


def letterbox_affine(
    image_hw: tuple[int, int], out_hw: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Darknet's letterbox (:func:`darkyolo.data.letterbox.letterbox_params`) as ``(sx, sy, dx, dy)``."""
    box = letterbox_params(image_hw, out_hw)
    return box.scale_x, box.scale_y, float(box.pad_x), float(box.pad_y)


def warp(
    image: np.ndarray,
    out_hw: tuple[int, int],
    affine: tuple[float, float, float, float],
    flip: bool = False,
    fill: int = FILL,
) -> np.ndarray:
    """Resample ``image`` onto an ``out_hw`` grey canvas: out = in·s + d, then mirrored if ``flip``.

    Bilinear, one pass. Returns ``uint8 [out_h, out_w, 3]``.
    """
    sx, sy, dx, dy = affine
    h, w = out_hw
    if flip:
        matrix = np.array([[-sx, 0.0, w - dx], [0.0, sy, dy]], dtype=np.float64)
    else:
        matrix = np.array([[sx, 0.0, dx], [0.0, sy, dy]], dtype=np.float64)
    # pixel centres: cv2 maps pixel index i to i, so shift by half a pixel on both sides
    matrix[:, 2] += 0.5 * (matrix[:, 0] + matrix[:, 1]) - 0.5
    return cv2.warpAffine(
        image,
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(fill, fill, fill),
    )


def move_boxes(
    boxes: np.ndarray,
    out_hw: tuple[int, int],
    affine: tuple[float, float, float, float],
    flip: bool = False,
) -> np.ndarray:
    """``[N, 4]`` xyxy in input pixels -> xyxy in output pixels (not clipped)."""
    sx, sy, dx, dy = affine
    out = boxes.astype(np.float32, copy=True)
    out[:, 0::2] = out[:, 0::2] * sx + dx
    out[:, 1::2] = out[:, 1::2] * sy + dy
    if flip:
        w = out_hw[1]
        out[:, [0, 2]] = w - out[:, [2, 0]]
    return out


def clip_and_filter(
    boxes: np.ndarray,
    labels: np.ndarray,
    out_hw: tuple[int, int],
    min_size: float = 2.0,
    min_visible: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy boxes to the ``out_hw`` canvas; drop those too small or mostly outside."""
    h, w = out_hw
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (cw >= min_size) & (ch >= min_size) & (cw * ch >= min_visible * area)
    return clipped[keep], labels[keep]


def hsv_distort(
    image: np.ndarray, hue: float, saturation: float, value: float, out: np.ndarray | None = None
) -> np.ndarray:
    """Shift hue by ``hue`` (fraction of the circle), multiply saturation and value (uint8 RGB).

    OpenCV's 8-bit HSV (H in 0..179); hue wraps around, S and V saturate at 255.
    """
    if hue == 0 and saturation == 1 and value == 1:
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    levels = np.arange(256, dtype=np.float32)
    lut = np.empty((256, 1, 3), dtype=np.uint8)
    lut[:, 0, 0] = np.mod(np.round(levels + hue * 180.0), 180).astype(np.uint8)
    lut[:, 0, 1] = np.clip(np.round(levels * saturation), 0, 255).astype(np.uint8)
    lut[:, 0, 2] = np.clip(np.round(levels * value), 0, 255).astype(np.uint8)
    cv2.LUT(hsv, lut, dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=out)


def augment(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    out_hw: tuple[int, int],
    config: AugmentOptions,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training sample: geometry + flip + HSV.

    Args:
        image: RGB ``uint8 [H, W, 3]``.
        boxes: ``float32 [N, 4]`` xyxy in ``image`` pixels; labels ``int64 [N]``.
        out_hw: network input ``(h, w)``.
    Returns:
        ``uint8 [out_h, out_w, 3]``, boxes ``float32 [M, 4]`` xyxy in output pixels, labels ``[M]``.
    """
    image_hw = (image.shape[0], image.shape[1])
    if config.geometry == "jitter":
        affine = jitter_params(image_hw, out_hw, config.jitter, config.scale, rng)
    elif config.geometry == "square":
        affine = square_crop_params(image_hw, out_hw, rng)
    else:
        affine = letterbox_affine(image_hw, out_hw)
    flip = bool(rng.random() < config.flip)
    pixels = warp(image, out_hw, affine, flip)
    moved = move_boxes(boxes, out_hw, affine, flip)
    moved, labels = clip_and_filter(moved, labels, out_hw, config.min_size, config.min_visible)
    return _colour(pixels, config, rng), moved, labels


def _colour(pixels: np.ndarray, config: AugmentOptions, rng: np.random.Generator) -> np.ndarray:
    dhue = rng.uniform(-config.hue, config.hue) if config.hue > 0 else 0.0
    dsat = rand_scale(rng, config.saturation)
    dexp = rand_scale(rng, config.exposure)
    return hsv_distort(pixels, dhue, dsat, dexp, out=pixels)


def mosaic(
    pictures: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    out_hw: tuple[int, int],
    config: AugmentOptions,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four pictures in the four tiles of one canvas (see the module docstring), then HSV.

    Args:
        pictures: four ``(image uint8 [H, W, 3], boxes float32 [N, 4] xyxy, labels int64 [N])``.
        out_hw: network input ``(h, w)``.
    Returns:
        ``uint8 [out_h, out_w, 3]``, boxes ``float32 [M, 4]`` xyxy in output pixels, labels ``[M]``.
    """
    if len(pictures) != 4:
        raise ValueError(f"a mosaic takes 4 pictures, got {len(pictures)}")
    h, w = out_hw
    xc = round(rng.uniform(0.3, 0.7) * w)
    yc = round(rng.uniform(0.3, 0.7) * h)
    canvas = np.full((h, w, 3), FILL, dtype=np.uint8)
    tiles = ((0, 0, xc, yc), (xc, 0, w, yc), (0, yc, xc, h), (xc, yc, w, h))
    all_boxes, all_labels = [], []
    for (image, boxes, labels), (x0, y0, x1, y1) in zip(pictures, tiles, strict=True):
        tile_hw = (y1 - y0, x1 - x0)
        oh, ow = image.shape[:2]
        zoom = random_zoom(config.scale, rng) * max(h, w) / max(oh, ow)
        nw, nh = ow * zoom, oh * zoom
        tw, th = tile_hw[1], tile_hw[0]
        dx = rng.uniform(min(0.0, tw - nw), max(0.0, tw - nw))
        dy = rng.uniform(min(0.0, th - nh), max(0.0, th - nh))
        affine = (zoom, zoom, dx, dy)
        flip = bool(rng.random() < config.flip)
        canvas[y0:y1, x0:x1] = warp(image, tile_hw, affine, flip)
        moved = move_boxes(boxes, tile_hw, affine, flip)
        moved, kept = clip_and_filter(moved, labels, tile_hw, config.min_size, config.min_visible)
        moved[:, 0::2] += x0
        moved[:, 1::2] += y0
        all_boxes.append(moved)
        all_labels.append(kept)
    pixels = _colour(canvas, config, rng)
    return pixels, np.concatenate(all_boxes), np.concatenate(all_labels)


def letterbox_uint8(
    image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, out_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic training-time letterbox (uint8, grey 127): no augmentation at all."""
    affine = letterbox_affine((image.shape[0], image.shape[1]), out_hw)
    pixels = warp(image, out_hw, affine)
    moved = move_boxes(boxes, out_hw, affine)
    moved, labels = clip_and_filter(moved, labels, out_hw, min_size=1.0, min_visible=0.0)
    return pixels, moved, labels


def letterbox_eval(image: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Evaluation input: Darknet's letterbox (:func:`darkyolo.data.letterbox.letterbox`).

    Returns ``float32 [out_h, out_w, 3]`` in 0..1 (bars at 0.5) and the :class:`Letterbox` that
    maps predicted boxes back to ``image`` pixels.
    """
    return letterbox(image, out_hw)
