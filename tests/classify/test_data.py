"""Classification data: class folders, Darknet lists with labels, Darknet's crop augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny import class_folders

from darkyolo.classify.data import (
    ClassificationDataset,
    CropOptions,
    center_crop,
    load_classification_data,
    random_crop,
)
from darkyolo.darknet.cfg import load_cfg
from darkyolo.errors import DataError


def test_class_folders(tmp_path: Path) -> None:
    data = load_classification_data(class_folders(tmp_path, per_class=4))
    assert data.names == ["blue", "red"]
    assert len(data.train) == 8 and len(data.val) == 4
    assert {item.label for item in data.train if item.image.parent.name == "red"} == {1}


def test_val_class_unknown_to_train_is_an_error(tmp_path: Path) -> None:
    class_folders(tmp_path, per_class=2)
    (tmp_path / "val" / "green").mkdir()
    with pytest.raises(DataError, match="'green' is not among train/'s classes"):
        load_classification_data(tmp_path)


def test_darknet_list_labels_by_substring(tmp_path: Path) -> None:
    """Darknet's rule: the class is the label found in the path; none or several: left out and
    counted, never silently."""
    class_folders(tmp_path, per_class=2)
    (tmp_path / "labels.txt").write_text("red\nblue\n")
    paths = [str(p.relative_to(tmp_path)) for p in sorted((tmp_path / "train").rglob("*.png"))]
    paths += ["nowhere/x.png", "red_and_blue/y.png"]
    (tmp_path / "train.list").write_text("\n".join(paths) + "\n")
    (tmp_path / "c.data").write_text("classes=2\ntrain=train.list\nlabels=labels.txt\n")
    data = load_classification_data(tmp_path / "c.data")
    assert data.names == ["red", "blue"] and len(data.train) == 4
    assert all(("red" in str(i.image)) == (i.label == 0) for i in data.train)
    assert any("1 paths with no label" in note for note in data.notes)
    assert any("1 paths with several labels" in note for note in data.notes)


def test_data_file_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("a\nb\n")
    (tmp_path / "c.data").write_text("classes=3\ntrain=t.list\nlabels=n.txt\n")
    with pytest.raises(DataError, match=r"c.data:1: classes=3 but labels= names 2"):
        load_classification_data(tmp_path / "c.data")


def test_crop_options_follow_the_cfg() -> None:
    net = load_cfg("darknet19").net  # 224, min_crop 128, max_crop 448, angle 7
    options = CropOptions.from_net(net, 448, flip=0.0)
    assert (options.min_crop, options.max_crop) == (256, 896)
    assert options.angle == 7 and options.aspect == 0.75 and options.flip == 0.0


def test_random_crop_is_seeded_and_sized() -> None:
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    options = CropOptions(100, 200, aspect=0.75, angle=7, hue=0.1, saturation=1.5, exposure=1.5)
    first = random_crop(image, 64, options, np.random.default_rng(3))
    again = random_crop(image, 64, options, np.random.default_rng(3))
    other = random_crop(image, 64, options, np.random.default_rng(4))
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_rotation_rotates() -> None:
    """``angle`` is applied, not ignored: a horizontal bar comes out tilted."""
    image = np.zeros((101, 101, 3), dtype=np.uint8)
    image[48:53, :] = 255
    plain = CropOptions(101, 101, flip=0.0)
    tilted = CropOptions(101, 101, angle=30, flip=0.0)
    rng = np.random.default_rng(1)
    straight = random_crop(image, 101, plain, rng)
    rotated = [random_crop(image, 101, tilted, np.random.default_rng(s)) for s in range(5)]
    rows = lambda picture: np.flatnonzero(picture[:, :, 0].max(axis=1) > 128)  # noqa: E731
    assert len(rows(straight)) <= 7
    assert max(len(rows(r)) for r in rotated) > 20


def test_center_crop_is_the_middle_square() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 50:150] = 200
    crop = center_crop(image, 50)
    assert crop.shape == (50, 50, 3) and crop.min() == 200


def test_dataset_samples(tmp_path: Path) -> None:
    data = load_classification_data(class_folders(tmp_path, per_class=3))
    dataset = ClassificationDataset(data.train, 32, CropOptions(32, 48), seed=1)
    sample, label, index = dataset[(2, 32, 0)]
    assert sample.shape == (3, 32, 32) and label == data.train[2].label and index == 2
    assert not (sample == dataset[(2, 32, 1)][0]).all()  # another epoch, another crop
    (data.train[0].image).write_bytes(b"broken")
    grey, _, failed = dataset[0]
    assert failed == -1 and int(grey.float().mean()) == 127
