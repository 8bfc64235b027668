import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from darkyolo.cli import main
from darkyolo.commands.convert import guess_format

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _tiny_coco(root: Path, file_name: str = "a.jpg") -> Path:
    (root / "images" / "val").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", (20, 10)).save(root / "images" / "val" / "a.jpg")
    data = {
        "images": [{"id": 1, "file_name": file_name, "width": 20, "height": 10}],
        "categories": [{"id": 3, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 20, 10], "iscrowd": 1},
        ],
    }
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return root


def test_convert_coco_prints_summary_and_writes_description(tmp_path, capsys):
    src = _tiny_coco(tmp_path / "tiny")
    assert main(["convert", str(src), str(tmp_path / "out"), "--from", "coco", "--to", "yolo"]) == 0
    out = capsys.readouterr().out
    assert "split val (valid): 1 images, 1 boxes" in out
    assert "crowd boxes skipped: 1" in out
    data = (tmp_path / "out" / "tiny.data").read_text()
    assert "classes=1" in data and "valid=valid.txt" in data and "coco_ids=3" in data
    assert (tmp_path / "out" / "labels" / "val" / "a.txt").read_text() == ("0 0.25 0.25 0.5 0.5\n")


def test_convert_refuses_escaping_file_name(tmp_path, capsys):
    src = _tiny_coco(tmp_path / "tiny", file_name="../../../etc/passwd")
    assert main(["convert", str(src), str(tmp_path / "out"), "--from", "coco"]) == 2
    err = capsys.readouterr().err
    assert "image id 1 file_name '../../../etc/passwd': path would escape the images folder" in err


def test_convert_bccd_names_zero_area_files(tmp_path, capsys):
    if not (DATA / "bccd").is_dir():
        pytest.skip("shared data not present")
    assert main(["convert", str(DATA / "bccd"), str(tmp_path / "out"), "--from", "voc"]) == 0
    out = capsys.readouterr().out
    assert "zero-area boxes dropped: 2" in out
    assert "BloodImage_00338.xml: RBC (504,337,504,337)" in out
    assert "BloodImage_00343.xml: RBC (181,329,181,329)" in out


def test_guess_format(tmp_path):
    assert guess_format(Path("x/instances_val.json")) == "coco"
    assert guess_format(Path("x/a.data")) == "yolo"
    (tmp_path / "Annotations").mkdir()
    assert guess_format(tmp_path) == "voc"


def test_a_labelimg_folder_converts_and_an_ultralytics_layout_round_trips(tmp_path, capsys):
    from tiny import picture, voc_xml

    from darkyolo.data.layouts import load_dataset

    folder = tmp_path / "labelled"
    for split, stems in (("train", ["a", "b"]), ("val", ["c"])):
        for stem in stems:
            picture(folder / split / f"{stem}.jpg")
            voc_xml(folder / split / f"{stem}.xml", [("cat", (4, 4, 30, 40)), ("dog", (30, 10, 60, 44))])  # fmt: skip
    assert main(["convert", str(folder), str(tmp_path / "yolo")]) == 0  # guessed: labelimg
    assert "labelimg -> yolo" in capsys.readouterr().out.lower()
    yolo = load_dataset(tmp_path / "yolo")
    assert yolo.names == ["cat", "dog"] and yolo.split_sizes()["val"] == 1

    assert main(["convert", str(folder), str(tmp_path / "ul"), "--to", "ultralytics"]) == 0
    written = load_dataset(tmp_path / "ul" / "data.yaml")
    original = load_dataset(folder)
    for split in ("train", "val"):
        before, after = original.read(split), written.read(split)
        assert [r.image.name for r in before] == [r.image.name for r in after]
        for a, b in zip(before, after):
            np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
            assert a.labels.tolist() == b.labels.tolist()
    yaml_text = (tmp_path / "ul" / "data.yaml").read_text()
    assert "train: images/train" in yaml_text and "val: images/val" in yaml_text
    assert "0: cat" in yaml_text and "nc: 2" in yaml_text
