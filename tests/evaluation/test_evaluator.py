"""DetectionEvaluator: hand cases with known COCO answers, and parity with pycocotools on files."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from darkyolo.errors import DarkyoloError, DataError
from darkyolo.evaluation.evaluator import (
    COCO80_CATEGORY_IDS,
    STAT_NAMES,
    DetectionEvaluator,
)
from darkyolo.evaluation.reports import (
    format_table,
    to_coco_results,
    write_json,
    write_metrics_json,
)

A = [10.0, 10.0, 50.0, 50.0]
B = [60.0, 20.0, 90.0, 80.0]
FAR = [200.0, 200.0, 240.0, 240.0]
NONE4 = np.zeros((0, 4))
NONE = np.zeros(0)


def _ev(names: list[str] | None = None, **kw) -> DetectionEvaluator:
    return DetectionEvaluator(names or ["person", "car", "dog"], **kw)


def test_perfect_detections_two_images_give_map_one() -> None:
    ev = _ev()
    ev.process(1, [A, B], [0, 1], [A, B], [0.9, 0.8], [0, 1], 320, 240)
    ev.process(2, [B], [2], [B], [0.7], [2], 320, 240)
    r = ev.compute()
    assert r.map == pytest.approx(1.0) and r.map50 == pytest.approx(1.0)
    np.testing.assert_allclose(r.ap, [1.0, 1.0, 1.0])
    assert r.num_images == 2 and r.num_detections == 3
    assert r.notes == []


def test_class_zero_alone_is_scored_not_dropped() -> None:
    ev = _ev(["only"])
    ev.process(0, [A], [0], [A], [0.5], [0], 100, 100)
    r = ev.compute()
    assert r.map == pytest.approx(1.0)
    assert r.ap[0] == pytest.approx(1.0)


def test_false_positive_above_only_true_positive_gives_101_point_ap() -> None:
    # 1 GT; FP at .9 then TP at .8: precision envelope .5 at every recall threshold -> AP .5
    ev = _ev()
    ev.process(1, [A], [0], [FAR, A], [0.9, 0.8], [0, 0], 320, 320)
    assert ev.compute().map == pytest.approx(0.5)


def test_tp_fp_tp_gives_known_101_point_ap() -> None:
    # 2 GT; TP, FP, TP: recall .5 .5 1, envelope 1 then 2/3:
    # 51 thresholds (0..0.50) at 1, 50 thresholds (0.51..1) at 2/3
    ev = _ev()
    ev.process(1, [A, B], [1, 1], [A, FAR, B], [0.9, 0.8, 0.7], [1, 1, 1], 320, 320)
    r = ev.compute()
    expected = (51 * 1.0 + 50 * 2.0 / 3.0) / 101.0
    assert r.ap[1] == pytest.approx(expected)
    assert r.map == pytest.approx(expected)
    rec, prec = r.pr_curves[1]
    assert rec.shape == prec.shape == (101,)
    assert float(prec.mean()) == pytest.approx(r.ap50[1])


def test_partial_overlap_scores_only_low_iou_thresholds() -> None:
    # IoU .62: a TP at thresholds .50, .55, .60 only -> AP@[.5:.95] = 3/10, AP50 = 1
    ev = _ev()
    ev.process(1, [[0.0, 0.0, 100.0, 100.0]], [0], [[0.0, 0.0, 100.0, 62.0]], [0.9], [0], 200, 200)
    r = ev.compute()
    assert r.map50 == pytest.approx(1.0)
    assert r.map == pytest.approx(0.3)
    assert r.stats["AP75"] == pytest.approx(0.0)


def test_class_without_gt_does_not_change_the_mean() -> None:
    ev = _ev()
    ev.process(1, [A], [0], [A, FAR, B], [0.9, 0.95, 0.99], [0, 2, 2], 320, 320)
    r = ev.compute()
    assert r.map == pytest.approx(1.0)
    assert math.isnan(r.ap[2]) and math.isnan(r.ap[1])
    assert 2 not in r.pr_curves


def test_no_detections_gives_zero_and_a_note() -> None:
    ev = _ev(voc_metric="voc07")
    ev.process(1, [A], [0], NONE4, NONE, NONE, 100, 100)
    ev.process(2, NONE4, NONE, NONE4, NONE, NONE, 100, 100)
    r = ev.compute()
    assert r.map == 0.0 and r.map50 == 0.0
    assert r.ap[0] == 0.0 and math.isnan(r.ap[1])
    assert r.voc_ap is not None and r.voc_ap[0] == 0.0
    assert any("no detections" in n for n in r.notes)
    assert to_coco_results(r) == []


def test_no_ground_truth_at_all() -> None:
    ev = _ev()
    ev.process(1, NONE4, NONE, [A], [0.9], [0], 100, 100)
    r = ev.compute()
    assert r.map == -1.0
    assert np.isnan(r.ap).all()
    assert any("no ground-truth" in n for n in r.notes)


def test_unseen_gt_images_are_not_misses_but_processed_empty_images_are() -> None:
    ev = _ev()
    ev.process(1, [A], [0], [A], [0.9], [0], 100, 100)
    assert ev.compute().map == pytest.approx(1.0)
    ev.process(2, [B], [0], NONE4, NONE, NONE, 100, 100)  # processed: its GT is a miss
    assert ev.compute().map == pytest.approx(51 / 101)


def test_crowd_gt_absorbs_detections_and_is_not_counted() -> None:
    ev = _ev()
    crowd = [0.0, 0.0, 300.0, 300.0]
    ev.process(1, [A, crowd], [0, 0], [A, FAR], [0.9, 0.95], [0, 0], 320, 320, gt_iscrowd=[0, 1])
    r = ev.compute()
    assert r.map == pytest.approx(1.0)  # FAR falls inside the crowd region: ignored
    assert r.instances_per_class[0] == 1


def test_torch_tensors_are_accepted() -> None:
    ev = _ev()
    ev.process(
        torch.tensor(3).item(),
        torch.tensor([A]),
        torch.tensor([1]),
        torch.tensor([A], dtype=torch.float16),
        torch.tensor([0.5]),
        torch.tensor([1]),
        100,
        100,
    )
    assert ev.compute().map == pytest.approx(1.0)


def test_max_dets_caps_per_image_with_a_note() -> None:
    ev = _ev(max_dets=2)
    boxes = [FAR, B, A, [0.0, 0.0, 5.0, 5.0]]
    ev.process(1, [A], [0], boxes, [0.1, 0.9, 0.8, 0.2], [0, 0, 0, 0], 320, 320)
    r = ev.compute()
    assert r.num_detections == 2
    assert sorted(r.det_scores.tolist()) == [0.8, 0.9]
    assert any("max_dets=2" in n for n in r.notes)


def test_bad_input_is_a_clear_error() -> None:
    ev = _ev()
    with pytest.raises(DataError, match=r"class 3, expected 0\.\.2"):
        ev.process(1, [A], [3], NONE4, NONE, NONE, 100, 100)
    with pytest.raises(DataError, match="not xyxy"):
        ev.process(1, [[10.0, 10.0, 5.0, 20.0]], [0], NONE4, NONE, NONE, 100, 100)
    with pytest.raises(DataError, match="pred_scores has 2 entries for 1 boxes"):
        ev.process(1, [A], [0], [A], [0.1, 0.2], [0], 100, 100)
    ev.process(1, [A], [0], NONE4, NONE, NONE, 100, 100)
    with pytest.raises(DataError, match="processed twice"):
        ev.process(1, [A], [0], NONE4, NONE, NONE, 100, 100)
    ev.reset()
    with pytest.raises(DarkyoloError, match="no images"):
        ev.compute()
    with pytest.raises(DarkyoloError, match="voc_metric"):
        _ev(voc_metric="voc12")


def _random_case(seed: int, num_images: int = 12, num_classes: int = 4):
    """Jittered GT copies, missed GT and random false positives; the last class has no GT."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(num_images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 500, size=(n, 2))
        wh = rng.uniform(4, 200, size=(n, 2))
        gt = np.concatenate([xy, xy + wh], axis=1)
        gl = rng.integers(0, num_classes - 1, size=n)
        keep = rng.random(n) < 0.8
        pred = gt[keep] + rng.normal(0, 6, size=(int(keep.sum()), 4))
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        pl = gl[keep].copy()
        nf = int(rng.integers(0, 5))
        fxy = rng.uniform(0, 500, size=(nf, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(4, 100, size=(nf, 2))], axis=1)
        pb = np.concatenate([pred, fp])
        pl = np.concatenate([pl, rng.integers(0, num_classes, size=nf)])
        ps = rng.random(len(pb))
        images.append((1000 + i, gt, gl, pb, ps, pl))
    return images


def test_per_class_means_equal_pycocotools_and_file_route(tmp_path: Path) -> None:
    names = ["a", "b", "c", "nogt"]
    images = _random_case(0, num_classes=len(names))
    ev = DetectionEvaluator(names)
    for iid, gt, gl, pb, ps, pl in images:
        ev.process(iid, gt, gl, pb, ps, pl, 700, 700)
    r = ev.compute()
    assert math.isnan(r.ap[3])
    assert np.nanmean(r.ap) == pytest.approx(r.stats["AP"], abs=1e-12)
    assert np.nanmean(r.ap50) == pytest.approx(r.stats["AP50"], abs=1e-12)
    assert 0.1 < r.map < 0.95
    assert list(r.stats) == list(STAT_NAMES)

    # The same data as COCO files with real COCO category ids, scored by pycocotools alone.
    cat_ids = COCO80_CATEGORY_IDS[10:14]  # 11, 13, 14, 15: a gap in the ids
    gt_json = {
        "images": [{"id": iid, "width": 700, "height": 700} for iid, *_ in images],
        "categories": [{"id": cat_ids[k], "name": n} for k, n in enumerate(names)],
        "annotations": [],
    }
    for iid, gt, gl, *_ in images:
        for box, lab in zip(gt.tolist(), gl.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            gt_json["annotations"].append(
                {
                    "id": len(gt_json["annotations"]) + 1,
                    "image_id": iid,
                    "category_id": cat_ids[lab],
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt_json))
    res_path = write_json(r, tmp_path / "res.json", category_ids=cat_ids, decimals=None)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(res_path))
        ce = COCOeval(coco_gt, coco_dt, "bbox")
        ce.evaluate()
        ce.accumulate()
        ce.summarize()
    np.testing.assert_allclose(list(r.stats.values()), ce.stats, atol=1e-12)


def test_results_json_loads_back_with_loadres(tmp_path: Path) -> None:
    ev = _ev()
    ev.process("img_a", [A], [0], [A, B], [0.9, 0.3], [0, 1], 320, 320)
    r = ev.compute()
    path = write_json(r, tmp_path / "out" / "results.json")
    data = json.loads(path.read_text())
    assert data[0] == {
        "image_id": "img_a",
        "category_id": 0,
        "bbox": [10.0, 10.0, 40.0, 40.0],
        "score": 0.9,
    }
    gt = COCO()
    gt.dataset = {
        "images": [{"id": "img_a"}],
        "annotations": [],
        "categories": [{"id": k} for k in range(3)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(str(path))
    assert len(dt.getAnnIds()) == 2
    mapped = to_coco_results(r, category_ids={0: 1, 1: 2, 2: 3})
    assert [d["category_id"] for d in mapped] == [1, 2]


def test_voc_option_and_table_and_metrics_json(tmp_path: Path) -> None:
    ev = _ev(voc_metric="voc07")
    ev.process(1, [A, B], [1, 1], [A, FAR, B], [0.9, 0.8, 0.7], [1, 1, 1], 320, 320)
    r = ev.compute()
    assert r.voc_ap is not None
    assert r.voc_ap[1] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert r.voc_map == pytest.approx(r.voc_ap[1])
    table = format_table(r)
    lines = table.splitlines()
    assert lines[0].split() == ["class", "images", "instances", "AP50", "AP", "voc07"]
    assert lines[1].split()[:3] == ["all", "1", "2"]
    assert lines[2].split()[1:] == ["0", "0", "-", "-", "-"]
    assert lines[3].split()[0] == "car" and lines[3].split()[2] == "2"
    m = json.loads(write_metrics_json(r, tmp_path / "m.json").read_text())
    assert m["classes"][0]["ap"] is None
    assert m["classes"][1]["voc_ap"] == pytest.approx(r.voc_ap[1])
    assert m["map"] == pytest.approx(r.map)
    assert "Average Precision" in m["summary"]


def test_summary_captured_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    ev = _ev()
    ev.process(1, [A], [0], [A], [0.9], [0], 100, 100)
    r = ev.compute()
    assert capsys.readouterr().out == ""
    assert r.summary.count("Average Precision") == 6
    ev.verbose = True
    ev.compute()
    assert "Average Recall" in capsys.readouterr().out


def test_gt_area_decides_the_size_range() -> None:
    ev = _ev()
    big = [0.0, 0.0, 100.0, 100.0]  # box area 10000: large
    ev.process(1, [big], [0], [big], [0.9], [0], 200, 200, gt_area=[500.0])  # mask area: small
    r = ev.compute()
    assert r.stats["APs"] == pytest.approx(1.0)
    assert r.stats["APl"] == -1.0


def test_parity_with_pycocotools_on_coco128(tmp_path: Path) -> None:
    """Real COCO GT (mask areas, crowd boxes, id gaps, background images) with jittered detections:
    our in-memory evaluation equals pycocotools run on the original JSON file."""
    root = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco128"
    ann_file = root / "annotations" / "instances_train2017.json"
    if not ann_file.is_file():
        pytest.skip("shared coco128 data not present")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(ann_file))
    cat_ids = sorted(coco_gt.getCatIds())
    cls_of = {cid: k for k, cid in enumerate(cat_ids)}
    names = [coco_gt.cats[cid]["name"] for cid in cat_ids]
    rng = np.random.default_rng(1)
    ev = DetectionEvaluator(names)
    for img in coco_gt.dataset["images"]:
        anns = coco_gt.imgToAnns[img["id"]]
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        gt = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        gl = np.array([cls_of[a["category_id"]] for a in anns], dtype=np.int64)
        keep = rng.random(len(gt)) < 0.85
        wh = np.tile(xywh[keep, 2:4], 2)  # noise scaled to each box: 5% of its width/height
        pred = gt[keep] + rng.normal(0, 0.05, size=(int(keep.sum()), 4)) * wh
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        pl = np.where(rng.random(len(pred)) < 0.9, gl[keep], rng.integers(0, 80, len(pred)))
        ps = rng.random(len(pred))
        ev.process(
            img["id"],
            gt,
            gl,
            pred,
            ps,
            pl,
            img["width"],
            img["height"],
            gt_iscrowd=[a["iscrowd"] for a in anns],
            gt_area=[a["area"] for a in anns],
        )
    r = ev.compute()
    res_path = write_json(r, tmp_path / "res.json", category_ids=cat_ids, decimals=None)
    with contextlib.redirect_stdout(io.StringIO()):
        ce = COCOeval(coco_gt, coco_gt.loadRes(str(res_path)), "bbox")
        ce.evaluate()
        ce.accumulate()
        ce.summarize()
    assert 0.2 < r.map < 0.9
    np.testing.assert_allclose(list(r.stats.values()), ce.stats, atol=1e-12)
    assert np.nanmean(r.ap) == pytest.approx(ce.stats[0], abs=1e-12)
