import json
from pathlib import Path

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
