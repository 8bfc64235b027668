"""VOC AP by hand: hand-computed cases for 11-point and all-point AP and the devkit matching rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkyolo.evaluation.voc_ap import box_iou_np, evaluate_voc, voc_ap, voc_eval_class

BOX = [0.0, 0.0, 10.0, 10.0]
FAR = [50.0, 50.0, 60.0, 60.0]


def _two_gt_tp_fp_tp(use_07_metric: bool) -> float:
    """2 GT in one image; detections by score: TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3."""
    gts = [np.array([BOX, [20.0, 20.0, 30.0, 30.0]])]
    boxes = np.array([BOX, FAR, [20.0, 20.0, 30.0, 30.0]])
    res = voc_eval_class([0, 0, 0], [0.9, 0.8, 0.7], boxes, gts, use_07_metric=use_07_metric)
    np.testing.assert_allclose(res.recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(res.precision, [1.0, 0.5, 2.0 / 3.0])
    assert (res.npos, res.num_tp, res.num_fp) == (2, 2, 1)
    return res.ap


def test_voc07_11_point_hand_case() -> None:
    # t = 0 .. .5 (6 points): best precision 1; t = .6 .. 1 (5 points): 2/3
    assert _two_gt_tp_fp_tp(True) == pytest.approx((6 * 1.0 + 5 * 2.0 / 3.0) / 11.0)


def test_voc_all_point_hand_case() -> None:
    # area under the envelope: .5 * 1 + .5 * 2/3
    assert _two_gt_tp_fp_tp(False) == pytest.approx(0.5 + 0.5 * 2.0 / 3.0)


def test_voc07_counts_recall_exactly_point_three() -> None:
    # recall reaches exactly 3/10 with precision 1, then nothing: points t = 0, .1, .2, .3 count
    assert voc_ap(np.array([0.1, 0.2, 0.3]), np.ones(3), use_07_metric=True) == pytest.approx(
        4 / 11
    )


def test_voc_all_point_perfect_and_empty() -> None:
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0


def test_difficult_gt_is_ignored_not_fp_and_not_counted() -> None:
    gts = [np.array([BOX, [20.0, 20.0, 30.0, 30.0]])]
    diff = [np.array([False, True])]
    boxes = np.array([[20.0, 20.0, 30.0, 30.0], BOX])
    res = voc_eval_class([0, 0], [0.9, 0.8], boxes, gts, diff)
    assert (res.npos, res.num_tp, res.num_fp) == (1, 1, 0)
    assert res.ap == pytest.approx(1.0)


def test_duplicate_is_fp_and_best_iou_has_no_fallback() -> None:
    # Two GT side by side; both detections overlap GT 0 best. The second goes to GT 0 again and is
    # an FP in VOC even though it also overlaps GT 1 above .5 (COCO would give it GT 1).
    gts = [np.array([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0]])]
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [0.5, 0.0, 10.5, 10.0]])
    res = voc_eval_class([0, 0], [0.9, 0.8], boxes, gts)
    assert (res.num_tp, res.num_fp) == (1, 1)


def test_threshold_inclusive_by_default_strict_as_option() -> None:
    gts = [np.array([BOX])]
    half = np.array([[0.0, 0.0, 10.0, 5.0]])  # IoU exactly .5
    assert voc_eval_class([0], [0.9], half, gts).num_tp == 1
    assert voc_eval_class([0], [0.9], half, gts, strict=True).num_tp == 0


def test_plus_one_iou() -> None:
    a = np.array([[0.0, 0.0, 9.0, 9.0]])
    b = np.array([[5.0, 0.0, 14.0, 9.0]])
    assert box_iou_np(a, b, plus_one=True)[0, 0] == pytest.approx(50.0 / 150.0)
    assert box_iou_np(a, b)[0, 0] == pytest.approx(36.0 / 126.0)


def test_detection_in_image_without_gt_is_fp() -> None:
    gts = [np.array([BOX]), np.zeros((0, 4))]
    res = voc_eval_class([1, 0], [0.9, 0.8], np.array([BOX, BOX]), gts)
    assert (res.num_tp, res.num_fp) == (1, 1)
    np.testing.assert_allclose(res.precision, [0.0, 0.5])


def test_evaluate_voc_per_class_and_no_gt_class_is_nan() -> None:
    results = evaluate_voc(
        gt_boxes=[np.array([BOX]), np.array([FAR])],
        gt_labels=[np.array([0]), np.array([1])],
        pred_boxes=[np.array([BOX, FAR]), np.zeros((0, 4))],
        pred_scores=[np.array([0.9, 0.5]), np.zeros(0)],
        pred_labels=[np.array([0, 2]), np.zeros(0)],
        num_classes=3,
        use_07_metric=True,
    )
    assert results[0].ap == pytest.approx(1.0)
    assert results[1].ap == 0.0  # GT never found
    assert math.isnan(results[2].ap)  # no GT: left out of the mean
    assert results[2].num_fp == 1


def test_evaluate_voc_no_images() -> None:
    assert all(math.isnan(r.ap) for r in evaluate_voc([], [], [], [], [], num_classes=2))
