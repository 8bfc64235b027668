import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.convert import ConvertOptions, convert, safe_relative
from darkyolo.data.layouts import load_dataset
from darkyolo.errors import DataError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip("shared data not present")
    return path


def _boxes_by_file(json_path: Path, skip_crowd: bool = True) -> dict[str, list[tuple]]:
    data = json.loads(json_path.read_text())
    images = {im["id"]: im for im in data["images"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    out: dict[str, list[tuple]] = defaultdict(list)
    for a in data["annotations"]:
        if skip_crowd and a.get("iscrowd"):
            continue
        im = images[a["image_id"]]
        out[im["file_name"]].append(
            (a["category_id"], cats[a["category_id"]], im["width"], im["height"], *a["bbox"])
        )
    return out


def test_coco128_round_trip_keeps_every_box(tmp_path):
    source = _need(DATA / "coco128")
    report = convert(source, tmp_path / "yolo", "coco", "yolo")
    assert report.counts["crowd"] == 10
    assert report.boxes_written == 929 == report.boxes_read
    assert report.splits == [("train2017", "train", 128, 929, 2)]
    spec = load_dataset(tmp_path / "yolo")
    assert spec.path.name == "coco128.data" and len(spec.train) == 128 and spec.val == []
    assert (tmp_path / "yolo" / "labels" / "train2017" / "000000000250.txt").read_text() == ""

    back = convert(tmp_path / "yolo", tmp_path / "coco", "yolo", "coco")
    assert back.boxes_written == 929
    original = _boxes_by_file(source / "annotations" / "instances_train2017.json")
    again = _boxes_by_file(tmp_path / "coco" / "annotations" / "instances_train.json")
    assert sorted(original) == sorted(again)
    worst = 0.0
    for name, boxes in original.items():
        assert len(again[name]) == len(boxes)
        for before, after in zip(boxes, again[name]):
            # same category id (coco_ids in the .data restores COCO's ids) and name
            assert before[:4] == after[:4]
            a, b = np.array(before[4:]), np.array(after[4:])
            relative = np.abs(a - b) / np.maximum(np.abs(a), 1e-3)  # 1e-3 px floor for zeros
            worst = max(worst, float(relative.max()))
    # every x, y, w, h agrees within 1e-6 of its own value (float64 inside, 10 digits in the txt)
    assert worst < 1e-6


def test_coco_to_yolo_class_index_matches_darknet_coco_names(tmp_path):
    source = _need(DATA / "coco128")
    convert(source, tmp_path / "yolo", "coco", "yolo", ConvertOptions(link="symlink"))
    data = json.loads((source / "annotations" / "instances_train2017.json").read_text())
    person = next(c["id"] for c in data["categories"] if c["name"] == "person")
    toothbrush = next(c["id"] for c in data["categories"] if c["name"] == "toothbrush")
    darknet = (DATA / "samples" / "coco.names").read_text().splitlines()
    written = (tmp_path / "yolo" / "coco128.names").read_text().splitlines()
    assert len(written) == len(darknet) == 80
    assert written.index("person") == darknet.index("person") == 0
    assert written.index("toothbrush") == darknet.index("toothbrush") == 79
    assert (person, toothbrush) == (1, 90)
    same = sum(a == b for a, b in zip(written, darknet))
    assert same == 74  # the other 6 are Darknet's VOC spellings (motorbike, sofa, ...) in place
    image = tmp_path / "yolo" / "images" / "train2017" / "000000000009.jpg"
    assert image.is_symlink()


def test_bccd_zero_area_boxes_reported_by_file(tmp_path):
    source = _need(DATA / "bccd")
    report = convert(source, tmp_path / "out", "voc", "yolo")
    assert report.counts["zero-area"] == 2
    assert report.examples["zero-area"] == [
        "BloodImage_00338.xml: RBC (504,337,504,337)",
        "BloodImage_00343.xml: RBC (181,329,181,329)",
    ]
    text = "\n".join(report.lines())
    assert "BloodImage_00338.xml" in text and "BloodImage_00343.xml" in text
    assert report.names == ["Platelets", "RBC", "WBC"]
    assert [s[:3] for s in report.splits] == [("trainval", "train", 292), ("test", "valid", 72)]
    assert report.boxes_written == 4886
    spec = load_dataset(tmp_path / "out")
    assert len(spec.train) == 292 and len(spec.val) == 72


def _coco_source(tmp_path: Path, images: list[dict], annotations: list[dict]) -> Path:
    from PIL import Image

    root = tmp_path / "src"
    (root / "images" / "train").mkdir(parents=True)
    (root / "annotations").mkdir()
    for im in images:
        path = root / "images" / "train" / im["file_name"]
        if ".." not in im["file_name"] and not im["file_name"].startswith("/"):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (im["width"], im["height"])).save(path)
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 5, "name": "a"}, {"id": 7, "name": "b"}],
    }
    (root / "annotations" / "instances_train.json").write_text(json.dumps(data))
    return root


def _ann(i, image_id, bbox, category=5, crowd=0):
    return {"id": i, "image_id": image_id, "category_id": category, "bbox": bbox, "iscrowd": crowd}


def test_crowd_zero_area_and_out_of_image_are_counted(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}]
    anns = [
        _ann(1, 1, [5, 5, 10, 10]),
        _ann(2, 1, [0, 0, 40, 30], crowd=1),
        _ann(3, 1, [5, 5, 0, 10], category=7),
        _ann(4, 1, [30, 20, 20, 20]),  # reaches past the right and bottom edges
        _ann(5, 1, [50, 5, 10, 10]),  # entirely outside
        _ann(6, 1, [39.9995, 5, 0.001, 10]),  # past the edge by less than the tolerance
    ]
    src = _coco_source(tmp_path, images, anns)
    report = convert(src, tmp_path / "clip", "coco", "yolo")
    assert report.counts["crowd"] == 1 and report.counts["zero-area"] == 1
    assert report.counts["clipped"] == 1 and report.counts["outside"] == 1
    assert report.examples["zero-area"] == ["a.jpg: b (5,5,5,15)"]
    assert report.examples["clipped"] == ["a.jpg: a (30,20,50,40)"]
    lines = (tmp_path / "clip" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert len(lines) == 3
    assert lines[1] == "0 0.875 0.8333333333 0.25 0.3333333333"
    dropped = convert(src, tmp_path / "drop", "coco", "yolo", ConvertOptions(out_of_image="drop"))
    assert dropped.counts["outside"] == 2 and dropped.counts["clipped"] == 0
    assert dropped.boxes_written == 2
    with_crowd = convert(
        src, tmp_path / "crowd", "coco", "yolo", ConvertOptions(include_crowd=True)
    )
    assert with_crowd.counts["crowd"] == 0 and with_crowd.boxes_written == 4


@pytest.mark.parametrize("bad", ["../../etc/x.jpg", "/etc/x.jpg", "sub/../../x.jpg", "C:\\x.jpg"])
def test_file_name_escaping_the_output_is_refused(tmp_path, bad):
    images = [
        {"id": 1, "file_name": "ok.jpg", "width": 8, "height": 8},
        {"id": 2, "file_name": bad, "width": 8, "height": 8},
    ]
    src = _coco_source(tmp_path, images, [])
    with pytest.raises(DataError, match=r"image id 2 file_name .* would escape the images folder"):
        convert(src, tmp_path / "out", "coco", "yolo")
    assert not (tmp_path / "out").exists()


def test_safe_relative_normalises():
    assert safe_relative("a/./b\\c.jpg", "x") == "a/b/c.jpg"
    with pytest.raises(DataError):
        safe_relative("", "x")


def test_missing_images_fail_unless_skipped(tmp_path):
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 8, "height": 8},
        {"id": 2, "file_name": "b.jpg", "width": 8, "height": 8},
    ]
    src = _coco_source(tmp_path, images, [_ann(1, 2, [1, 1, 2, 2])])
    (src / "images" / "train" / "b.jpg").unlink()
    with pytest.raises(DataError, match=r"1 images of split train are missing: .*b\.jpg"):
        convert(src, tmp_path / "out", "coco", "yolo")
    report = convert(src, tmp_path / "out2", "coco", "yolo", ConvertOptions(skip_missing=True))
    assert report.counts["missing-image"] == 1 and report.splits[0][2] == 1
    assert (tmp_path / "out2" / "train.txt").read_text() == "images/train/a.jpg\n"


def test_non_empty_output_needs_force(tmp_path):
    src = _coco_source(tmp_path, [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}], [])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(DataError, match="not empty"):
        convert(src, tmp_path / "out", "coco", "yolo")
    convert(src, tmp_path / "out", "coco", "yolo", ConvertOptions(force=True, link="copy"))
    convert(src, tmp_path / "out", "coco", "yolo", ConvertOptions(force=True))  # again: replaces
    assert (tmp_path / "out" / "images" / "train" / "a.jpg").is_file()


def test_voc_without_image_sets_goes_to_train(tmp_path, image_factory):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for stem, name in (("one", "cat"), ("two", "ant")):
        image_factory(root / "JPEGImages" / f"{stem}.png")
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename>"  # wrong suffix: found by stem
            f"<object><name>{name}</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
            "<xmax>11</xmax><ymax>12</ymax></bndbox></object></annotation>"
        )
    report = convert(root, tmp_path / "out", "voc", "yolo")
    assert report.names == ["ant", "cat"]
    assert report.splits == [("train", "train", 2, 2, 0)]
    assert (tmp_path / "out" / "images" / "train" / "one.png").is_file()
    assert (tmp_path / "out" / "labels" / "train" / "one.txt").read_text().startswith("1 0.15")
    (tmp_path / "names").write_text("cat\n")
    with pytest.raises(DataError, match="class 'ant' is not one of the names"):
        convert(
            root, tmp_path / "out2", "voc", "yolo", ConvertOptions(names_file=tmp_path / "names")
        )


def test_yolo_to_yolo_and_coco_keep_splits(tmp_path, yolo_dataset):
    report = convert(yolo_dataset, tmp_path / "copy", "yolo", "yolo", ConvertOptions(name="again"))
    assert [s[:3] for s in report.splits] == [("train", "train", 2), ("val", "valid", 1)]
    spec = load_dataset(tmp_path / "copy" / "again.data")
    assert spec.names == ["cat", "dog"] and len(spec.train) == 2 and len(spec.val) == 1
    before = load_dataset(yolo_dataset).read("train")
    after = spec.read("train")
    np.testing.assert_allclose(after[0].boxes, before[0].boxes, atol=1e-5)
    convert(yolo_dataset, tmp_path / "coco", "yolo", "coco")
    data = json.loads((tmp_path / "coco" / "annotations" / "instances_val.json").read_text())
    assert data["categories"][0] == {"id": 1, "name": "cat", "supercategory": ""}
    assert data["annotations"][0]["bbox"] == [0.0, 0.0, 40.0, 30.0]
