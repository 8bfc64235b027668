"""Dataset health report for a YOLO-txt dataset described by a ``.data`` file.

Every picture is opened and decoded (:mod:`darkyolo.data.scan`, remembered per file).

Errors (the dataset would train wrongly or not at all): missing or undecodable images, label lines
that do not parse, class ids outside the names, coordinates that are not normalised (pixels) or
boxes reaching outside the image, zero-size boxes. Each names ``file:line``.

Warnings (worth a look): truncated images (decoded as far as they go), images whose bytes are
another format than their name says, duplicate boxes, images without boxes, images without a label
file, label files without an image (orphans), images listed in both train and val.

Statistics: images and boxes per split, boxes per class, and a histogram of box sizes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from darkyolo.data.description import IMAGE_SUFFIXES, DatasetSpec
from darkyolo.data.formats.yolo import label_path_for
from darkyolo.data.layouts import load_dataset
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.data.scan import ScanReport, cache_for, read_scanned
from darkyolo.data.shape import relative_sides

#: edges of the box size histogram: sqrt(w * h) as a fraction of sqrt(image width * height)
SIZE_BINS = (0.0, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


@dataclass
class SplitStats:
    """Counts of one split: ``class_counts[c]`` boxes of class ``c``; ``size_counts[b]`` per bin."""

    images: int = 0
    boxes: int = 0
    empty: int = 0
    class_counts: list[int] = field(default_factory=list)
    size_counts: list[int] = field(default_factory=list)
    coco_sizes: tuple[int, int, int] = (0, 0, 0)  # small < 32^2 <= medium < 96^2 <= large pixels


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`."""

    spec: DatasetSpec
    splits: dict[str, SplitStats] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    scans: dict[str, ScanReport] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def lines(self, limit: int = 20) -> list[str]:
        """A human report: problems grouped by kind (``limit`` shown per kind), then statistics."""
        names = self.spec.names
        out = [f"dataset {self.spec.path}: {len(names)} classes"]
        by_kind: dict[tuple[str, str], list[Problem]] = {}
        for problem in self.problems:
            by_kind.setdefault((problem.severity, problem.kind), []).append(problem)
        for (severity, kind), found in sorted(by_kind.items()):
            out.append(f"{severity}s: {kind}: {len(found)}")
            out.extend(f"  {p}" for p in found[:limit])
            if len(found) > limit:
                out.append(f"  ... and {len(found) - limit} more")
        for split, stats in self.splits.items():
            out.append(
                f"{split}: {stats.images} images, {stats.boxes} boxes, {stats.empty} without boxes"
            )
            if split in self.scans:
                out.append(f"  {self.scans[split].summary()}")
            width = max((len(n) for n in names), default=0)
            for name, count in zip(names, stats.class_counts):
                out.append(f"  {name:<{width}} {count:>8}")
            if stats.boxes:
                out.append("  box size sqrt(w*h) / image side:")
                top = max(stats.size_counts) or 1
                for i, count in enumerate(stats.size_counts):
                    bar = "#" * round(40 * count / top)
                    edges = f"{SIZE_BINS[i]:.3f}-{SIZE_BINS[i + 1]:.3f}"
                    out.append(f"    {edges} {count:>8} {bar}")
                small, medium, large = stats.coco_sizes
                out.append(f"  COCO sizes (pixels): small {small}, medium {medium}, large {large}")
        verdict = f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        out.append(verdict)
        return out


def check_dataset(
    path: str | Path, splits: tuple[str, ...] = ("train", "val", "test")
) -> CheckReport:
    """Check a dataset (a ``.data`` file or a folder with one); see the module docstring.

    Raises:
        DataError: only when the ``.data`` file itself cannot be read (everything else is a
            :class:`Problem` in the report).
    """
    spec = load_dataset(path)
    report = CheckReport(spec)
    listed: dict[Path, str] = {}
    found: dict[tuple, Problem] = {}  # each problem once, with the splits it was found in

    def add(problems: list[Problem], split: str | None) -> None:
        for problem in problems:
            key = (problem.severity, problem.kind, problem.message, problem.file, problem.line)
            known = found.get(key)
            splits = (known.splits if known else ()) + ((split,) if split else ())
            found[key] = replace(problem, splits=tuple(dict.fromkeys(splits)))

    for split in splits:
        images = spec.images(split)
        if not images and split != "train":
            continue
        problems: list[Problem] = []
        for image in images:
            if image in listed and listed[image] != split:
                message = f"listed in both {listed[image]} and {split}"
                problems.append(Problem("warning", "split-overlap", message, str(image)))
            listed.setdefault(image, split)
        records, scan = read_scanned(
            images,
            spec.num_classes,
            problems,
            cache=cache_for(spec.path),
            what=f"{spec.path.name} {split}",
            voc_names=spec.voc_names,
        )
        problems.extend(scan.as_problems()[len(scan.excluded) :])  # excluded: already in
        report.scans[split] = scan
        for record in records:
            if not len(record):
                problems.append(Problem("warning", "empty-image", "no boxes", str(record.image)))
        add(problems, split if len(splits) > 1 else None)
        report.splits[split] = _statistics(records, spec.num_classes)
    add(_orphan_labels(list(listed)), None)
    report.problems = list(found.values())
    return report


def _statistics(records: list[ImageRecord], num_classes: int) -> SplitStats:
    stats = SplitStats(images=len(records))
    stats.empty = sum(1 for r in records if not len(r))
    counts = np.array([len(r) for r in records], dtype=np.int64)
    stats.boxes = int(counts.sum())
    stats.class_counts = [0] * num_classes
    stats.size_counts = [0] * (len(SIZE_BINS) - 1)
    if not stats.boxes:
        return stats
    boxes = np.concatenate([r.boxes for r in records]).astype(np.float64)
    labels = np.concatenate([r.labels for r in records])
    stats.class_counts = np.bincount(labels, minlength=num_classes).tolist()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    relative = relative_sides(records)
    stats.size_counts = np.histogram(np.clip(relative, 0, 1), bins=SIZE_BINS)[0].tolist()
    stats.coco_sizes = (
        int((area < 32**2).sum()),
        int(((area >= 32**2) & (area < 96**2)).sum()),
        int((area >= 96**2).sum()),
    )
    return stats


def _orphan_labels(images: list[Path]) -> list[Problem]:
    """Label files in the label folders of the listed images that match no image on disk."""
    folders: dict[Path, Path] = {}  # label folder -> image folder
    for image in images:
        folders.setdefault(label_path_for(image).parent, image.parent)
    problems = []
    for label_dir, image_dir in sorted(folders.items()):
        try:
            labels = [e.name for e in os.scandir(label_dir) if e.name.endswith(".txt")]
            stems = Counter(
                os.path.splitext(e.name)[0]
                for e in os.scandir(image_dir)
                if e.name.lower().endswith(IMAGE_SUFFIXES)
            )
        except OSError:
            continue
        for name in sorted(labels):
            if os.path.splitext(name)[0] not in stems:
                message = f"label file with no image in {image_dir}"
                problems.append(Problem("warning", "orphan-label", message, str(label_dir / name)))
    return problems
