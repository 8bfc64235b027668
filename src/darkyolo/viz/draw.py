"""Draw detections on a picture: a coloured box per detection and a filled label with name and score.

Pictures are RGB ``uint8 [H, W, 3]``; boxes ``[K, 4]`` xyxy in that picture's pixels. Line width
and font size follow the picture's size so labels stay legible on small and large images alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: 20 well-separated colours (RGB); class ``k`` uses ``PALETTE[k % 20]``.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour of class ``label``."""
    return PALETTE[int(label) % len(PALETTE)]


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def label_text(label: int, score: float | None, names: Sequence[str] | None) -> str:
    """``"dog 0.87"``; ``"class 12 0.87"`` when there is no name for the class."""
    name = names[label] if names is not None and 0 <= label < len(names) else f"class {label}"
    return name if score is None else f"{name} {score:.2f}"


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    line_width: int | None = None,
) -> np.ndarray:
    """Return a copy of ``image`` (RGB uint8 ``[H, W, 3]``) with the detections drawn.

    ``boxes``: ``[K, 4]`` xyxy pixels; ``labels``: ``[K]`` class indices; ``scores``: ``[K]`` or None.
    Boxes are drawn lowest score first so the best ones end on top.
    """
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    h, w = canvas.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    score_list = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    thickness = line_width or max(1, round((h + w) / 2 * 0.003))
    font_scale = max(0.4, thickness / 3)
    font_thickness = max(1, thickness - 1)
    order = range(len(boxes)) if score_list is None else np.argsort(score_list, kind="stable")
    for i in order:
        colour = class_colour(labels[i])
        x1, y1, x2, y2 = (round(v) for v in np.clip(boxes[i], [0, 0, 0, 0], [w - 1, h - 1] * 2))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_8)
        text = label_text(int(labels[i]), None if score_list is None else score_list[i], names)
        (tw, th), baseline = cv2.getTextSize(text, _FONT, font_scale, font_thickness)
        pad = max(1, thickness // 2)
        box_h = th + baseline + 2 * pad
        top = y1 - box_h if y1 - box_h >= 0 else y1  # above the box, or inside it at the top edge
        left = min(x1, max(0, w - tw - 2 * pad))
        cv2.rectangle(canvas, (left, top), (left + tw + 2 * pad, top + box_h), colour, cv2.FILLED)
        cv2.putText(
            canvas,
            text,
            (left + pad, top + pad + th),
            _FONT,
            font_scale,
            _text_colour(colour),
            font_thickness,
            cv2.LINE_AA,
        )
    return canvas
