"""COCO JSON: ``images``, ``categories`` and ``annotations`` with ``bbox = [x, y, w, h]`` in pixels.

A YOLO class index is the position of the category in the id-sorted ``categories`` list, so
COCO's ids 1..90 (with gaps) become 0..79 in the order of ``coco.names``. Crowd annotations
(``iscrowd=1``, regions of many objects) are left out unless asked for, and counted. The reader
works on whole arrays, so a file the size of COCO train2017 (118k images, 860k boxes) reads in
a few seconds, most of it ``json.load``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError

#: COCO's category id of each of the 80 detection classes, in the order of ``coco.names``
#: (class index -> id; the ids run 1..90 with gaps).
COCO80_CATEGORY_IDS: tuple[int, ...] = (
    *range(1, 12),
    *range(13, 26),
    27,
    28,
    *range(31, 45),
    *range(46, 66),
    67,
    70,
    *range(72, 83),
    *range(84, 91),
)


def coco_category_ids(names: Sequence[str]) -> list[int]:
    """COCO category id per class index: COCO's ids for the 80 COCO classes (in ``coco.names``
    order), else ``k + 1``."""
    from darkyolo.darknet.cfg import bundled_names_file

    coco = [n.strip() for n in bundled_names_file("coco").read_text().splitlines() if n.strip()]
    if list(names) == coco:
        return list(COCO80_CATEGORY_IDS)
    return [k + 1 for k in range(len(names))]


@dataclass
class CocoFile:
    """A COCO JSON read into records.

    Attributes:
        path: the JSON file.
        names: category names, id-sorted (list position = class index).
        category_ids: the COCO id of each class index.
        records: one per entry of ``images``, in file order; ``image_id`` is the COCO id.
        file_names: each record's ``file_name`` as written in the JSON.
        crowd_skipped: crowd annotations left out.
        info: the JSON's ``info`` object.
    """

    path: Path
    names: list[str]
    category_ids: list[int]
    records: list[ImageRecord]
    file_names: list[str]
    crowd_skipped: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def split_name(json_path: str | Path) -> str:
    """``instances_train2017.json`` -> ``train2017`` (the split a COCO JSON describes)."""
    stem = Path(json_path).stem
    return stem.removeprefix("instances_") or stem


def default_images_dir(json_path: str | Path) -> Path:
    """Where a COCO JSON's images usually are: ``images/<split>`` or ``<split>`` near the JSON."""
    json_path = Path(json_path)
    split = split_name(json_path)
    root, here = json_path.parent.parent, json_path.parent
    candidates = [
        root / "images" / split,
        root / split,
        here / "images" / split,
        here / split,
        here / "images",
        root / "images",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def read_coco(
    path: str | Path, images_dir: str | Path | None = None, include_crowd: bool = False
) -> CocoFile:
    """Read a COCO JSON into records (boxes ``xyxy`` pixels, class = id-sorted category position).

    Args:
        path: the JSON file.
        images_dir: folder the ``file_name`` entries are relative to (default:
            :func:`default_images_dir`).
        include_crowd: keep ``iscrowd=1`` boxes instead of leaving them out; each record's
            ``crowd`` flags mark them (scoring ignores matches to them, writers to YOLO txt or
            training take them as ordinary boxes). Every record carries the JSON's ``area``.

    Raises:
        DataError: naming the file and the image or annotation id on any malformed entry, an
            annotation whose ``image_id`` or ``category_id`` is not listed, or duplicate ids.
    """
    path = Path(path)
    images_dir = Path(images_dir) if images_dir is not None else default_images_dir(path)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except OSError as error:
        raise DataError(f"cannot read COCO JSON: {error.strerror}", str(path)) from None
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, a 5000-digit number,
        raise DataError(f"not valid JSON: {error}", str(path)) from None  # or too deep nesting
    if not isinstance(data, dict):
        raise DataError("expected a JSON object with images, categories, annotations", str(path))
    for key in ("images", "categories", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(f"missing the '{key}' list", str(path))
    file = str(path)
    names, category_ids = _categories(data["categories"], file)
    image_ids, file_names, widths, heights = _images(data["images"], file)
    ann = _annotations(data["annotations"], file)

    order = np.argsort(image_ids, kind="stable")
    sorted_ids = image_ids[order]
    if len(sorted_ids) > 1 and (np.diff(sorted_ids) == 0).any():
        duplicate = int(sorted_ids[1:][np.diff(sorted_ids) == 0][0])
        raise DataError(f"image id {duplicate} is listed twice in 'images'", file)
    image_index = _lookup(sorted_ids, order, ann["image_id"], ann["id"], "image_id", "images", file)
    cat_sorted = np.array(category_ids, dtype=np.int64)
    labels = _lookup(
        cat_sorted, np.arange(len(cat_sorted)), ann["category_id"], ann["id"], "category_id",
        "categories", file,
    )  # fmt: skip

    crowd = ann["iscrowd"]
    keep = np.ones(len(crowd), dtype=bool) if include_crowd else ~crowd
    crowd_skipped = 0 if include_crowd else int(crowd.sum())
    xywh = ann["bbox"][keep]
    with np.errstate(over="ignore"):
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        boxes = xyxy.astype(np.float64)
    huge = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
    if len(huge):
        raise DataError(f"annotation id {ann['id'][keep][huge[0]]}: bbox is out of range", file)
    records = _group(
        image_index[keep],
        boxes,
        labels[keep],
        crowd[keep],
        ann["area"][keep],
        images_dir,
        file_names,
        widths,
        heights,
        image_ids,
        path,
    )
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    return CocoFile(path, names, category_ids, records, file_names, crowd_skipped, info)


def write_coco(
    path: str | Path,
    records: Sequence[ImageRecord],
    names: Sequence[str],
    file_names: Sequence[str],
    category_ids: Sequence[int] | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Write records as a COCO JSON.

    Args:
        path: the JSON to write.
        records: the images; each record's ``image_id`` is kept when every record has a distinct
            one, else images are numbered 1..N in order.
        names: class names; class index ``i`` becomes category ``category_ids[i]``.
        file_names: each record's ``file_name`` (relative to the images folder).
        category_ids: COCO ids of the classes (default 1..C).
        info: the ``info`` object (default: a short note).

    Boxes are written as ``[x, y, w, h]`` pixels rounded to 1e-6, ``area = w * h``, ``iscrowd = 0``.
    """
    if len(file_names) != len(records):
        raise ValueError(f"{len(records)} records but {len(file_names)} file names")
    ids = [r.image_id for r in records]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        ids = list(range(1, len(records) + 1))
    category_ids = (
        list(category_ids) if category_ids is not None else list(range(1, len(names) + 1))
    )
    if len(category_ids) != len(names):
        raise ValueError(f"{len(names)} names but {len(category_ids)} category ids")
    images = [
        {"id": int(i), "file_name": str(name), "width": int(r.width), "height": int(r.height)}
        for i, name, r in zip(ids, file_names, records)
    ]
    annotations: list[dict[str, Any]] = []
    counts = [len(r) for r in records]
    if sum(counts):
        boxes = np.concatenate([r.boxes for r in records]).astype(np.float64)
        labels = np.concatenate([r.labels for r in records])
        xywh = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1), 6)
        area = np.round(xywh[:, 2] * xywh[:, 3], 6)
        image_of_box = np.repeat(np.asarray(ids, dtype=np.int64), counts).tolist()
        cat_of_box = np.asarray(category_ids, dtype=np.int64)[labels].tolist()
        annotations = [
            {"id": n, "image_id": i, "category_id": c, "bbox": b, "area": a, "iscrowd": 0}
            for n, i, c, b, a in zip(
                range(1, len(labels) + 1), image_of_box, cat_of_box, xywh.tolist(), area.tolist()
            )
        ]
    data = {
        "info": info or {"description": "written by darkyolo"},
        "images": images,
        "categories": [
            {"id": int(c), "name": str(n), "supercategory": ""} for c, n in zip(category_ids, names)
        ],
        "annotations": annotations,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))


def results_entries(
    image_id: Any,
    boxes: Any,
    scores: Any,
    labels: Any,
    category_ids: Sequence[int] | None = None,
    decimals: int | None = 3,
) -> list[dict[str, Any]]:
    """COCO results-format entries for one image's detections.

    Args:
        image_id: written as is in every entry.
        boxes: ``[K, 4]`` xyxy pixels (array-like); width and height are taken in its own dtype.
        scores: ``[K]`` confidences.
        labels: ``[K]`` 0-based class indices.
        category_ids: the category id of each class index (e.g. ``COCO80_CATEGORY_IDS``);
            None writes the class index itself.
        decimals: round box values to this many decimals and scores to two more; None keeps
            full precision.

    Returns:
        ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` per detection (top-left
        corner and size in pixels), in input order.
    """
    xyxy = np.asarray(boxes).reshape(-1, 4)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).astype(np.float64)
    conf = np.asarray(scores, dtype=np.float64).reshape(-1)
    if decimals is not None:
        xywh = np.round(xywh, decimals)
        conf = np.round(conf, decimals + 2)
    classes = np.asarray(labels).reshape(-1).tolist()
    if category_ids is None:
        cats = [int(k) for k in classes]
    else:
        cats = [int(category_ids[int(k)]) for k in classes]
    return [
        {"image_id": image_id, "category_id": c, "bbox": b, "score": s}
        for c, b, s in zip(cats, xywh.tolist(), conf.tolist())
    ]


# ----------------------------------------------------------------------------------------------


#: what a JSON value of the wrong type or size raises when read as a number or an array
_MALFORMED = (KeyError, TypeError, ValueError, OverflowError, AttributeError)
_INT64 = (-(2**63), 2**63 - 1)


def _int64(value: Any) -> int:
    """A JSON integer id or size; else ``ValueError``."""
    number = int(value)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ValueError(f"{value!r} does not fit in 64 bits")
    return number


def _flat(values: list[Any], dtype: type) -> np.ndarray:
    """A 1-D array of scalar JSON values (nested lists raise ``ValueError``)."""
    array = np.array(values, dtype=dtype)
    if array.ndim != 1:
        raise ValueError("expected numbers, got nested lists")
    return array


def _safe_file_name(name: str, image_id: int, file: str) -> None:
    """Refuse a ``file_name`` that would leave the images folder (absolute, ``..``, NUL)."""
    text = name.replace("\\", "/")
    if (
        "\x00" in text
        or text.startswith("/")
        or (len(text) > 1 and text[1] == ":")
        or ".." in text.split("/")
    ):
        raise DataError(
            f"image id {image_id} file_name {name!r}: path would escape the images folder",
            file,
        )


def _categories(categories: list[Any], file: str) -> tuple[list[str], list[int]]:
    pairs = []
    for position, category in enumerate(categories):
        try:
            pairs.append((_int64(category["id"]), str(category["name"])))
        except _MALFORMED:
            raise DataError(
                f"categories[{position}]: expected an object with 'id' and 'name'", file
            ) from None
    pairs.sort()
    ids = [i for i, _ in pairs]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"category id {duplicate} is listed twice", file)
    return [n for _, n in pairs], ids


def _images(images: list[Any], file: str) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    try:
        ids = _flat([im["id"] for im in images], np.int64)
        file_names = [im["file_name"] for im in images]
        widths = _flat([im["width"] for im in images], np.int64)
        heights = _flat([im["height"] for im in images], np.int64)
    except _MALFORMED as error:
        for position, im in enumerate(images):
            try:
                _int64(im["id"]), _int64(im["width"]), _int64(im["height"]), str(im["file_name"])
            except _MALFORMED:
                where = f"image id {im['id']!r}" if isinstance(im, dict) and "id" in im else ""
                raise DataError(
                    f"images[{position}] {where}: expected integer 'id', 'width', 'height' and a "
                    "'file_name'",
                    file,
                ) from None
        raise DataError(f"'images' holds a malformed entry ({error})", file) from None
    bad = np.flatnonzero((widths <= 0) | (heights <= 0))
    if len(bad):
        raise DataError(f"image id {ids[bad[0]]}: width and height must be positive", file)
    for i, name in enumerate(file_names):
        if not isinstance(name, str) or not name:
            raise DataError(f"image id {ids[i]}: 'file_name' must be a non-empty string", file)
        _safe_file_name(name, int(ids[i]), file)
    return ids, file_names, widths, heights


def _annotations(annotations: list[Any], file: str) -> dict[str, np.ndarray]:
    n = len(annotations)
    try:
        out = {
            "id": _flat([a.get("id", -1) for a in annotations], np.int64),
            "image_id": _flat([a["image_id"] for a in annotations], np.int64),
            "category_id": _flat([a["category_id"] for a in annotations], np.int64),
            "iscrowd": _flat([a.get("iscrowd", 0) for a in annotations], np.int64) != 0,
            "bbox": np.array([a["bbox"] for a in annotations], dtype=np.float64),
        }
        if n and out["bbox"].shape != (n, 4):
            raise ValueError("every bbox must be 4 numbers")
        out["bbox"] = out["bbox"].reshape(n, 4)
        box_area = out["bbox"][:, 2] * out["bbox"][:, 3]
        given = [a.get("area") for a in annotations]
        out["area"] = np.array(
            [box_area[k] if a is None else float(a) for k, a in enumerate(given)], np.float64
        )
    except _MALFORMED as error:
        _explain_bad_annotation(annotations, file)
        raise DataError(f"'annotations' holds a malformed entry ({error})", file) from None
    bad = np.flatnonzero(~np.isfinite(out["bbox"]).all(axis=1))
    if len(bad):
        raise DataError(f"annotation id {out['id'][bad[0]]}: bbox has a non-finite number", file)
    return out


def _explain_bad_annotation(annotations: list[Any], file: str) -> None:
    for position, a in enumerate(annotations):
        where = (
            f"annotation id {a.get('id')!r}" if isinstance(a, dict) else f"annotations[{position}]"
        )
        if not isinstance(a, dict):
            raise DataError(f"{where}: expected an object", file)
        for key in ("image_id", "category_id", "bbox"):
            if key not in a:
                raise DataError(f"{where}: missing '{key}'", file)
        try:
            _int64(a["image_id"]), _int64(a["category_id"]), _int64(a.get("iscrowd", 0))
            _int64(a.get("id", -1))
        except _MALFORMED:
            raise DataError(
                f"{where}: id, image_id, category_id and iscrowd must be integers", file
            ) from None
        bbox = a["bbox"]
        try:
            ok = len(bbox) == 4 and all(float(v) == float(v) for v in bbox)
        except _MALFORMED:
            ok = False
        if not ok:
            raise DataError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}", file)


def _lookup(
    sorted_keys: np.ndarray,
    order: np.ndarray,
    wanted: np.ndarray,
    ann_ids: np.ndarray,
    key: str,
    table: str,
    file: str,
) -> np.ndarray:
    """Position in the original table of each wanted key; a key not in the table is an error."""
    if not len(wanted):
        return np.zeros(0, dtype=np.int64)
    if not len(sorted_keys):
        raise DataError(f"annotation id {ann_ids[0]}: {key} {wanted[0]} is not in '{table}'", file)
    at = np.clip(np.searchsorted(sorted_keys, wanted), 0, len(sorted_keys) - 1)
    missing = np.flatnonzero(sorted_keys[at] != wanted)
    if len(missing):
        i = missing[0]
        raise DataError(f"annotation id {ann_ids[i]}: {key} {wanted[i]} is not in '{table}'", file)
    return order[at]


def _group(
    image_index: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    crowd: np.ndarray,
    area: np.ndarray,
    images_dir: Path,
    file_names: list[str],
    widths: np.ndarray,
    heights: np.ndarray,
    image_ids: np.ndarray,
    path: Path,
) -> list[ImageRecord]:
    """Split flat per-box arrays into one record per image (in the JSON's image order)."""
    order = np.argsort(image_index, kind="stable")
    boxes, labels, crowd, area = boxes[order], labels[order], crowd[order], area[order]
    ends = np.cumsum(np.bincount(image_index, minlength=len(file_names))).tolist()
    starts = [0, *ends[:-1]]
    return [
        ImageRecord(
            images_dir / name, w, h, boxes[s:e], labels[s:e], path, i, crowd[s:e], area[s:e]
        )
        for name, w, h, i, s, e in zip(
            file_names, widths.tolist(), heights.tolist(), image_ids.tolist(), starts, ends
        )
    ]
