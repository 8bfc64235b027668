"""COCO-style detection metrics through pycocotools, with a reset / process / compute interface.

Boxes enter as ``xyxy`` in pixels of the original image and 0-based class indices; they are turned
into COCO's ``x, y, w, h`` only when the in-memory COCO objects are built. Choices that keep the
numbers equal to what pycocotools gives on a COCO-format file (see docs/evaluation.md):

- category ids are ``class index + 1`` inside (class 0 is never dropped), mapped back on output;
- image ids are ``1..N`` in processing order inside, the caller's ids on output;
- GT ``area`` is the box area ``w * h`` unless given (COCO's own is the mask area), ``iscrowd``
  as given;
- ``params.imgIds`` is the processed images, so unseen images' GT never count as misses;
- COCOeval's own parameters stay at their defaults (maxDets 1/10/100 per image *per category*);
  ``max_dets`` caps each image's detections before scoring (300, as ultralytics val does);
- no detections at all (which crashes ``loadRes``) gives AP 0 for every class with GT and a note.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from darkyolo.data.formats.coco import COCO80_CATEGORY_IDS
from darkyolo.errors import DarkyoloError, DataError
from darkyolo.evaluation.voc_ap import evaluate_voc

__all__ = ["COCO80_CATEGORY_IDS", "STAT_NAMES", "DetectionEvaluator", "EvalResult"]

#: Names of pycocotools' 12 bbox summary numbers, in ``COCOeval.stats`` order.
STAT_NAMES: tuple[str, ...] = (
    "AP",  # IoU .50:.95, all areas, maxDets 100
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)

VOC_METRICS = ("voc07", "voc10")


@dataclass
class EvalResult:
    """What ``DetectionEvaluator.compute`` returns.

    Per-class arrays have shape ``[C]`` (C = len(class_names)) and hold NaN for a class with no
    (non-crowd) ground truth; such classes are left out of every mean, as pycocotools does.

    Attributes:
        class_names: ``[C]`` names.
        stats: the 12 pycocotools numbers by name (``STAT_NAMES``); -1 where nothing counts.
        ap: ``[C]`` AP@[.5:.95] per class (101-point, maxDets 100, all areas).
        ap50: ``[C]`` AP@.5 per class.
        images_per_class: ``[C]`` images holding at least one non-crowd GT of the class.
        instances_per_class: ``[C]`` non-crowd GT boxes of the class.
        recall_thresholds: ``[101]`` COCO's recall grid.
        pr_curves: class index -> (recall ``[101]``, precision ``[101]``) at IoU .5 (classes with GT).
        num_images, num_detections: images processed and detections scored (after ``max_dets``).
        image_ids: the caller's image ids, in processing order.
        det_image_index: ``[D]`` index into ``image_ids`` of each detection (non-decreasing).
        det_boxes: ``[D, 4]`` xyxy pixels (``det_boxes_xywh`` gives COCO's x, y, w, h).
        det_scores, det_labels: ``[D]`` scores and 0-based classes.
        voc_metric: None, "voc07" (11-point) or "voc10" (all-point).
        voc_ap: ``[C]`` VOC AP at IoU .5 when ``voc_metric`` is set.
        summary: the text pycocotools' ``summarize`` printed.
        notes: remarks a reader should see (no detections, no GT, ...).
    """

    class_names: list[str]
    stats: dict[str, float]
    ap: np.ndarray
    ap50: np.ndarray
    images_per_class: np.ndarray
    instances_per_class: np.ndarray
    recall_thresholds: np.ndarray
    pr_curves: dict[int, tuple[np.ndarray, np.ndarray]]
    num_images: int
    num_detections: int
    image_ids: list[Any]
    det_image_index: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_labels: np.ndarray
    voc_metric: str | None = None
    voc_ap: np.ndarray | None = None
    summary: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def det_boxes_xywh(self) -> np.ndarray:
        """``[D, 4]`` COCO boxes: top-left x, y, width, height in pixels."""
        boxes = self.det_boxes
        return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)

    @property
    def map(self) -> float:
        """COCO AP@[.5:.95] (stats[0])."""
        return self.stats["AP"]

    @property
    def map50(self) -> float:
        """COCO AP@.5 (stats[1])."""
        return self.stats["AP50"]

    @property
    def map75(self) -> float:
        """COCO AP@.75 (stats[2])."""
        return self.stats["AP75"]

    @property
    def voc_map(self) -> float:
        """Mean VOC AP over classes with GT (NaN when VOC AP was not asked for or no class has GT)."""
        if self.voc_ap is None:
            return float("nan")
        return _nanmean(self.voc_ap)


def _nanmean(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _as_array(x: Any, dtype: Any, name: str, image_id: Any) -> np.ndarray:
    """numpy array from a numpy array, torch tensor or sequence."""
    if x is None:
        return np.zeros(0, dtype=dtype)
    if hasattr(x, "detach"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise DataError(f"image {image_id!r}: {name} is not numeric: {e}") from e


@dataclass
class _Image:
    image_id: Any
    width: float
    height: float
    gt_boxes: np.ndarray  # [G, 4] xyxy
    gt_labels: np.ndarray  # [G]
    gt_iscrowd: np.ndarray  # [G] bool
    gt_difficult: np.ndarray  # [G] bool
    gt_area: np.ndarray  # [G] area for COCO's size ranges
    pred_boxes: np.ndarray  # [P, 4] xyxy, sorted by score (desc, stable), capped
    pred_scores: np.ndarray  # [P]
    pred_labels: np.ndarray  # [P]


class DetectionEvaluator:
    """Accumulate ground truth and predictions image by image; score them with pycocotools.

    Usage::

        ev = DetectionEvaluator(class_names)
        for ...:
            ev.process(image_id, gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels, w, h)
        result = ev.compute()
        print(format_table(result))
    """

    def __init__(
        self,
        class_names: Sequence[str],
        max_dets: int | None = 300,
        voc_metric: str | None = None,
        voc_iou_threshold: float = 0.5,
        voc_plus_one: bool = False,
        verbose: bool = False,
    ) -> None:
        """
        Args:
            class_names: ``[C]`` names; labels are indices into it.
            max_dets: keep at most this many highest-scored detections per image before scoring
                (None: no cap). pycocotools then keeps 100 per image per category.
            voc_metric: also compute VOC AP per class: "voc07" (11-point) or "voc10" (all-point).
            voc_iou_threshold: IoU for VOC matching (devkit test IoU >= threshold).
            voc_plus_one: VOC IoU with the devkit's inclusive pixels (w = x2 - x1 + 1).
            verbose: print pycocotools' summary to stdout in ``compute``.
        """
        if len(class_names) == 0:
            raise DarkyoloError("DetectionEvaluator: class_names is empty")
        if voc_metric is not None and voc_metric not in VOC_METRICS:
            raise DarkyoloError(
                f"DetectionEvaluator: voc_metric must be one of {VOC_METRICS} or None, "
                f"got {voc_metric!r}"
            )
        if max_dets is not None and max_dets < 1:
            raise DarkyoloError(f"DetectionEvaluator: max_dets must be >= 1, got {max_dets}")
        self.class_names = [str(n) for n in class_names]
        self.max_dets = max_dets
        self.voc_metric = voc_metric
        self.voc_iou_threshold = voc_iou_threshold
        self.voc_plus_one = voc_plus_one
        self.verbose = verbose
        self._images: list[_Image] = []
        self._seen: set[Any] = set()
        self._num_capped = 0

    def reset(self) -> None:
        """Forget everything processed so far."""
        self._images = []
        self._seen = set()
        self._num_capped = 0

    def __len__(self) -> int:
        return len(self._images)

    def _boxes(self, x: Any, name: str, image_id: Any) -> np.ndarray:
        b = _as_array(x, np.float64, name, image_id)
        if b.size == 0:
            return np.zeros((0, 4), dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise DataError(f"image {image_id!r}: {name} must be [N, 4] xyxy, got {b.shape}")
        if not np.isfinite(b).all():
            raise DataError(f"image {image_id!r}: {name} holds NaN or inf")
        bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise DataError(
                f"image {image_id!r}: {name}[{i}] = {b[i].tolist()} is not xyxy "
                f"(x2 < x1 or y2 < y1); {int(bad.sum())} such boxes"
            )
        return b

    def _labels(self, x: Any, n: int, name: str, image_id: Any) -> np.ndarray:
        raw = _as_array(x, np.float64, name, image_id).ravel()
        if raw.size != n:
            raise DataError(f"image {image_id!r}: {name} has {raw.size} entries for {n} boxes")
        if raw.size and (np.any(raw != np.round(raw)) or not np.isfinite(raw).all()):
            raise DataError(f"image {image_id!r}: {name} must be whole class indices")
        lab = raw.astype(np.int64)
        c = len(self.class_names)
        bad = (lab < 0) | (lab >= c)
        if bad.any():
            raise DataError(
                f"image {image_id!r}: {name} holds class {int(lab[bad][0])}, expected 0..{c - 1} "
                f"({c} classes)"
            )
        return lab

    def process(
        self,
        image_id: Any,
        gt_boxes: Any,
        gt_labels: Any,
        pred_boxes: Any,
        pred_scores: Any,
        pred_labels: Any,
        width: float,
        height: float,
        gt_iscrowd: Any = None,
        gt_difficult: Any = None,
        gt_area: Any = None,
    ) -> None:
        """Add one image (numpy arrays, torch tensors or sequences).

        Args:
            image_id: the caller's id (int or str), unique per image; used in the results JSON.
            gt_boxes: ``[G, 4]`` xyxy pixels of the original image.
            gt_labels: ``[G]`` 0-based class indices.
            pred_boxes: ``[P, 4]`` xyxy pixels of the original image.
            pred_scores: ``[P]`` confidences.
            pred_labels: ``[P]`` 0-based class indices.
            width, height: original image size in pixels.
            gt_iscrowd: ``[G]`` bool (COCO crowd regions: matches to them are ignored); default none.
            gt_difficult: ``[G]`` bool, used by VOC AP only (VOC ignores matches to difficult
                GT); COCO scoring counts difficult boxes as ordinary GT.
            gt_area: ``[G]`` areas for COCO's small/medium/large ranges; default the box area
                ``w * h``. Pass the dataset's own ``area`` (COCO: the mask area) for official parity.
        """
        if image_id in self._seen:
            raise DataError(f"image {image_id!r} was processed twice")
        gb = self._boxes(gt_boxes, "gt_boxes", image_id)
        gl = self._labels(gt_labels, len(gb), "gt_labels", image_id)
        pb = self._boxes(pred_boxes, "pred_boxes", image_id)
        ps = _as_array(pred_scores, np.float64, "pred_scores", image_id).ravel()
        if ps.size != len(pb):
            raise DataError(
                f"image {image_id!r}: pred_scores has {ps.size} entries for {len(pb)} boxes"
            )
        if not np.isfinite(ps).all():
            raise DataError(f"image {image_id!r}: pred_scores holds NaN or inf")
        pl = self._labels(pred_labels, len(pb), "pred_labels", image_id)
        flags = []
        for name, x in (("gt_iscrowd", gt_iscrowd), ("gt_difficult", gt_difficult)):
            f = np.zeros(len(gb), dtype=bool) if x is None else _as_array(x, bool, name, image_id)
            f = f.ravel()
            if f.size != len(gb):
                raise DataError(
                    f"image {image_id!r}: {name} has {f.size} entries for {len(gb)} boxes"
                )
            flags.append(f)
        if gt_area is None:
            area = (gb[:, 2] - gb[:, 0]) * (gb[:, 3] - gb[:, 1])
        else:
            area = _as_array(gt_area, np.float64, "gt_area", image_id).ravel()
            if area.size != len(gb) or not np.isfinite(area).all():
                raise DataError(
                    f"image {image_id!r}: gt_area must be {len(gb)} finite numbers, got {area.size}"
                )
        w, h = float(width), float(height)
        if not (w > 0 and h > 0):
            raise DataError(f"image {image_id!r}: width and height must be > 0, got {w}x{h}")
        order = np.argsort(-ps, kind="mergesort")
        if self.max_dets is not None and len(order) > self.max_dets:
            self._num_capped += len(order) - self.max_dets
            order = order[: self.max_dets]
        self._seen.add(image_id)
        self._images.append(
            _Image(
                image_id, w, h, gb, gl, flags[0], flags[1], area, pb[order], ps[order], pl[order]
            )
        )

    # ---------------------------------------------------------------- compute

    def _coco_objects(self) -> tuple[COCO, list[dict[str, Any]], list[int]]:
        images, anns = [], []
        dets: list[dict[str, Any]] = []
        ann_id = 0
        for i, im in enumerate(self._images):
            iid = i + 1
            images.append({"id": iid, "width": im.width, "height": im.height})
            for box, lab, crowd, area in zip(
                im.gt_boxes.tolist(),
                im.gt_labels.tolist(),
                im.gt_iscrowd.tolist(),
                im.gt_area.tolist(),
            ):
                ann_id += 1
                w, h = box[2] - box[0], box[3] - box[1]
                anns.append(
                    {
                        "id": ann_id,
                        "image_id": iid,
                        "category_id": lab + 1,
                        "bbox": [box[0], box[1], w, h],
                        "area": area,
                        "iscrowd": int(crowd),
                    }
                )
            for box, score, lab in zip(
                im.pred_boxes.tolist(), im.pred_scores.tolist(), im.pred_labels.tolist()
            ):
                dets.append(
                    {
                        "image_id": iid,
                        "category_id": lab + 1,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                        "score": score,
                    }
                )
        categories = [{"id": k + 1, "name": n} for k, n in enumerate(self.class_names)]
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": categories}
        gt.createIndex()
        return gt, dets, [im["id"] for im in images]

    @staticmethod
    def _empty_results(gt: COCO) -> COCO:
        """What ``loadRes`` would build for zero detections (it crashes on an empty list)."""
        res = COCO()
        res.dataset = {
            "images": list(gt.dataset["images"]),
            "categories": [dict(c) for c in gt.dataset["categories"]],
            "annotations": [],
        }
        res.createIndex()
        return res

    def compute(self) -> EvalResult:
        """Score everything processed since the last ``reset``."""
        if not self._images:
            raise DarkyoloError("DetectionEvaluator.compute: no images were processed")
        c = len(self.class_names)
        notes: list[str] = []
        if self._num_capped:
            notes.append(
                f"{self._num_capped} detections beyond max_dets={self.max_dets} per image were "
                "dropped before scoring"
            )
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            gt, dets, img_ids = self._coco_objects()
            dt = gt.loadRes(dets) if dets else self._empty_results(gt)
            ev = COCOeval(gt, dt, iouType="bbox")
            ev.params.imgIds = img_ids
            ev.evaluate()
            ev.accumulate()
            summary_start = log.tell()
            ev.summarize()
        summary = log.getvalue()[summary_start:]
        if self.verbose:
            print(summary, end="")
        if not dets:
            notes.append("no detections at all: every class with ground truth scores AP 0")

        stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}
        precision = ev.eval["precision"]  # [T, R, K, A, M], -1 where a class has no GT
        m = list(ev.params.maxDets).index(100)
        a = list(ev.params.areaRngLbl).index("all")
        t50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
        cat_index = {cid: k for k, cid in enumerate(ev.params.catIds)}
        ap = np.full(c, np.nan)
        ap50 = np.full(c, np.nan)
        pr_curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        rec_thrs = np.asarray(ev.params.recThrs, dtype=np.float64)
        for cls in range(c):
            k = cat_index[cls + 1]
            p = precision[:, :, k, a, m]
            valid = p > -1
            if valid.any():
                ap[cls] = float(p[valid].mean())
            p50 = p[t50]
            if (p50 > -1).any():
                ap50[cls] = float(p50[p50 > -1].mean())
                pr_curves[cls] = (rec_thrs.copy(), p50.astype(np.float64).copy())

        instances = np.zeros(c, dtype=np.int64)
        images_per_class = np.zeros(c, dtype=np.int64)
        for im in self._images:
            lab = im.gt_labels[~im.gt_iscrowd]
            instances += np.bincount(lab, minlength=c)
            images_per_class += np.bincount(np.unique(lab), minlength=c)
        if instances.sum() == 0:
            notes.append("no ground-truth boxes: COCO stats are -1 and per-class AP is NaN")

        voc_ap = None
        if self.voc_metric is not None:
            voc = evaluate_voc(
                [im.gt_boxes for im in self._images],
                [im.gt_labels for im in self._images],
                [im.pred_boxes for im in self._images],
                [im.pred_scores for im in self._images],
                [im.pred_labels for im in self._images],
                num_classes=c,
                gt_difficult=[im.gt_difficult | im.gt_iscrowd for im in self._images],
                iou_threshold=self.voc_iou_threshold,
                use_07_metric=self.voc_metric == "voc07",
                plus_one=self.voc_plus_one,
            )
            voc_ap = np.array([r.ap for r in voc], dtype=np.float64)

        counts = [len(im.pred_scores) for im in self._images]
        det_image_index = np.repeat(np.arange(len(self._images), dtype=np.int64), counts)
        boxes = np.concatenate([np.zeros((0, 4))] + [im.pred_boxes for im in self._images])
        return EvalResult(
            class_names=list(self.class_names),
            stats=stats,
            ap=ap,
            ap50=ap50,
            images_per_class=images_per_class,
            instances_per_class=instances,
            recall_thresholds=rec_thrs,
            pr_curves=pr_curves,
            num_images=len(self._images),
            num_detections=int(sum(counts)),
            image_ids=[im.image_id for im in self._images],
            det_image_index=det_image_index,
            det_boxes=boxes,
            det_scores=np.concatenate([np.zeros(0)] + [im.pred_scores for im in self._images]),
            det_labels=np.concatenate(
                [np.zeros(0, dtype=np.int64)] + [im.pred_labels for im in self._images]
            ),
            voc_metric=self.voc_metric,
            voc_ap=voc_ap,
            summary=summary,
            notes=notes,
        )
