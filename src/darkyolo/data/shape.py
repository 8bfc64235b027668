"""The shape of a training split, as the trainer prints it before the first update and the
benchmark suite describes its sets: pictures, boxes a picture, how large the boxes are relative
to their pictures, classes.

A box's relative side is ``sqrt(box area / picture area)``, 0..1: 0.1 is a box a tenth of the
picture's side (one hundredth of its area), 1 the whole picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkyolo.data.records import ImageRecord


def relative_sides(records: Sequence[ImageRecord]) -> np.ndarray:
    """``float64 [boxes]``: every box's relative side, in record then box order."""
    areas = [
        (r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1]) / (r.width * r.height)
        for r in records
        if len(r.boxes)
    ]
    return np.sqrt(np.concatenate(areas)) if areas else np.zeros(0)


@dataclass(frozen=True)
class DataShape:
    """A split's shape. ``median_side`` and the quartiles ``side_quartiles`` (25%, 75%) are of
    the boxes' relative sides; ``nan`` when the split has no boxes."""

    pictures: int
    boxes: int
    classes: int
    median_side: float
    side_quartiles: tuple[float, float]

    @property
    def boxes_per_picture(self) -> float:
        return self.boxes / self.pictures if self.pictures else 0.0

    def describe(self) -> str:
        """One line: ``292 pictures, 1.0 boxes a picture, box side 0.34 of the picture (half of
        them 0.28-0.39), 1 class``."""
        classes = f"{self.classes} class{'es' if self.classes != 1 else ''}"
        pictures = f"{self.pictures} picture{'s' if self.pictures != 1 else ''}"
        if not self.boxes:
            return f"{pictures}, no boxes, {classes}"
        low, high = self.side_quartiles
        return (
            f"{pictures}, {self.boxes_per_picture:.1f} boxes a picture, box side "
            f"{self.median_side:.2f} of the picture (half of them {low:.2f}-{high:.2f}), {classes}"
        )


def data_shape(records: Sequence[ImageRecord], classes: int) -> DataShape:
    """The shape of ``records``, a split of a set with ``classes`` classes."""
    sides = relative_sides(records)
    if not len(sides):
        return DataShape(len(records), 0, classes, float("nan"), (float("nan"), float("nan")))
    low, median, high = np.percentile(sides, [25, 50, 75])
    return DataShape(len(records), len(sides), classes, float(median), (float(low), float(high)))
