"""Pascal VOC average precision, computed by hand the way the VOC devkit does it.

Boxes are ``xyxy`` in pixels. Matching, per class (VOC devkit ``VOCevaldet``):

- detections of all images are sorted by confidence (stable: ties keep input order);
- each detection goes to the ground-truth box of highest IoU in its image (no fallback to the
  next best, unlike COCO);
- if that IoU passes the threshold: a *difficult* GT makes the detection ignored (neither TP nor
  FP), an unmatched GT makes it a TP (and marks the GT), an already matched GT makes it an FP;
  otherwise it is an FP;
- recall = TP / (number of non-difficult GT), precision = TP / (TP + FP).

AP is either the VOC2007 11-point mean (``use_07_metric=True``) or the VOC2010+ all-point area.

Two choices the devkit makes are options here:

- ``plus_one``: the devkit counts inclusive integer pixels (width = x2 - x1 + 1) because VOC
  XML boxes are 1-based pixel indices. darkyolo boxes are continuous pixel-corner coordinates
  (width = x2 - x1), so the default is ``False``; pass ``True`` only to reproduce devkit numbers
  on boxes given in the devkit's own integer convention.
- ``strict``: the devkit accepts IoU ``>=`` threshold; py-faster-rcnn's ``voc_eval`` uses ``>``.
  Default ``False`` (the devkit). They differ only at exactly the threshold.

The 11 recall points are ``k / 10`` for k = 0..10 (py-faster-rcnn's ``np.arange(0, 1.1, 0.1)``
yields 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001, which miss a recall of
exactly 0.3, 0.6 or 0.7; we use the intended values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["VocClassResult", "box_iou_np", "evaluate_voc", "voc_ap", "voc_eval_class"]


@dataclass(frozen=True)
class VocClassResult:
    """VOC result for one class.

    Attributes:
        ap: average precision, NaN when the class has no non-difficult GT.
        recall: ``[D']`` cumulative recall over the non-ignored detections, in score order.
        precision: ``[D']`` cumulative precision, same order.
        npos: number of non-difficult GT boxes.
        num_tp: true positives; num_fp: false positives (ignored detections are in neither).
    """

    ap: float
    recall: np.ndarray
    precision: np.ndarray
    npos: int
    num_tp: int
    num_fp: int


def box_iou_np(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of every pair: ``a [N, 4]`` and ``b [M, 4]`` xyxy -> ``[N, M]``.

    With ``plus_one`` widths and heights are ``x2 - x1 + 1`` (the VOC devkit's inclusive pixels).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """AP from a cumulative PR curve (``recall``, ``precision``: ``[D]``, detections in score order).

    ``use_07_metric``: mean over t in {0, .1, ..., 1} of the highest precision at recall >= t
    (0 when recall never reaches t). Otherwise (VOC2010+): add sentinels (recall 0 and 1,
    precision 0), make precision non-increasing from the right, and sum
    ``delta recall * precision`` wherever recall changes.
    """
    rec = np.asarray(recall, dtype=np.float64).ravel()
    prec = np.asarray(precision, dtype=np.float64).ravel()
    if rec.shape != prec.shape:
        raise ValueError(f"voc_ap: recall {rec.shape} and precision {prec.shape} differ in shape")
    if use_07_metric:
        total = 0.0
        for k in range(11):
            reached = rec >= k / 10.0
            total += float(prec[reached].max()) if reached.any() else 0.0
        return total / 11.0
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    change = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[change + 1] - mrec[change]) * mpre[change + 1]))


def voc_eval_class(
    det_image: np.ndarray,
    det_scores: np.ndarray,
    det_boxes: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    gt_difficult: Sequence[np.ndarray] | None = None,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    plus_one: bool = False,
    strict: bool = False,
) -> VocClassResult:
    """VOC AP of one class.

    Args:
        det_image: ``[D]`` int, index into ``gt_boxes`` of each detection's image.
        det_scores: ``[D]`` confidences.
        det_boxes: ``[D, 4]`` xyxy pixels.
        gt_boxes: per image, ``[G_i, 4]`` xyxy pixels of this class's GT.
        gt_difficult: per image, ``[G_i]`` bool; None means no difficult boxes.
        iou_threshold: VOC uses 0.5.
        use_07_metric: 11-point (VOC2007) instead of all-point (VOC2010+) AP.
        plus_one: inclusive-pixel IoU (see module docstring).
        strict: require IoU > threshold instead of >=.
    """
    det_image = np.asarray(det_image, dtype=np.int64).ravel()
    det_scores = np.asarray(det_scores, dtype=np.float64).ravel()
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    if not (len(det_image) == len(det_scores) == len(det_boxes)):
        raise ValueError("voc_eval_class: det_image, det_scores and det_boxes differ in length")
    gts = [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gt_boxes]
    if gt_difficult is None:
        diffs = [np.zeros(len(g), dtype=bool) for g in gts]
    else:
        diffs = [np.asarray(d, dtype=bool).ravel() for d in gt_difficult]
        if len(diffs) != len(gts) or any(len(d) != len(g) for d, g in zip(diffs, gts)):
            raise ValueError("voc_eval_class: gt_difficult does not match gt_boxes")
    npos = int(sum(int((~d).sum()) for d in diffs))
    matched = [np.zeros(len(g), dtype=bool) for g in gts]

    order = np.argsort(-det_scores, kind="mergesort")
    tp = np.zeros(len(order), dtype=np.float64)
    fp = np.zeros(len(order), dtype=np.float64)
    for rank, d in enumerate(order):
        img = int(det_image[d])
        g = gts[img]
        if len(g) == 0:
            fp[rank] = 1.0
            continue
        ious = box_iou_np(det_boxes[d : d + 1], g, plus_one=plus_one)[0]
        best = int(np.argmax(ious))
        best_iou = float(ious[best])
        passed = best_iou > iou_threshold if strict else best_iou >= iou_threshold
        if not passed:
            fp[rank] = 1.0
        elif diffs[img][best]:
            continue  # ignored: neither TP nor FP
        elif not matched[img][best]:
            matched[img][best] = True
            tp[rank] = 1.0
        else:
            fp[rank] = 1.0
    kept = (tp + fp) > 0
    ctp = np.cumsum(tp[kept])
    cfp = np.cumsum(fp[kept])
    if npos == 0:
        return VocClassResult(
            float("nan"), np.zeros(0), np.zeros(0), 0, int(tp.sum()), int(fp.sum())
        )
    recall = ctp / npos
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    ap = voc_ap(recall, precision, use_07_metric=use_07_metric)
    return VocClassResult(ap, recall, precision, npos, int(tp.sum()), int(fp.sum()))


def evaluate_voc(
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    num_classes: int,
    gt_difficult: Sequence[np.ndarray] | None = None,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    plus_one: bool = False,
    strict: bool = False,
) -> list[VocClassResult]:
    """VOC AP for every class over a set of images.

    Args:
        gt_boxes, gt_labels: per image ``[G_i, 4]`` xyxy pixels and ``[G_i]`` 0-based classes.
        pred_boxes, pred_scores, pred_labels: per image ``[P_i, 4]``, ``[P_i]``, ``[P_i]``.
        num_classes: C; the result has one entry per class, AP NaN where a class has no GT.
        gt_difficult: per image ``[G_i]`` bool, or None.
        other arguments: as ``voc_eval_class``.

    Returns:
        ``[C]`` results; VOC mAP is the mean of their ``ap`` over classes with GT.
    """
    n = len(gt_boxes)
    if not (len(gt_labels) == len(pred_boxes) == len(pred_scores) == len(pred_labels) == n):
        raise ValueError("evaluate_voc: per-image sequences differ in length")
    gb = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in gt_boxes]
    gl = [np.asarray(lab, dtype=np.int64).ravel() for lab in gt_labels]
    gd = (
        [np.zeros(len(b), dtype=bool) for b in gb]
        if gt_difficult is None
        else [np.asarray(d, dtype=bool).ravel() for d in gt_difficult]
    )
    pb = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in pred_boxes]
    ps = [np.asarray(s, dtype=np.float64).ravel() for s in pred_scores]
    pl = [np.asarray(lab, dtype=np.int64).ravel() for lab in pred_labels]
    img_index = np.concatenate(
        [np.zeros(0, dtype=np.int64)]
        + [np.full(len(s), i, dtype=np.int64) for i, s in enumerate(ps)]
    )
    all_boxes = np.concatenate([np.zeros((0, 4)), *pb])
    all_scores = np.concatenate([np.zeros(0), *ps])
    all_labels = np.concatenate([np.zeros(0, dtype=np.int64), *pl])
    results = []
    for c in range(num_classes):
        sel = all_labels == c
        results.append(
            voc_eval_class(
                img_index[sel],
                all_scores[sel],
                all_boxes[sel],
                [b[lab == c] for b, lab in zip(gb, gl)],
                [d[lab == c] for d, lab in zip(gd, gl)],
                iou_threshold=iou_threshold,
                use_07_metric=use_07_metric,
                plus_one=plus_one,
                strict=strict,
            )
        )
    return results
