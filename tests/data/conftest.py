"""Small datasets built in tmp_path for the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def make_image(path: Path, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return path


def make_yolo_dataset(
    root: Path, labels: dict[str, str], val: dict[str, str] | None = None
) -> Path:
    """images/{train,val}/<name>.jpg (40x30) with labels/<split>/<name>.txt text; -> the .data."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "t.names").write_text("cat\ndog\n")
    lines = ["classes=2", "names=t.names", "train=train.txt"]
    for split, entries in (("train", labels), ("val", val)):
        if entries is None:
            continue
        listed = []
        for name, text in entries.items():
            make_image(root / "images" / split / f"{name}.jpg")
            if text is not None:
                label = root / "labels" / split / f"{name}.txt"
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(text)
            listed.append(f"images/{split}/{name}.jpg\n")
        (root / f"{split}.txt").write_text("".join(listed))
    if val is not None:
        lines.append("valid=val.txt")
    data = root / "t.data"
    data.write_text("\n".join(lines) + "\n")
    return data


@pytest.fixture
def yolo_dataset(tmp_path: Path) -> Path:
    return make_yolo_dataset(
        tmp_path / "ds",
        {"a": "0 0.5 0.5 0.5 0.4\n1 0.25 0.25 0.1 0.2\n", "b": ""},
        {"c": "1 0.5 0.5 1 1\n"},
    )


@pytest.fixture
def image_factory():
    """``make(path, width=40, height=30)`` writes a plain image."""
    return make_image


@pytest.fixture
def dataset_factory():
    """``make(root, train_labels, val_labels=None)`` -> .data path (see make_yolo_dataset)."""
    return make_yolo_dataset
