"""A split's shape: relative box sides, boxes a picture, the one line the trainer prints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.records import ImageRecord
from darkyolo.data.shape import data_shape, relative_sides


def record(width: int, height: int, *boxes: tuple[float, float, float, float]) -> ImageRecord:
    array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    return ImageRecord(Path("p.jpg"), width, height, array, np.zeros(len(array), dtype=np.int64))


def test_relative_side_is_the_root_of_the_area_share() -> None:
    # a 100x50 box in a 200x100 picture covers a quarter of it: side 0.5; the whole picture: 1
    records = [record(200, 100, (0, 0, 100, 50), (0, 0, 200, 100)), record(10, 10), record(40, 40, (10, 10, 14, 14))]  # fmt: skip
    assert relative_sides(records) == pytest.approx([0.5, 1.0, 0.1])


def test_shape_counts_and_describes() -> None:
    records = [record(100, 100, (0, 0, 10, 10)), record(100, 100, (0, 0, 20, 20), (0, 0, 30, 30)), record(100, 100)]  # fmt: skip
    shape = data_shape(records, classes=1)
    assert (shape.pictures, shape.boxes, shape.classes) == (3, 3, 1)
    assert shape.boxes_per_picture == pytest.approx(1.0)
    assert shape.median_side == pytest.approx(0.2)
    assert shape.side_quartiles == pytest.approx((0.15, 0.25))
    assert shape.describe() == (
        "3 pictures, 1.0 boxes a picture, box side 0.20 of the picture (half of them 0.15-0.25), 1 class"
    )


def test_a_split_without_boxes() -> None:
    shape = data_shape([record(10, 10)], classes=3)
    assert shape.boxes == 0 and math.isnan(shape.median_side)
    assert shape.describe() == "1 picture, no boxes, 3 classes"
