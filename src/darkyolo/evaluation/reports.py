"""What a detection evaluation writes: COCO results entries and their JSON
(:func:`to_coco_results`, :func:`write_json`), ``metrics.json`` (:func:`metrics_dict`) and the
per-class table (:func:`format_table`), all from an :class:`~darkyolo.evaluation.evaluator.EvalResult`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkyolo.data.formats.coco import results_entries
from darkyolo.errors import DarkyoloError
from darkyolo.evaluation.evaluator import EvalResult


def _category_lookup(
    category_ids: Sequence[int] | Mapping[int, int] | None, num_classes: int
) -> list[int]:
    if category_ids is None:
        return list(range(num_classes))
    if isinstance(category_ids, Mapping):
        missing = [k for k in range(num_classes) if k not in category_ids]
        if missing:
            raise DarkyoloError(f"category_ids mapping lacks class indices {missing[:10]}")
        return [int(category_ids[k]) for k in range(num_classes)]
    ids = [int(v) for v in category_ids]
    if len(ids) < num_classes:
        raise DarkyoloError(f"category_ids has {len(ids)} entries for {num_classes} classes")
    return ids


def to_coco_results(
    result: EvalResult,
    category_ids: Sequence[int] | Mapping[int, int] | None = None,
    decimals: int | None = 3,
    image_ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """The scored detections as a COCO results list.

    Each entry: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` (top-left corner,
    pixels). ``image_id`` is the caller's id. ``category_id`` is the 0-based class index unless
    ``category_ids`` maps it (a sequence indexed by class, or a mapping; e.g.
    ``COCO80_CATEGORY_IDS`` for the official COCO ids). ``decimals`` rounds boxes (scores get two
    more digits); None keeps full precision. ``image_ids`` replaces the ids given to ``process``
    (one per image, in processing order), e.g. COCO ids for the results file.
    """
    cats = _category_lookup(category_ids, len(result.class_names))
    if image_ids is None:
        image_ids = result.image_ids
    if len(image_ids) != len(result.image_ids):
        raise DarkyoloError(f"{len(image_ids)} image ids for {len(result.image_ids)} images")
    bounds = np.searchsorted(result.det_image_index, np.arange(len(result.image_ids) + 1))
    out: list[dict[str, Any]] = []
    for k, image_id in enumerate(image_ids):
        part = slice(bounds[k], bounds[k + 1])
        out += results_entries(
            image_id,
            result.det_boxes[part],
            result.det_scores[part],
            result.det_labels[part],
            cats,
            decimals,
        )
    return out


def write_json(
    result: EvalResult,
    path: str | Path,
    category_ids: Sequence[int] | Mapping[int, int] | None = None,
    decimals: int | None = 3,
    image_ids: Sequence[Any] | None = None,
) -> Path:
    """Write the detections as a COCO results JSON file (see ``to_coco_results``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_coco_results(result, category_ids, decimals, image_ids)))
    return out


def _finite_or_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def metrics_dict(result: EvalResult) -> dict[str, Any]:
    """The metrics as plain JSON-ready data (NaN becomes None)."""
    classes = []
    for k, name in enumerate(result.class_names):
        entry: dict[str, Any] = {
            "class": k,
            "name": name,
            "images": int(result.images_per_class[k]),
            "instances": int(result.instances_per_class[k]),
            "ap": _finite_or_none(float(result.ap[k])),
            "ap50": _finite_or_none(float(result.ap50[k])),
        }
        if result.voc_ap is not None:
            entry["voc_ap"] = _finite_or_none(float(result.voc_ap[k]))
        classes.append(entry)
    data: dict[str, Any] = {
        "map": result.map,
        "map50": result.map50,
        "map75": result.map75,
        "stats": dict(result.stats),
        "num_images": result.num_images,
        "num_detections": result.num_detections,
        "classes": classes,
        "notes": list(result.notes),
        "summary": result.summary,
    }
    if result.voc_metric is not None:
        data["voc_metric"] = result.voc_metric
        data["voc_map"] = _finite_or_none(result.voc_map)
    return data


def write_metrics_json(result: EvalResult, path: str | Path) -> Path:
    """Write the metrics (stats, per-class AP, notes) as an indented JSON file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics_dict(result), indent=2))
    return out


def format_table(result: EvalResult) -> str:
    """A per-class table: class, images, instances, AP50, AP (and VOC AP if computed).

    The first row ("all") holds pycocotools' stats[1] and stats[0]; classes without GT show "-".
    """

    def num(x: float) -> str:
        return "-" if x is None or math.isnan(x) or x < 0 else f"{x:.3f}"

    voc = result.voc_ap is not None
    width = max([len("class"), len("all"), *(len(n) for n in result.class_names)])
    head = f"{'class':<{width}} {'images':>7} {'instances':>9} {'AP50':>6} {'AP':>6}"
    if voc:
        head += f" {result.voc_metric:>6}"
    lines = [head]
    row = (
        f"{'all':<{width}} {result.num_images:>7} {int(result.instances_per_class.sum()):>9} "
        f"{num(result.map50):>6} {num(result.map):>6}"
    )
    if voc:
        row += f" {num(result.voc_map):>6}"
    lines.append(row)
    for k, name in enumerate(result.class_names):
        row = (
            f"{name:<{width}} {int(result.images_per_class[k]):>7} "
            f"{int(result.instances_per_class[k]):>9} "
            f"{num(float(result.ap50[k])):>6} {num(float(result.ap[k])):>6}"
        )
        if voc:
            assert result.voc_ap is not None
            row += f" {num(float(result.voc_ap[k])):>6}"
        lines.append(row)
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)
