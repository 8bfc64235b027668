"""What a dataset conversion is: its options, the splits it reads, the dataset as read and the
report of what it kept, dropped and wrote (:mod:`darkyolo.data.convert` runs it;
:mod:`darkyolo.data.convert_sources` reads the sources)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from darkyolo.data.records import ImageRecord

#: ``yolo``, ``ultralytics`` and ``labelimg`` sources are read by
#: :func:`~darkyolo.data.layouts.load_dataset` (a ``.data``, a ``data.yaml``, a LabelImg folder)
SOURCE_FORMATS = ("coco", "voc", "yolo", "ultralytics", "labelimg")
TARGET_FORMATS = ("yolo", "ultralytics", "coco", "crops")
LINK_MODES = ("hardlink", "copy", "symlink")
#: a box edge this far (pixels) past the image border is clipped without being counted
CLIP_TOLERANCE = 1e-3
#: examples kept per kind of finding in a report
MAX_EXAMPLES = 50


@dataclass
class ConvertOptions:
    """How to convert.

    Attributes:
        name: dataset name for ``<name>.names``/``<name>.data`` (default: from the source path).
        names_file: VOC: the class list (default: every class name found, sorted).
        link: how images reach ``DST/images``: ``hardlink`` (copy where that fails), ``copy``,
            or ``symlink`` (absolute).
        include_crowd: COCO: keep ``iscrowd=1`` boxes as ordinary boxes.
        out_of_image: ``clip`` boxes reaching outside the image to it, or ``drop`` them.
        one_based: VOC: read corners as 1-based inclusive pixel indices (original VOC tools).
        skip_difficult: VOC: leave out objects marked ``<difficult>1``.
        images_dir: COCO: the folder ``file_name`` is relative to (one JSON only).
        force: write into a ``DST`` that is not empty.
        skip_missing: leave out (and count) images whose file is missing instead of failing.
        crop_pad: ``crops``: each box grown by this fraction of its size on every side.
    """

    name: str | None = None
    names_file: Path | None = None
    link: str = "hardlink"
    include_crowd: bool = False
    out_of_image: str = "clip"
    one_based: bool = False
    skip_difficult: bool = False
    images_dir: Path | None = None
    force: bool = False
    skip_missing: bool = False
    crop_pad: float = 0.1


@dataclass
class SourceSplit:
    """One split of the source: its records and each image's path below ``images/<name>/``."""

    name: str
    role: str  # "train" | "valid"
    records: list[ImageRecord]
    relative: list[str]


@dataclass
class ConvertReport:
    """What a conversion did. ``counts`` and ``examples`` are keyed by finding kind."""

    source_format: str
    target_format: str
    dst: Path
    names: list[str] = field(default_factory=list)
    splits: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    boxes_read: int = 0
    boxes_written: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    def add(self, kind: str, count: int, examples: Sequence[str] = ()) -> None:
        """Count ``count`` findings of ``kind``; keep the first examples."""
        self.counts[kind] = self.counts.get(kind, 0) + count
        kept = self.examples.setdefault(kind, [])
        kept.extend(examples[: MAX_EXAMPLES - len(kept)])

    def lines(self, limit: int = 10) -> list[str]:
        """A human summary, ``limit`` examples per finding."""
        out = [f"converted {self.source_format} -> {self.target_format}: {self.dst}"]
        out.append(f"  classes: {len(self.names)}")
        for name, role, images, boxes, empty in self.splits:
            out.append(
                f"  split {name} ({role}): {images} images, {boxes} boxes, {empty} without boxes"
            )
        out.append(f"  boxes written: {self.boxes_written} of {self.boxes_read} read")
        from darkyolo.data.crops import MIN_CROP_SIDE  # crops need OpenCV: loaded when used

        labels = {
            "crowd": "crowd boxes skipped",
            "difficult": "difficult boxes skipped",
            "zero-area": "zero-area boxes dropped",
            "invalid": "inverted or non-finite boxes dropped",
            "outside": "boxes outside the image dropped",
            "clipped": "boxes clipped to the image",
            "missing-image": "images missing (left out)",
            "unlisted": "annotated images in no split (left out)",
            "copied": "images copied because a hard link failed",
            "small": f"boxes under {MIN_CROP_SIDE} px not cropped",
            "unreadable": "pictures that could not be read (their boxes not cropped)",
        }
        for kind, text in labels.items():
            count = self.counts.get(kind, 0)
            always = ("zero-area", "clipped") + (("crowd",) if self.source_format == "coco" else ())
            if kind not in always and not count:
                continue
            out.append(f"  {text}: {count}")
            examples = self.examples.get(kind, [])
            for example in examples[:limit]:
                out.append(f"    {example}")
            if count > min(limit, len(examples)) and examples:
                out.append(f"    ... and {count - min(limit, len(examples))} more")
        for path in self.written:
            out.append(f"  wrote {path}")
        return out


@dataclass
class Source:
    """A dataset as read: its name, class names, splits, and COCO category ids if it had them."""

    name: str
    names: list[str]
    splits: list[SourceSplit]
    category_ids: list[int] | None = None


def split_role(split: str) -> str:
    """``valid`` for a split whose name says val or test (not trainval), else ``train``."""
    lowered = split.lower()
    return "valid" if "val" in lowered.replace("trainval", "") or "test" in lowered else "train"
