import json
from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.formats.coco import (
    COCO80_CATEGORY_IDS,
    default_images_dir,
    read_coco,
    results_entries,
    split_name,
    write_coco,
)
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
COCO128 = DATA / "coco128" / "annotations" / "instances_train2017.json"


def _coco(tmp_path, **changes):
    data = {
        "info": {"description": "t"},
        "images": [
            {"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 3, "file_name": "b.jpg", "width": 20, "height": 20},
        ],
        "categories": [{"id": 9, "name": "nine"}, {"id": 2, "name": "two"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 9, "bbox": [10, 5, 20, 10], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [0, 0, 100, 50], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [1, 2, 3, 4]},
        ],
    }
    data.update(changes)
    path = tmp_path / "instances_x.json"
    path.write_text(json.dumps(data))
    return path


def test_class_index_is_position_in_id_sorted_categories(tmp_path):
    coco = read_coco(_coco(tmp_path), images_dir=tmp_path)
    assert coco.names == ["two", "nine"] and coco.category_ids == [2, 9]
    assert coco.crowd_skipped == 1
    first, second = coco.records
    assert (first.image, first.width, first.height, first.image_id) == (
        tmp_path / "a.jpg",
        100,
        50,
        7,
    )
    np.testing.assert_allclose(first.boxes, [[10, 5, 30, 15], [1, 2, 4, 6]])
    assert first.labels.tolist() == [1, 0]
    assert len(second) == 0
    with_crowd = read_coco(_coco(tmp_path), images_dir=tmp_path, include_crowd=True)
    assert len(with_crowd.records[0]) == 3 and with_crowd.crowd_skipped == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"annotations": [{"id": 5, "image_id": 99, "category_id": 2, "bbox": [0, 0, 1, 1]}]},
         "annotation id 5: image_id 99 is not in 'images'"),
        ({"annotations": [{"id": 5, "image_id": 7, "category_id": 4, "bbox": [0, 0, 1, 1]}]},
         "annotation id 5: category_id 4 is not in 'categories'"),
        ({"annotations": [{"id": 6, "image_id": 7, "category_id": 2, "bbox": [0, 0, 1]}]},
         "annotation id 6: bbox must be 4 numbers"),
        ({"annotations": [{"id": 6, "image_id": 7, "bbox": [0, 0, 1, 1]}]},
         "annotation id 6: missing 'category_id'"),
        ({"images": [{"id": 1, "file_name": "a.jpg", "width": 5}]}, "images\\[0\\] image id 1"),
        ({"images": [{"id": 1, "file_name": "a.jpg", "width": 5, "height": 5}] * 2},
         "image id 1 is listed twice"),
        ({"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, "category id 1 is listed twice"),
        ({"annotations": None}, "missing the 'annotations' list"),
    ],
)  # fmt: skip
def test_malformed_entries_are_named(tmp_path, changes, message):
    with pytest.raises(DataError, match=message) as error:
        read_coco(_coco(tmp_path, **changes))
    assert error.value.file == str(tmp_path / "instances_x.json")


def test_invalid_json_is_a_data_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_coco(path)


def test_write_then_read_keeps_boxes_and_ids(tmp_path):
    records = [
        ImageRecord(tmp_path / "a.jpg", 100, 50, [[10.25, 5, 30, 15.5]], [1], image_id=11),
        ImageRecord(tmp_path / "b.jpg", 20, 20, image_id=12),
    ]
    path = tmp_path / "out.json"
    write_coco(path, records, ["two", "nine"], ["a.jpg", "b.jpg"], category_ids=[2, 9])
    data = json.loads(path.read_text())
    assert data["annotations"] == [
        {"id": 1, "image_id": 11, "category_id": 9, "bbox": [10.25, 5.0, 19.75, 10.5],
         "area": 207.375, "iscrowd": 0}
    ]  # fmt: skip
    again = read_coco(path, images_dir=tmp_path)
    assert again.names == ["two", "nine"] and [r.image_id for r in again.records] == [11, 12]
    np.testing.assert_allclose(again.records[0].boxes, records[0].boxes)
    write_coco(path, records, ["two", "nine"], ["a.jpg", "b.jpg"])
    assert [c["id"] for c in json.loads(path.read_text())["categories"]] == [1, 2]


def test_split_name_and_default_images_dir(tmp_path):
    assert split_name("x/instances_val2017.json") == "val2017"
    assert split_name("x/labels.json") == "labels"
    (tmp_path / "images" / "val2017").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    json_path = tmp_path / "annotations" / "instances_val2017.json"
    assert default_images_dir(json_path) == tmp_path / "images" / "val2017"


def test_coco128_mapping_matches_coco_names():
    if not COCO128.is_file():
        pytest.skip("shared data not present")
    coco = read_coco(COCO128)
    darknet = (DATA / "samples" / "coco.names").read_text().splitlines()
    # Darknet's coco.names spells six classes the VOC way; the positions are the same
    spelling = {
        "motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
        "pottedplant": "potted plant", "diningtable": "dining table", "tvmonitor": "tv",
    }  # fmt: skip
    assert coco.names == [spelling.get(n, n) for n in darknet]
    assert coco.category_ids[0] == 1 and coco.category_ids[-1] == 90
    assert coco.crowd_skipped == 10
    assert sum(len(r) for r in coco.records) == 929
    assert all(r.image.is_file() for r in coco.records)
    empty = sorted(r.image.name for r in coco.records if not len(r))
    assert empty == ["000000000250.jpg", "000000000508.jpg"]


def test_coco80_ids_follow_coco128_categories() -> None:
    assert len(set(COCO80_CATEGORY_IDS)) == 80 and COCO80_CATEGORY_IDS[-1] == 90
    assert list(COCO80_CATEGORY_IDS) == sorted(COCO80_CATEGORY_IDS)
    if not COCO128.is_file():
        pytest.skip("coco128 is absent")
    categories = json.loads(COCO128.read_text())["categories"]
    assert sorted(c["id"] for c in categories) == list(COCO80_CATEGORY_IDS)


def test_results_entries_xywh_rounding_and_ids() -> None:
    boxes = np.array([[10.12345, 20.0, 30.5, 60.25], [0, 0, 1, 1]], dtype=np.float32)
    scores = np.array([0.9876543, 0.5], dtype=np.float32)
    labels = np.array([2, 0])
    out = results_entries(7, boxes, scores, labels, COCO80_CATEGORY_IDS)
    assert out[0] == {
        "image_id": 7,
        "category_id": 3,
        "bbox": [10.123, 20.0, 20.377, 40.25],
        "score": 0.98765,
    }
    assert out[1]["category_id"] == 1 and out[1]["bbox"] == [0.0, 0.0, 1.0, 1.0]
    raw = results_entries("a", boxes[:1].astype(np.float64), scores[:1], labels[:1], None, None)
    assert raw[0]["category_id"] == 2 and raw[0]["bbox"][2] == float(boxes[0, 2]) - float(
        boxes[0, 0]
    )
    assert results_entries(1, np.zeros((0, 4)), [], [], None) == []
