"""The dataset description: Darknet's ``.data`` file, and reading a split's records from it.

A ``.data`` file is ``key=value`` lines (``#`` starts a comment)::

    classes=3
    train=train.txt        # a list of image paths, one a line, or a folder of images
    valid=valid.txt        # ``val=`` is accepted too
    test=test.txt          # optional: scored only when asked for (``darkyolo val --split test``)
    names=bccd.names

Relative paths resolve against the ``.data`` file's folder (and, for Darknet files written
relative to the darknet folder, against the working directory when that finds the file instead).
Relative entries inside a list file resolve against the list file's folder. Labels follow the
Darknet rule of :func:`darkyolo.data.formats.yolo.label_path_for`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from darkyolo.data.formats.yolo import label_path_for, read_labels, read_names
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: keys Darknet's own .data files use that this project reads or passes over
_KNOWN_KEYS = frozenset(
    {"classes", "train", "valid", "val", "test", "names", "backup", "eval", "results", "top",
     "labels", "map", "leaves", "coco_ids"}
)  # fmt: skip


@dataclass
class DatasetSpec:
    """A parsed ``.data`` file.

    Attributes:
        path: the ``.data`` file.
        names: class names (their order is the class index).
        train, val, test: image paths of each split (``val`` and ``test`` may be empty).
        options: every ``key=value`` as written (``backup``, ``eval``, ``coco_ids``, ...).
        labels: ``txt``, YOLO label files by Darknet's ``images`` -> ``labels`` rule, or ``xml``,
            a Pascal VOC file beside each picture (a LabelImg folder).
    """

    path: Path
    names: list[str]
    train: list[Path]
    val: list[Path]
    options: dict[str, str] = field(default_factory=dict)
    test: list[Path] = field(default_factory=list)
    labels: str = "txt"

    @property
    def voc_names(self) -> list[str] | None:
        """The class names that VOC ``.xml`` labels beside the pictures are read with, or ``None``
        when the labels are YOLO ``.txt`` files."""
        return self.names if self.labels == "xml" else None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def category_ids(self) -> list[int] | None:
        """COCO category id per class from ``coco_ids=`` (written by ``darkyolo convert``), or
        ``None`` when the file has none."""
        if "coco_ids" not in self.options:
            return None
        try:
            ids = [int(v) for v in self.options["coco_ids"].split(",")]
        except ValueError:
            ids = []
        if len(ids) != len(self.names):
            raise DataError(
                f"coco_ids must be {len(self.names)} comma-separated integers", str(self.path)
            )
        return ids

    def images(self, split: str) -> list[Path]:
        """Image paths of ``train``, ``val`` (``valid`` accepted) or ``test``."""
        if split == "train":
            return self.train
        if split in ("val", "valid"):
            return self.val
        if split == "test":
            return self.test
        raise DataError(f"unknown split {split!r}, expected train, val or test", str(self.path))

    def split_sizes(self) -> dict[str, int]:
        """Number of listed pictures per split: ``{"train": 205, "val": 87, "test": 0}``."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def read(self, split: str, problems: list[Problem] | None = None) -> list[ImageRecord]:
        """The records of a split; see :func:`read_records`."""
        return read_records(self.images(split), self.num_classes, problems, self.voc_names)


def find_data_file(path: str | Path) -> Path:
    """A ``.data`` file, or a folder holding exactly one, -> the ``.data`` file."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.data"))
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) or "none"
            raise DataError(
                f"expected exactly one .data file in the folder, found {listed}", str(path)
            )
        return found[0]
    if not path.is_file():
        raise DataError("no such dataset (.data file or folder with one)", str(path))
    return path


def read_data_file(path: str | Path) -> DatasetSpec:
    """Parse a ``.data`` file (or the one ``.data`` in a folder) and list its splits' images.
    (:func:`darkyolo.data.layouts.load_dataset` reads this and the other layouts.)"""
    data_file = find_data_file(path)
    options, lines = read_data_options(data_file)
    if "names" not in options:
        raise DataError("missing 'names=' (the class names file)", str(data_file))
    if "train" not in options:
        raise DataError("missing 'train=' (a list of images or a folder)", str(data_file))
    names = read_names(resolve_data_path(data_file, options["names"], "names", lines["names"]))
    if "classes" in options:
        try:
            classes = int(options["classes"])
        except ValueError:
            raise DataError(
                f"classes must be an integer, got {options['classes']!r}",
                str(data_file),
                lines["classes"],
            ) from None
        if classes != len(names):
            raise DataError(
                f"classes={classes} but the names file lists {len(names)} names",
                str(data_file),
                lines["classes"],
            )
    val_key = "valid" if "valid" in options else "val" if "val" in options else None
    return DatasetSpec(
        path=data_file,
        names=names,
        train=_split_images(data_file, options["train"], "train", lines["train"]),
        val=_split_images(data_file, options[val_key], val_key, lines[val_key]) if val_key else [],
        options=options,
        test=_split_images(data_file, options["test"], "test", lines["test"])
        if "test" in options
        else [],
    )


def read_data_options(data_file: Path) -> tuple[dict[str, str], dict[str, int]]:
    """A ``.data`` file's ``key=value`` options and the line of each (unknown or repeated keys
    are errors naming the line)."""
    try:
        text = data_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the .data file: {error}", str(data_file)) from None
    options: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise DataError(f"expected key=value, got {line!r}", str(data_file), number)
        key, value = (part.strip() for part in line.split("=", 1))
        if key not in _KNOWN_KEYS:
            known = ", ".join(sorted(_KNOWN_KEYS))
            raise DataError(f"unknown key {key!r}, expected one of {known}", str(data_file), number)
        if key in options:
            raise DataError(
                f"key {key!r} given twice (first on line {lines[key]})", str(data_file), number
            )
        if (key == "val" and "valid" in options) or (key == "valid" and "val" in options):
            raise DataError("give valid= or val=, not both", str(data_file), number)
        options[key], lines[key] = value, number
    return options, lines


def resolve_data_path(data_file: Path, value: str, key: str, line: int) -> Path:
    """A path from the .data file: against its folder first, then the working directory."""
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # "~name" of a user this system does not know: taken literally
        path = Path(value)
    candidates = [path] if path.is_absolute() else [data_file.parent / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise DataError(f"{key}={value}: not found (looked for {tried})", str(data_file), line)


def _split_images(data_file: Path, value: str, key: str, line: int) -> list[Path]:
    source = resolve_data_path(data_file, value, key, line)
    if source.is_dir():
        return find_images(source)
    root = data_file.parent.resolve()
    if not source.resolve().is_relative_to(root):
        root = source.parent.resolve()  # a list kept elsewhere: its own folder is the root
    return read_image_list(source, root)


def find_images(folder: str | Path) -> list[Path]:
    """Every image file under a folder (recursively), sorted."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / f for f in sorted(files) if f.lower().endswith(IMAGE_SUFFIXES))
    return found


def read_image_list(path: str | Path, root: str | Path | None = None) -> list[Path]:
    """Image paths from a list file, one a line; relative ones resolve against the file's folder.

    With ``root``, a relative entry that would leave it (``../../x.jpg``) is refused; absolute
    entries are taken as written (Darknet's own lists hold absolute paths).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the image list: {error}", str(path)) from None
    base = path.parent
    real_base, real_root = base.resolve(), Path(root).resolve() if root is not None else None
    images = []
    for number, line in enumerate(text.split("\n"), start=1):
        entry = line.strip()
        if not entry:
            continue
        if "\x00" in entry:
            raise DataError("a NUL character in an image path", str(path), number)
        image = Path(entry)
        if not image.is_absolute():
            if real_root is not None and not _inside(real_base / image, real_root):
                raise DataError(
                    f"image path {entry!r} escapes the dataset folder {root}, refused",
                    str(path),
                    number,
                )
            image = base / image
        images.append(image)
    return images


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies under ``root``, ``..`` taken by name (links may point anywhere)."""
    return Path(os.path.normpath(path)).is_relative_to(root)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the image header, without decoding the pixels.

    This is the stored size; an EXIF orientation tag is not applied.
    """
    try:
        with warnings.catch_warnings():  # darkyolo's own pixel limit applies when decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except FileNotFoundError:
        raise DataError("image not found", str(path)) from None
    except Image.DecompressionBombError as error:
        raise DataError(f"refused by Pillow as a decompression bomb: {error}", str(path)) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:  # ValueError: NUL in the path
        raise DataError(f"cannot read the image header: {error}", str(path)) from None


def read_records(
    image_paths: list[Path],
    num_classes: int | None,
    problems: list[Problem] | None = None,
    voc_names: Sequence[str] | None = None,
) -> list[ImageRecord]:
    """One record per image, boxes from the image's YOLO label file, or with ``voc_names`` from
    the Pascal VOC ``.xml`` beside it (LabelImg's layout; classes by those names).

    An image without a label file has no boxes (Darknet's behaviour). With ``problems=None`` a
    missing or unreadable image or a bad label line raises :class:`DataError`; with a list they
    are appended as :class:`Problem` (bad lines left out, missing images left out of the result),
    and a missing label file is reported as a ``missing-label`` warning.
    """
    records = []
    for image in image_paths:
        try:
            width, height = image_size(image)
        except DataError as error:
            if problems is None:
                raise
            kind = "missing-image" if not Path(image).exists() else "bad-image"
            problems.append(Problem("error", kind, error.reason, str(image)))
            continue
        label_file = Path(image).with_suffix(".xml") if voc_names else label_path_for(image)
        if label_file.is_file():
            if voc_names:
                records.append(
                    _read_voc_beside(image, label_file, width, height, voc_names, problems)
                )
                continue
            boxes, labels = read_labels(label_file, width, height, num_classes, problems)
            records.append(ImageRecord(image, width, height, boxes, labels, label_file))
            continue
        if problems is not None:
            message = f"no label file (expected {label_file}); no boxes"
            problems.append(Problem("warning", "missing-label", message, str(image)))
        records.append(ImageRecord(image, width, height))
    return records


def _read_voc_beside(
    image: Path,
    xml: Path,
    width: int,
    height: int,
    names: Sequence[str],
    problems: list[Problem] | None,
) -> ImageRecord:
    """A picture's record from the VOC ``.xml`` beside it: boxes clipped to the picture (a warning
    each), boxes of no area and unknown classes left out as errors (raised with ``problems=None``)."""
    from darkyolo.data.formats.voc import parse_voc_xml

    try:
        voc = parse_voc_xml(xml)
    except DataError as error:
        if problems is None:
            raise
        problems.append(Problem("error", "unparsable", error.reason, str(xml), error.line))
        return ImageRecord(image, width, height, label_file=xml)
    index = {name: k for k, name in enumerate(names)}
    boxes, labels = [], []
    for number, (name, box) in enumerate(zip(voc.names, voc.boxes), start=1):
        clipped = np.clip(box, 0, [width, height, width, height])
        reason = (
            f"object {number}: class {name!r} is not one of the names ({', '.join(names)})"
            if name not in index
            else f"object {number} ({name}): no area inside the {width}x{height} picture"
            if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]
            else None
        )
        if reason is not None:
            if problems is None:
                raise DataError(reason, str(xml))
            kind = "class-range" if name not in index else "zero-size"
            problems.append(Problem("error", kind, reason, str(xml)))
            continue
        if problems is not None and np.abs(clipped - box).max() > 1e-3:
            message = (
                f"object {number} ({name}) reaches outside the {width}x{height} picture; clipped"
            )
            problems.append(Problem("warning", "clipped", message, str(xml)))
        boxes.append(clipped)
        labels.append(index[name])
    return ImageRecord(
        image,
        width,
        height,
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(labels, dtype=np.int64),
        xml,
    )
