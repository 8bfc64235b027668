"""Anchors by k-means on box (width, height) with distance ``1 - IoU`` (YOLOv2 paper, section 2).

Boxes are compared as if they shared a centre, so the IoU of ``(w1, h1)`` and ``(w2, h2)`` is
``min(w1, w2) * min(h1, h2) / (w1 h1 + w2 h2 - min(w1, w2) min(h1, h2))``. That IoU does not change
when the widths (or the heights) of both boxes are scaled by the same factor, so k-means can run in
normalised units (box size / image size) and the anchors be converted afterwards:

* ``grid``: cells of the stride-32 output map, what ``[region]`` (YOLOv2) reads;
  ``w_grid = w_norm * input_width / 32``.
* ``pixels``: pixels of the network input, what ``[yolo]`` (YOLOv3) reads;
  ``w_px = w_norm * input_width``.

Both assume the image is resized to the network input (Darknet's training resize).

k-means: k-means++ start, Lloyd iterations (assign each box to the anchor of highest IoU, move each
anchor to the mean, or median, of its boxes) until no assignment changes, several restarts with one
seeded generator, the restart with the highest mean IoU kept. On more than ``sample`` boxes the
restarts run on a random sample and the winner is then iterated on all boxes to convergence, which
keeps 1,000,000 boxes at k=9 within a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkyolo.darknet.edits import with_anchors
from darkyolo.data.records import ImageRecord
from darkyolo.errors import ConfigError, DataError

#: the output stride whose cells ``[region]`` anchors are measured in
GRID_STRIDE = 32
UNITS = ("grid", "pixels")
_CHUNK = 1 << 15


# ----------------------------------------------------------------------------------------------
# IoU of shared-centre boxes
# ----------------------------------------------------------------------------------------------


def _as_wh(wh: np.ndarray | Sequence[Sequence[float]], what: str) -> np.ndarray:
    array = np.asarray(wh, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise DataError(f"{what}: expected an [N, 2] array of (w, h), got shape {array.shape}")
    if len(array) and (not np.isfinite(array).all() or (array <= 0).any()):
        raise DataError(f"{what}: every width and height must be positive and finite")
    return array


def wh_iou_matrix(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU ``float64 [N, K]`` of boxes ``wh [N, 2]`` and anchors ``[K, 2]`` at a shared centre:
    :func:`darkyolo.boxes.wh_iou` (the one implementation) on every pair."""
    import torch

    from darkyolo.boxes import wh_iou

    boxes = torch.as_tensor(np.asarray(wh, dtype=np.float64))
    centres = torch.as_tensor(np.asarray(anchors, dtype=np.float64))
    return wh_iou(boxes[:, None, :], centres[None, :, :]).numpy()


def _closest_two(
    wh: np.ndarray, area: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For float32 ``wh [N, 2]`` (areas ``[N]``): closest anchor, its distance ``1 - IoU`` and the
    second-closest distance (``inf`` when ``K = 1``), computed in float32 chunks.

    Uses ``IoU = 1 / (r - 1)`` with ``r = (area + anchor_area) / inter``, so the closest anchor is
    the one of smallest ``r``.
    """
    n, k = len(wh), len(anchors)
    aw, ah = anchors[:, 0].astype(np.float32), anchors[:, 1].astype(np.float32)
    aa = aw * ah
    labels = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.float64)
    second = np.full(n, np.inf)
    ratio = np.empty((_CHUNK, k), dtype=np.float32)
    other = np.empty((_CHUNK, k), dtype=np.float32)
    rows = np.arange(_CHUNK)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        c = stop - start
        r, o = ratio[:c], other[:c]
        np.minimum(wh[start:stop, 0:1], aw, out=r)
        np.minimum(wh[start:stop, 1:2], ah, out=o)
        r *= o
        np.add(area[start:stop, None], aa, out=o)
        o /= r
        chosen = o.argmin(axis=1)
        labels[start:stop] = chosen
        first[start:stop] = o[rows[:c], chosen]
        if k > 1:
            o[rows[:c], chosen] = np.inf
            second[start:stop] = o.min(axis=1)
    first = 1.0 - 1.0 / (first - 1.0)
    if k > 1:
        second = 1.0 - 1.0 / (second - 1.0)
    return labels, first, second


def _pair_distance(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``1 - IoU`` of each box ``wh[i]`` with ``anchors[i]`` (both ``[N, 2]``), float64."""
    inter = np.minimum(wh[:, 0], anchors[:, 0]) * np.minimum(wh[:, 1], anchors[:, 1])
    union = wh[:, 0] * wh[:, 1] + anchors[:, 0] * anchors[:, 1] - inter
    return 1.0 - inter / union


def mean_iou(wh: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over boxes of the IoU with the closest anchor (``wh [N, 2]``, ``anchors [K, 2]``)."""
    wh = _as_wh(wh, "boxes")
    anchors = _as_wh(anchors, "anchors")
    if not len(wh):
        return 0.0
    wh32 = wh.astype(np.float32)
    _, distance, _ = _closest_two(wh32, wh32[:, 0] * wh32[:, 1], anchors)
    return float(1.0 - distance.mean())


# ----------------------------------------------------------------------------------------------
# k-means
# ----------------------------------------------------------------------------------------------


def _kmeans_pp(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ start: each next centre drawn with probability proportional to (1 - IoU)^2."""
    centres = [wh[rng.integers(len(wh))]]
    distance = 1.0 - wh_iou_matrix(wh, np.array(centres))[:, 0]
    for _ in range(1, k):
        weight = distance**2
        total = weight.sum()
        index = rng.choice(len(wh), p=weight / total) if total > 0 else rng.integers(len(wh))
        centres.append(wh[index])
        distance = np.minimum(distance, 1.0 - wh_iou_matrix(wh, wh[index][None])[:, 0])
    return np.array(centres)


def _lloyd(
    wh: np.ndarray, anchors: np.ndarray, max_iter: int, center: str, tol: float
) -> tuple[np.ndarray, float]:
    """Lloyd iterations from ``anchors`` -> (anchors, mean IoU of the boxes to them).

    Stops when no box changes anchor (a fixed point) or no anchor moves by more than ``tol``
    (in ``1 - IoU``). Hamerly's bounds skip the boxes that cannot have changed anchor: an upper
    bound on the distance to the own anchor and a lower bound on the distance to any other,
    both moved by how far the anchors moved (``1 - IoU`` of shared-centre boxes is the Jaccard
    distance, a metric, so the triangle inequality holds). Anchor sums are updated only for
    the boxes that moved.
    """
    k = len(anchors)
    wh32 = wh.astype(np.float32)
    area32 = wh32[:, 0] * wh32[:, 1]
    labels, upper, lower = _closest_two(wh32, area32, anchors)
    slack = lower - upper  # a box whose slack stays >= 0 cannot have changed anchor
    sums = np.stack([np.bincount(labels, wh[:, 0], k), np.bincount(labels, wh[:, 1], k)], axis=1)
    counts = np.bincount(labels, minlength=k)
    for _ in range(max_iter):
        if (counts == 0).any():
            anchors = _reseed_empty(wh, wh32, area32, anchors, counts)
            labels, upper, lower = _closest_two(wh32, area32, anchors)
            slack = lower - upper
            sums = np.stack(
                [np.bincount(labels, wh[:, 0], k), np.bincount(labels, wh[:, 1], k)], axis=1
            )
            counts = np.bincount(labels, minlength=k)
            continue
        new = _medians(wh, labels, counts) if center == "median" else sums / counts[:, None]
        shift = _pair_distance(anchors, new)
        anchors = new
        if shift.max() <= tol:
            break
        # own anchor moved away by at most shift[a]; every other came closer by at most the
        # largest shift among the others
        order = np.argsort(shift)
        others = np.full(k, shift[order[-1]])
        others[order[-1]] = shift[order[-2]] if k > 1 else 0.0
        slack -= np.take(shift + others, labels)
        suspects = np.flatnonzero(slack < 0)
        if not len(suspects):
            break
        new_labels, upper, lower = _closest_two(wh32[suspects], area32[suspects], anchors)
        slack[suspects] = lower - upper
        moved = new_labels != labels[suspects]
        if not moved.any():
            break
        which, old, now = suspects[moved], labels[suspects][moved], new_labels[moved]
        for axis in (0, 1):
            sums[:, axis] += np.bincount(now, wh[which, axis], k) - np.bincount(
                old, wh[which, axis], k
            )
        counts += np.bincount(now, minlength=k) - np.bincount(old, minlength=k)
        labels[which] = now
    _, distance, _ = _closest_two(wh32, area32, anchors)
    return anchors, float(1.0 - distance.mean())


def _reseed_empty(
    wh: np.ndarray, wh32: np.ndarray, area32: np.ndarray, anchors: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Move each anchor without boxes onto the box worst served by the current anchors."""
    anchors = anchors.copy()
    _, distance, _ = _closest_two(wh32, area32, anchors)
    for j in np.flatnonzero(counts == 0):
        worst = int(distance.argmax())
        anchors[j] = wh[worst]
        distance[worst] = 0.0
    return anchors


def _medians(wh: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    order = np.argsort(labels, kind="stable")
    groups = np.split(wh[order], np.cumsum(counts)[:-1])
    return np.array([np.median(g, axis=0) for g in groups])


def sort_by_area(anchors: np.ndarray) -> np.ndarray:
    """Anchors ``[K, 2]`` ordered by ``w * h``, smallest first (Darknet's order)."""
    anchors = np.asarray(anchors, dtype=np.float64)
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")]


def kmeans_anchors(
    wh: np.ndarray,
    k: int,
    seed: int = 0,
    restarts: int = 5,
    max_iter: int = 300,
    center: str = "mean",
    sample: int = 100_000,
    tol: float = 0.0,
) -> tuple[np.ndarray, float]:
    """k-means with ``1 - IoU`` distance on box sizes.

    Args:
        wh: ``[N, 2]`` box widths and heights (any units; normalised is usual).
        k: number of anchors.
        seed: seeds the one generator used for sampling and k-means++.
        restarts: k-means++ starts; the one with the highest mean IoU wins.
        max_iter: Lloyd iterations per run at most.
        center: ``mean`` or ``median`` of each cluster's boxes as its new anchor.
        sample: with more boxes, restarts run on this many sampled boxes and the winner is then
            iterated on all of them.
        tol: stop once no anchor moves by more than this (``1 - IoU``); 0 runs to the fixed point.

    Returns:
        ``(anchors [k, 2]`` in the units of ``wh`` sorted by area, mean IoU of the boxes to their
        closest anchor ``)``.
    """
    wh = _as_wh(wh, "boxes")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    if len(wh) < k:
        raise DataError(f"k-means with k={k} needs at least {k} boxes, got {len(wh)}")
    if center not in ("mean", "median"):
        raise DataError(f"center must be mean or median, got {center!r}")
    rng = np.random.default_rng(seed)
    work = wh if len(wh) <= sample else wh[rng.choice(len(wh), sample, replace=False)]
    best: tuple[np.ndarray, float] | None = None
    for _ in range(max(1, restarts)):
        result = _lloyd(work, _kmeans_pp(work, k, rng), max_iter, center, tol)
        if best is None or result[1] > best[1]:
            best = result
    assert best is not None
    anchors, score = best
    if work is not wh:
        anchors, score = _lloyd(wh, anchors, max_iter, center, tol)
    return sort_by_area(anchors), score


def elbow(
    wh: np.ndarray, ks: Sequence[int] = tuple(range(1, 11)), seed: int = 0, restarts: int = 3
) -> list[float]:
    """Mean IoU of k-means anchors for each ``k`` in ``ks`` (the curve to choose k by)."""
    return [kmeans_anchors(wh, k, seed=seed, restarts=restarts)[1] for k in ks]


# ----------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------


def boxes_wh(records: Sequence[ImageRecord], letterbox: bool = True) -> np.ndarray:
    """``float64 [N, 2]`` (w, h) of every box with positive size, as a fraction of a square input.

    With ``letterbox`` (how darkyolo feeds images: aspect kept, grey bars) a box's fraction of the
    input is its fraction of the image times ``side / longest side``; without it (a stretched image)
    it is the fraction of the image itself.
    """
    return labelled_boxes_wh(records, letterbox)[0]


def labelled_boxes_wh(
    records: Sequence[ImageRecord], letterbox: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`boxes_wh` and the class of each of those boxes (``int64 [N]``)."""
    if not records:
        return np.zeros((0, 2)), np.zeros((0,), dtype=np.int64)
    parts, labels = [], []
    for record in records:
        wh = record.normalised_wh()
        if letterbox and record.width > 0 and record.height > 0:
            longest = max(record.width, record.height)
            wh = wh * np.array([record.width / longest, record.height / longest])
        parts.append(wh)
        labels.append(np.asarray(record.labels, dtype=np.int64).reshape(-1))
    wh, label = np.concatenate(parts), np.concatenate(labels)
    keep = (wh > 0).all(axis=1)
    return wh[keep], label[keep]


# ----------------------------------------------------------------------------------------------
# Which anchors a class trains: the shape IoUs that AlexeyAB's iou_thresh compares
# ----------------------------------------------------------------------------------------------


def class_anchor_iou(
    wh: np.ndarray, labels: np.ndarray, anchors: np.ndarray, num_classes: int
) -> np.ndarray:
    """Median shape IoU ``[C, K]`` of each class's boxes with each anchor (NaN: no boxes).

    ``wh [N, 2]`` and ``anchors [K, 2]`` in the same units; ``labels [N]`` in ``0..C-1``.
    """
    iou = wh_iou_matrix(wh, anchors)
    table = np.full((num_classes, len(anchors)), np.nan)
    for c in range(num_classes):
        rows = iou[labels == c]
        if len(rows):
            table[c] = np.median(rows, axis=0)
    return table


def anchor_owners(wh: np.ndarray, labels: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``int64 [K]``: for each anchor, the class whose boxes pick it as their best anchor most
    often (-1 if no box picks it)."""
    best = wh_iou_matrix(wh, anchors).argmax(axis=1)
    owners = np.full(len(anchors), -1, dtype=np.int64)
    for k in range(len(anchors)):
        picked = labels[best == k]
        if len(picked):
            owners[k] = int(np.bincount(picked).argmax())
    return owners


def iou_thresh_range(table: np.ndarray, owners: np.ndarray) -> tuple[float, float] | None:
    """``(cross, own)`` for choosing a ``[yolo] iou_thresh``, or ``None`` for fewer than two owners.

    ``cross``: the highest median IoU of a class with an anchor another class owns; ``own``: the
    lowest median IoU of a class with the anchors it owns. A threshold in ``(cross, own)`` gives
    the extra positives of ``iou_thresh`` to a class's own anchors and (for a median box) to no
    other class's; if ``cross >= own`` no value separates them.
    """
    classes = [c for c in range(len(table)) if not np.isnan(table[c]).all()]
    if len(set(owners[owners >= 0].tolist())) < 2:
        return None
    cross = max(
        (table[c, k] for c in classes for k in range(len(owners)) if owners[k] not in (-1, c)),
        default=0.0,
    )
    own = min(
        (table[c, k] for c in classes for k in range(len(owners)) if owners[k] == c),
        default=1.0,
    )
    return float(cross), float(own)


def _scale(img_size: int | tuple[int, int], units: str) -> np.ndarray:
    if units not in UNITS:
        raise DataError(f"units must be one of {UNITS}, got {units!r}")
    width, height = (img_size, img_size) if isinstance(img_size, int) else img_size
    scale = np.array([width, height], dtype=np.float64)
    return scale / GRID_STRIDE if units == "grid" else scale


def to_units(wh: np.ndarray, img_size: int | tuple[int, int], units: str) -> np.ndarray:
    """Normalised ``[N, 2]`` -> ``grid`` cells (stride 32) or ``pixels`` of a ``img_size`` input."""
    return np.asarray(wh, dtype=np.float64) * _scale(img_size, units)


def from_units(wh: np.ndarray, img_size: int | tuple[int, int], units: str) -> np.ndarray:
    """Inverse of :func:`to_units`."""
    return np.asarray(wh, dtype=np.float64) / _scale(img_size, units)


# ----------------------------------------------------------------------------------------------
# cfg
# ----------------------------------------------------------------------------------------------


def head_units(config: object) -> str:
    """``grid`` for a cfg whose heads are ``[region]``, ``pixels`` for ``[yolo]``."""
    from darkyolo.darknet.cfg import RegionSpec

    heads = config.heads  # type: ignore[attr-defined]
    if not heads:
        raise ConfigError("the cfg has no [region] or [yolo] head", config.source)  # type: ignore[attr-defined]
    return "grid" if isinstance(heads[0], RegionSpec) else "pixels"


def cfg_anchors(config: object) -> np.ndarray:
    """The anchors ``[K, 2]`` of a cfg's first head, in that head's units."""
    heads = config.heads  # type: ignore[attr-defined]
    if not heads:
        raise ConfigError("the cfg has no [region] or [yolo] head", config.source)  # type: ignore[attr-defined]
    return np.array(heads[0].anchors, dtype=np.float64)


def write_cfg_anchors(
    source: str | Path, path: str | Path, anchors: np.ndarray, num_classes: int
) -> Path:
    """Copy a cfg with new anchors and class count (see :func:`~darkyolo.darknet.edits.with_anchors`).
    Returns the written path."""
    from darkyolo.darknet.cfg import read_cfg_text

    text, cfg_path = read_cfg_text(source)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(with_anchors(text, str(cfg_path), anchors, num_classes), encoding="utf-8")
    return out


#: the cfg's anchors are replaced when k-means on the data fits the boxes this much better
#: (relative mean IoU of each box with its closest anchor)
AUTO_ANCHOR_GAIN = 0.05


@dataclass(frozen=True)
class AnchorFit:
    """How a cfg's anchors fit a data set's boxes, and the k-means anchors (the heads' units)."""

    cfg_iou: float
    fitted_iou: float
    fitted: np.ndarray

    @property
    def refit(self) -> bool:
        """Whether k-means fits better by more than :data:`AUTO_ANCHOR_GAIN` (relative)."""
        return self.fitted_iou > self.cfg_iou * (1.0 + AUTO_ANCHOR_GAIN)


def anchor_fit(
    config: object, records: Sequence[ImageRecord], img_size: int, seed: int = 0
) -> AnchorFit | None:
    """Compare the cfg's anchors with k-means anchors (same count) on the letterboxed boxes of
    ``records`` at ``img_size``; ``None`` when there are fewer boxes than anchors."""
    units = head_units(config)
    current = from_units(cfg_anchors(config), img_size, units)
    wh = boxes_wh(records)
    if len(wh) < len(current):
        return None
    fitted, fitted_iou = kmeans_anchors(wh, len(current), seed=seed)
    return AnchorFit(mean_iou(wh, current), fitted_iou, to_units(fitted, img_size, units))
