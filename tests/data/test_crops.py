"""``convert --to crops``: every box a picture in ``train|val/<class>/``, small ones counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from darkyolo.classify.data import load_classification_data
from darkyolo.data.convert import ConvertOptions, convert
from darkyolo.data.crops import crop_box


def test_crop_box_grows_and_clips() -> None:
    image = np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    assert crop_box(image, np.array([10.0, 20, 30, 60]), 0.0).shape == (40, 20, 3)
    assert crop_box(image, np.array([10.0, 20, 30, 60]), 0.25).shape == (60, 30, 3)
    assert crop_box(image, np.array([0.0, 0, 100, 100]), 0.5).shape == (100, 100, 3)


def test_bccd_boxes_become_class_folders(bccd_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "crops"
    report = convert(bccd_small, out, "yolo", "crops", ConvertOptions(crop_pad=0.0))
    text = "\n".join(report.lines())
    data = load_classification_data(out)
    assert data.names == ["Platelets", "RBC", "WBC"]
    written = len(data.train) + len(data.val)
    boxes = report.boxes_read
    small = report.counts.get("small", 0)
    assert written == report.boxes_written and written + small <= boxes and written > 0
    assert "split train (train)" in text and "split val (valid)" in text
    picture = Image.open(data.train[0].image)
    assert min(picture.size) >= 4


def test_tiny_boxes_are_counted(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images/train/a.png")
    (tmp_path / "labels/train/a.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.5 0.5 0.02 0.02\n")
    (tmp_path / "t.names").write_text("big\nsmall\n")
    (tmp_path / "t.txt").write_text("images/train/a.png\n")
    (tmp_path / "t.data").write_text("classes=2\ntrain=t.txt\nnames=t.names\n")
    report = convert(tmp_path / "t.data", tmp_path / "out", "yolo", "crops")
    assert report.boxes_written == 1 and report.counts["small"] == 1
    assert any("boxes under 4 px not cropped: 1" in line for line in report.lines())
