"""Convert a labelled dataset between COCO JSON, VOC XML and YOLO txt.

Every source is read into :class:`~darkyolo.data.records.ImageRecord` lists, one per split; the
boxes are cleaned in one vectorised pass (zero-area and inverted boxes dropped, boxes reaching
outside the image clipped or dropped, each counted with the file it came from); then the target
layout is written:

* ``--to yolo``: ``DST/images/<split>/...`` (hard links, copies or symlinks of the source images),
  ``DST/labels/<split>/....txt`` (an empty file for an image without boxes), ``DST/train.txt`` and
  ``DST/valid.txt`` (image paths relative to ``DST``), ``DST/<name>.names`` and ``DST/<name>.data``
  (the dataset description ``train``/``val``/``check``/``anchors`` read).
* ``--to coco``: ``DST/images/<split>/...`` and ``DST/annotations/instances_<split>.json``.

Splits: a COCO JSON is one split named after it (``instances_val2017.json`` -> ``val2017``);
VOC uses ``ImageSets/Main/trainval.txt`` (or ``train.txt``) for training and ``test.txt`` (or
``val.txt``) for validation when present, else every image is training; a YOLO dataset keeps its
``train`` and ``val`` lists. A split whose name contains ``val`` or ``test`` is a validation split.

An image path that would land outside ``DST`` (``../x.jpg``, ``/abs/x.jpg``) is refused.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from darkyolo.data.conversion import (
    CLIP_TOLERANCE,
    LINK_MODES,
    MAX_EXAMPLES,
    SOURCE_FORMATS,
    TARGET_FORMATS,
    ConvertOptions,
    ConvertReport,
    Source,
    SourceSplit,
)
from darkyolo.data.convert_sources import READERS
from darkyolo.data.formats.coco import write_coco
from darkyolo.data.formats.yolo import format_labels, write_names
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError


def convert(
    src: str | Path,
    dst: str | Path,
    source_format: str,
    target_format: str,
    options: ConvertOptions | None = None,
) -> ConvertReport:
    """Convert the dataset at ``src`` (format ``source_format``) into ``dst``.

    Raises:
        DataError: a malformed source (naming file and entry), an image path escaping ``dst``,
            missing images (unless ``skip_missing``), or a non-empty ``dst`` (unless ``force``).
    """
    options = options or ConvertOptions()
    src, dst = Path(src), Path(dst)
    if source_format not in SOURCE_FORMATS:
        raise DataError(f"unknown source format {source_format!r}, expected {SOURCE_FORMATS}")
    if target_format not in TARGET_FORMATS:
        raise DataError(f"unknown target format {target_format!r}, expected {TARGET_FORMATS}")
    if options.link not in LINK_MODES:
        raise DataError(f"unknown link mode {options.link!r}, expected {LINK_MODES}")
    if options.out_of_image not in ("clip", "drop"):
        raise DataError(f"out_of_image must be clip or drop, got {options.out_of_image!r}")
    if not src.exists():
        raise DataError("no such file or folder", str(src))
    if dst.exists() and any(dst.iterdir()) and not options.force:
        raise DataError("output folder is not empty (use --force to write into it)", str(dst))

    report = ConvertReport(source_format, target_format, dst)
    source = READERS[source_format](src, options, report)
    report.names = source.names
    name = options.name or source.name
    for split in source.splits:
        split.relative = [
            safe_relative(rel, _entry(record, rel), record.source)
            for rel, record in zip(split.relative, split.records)
        ]
        _check_unique(split)
        report.boxes_read += sum(len(r) for r in split.records)
        split.records = clean_records(split.records, source.names, options.out_of_image, report)
        _drop_missing_images(split, options.skip_missing, report)

    dst.mkdir(parents=True, exist_ok=True)
    if target_format == "crops":
        _write_crops(source, dst, options, report)
        return report
    for split in source.splits:
        _link_images(split, dst / "images" / split.name, options.link, report)
        if target_format in ("yolo", "ultralytics"):
            _write_yolo_labels(split, dst / "labels" / split.name)
        else:
            json_path = dst / "annotations" / f"instances_{split.name}.json"
            json_path.parent.mkdir(parents=True, exist_ok=True)
            write_coco(json_path, split.records, source.names, split.relative, source.category_ids)
            report.written.append(json_path)
        boxes = sum(len(r) for r in split.records)
        empty = sum(1 for r in split.records if not len(r))
        report.splits.append((split.name, split.role, len(split.records), boxes, empty))
        report.boxes_written += boxes
    if target_format == "yolo":
        _write_yolo_description(dst, name, source, report)
    elif target_format == "ultralytics":
        _write_ultralytics_yaml(dst, source, report)
    return report


def _write_crops(source: Source, dst: Path, options: ConvertOptions, report: ConvertReport) -> None:
    """Each box as a picture under ``dst/train|val/<class>/`` (by the split's role)."""
    from darkyolo.data.crops import write_crops

    for split in source.splits:
        folder = dst / ("train" if split.role == "train" else "val")
        written, small, unreadable = write_crops(
            split.records, source.names, folder, split.name, options.crop_pad
        )
        report.splits.append((split.name, split.role, len(split.records), written, 0))
        report.boxes_written += written
        if small:
            report.add("small", small)
        if unreadable:
            report.add("unreadable", len(unreadable), unreadable)
    report.written.append(dst)


# ----------------------------------------------------------------------------------------------
# Cleaning
# ----------------------------------------------------------------------------------------------


def clean_records(
    records: list[ImageRecord], names: list[str], out_of_image: str, report: ConvertReport
) -> list[ImageRecord]:
    """Drop zero-area, inverted and non-finite boxes; clip (or drop) boxes outside the image.

    Works on all boxes at once; records whose boxes change are replaced, the others are kept.
    Each finding is counted in ``report`` with examples naming the file and the box.
    """
    counts = np.array([len(r) for r in records], dtype=np.int64)
    if not counts.sum():
        return records
    boxes = np.concatenate([r.boxes for r in records]).astype(np.float64)
    labels = np.concatenate([r.labels for r in records])
    owner = np.repeat(np.arange(len(records)), counts)
    size = np.array([(r.width, r.height) for r in records], dtype=np.float64)[owner]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        invalid = ~finite | (w < 0) | (h < 0)
        zero = finite & ~invalid & ((w == 0) | (h == 0))
    good = ~invalid & ~zero
    limit = np.concatenate([size, size], axis=1)
    clipped_boxes = np.clip(boxes, 0.0, limit)
    over = np.where(good, np.abs(clipped_boxes - boxes).max(axis=1), 0.0) > CLIP_TOLERANCE
    clipped_w = clipped_boxes[:, 2] - clipped_boxes[:, 0]
    clipped_h = clipped_boxes[:, 3] - clipped_boxes[:, 1]
    outside = good & ((clipped_w <= 0) | (clipped_h <= 0))
    if out_of_image == "drop":
        outside |= good & over
    clipped = good & over & ~outside
    keep = good & ~outside

    def describe(mask: np.ndarray) -> list[str]:
        found = []
        for i in np.flatnonzero(mask)[:MAX_EXAMPLES].tolist():
            record = records[owner[i]]
            box = ",".join(f"{v:g}" for v in boxes[i].tolist())
            label = names[labels[i]] if 0 <= labels[i] < len(names) else str(labels[i])
            found.append(f"{_where(record)}: {label} ({box})")
        return found

    for kind, mask in (
        ("zero-area", zero),
        ("invalid", invalid),
        ("outside", outside),
        ("clipped", clipped),
    ):
        report.add(kind, int(mask.sum()), describe(mask))
    changed = ~keep | clipped
    if not changed.any():
        return records
    out = list(records)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for r in np.unique(owner[changed]).tolist():
        s, e = starts[r], starts[r] + counts[r]
        k = keep[s:e]
        record = records[r]
        out[r] = ImageRecord(
            record.image,
            record.width,
            record.height,
            clipped_boxes[s:e][k],
            labels[s:e][k],
            record.label_file,
            record.image_id,
        )
    return out


def _where(record: ImageRecord) -> str:
    """The file to name for a box: the label file, or the image when labels share one JSON."""
    if record.label_file is not None and record.label_file.suffix.lower() != ".json":
        return record.label_file.name
    return record.image.name


def safe_relative(name: str, what: str, file: str | None = None) -> str:
    """A relative path that stays inside its folder, in ``/`` form; else :class:`DataError`.

    Refuses absolute paths (``/x``, ``C:\\x``), ``..`` components and empty names.
    """
    text = name.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts or not parts:
        raise DataError(f"{what}: path would escape the output folder, refused", file)
    return "/".join(parts)


def _entry(record: ImageRecord, relative: str) -> str:
    if record.image_id is not None:
        return f"image id {record.image_id} file_name {relative!r}"
    return f"image {relative!r}"


def _check_unique(split: SourceSplit) -> None:
    if len(set(split.relative)) != len(split.relative):
        seen: set[str] = set()
        for rel, record in zip(split.relative, split.records):
            if rel in seen:
                raise DataError(
                    f"two images of split {split.name} are both named {rel!r}", record.source
                )
            seen.add(rel)


def _drop_missing_images(split: SourceSplit, skip: bool, report: ConvertReport) -> None:
    listing: dict[Path, set[str]] = {}
    missing = []
    for i, record in enumerate(split.records):
        folder = record.image.parent
        if folder not in listing:
            try:
                listing[folder] = {e.name for e in os.scandir(folder)}
            except OSError:
                listing[folder] = set()
        if record.image.name not in listing[folder]:
            missing.append(i)
    if not missing:
        return
    names = [str(split.records[i].image) for i in missing]
    if not skip:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise DataError(
            f"{len(names)} images of split {split.name} are missing: {shown} "
            "(use --skip-missing to leave them out)"
        )
    report.add("missing-image", len(missing), names)
    gone = set(missing)
    split.records = [r for i, r in enumerate(split.records) if i not in gone]
    split.relative = [n for i, n in enumerate(split.relative) if i not in gone]


def _make_parents(root: Path, relative: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for parent in {os.path.dirname(rel) for rel in relative} - {""}:
        (root / parent).mkdir(parents=True, exist_ok=True)


def _link_images(split: SourceSplit, root: Path, mode: str, report: ConvertReport) -> None:
    _make_parents(root, split.relative)
    copied = 0
    for record, rel in zip(split.records, split.relative):
        target = root / rel
        source = record.image
        if os.path.lexists(target):
            if target.exists() and source.exists() and os.path.samefile(source, target):
                continue
            target.unlink()
        if mode == "symlink":
            os.symlink(source.resolve(), target)
            continue
        if mode == "hardlink":
            try:
                os.link(source, target)
                continue
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise DataError(
                        f"cannot link the image: {error.strerror}", str(source)
                    ) from None
                copied += 1
        shutil.copyfile(source, target)
    report.add("copied", copied)


def _write_yolo_labels(split: SourceSplit, root: Path) -> None:
    _make_parents(root, split.relative)
    for record, rel in zip(split.records, split.relative):
        with open(root / (os.path.splitext(rel)[0] + ".txt"), "w", encoding="utf-8") as f:
            f.write(format_labels(record))


def _write_yolo_description(dst: Path, name: str, source: Source, report: ConvertReport) -> None:
    names_path = dst / f"{name}.names"
    write_names(names_path, source.names)
    lines = [f"# written by darkyolo convert ({report.source_format} -> yolo)"]
    lines.append(f"classes={len(source.names)}")
    written = [names_path]
    for role, list_name in (("train", "train.txt"), ("valid", "valid.txt")):
        entries = [
            f"images/{split.name}/{rel}\n"
            for split in source.splits
            if split.role == role
            for rel in split.relative
        ]
        if any(split.role == role for split in source.splits):
            (dst / list_name).write_text("".join(entries), encoding="utf-8")
            lines.append(f"{role}={list_name}")
            written.append(dst / list_name)
    lines.append(f"names={names_path.name}")
    lines.append("backup=backup/")
    if source.category_ids is not None:
        lines.append("coco_ids=" + ",".join(str(i) for i in source.category_ids))
    data_path = dst / f"{name}.data"
    data_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report.written = [data_path, *written, *report.written]


def _write_ultralytics_yaml(dst: Path, source: Source, report: ConvertReport) -> None:
    """``DST/data.yaml`` for the ``images/<split>`` and ``labels/<split>`` folders written:
    ``path: .``, a ``train``/``val``/``test`` entry per role (a list where several splits share
    one), ``nc`` and ``names`` as a mapping."""
    import yaml

    keys: dict[str, list[str]] = {}
    for split in source.splits:
        key = (
            "train" if split.role == "train" else "test" if "test" in split.name.lower() else "val"
        )
        keys.setdefault(key, []).append(f"images/{split.name}")
    data: dict[str, object] = {"path": "."}
    for key in ("train", "val", "test"):
        if key in keys:
            data[key] = keys[key][0] if len(keys[key]) == 1 else keys[key]
    data["nc"] = len(source.names)
    data["names"] = dict(enumerate(source.names))
    path = dst / "data.yaml"
    header = f"# written by darkyolo convert ({report.source_format} -> ultralytics)\n"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text(header + text, encoding="utf-8")
    report.written = [path, *report.written]
