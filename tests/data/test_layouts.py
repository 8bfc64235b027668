"""The layouts people bring: an ultralytics data.yaml and LabelImg folders, read like a .data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny import picture, ultralytics_set, voc_xml

from darkyolo.data.layouts import load_dataset
from darkyolo.errors import DataError


def test_an_ultralytics_data_yaml_reads_like_a_data_file(tmp_path: Path) -> None:
    data = ultralytics_set(tmp_path / "set")
    for given in (data, data.parent):  # the file, or the folder holding it
        spec = load_dataset(given)
        assert spec.names == ["cat", "dog"] and spec.split_sizes() == {
            "train": 3,
            "val": 2,
            "test": 0,
        }
    records = spec.read("val")
    assert [r.labels.tolist() for r in records] == [[0], [1]]
    np.testing.assert_allclose(records[1].boxes, [[24, 12, 40, 36]])


def test_roboflow_style_yaml_with_parent_paths_and_a_name_list(tmp_path: Path) -> None:
    root = tmp_path / "export"
    for split in ("train", "valid", "test"):
        picture(root / split / "images" / f"{split}.jpg")
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / f"{split}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\nnames: ['fish']\n"
    )
    spec = load_dataset(root / "data.yaml")
    assert spec.names == ["fish"]
    assert [len(spec.images(s)) for s in ("train", "val", "test")] == [1, 1, 1]
    assert len(spec.read("test")[0]) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: images/train\nnames: [a]\nnc: 2\n", "nc: 2 but names lists 1 classes"),
        ("train: images/train\n", "missing 'names:'"),
        ("names: [a]\n", "missing 'train:'"),
        ("train: images/nowhere\nnames: [a]\n", "train: images/nowhere: not found"),
        ("train: images/train\nnames:\n  1: a\n", "class numbers must be 0..0"),
        ("train: [images/train\nnames: [a]\n", "not valid YAML"),
    ],
)
def test_a_bad_data_yaml_is_one_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    data = ultralytics_set(tmp_path / "set", text)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(data)
    assert error.value.file == str(data) and "\n" not in str(error.value)


def test_a_labelimg_folder_with_xml_beside_the_pictures(tmp_path: Path) -> None:
    folder = tmp_path / "labelled"
    picture(folder / "a.jpg")
    voc_xml(folder / "a.xml", [("dog", (10, 10, 30, 40)), ("cat", (0, 0, 70, 20))])
    picture(folder / "b.jpg")
    voc_xml(folder / "b.xml", [("cat", (5, 6, 20, 30))])
    spec = load_dataset(folder)
    assert spec.names == ["cat", "dog"]  # every name the XML files use, sorted
    assert spec.split_sizes() == {"train": 2, "val": 0, "test": 0}
    a, b = spec.read("train")
    assert a.labels.tolist() == [1, 0] and b.labels.tolist() == [0]
    np.testing.assert_allclose(a.boxes, [[10, 10, 30, 40], [0, 0, 64, 20]])  # clipped to 64 wide
    problems: list = []
    spec.read("train", problems)
    assert [p.kind for p in problems] == ["clipped"] and "object 2 (cat)" in problems[0].message


def test_a_labelimg_folder_takes_classes_txt_and_split_folders(tmp_path: Path) -> None:
    folder = tmp_path / "labelled"
    (folder).mkdir()
    (folder / "classes.txt").write_text("dog\ncat\nbird\n")
    picture(folder / "train" / "a.jpg")
    voc_xml(folder / "train" / "a.xml", [("cat", (1, 2, 30, 40))])
    picture(folder / "val" / "b.jpg")
    voc_xml(folder / "val" / "b.xml", [("owl", (1, 2, 30, 40)), ("dog", (1, 2, 3, 4))])
    spec = load_dataset(folder)
    assert spec.names == ["dog", "cat", "bird"]
    assert spec.read("train")[0].labels.tolist() == [1]
    problems: list = []
    (record,) = spec.read("val", problems)
    assert record.labels.tolist() == [0]  # the unknown class is a problem, not a crash
    assert [p.kind for p in problems] == ["class-range"] and "'owl'" in problems[0].message
    with pytest.raises(DataError, match="class 'owl' is not one of the names"):
        spec.read("val")


def test_a_labelimg_folder_in_the_yolo_txt_variant(tmp_path: Path) -> None:
    folder = tmp_path / "labelled"
    picture(folder / "a.jpg")
    (folder / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    with pytest.raises(DataError, match=r"no classes\.txt"):
        load_dataset(folder)
    (folder / "classes.txt").write_text("dog\ncat\n")
    spec = load_dataset(folder)
    assert spec.names == ["dog", "cat"] and spec.read("train")[0].labels.tolist() == [1]


def test_a_folder_that_is_no_dataset_says_what_it_looked_for(tmp_path: Path) -> None:
    picture(tmp_path / "pics" / "a.jpg")
    with pytest.raises(DataError, match=r"no \.data file, no single data\.yaml"):
        load_dataset(tmp_path / "pics")
