"""Detection labels -> a classification set: each labelled box cut out of its picture and saved
under ``<train|val>/<class>/``, the class-folder layout ``darkyolo classify train`` reads. A user
can then pretrain a backbone on their own objects (``darkyolo export --prefix N``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from darkyolo.data.images import read_image
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError

#: boxes narrower or lower than this (in source pixels) are not worth a picture; counted
MIN_CROP_SIDE = 4


def crop_box(image: np.ndarray, box: np.ndarray, pad: float) -> np.ndarray:
    """The box ``x1, y1, x2, y2`` (pixels) grown by ``pad`` of its size on each side, clipped
    to the picture -> ``uint8 [h, w, 3]``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x, grow_y = pad * (x2 - x1), pad * (y2 - y1)
    left, top = max(0, int(np.floor(x1 - grow_x))), max(0, int(np.floor(y1 - grow_y)))
    right, bottom = min(w, int(np.ceil(x2 + grow_x))), min(h, int(np.ceil(y2 + grow_y)))
    return image[top:bottom, left:right]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "class"


def write_crops(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    folder: Path,
    prefix: str,
    pad: float = 0.1,
) -> tuple[int, int, list[str]]:
    """Write every box of ``records`` as ``folder/<class>/<prefix>_<picture>_<k>.jpg``.

    Returns ``(crops written, boxes too small, pictures that could not be read)``; nothing is
    left out without being counted.
    """
    classes = [_safe(name) for name in names]
    if len(set(classes)) != len(classes):
        raise DataError(f"class names {list(names)} collide as folder names")
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
    written = small = 0
    unreadable: list[str] = []
    for record in records:
        if not len(record.boxes):
            continue
        try:
            image = read_image(record.image)
        except DataError as error:
            unreadable.append(f"{record.image}: {error}")
            continue
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        for k, (box, label) in enumerate(zip(record.boxes, record.labels)):
            if min(box[2] - box[0], box[3] - box[1]) < MIN_CROP_SIDE:
                small += 1
                continue
            crop = crop_box(bgr, box, pad)
            path = folder / classes[int(label)] / f"{prefix}_{_safe(record.image.stem)}_{k}.jpg"
            if not cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise DataError("could not write the crop", str(path))
            written += 1
    return written, small, unreadable
