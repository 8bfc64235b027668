from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.description import (
    find_images,
    image_size,
    read_image_list,
    read_records,
)
from darkyolo.data.layouts import load_dataset
from darkyolo.data.records import Problem
from darkyolo.errors import DataError


def test_load_dataset_from_file_or_folder(yolo_dataset):
    for path in (yolo_dataset, yolo_dataset.parent):
        spec = load_dataset(path)
        assert spec.path == yolo_dataset
        assert spec.names == ["cat", "dog"] and spec.num_classes == 2
        assert [p.name for p in spec.train] == ["a.jpg", "b.jpg"]
        assert [p.name for p in spec.val] == ["c.jpg"]
        assert spec.train[0] == yolo_dataset.parent / "images" / "train" / "a.jpg"


def test_read_split_records(yolo_dataset):
    spec = load_dataset(yolo_dataset)
    a, b = spec.read("train")
    assert (a.width, a.height) == (40, 30)
    np.testing.assert_allclose(a.boxes, [[10, 9, 30, 21], [8, 4.5, 12, 10.5]], atol=1e-5)
    assert a.labels.tolist() == [0, 1]
    assert a.label_file == yolo_dataset.parent / "labels" / "train" / "a.txt"
    assert len(b) == 0
    (c,) = spec.read("val")
    np.testing.assert_allclose(c.boxes, [[0, 0, 40, 30]])


def test_val_alias_folder_split_and_comments(tmp_path, yolo_dataset):
    root = yolo_dataset.parent
    (root / "t.data").write_text(
        "# a comment\nclasses = 2  # trailing\nnames=t.names\ntrain=images/train\nval=images/val\n"
    )
    spec = load_dataset(root)
    assert [p.name for p in spec.train] == ["a.jpg", "b.jpg"]
    assert [p.name for p in spec.val] == ["c.jpg"]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("classes=3\nnames=t.names\ntrain=train.txt\n", "classes=3 but the names file lists 2", 1),
        ("names=t.names\ntrain=train.txt\nfoo=1\n", "unknown key 'foo'", 3),
        ("names=t.names\ntrain=nothere.txt\n", "train=nothere.txt: not found", 2),
        ("names=t.names\ntrain=train.txt\ntrain=train.txt\n", "given twice", 3),
        ("names=t.names\ntrain=train.txt\nvalid=val.txt\nval=val.txt\n", "not both", 4),
        ("names=t.names\njust words\n", "expected key=value", 2),
        ("train=train.txt\n", "missing 'names='", None),
    ],
)
def test_bad_data_files_are_located(yolo_dataset, text, message, line):
    yolo_dataset.write_text(text)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(yolo_dataset)
    assert error.value.file == str(yolo_dataset) and error.value.line == line


def test_folder_needs_exactly_one_data_file(tmp_path):
    with pytest.raises(DataError, match=r"not a dataset folder: no \.data file"):
        load_dataset(tmp_path)
    (tmp_path / "a.data").write_text("")
    (tmp_path / "b.data").write_text("")
    with pytest.raises(DataError, match=r"a\.data, b\.data"):
        load_dataset(tmp_path)


def test_missing_image_and_label_raise_or_are_reported(yolo_dataset):
    root = yolo_dataset.parent
    images = [root / "images" / "train" / "a.jpg", root / "images" / "train" / "gone.jpg"]
    with pytest.raises(DataError, match="image not found"):
        read_records(images, 2)
    problems: list[Problem] = []
    (root / "labels" / "train" / "a.txt").unlink()
    records = read_records(images, 2, problems)
    assert len(records) == 1 and len(records[0]) == 0
    assert [p.kind for p in problems] == ["missing-label", "missing-image"]


def test_image_helpers(tmp_path, image_factory):
    make_image = image_factory
    make_image(tmp_path / "x" / "b.png", 12, 7)
    make_image(tmp_path / "x" / "sub" / "a.jpg")
    (tmp_path / "x" / "notes.txt").write_text("")
    assert image_size(tmp_path / "x" / "b.png") == (12, 7)
    assert [p.name for p in find_images(tmp_path / "x")] == ["b.png", "a.jpg"]
    (tmp_path / "x" / "bad.jpg").write_text("not an image")
    with pytest.raises(DataError, match="cannot read the image header"):
        image_size(tmp_path / "x" / "bad.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"x/b.png\n\n{tmp_path / 'x' / 'sub' / 'a.jpg'}\n")
    assert read_image_list(listing) == [tmp_path / "x" / "b.png", tmp_path / "x" / "sub" / "a.jpg"]
    assert isinstance(read_image_list(listing)[0], Path)
