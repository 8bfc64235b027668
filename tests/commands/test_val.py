"""``darkyolo val``: honest COCO numbers on a COCO JSON, any split, and the checkpoint it trained."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from tiny import make_bccd_subset, run_cli, shared_data, train_tiny

COCO128_JSON = "coco128/annotations/instances_train2017.json"


def _pycocotools(annotations: Path, results: Path) -> tuple[float, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        evaluation = COCOeval(gt, gt.loadRes(str(results)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


@pytest.mark.slow
def test_val_on_coco128_equals_pycocotools_on_the_original_json(tmp_path: Path) -> None:
    """The official weights on coco128: ``val --data instances.json`` gives, to 1e-4, what
    pycocotools gives on the original JSON for ``detect --save-json`` at the same settings."""
    annotations = shared_data(COCO128_JSON)
    images = annotations.parent.parent / "images" / "train2017"
    val = f"val --data {annotations} --project {tmp_path} --name val --no-plots --no-progress"
    status, err, _ = run_cli(val.split(), tmp_path)
    assert status == 0, err
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    val_map, val_map50 = metrics["map"], metrics["map50"]
    detect = (
        f"detect {images} --multi-label --conf 0.001 --iou 0.6 --max-det 300 --save-json "
        f"--nosave --image-ids {annotations} --project {tmp_path} --name detect"
    )
    status, err, _ = run_cli(detect.split(), tmp_path)
    assert status == 0, err
    results = tmp_path / "detect" / "predictions.json"
    ids = {entry["image_id"] for entry in json.loads(results.read_text())}
    assert ids <= {image["id"] for image in json.loads(annotations.read_text())["images"]}
    coco_map, coco_map50 = _pycocotools(annotations, results)
    assert abs(val_map - coco_map) <= 1e-4, (val_map, coco_map)
    assert abs(val_map50 - coco_map50) <= 1e-4, (val_map50, coco_map50)
    # The figures the docs quote (COCO's own train2017 labels, 416, multi-label, NMS 0.6).
    assert 0.14 < coco_map < 0.17 and 0.28 < coco_map50 < 0.32, (coco_map, coco_map50)
    # val's own results file is the same detections, with COCO's image and category ids.
    assert _pycocotools(annotations, tmp_path / "val" / "predictions.json") == pytest.approx(
        (coco_map, coco_map50), abs=1e-4
    )


def test_a_converted_coco_set_without_a_val_split_names_the_splits_that_have_images(
    tmp_path: Path,
) -> None:
    annotations = shared_data(COCO128_JSON)
    status, err, _ = run_cli(
        ["convert", str(annotations), str(tmp_path / "yolo"), "--to", "yolo"], tmp_path
    )
    assert status == 0, err
    status, err, _ = run_cli(["val", "--data", str(tmp_path / "yolo" / "coco128.data")], tmp_path)
    assert status == 2
    assert "the val split has no usable images; splits with images: train (128)" in err


def test_a_split_can_be_test_a_list_or_a_folder(tmp_path: Path) -> None:
    data = make_bccd_subset(tmp_path, 4, 2)
    root = data.parent
    valid = (root / "valid.txt").read_text().split()
    (root / "test.txt").write_text(valid[0] + "\n")
    data.write_text(data.read_text() + "test=test.txt\n")
    for split, expected in (("test", 1), (str(root / "valid.txt"), 2), (str(root / "images"), 6)):
        val = f"val --model bccd --data {data} --split {split} --project {tmp_path / 'runs'}"
        status, err, out = run_cli([*val.split(), "--no-plots", "--no-progress"], tmp_path)
        assert status == 0, (split, err)
        assert f": {expected} images" in out.splitlines()[0], (split, out)
    status, err, _ = run_cli(
        ["val", "--model", "bccd", "--data", str(data), "--split", "nope"], tmp_path
    )
    assert status == 2 and "expected train, val, test, an image list or a folder" in err


def test_a_coco_json_is_one_split(tmp_path: Path) -> None:
    annotations = shared_data(COCO128_JSON)
    status, err, _ = run_cli(["val", "--data", str(annotations), "--split", "val"], tmp_path)
    assert status == 2 and "a COCO JSON is one split already" in err


def test_val_of_a_checkpoint_scores_at_the_size_it_trained_at(
    tmp_path: Path, bccd_small: Path, tiny_cfg_file: Path
) -> None:
    import csv

    run = train_tiny(tiny_cfg_file, bccd_small, tmp_path / "runs", epochs=2)
    with open(run / "results.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    status, err, out = run_cli(
        ["val", "--weights", str(run / "weights" / "last.pt"), "--data", str(bccd_small),
         "--no-plots", "--no-progress", "--project", str(tmp_path / "val")],
        tmp_path,
    )  # fmt: skip
    assert status == 0, err
    assert "input 96x96" not in out  # the run's cfg itself says 96 (the tiny cfg says 64)
    assert "width=96\nheight=96" in (run / "model.cfg").read_text()
    scores = json.loads((tmp_path / "val" / "exp" / "metrics.json").read_text())
    for key in ("map50", "map"):
        assert abs(scores[key] - float(last[key])) <= 2e-3, key
