"""The development suite: the public sets recipes are screened on, laid out as YOLO txt with
their own splits, and the statistics that tell their shapes apart.

Each set gets two ``.data`` files under ``--out``: ``NAME-split.data`` (train / val: for choosing)
and ``NAME.data`` (trainval / test: for the final score only). The sets:

* ``bccd``: BCCD blood cells (3 classes, 14 boxes a picture, small and medium), train 205 / val 87,
  trainval 292 / test 72;
* ``aquarium``: 7 classes, many small fish; train 448 / val 127, trainval 575 / test 63;
* ``bccd-wbc``: BCCD's white cells alone, the same pictures and splits: one class, one box a
  picture, each about a third of the picture's side (large). The other cells are background.
* ``aquarium-shark``: one square cut of each aquarium picture with sharks, around its largest
  shark, so that the shark's longer side is 0.45 to 0.9 of the cut's (drawn per picture): one
  class of large objects in natural photos, 1-2 a picture, each cut in its picture's split. Sharks
  cut to under 40% of their area are dropped; the other animals are background.
* ``aquarium-animals``: the same kind of cut around each aquarium picture's largest animal that is
  not a fish, filling 0.2 to 0.45 of the cut's side: six classes (jellyfish, penguin, puffin,
  shark, starfish, stingray) of medium objects, 2.7 a picture; the fish are background. Train 342
  / val 95, trainval 437 / test 50.

Usage::

    python benchmarks/suite.py --out runs/suite
    python benchmarks/train_recipes.py --data runs/suite/bccd-wbc/bccd-wbc-split.data ...
"""

from __future__ import annotations

import argparse
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from cli_runner import darkyolo

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def voc_set(name: str, out: Path) -> Path:
    """A VOC set of ../shared/data converted to YOLO txt, with ``NAME-split.data`` (its
    ``ImageSets/Main`` train and val lists) beside the converter's trainval / test ``NAME.data``."""
    folder = out / name
    split = folder / f"{name}-split.data"
    if split.is_file():
        return folder
    darkyolo(["convert", str(SHARED / name), str(folder), "--force"])
    main = SHARED / name / "ImageSets" / "Main"
    for part in ("train", "val"):
        ids = main.joinpath(f"{part}.txt").read_text().split()
        lines = "".join(f"images/trainval/{i}{_suffix(folder, i)}\n" for i in ids)
        (folder / f"split-{part}.txt").write_text(lines)
    classes = len((folder / f"{name}.names").read_text().split("\n")) - 1
    split.write_text(
        f"classes={classes}\ntrain=split-train.txt\nvalid=split-val.txt\nnames={name}.names\n"
    )
    return folder


def _suffix(folder: Path, stem: str) -> str:
    """The converted picture's suffix (``.jpg`` or whatever the source had)."""
    return next((folder / "images" / "trainval").glob(f"{stem}.*")).suffix


def one_class_of(source: Path, name: str, keep: str, out: Path) -> Path:
    """``source``'s pictures and splits with the boxes of class ``keep`` alone (class 0 now);
    pictures are linked, not copied."""
    folder = out / name
    if (folder / f"{name}-split.data").is_file():
        return folder
    index = (source / f"{source.name}.names").read_text().split("\n").index(keep)
    for picture in sorted((source / "images").glob("*/*")):
        part = picture.parent.name
        target = folder / "images" / part / picture.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(picture.resolve(), target)
        labels = source / "labels" / part / f"{picture.stem}.txt"
        lines = labels.read_text().splitlines() if labels.is_file() else []
        kept = [f"0{line[len(str(index)) :]}\n" for line in lines if line.split()[:1] == [str(index)]]  # fmt: skip
        target_labels = folder / "labels" / part / f"{picture.stem}.txt"
        target_labels.parent.mkdir(parents=True, exist_ok=True)
        target_labels.write_text("".join(kept))
    (folder / f"{name}.names").write_text(f"{keep}\n")
    for listing in ("train.txt", "valid.txt", "split-train.txt", "split-val.txt"):
        (folder / listing).write_text((source / listing).read_text())
    _write_data(folder, name)
    return folder


#: a cut keeps a box whose visible part is at least this share of its area
MIN_VISIBLE = 0.4
#: ``aquarium-shark``: the largest shark's longer side as a share of its cut's (large objects)
SHARK_SHARE = (0.45, 0.9)
#: ``aquarium-animals``: aquarium's classes but the fish, which are small and many
ANIMALS = ["jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"]
#: ``aquarium-animals``: the largest animal's longer side as a share of its cut's (medium objects)
ANIMALS_SHARE = (0.2, 0.45)


def cuts_of(
    source: Path, name: str, keep: list[str], share: tuple[float, float], out: Path
) -> Path:
    """One square cut of each of ``source``'s pictures that has a box of the classes ``keep``,
    around the largest such box, whose longer side fills ``share`` (low, high) of the cut's side,
    drawn from the picture's name so that a rerun makes the same set. The boxes of ``keep`` with
    :data:`MIN_VISIBLE` of their area in the cut are labelled, numbered in ``keep``'s order; the
    other classes are background. Splits follow the source's lists."""
    folder = out / name
    if (folder / f"{name}-split.data").is_file():
        return folder
    names = (source / f"{source.name}.names").read_text().split("\n")
    index = {str(names.index(kept)): new for new, kept in enumerate(keep)}
    renamed: dict[str, str] = {}
    for picture in sorted((source / "images").glob("*/*")):
        part = picture.parent.name
        labels = source / "labels" / part / f"{picture.stem}.txt"
        rows = (
            [line.split() for line in labels.read_text().splitlines()] if labels.is_file() else []
        )
        rows = [row for row in rows if row[:1] and row[0] in index]
        if not rows:
            continue
        classes = np.array([index[row[0]] for row in rows])
        boxes = np.array([[float(v) for v in row[1:5]] for row in rows])
        image = cv2.imread(str(picture))
        height, width = image.shape[:2]
        xyxy = np.stack([
            (boxes[:, 0] - boxes[:, 2] / 2) * width, (boxes[:, 1] - boxes[:, 3] / 2) * height,
            (boxes[:, 0] + boxes[:, 2] / 2) * width, (boxes[:, 1] + boxes[:, 3] / 2) * height,
        ], axis=1)  # fmt: skip
        left, top, side = _cut(
            xyxy, width, height, share, np.random.default_rng(zlib.crc32(picture.name.encode()))
        )
        inside = np.clip(xyxy - [left, top, left, top], 0, side)
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        seen = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
        visible = seen >= MIN_VISIBLE * area
        target = folder / "images" / part / f"{picture.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(target), image[top : top + side, left : left + side], [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        lines = "".join(
            f"{c} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}\n"
            for c, (x1, y1, x2, y2) in zip(classes[visible], inside[visible] / side)
        )
        label_file = folder / "labels" / part / f"{picture.stem}.txt"
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text(lines)
        renamed[f"images/{part}/{picture.name}"] = f"images/{part}/{target.name}"
    (folder / f"{name}.names").write_text("".join(f"{kept}\n" for kept in keep))
    for listing in ("train.txt", "valid.txt", "split-train.txt", "split-val.txt"):
        lines = (source / listing).read_text().split()
        (folder / listing).write_text("".join(f"{renamed[p]}\n" for p in lines if p in renamed))
    _write_data(folder, name, len(keep))
    return folder


def _cut(
    xyxy: np.ndarray, width: int, height: int, share: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int]:
    """``(left, top, side)`` of a square cut around the largest of ``xyxy`` (pixels), whose
    longer side is a ``share`` of the cut's drawn between its two ends."""
    sizes = xyxy[:, 2:] - xyxy[:, :2]
    x1, y1, x2, y2 = xyxy[int(np.argmax(sizes.prod(axis=1)))]
    longer = max(x2 - x1, y2 - y1)
    side = int(min(longer / rng.uniform(*share), width, height))
    return _offset(x1, x2, side, width, rng), _offset(y1, y2, side, height, rng), side


def _offset(start: float, end: float, side: int, limit: int, rng: np.random.Generator) -> int:
    """Where a cut ``side`` long starts on an axis ``limit`` long so that it holds ``start..end``
    (or as much of it as fits, centred)."""
    low, high = max(0.0, end - side), max(0.0, min(start, limit - side))
    if low > high:
        return int(min(max(0.0, (start + end - side) / 2), limit - side))
    return int(rng.uniform(low, high))


def _write_data(folder: Path, name: str, classes: int = 1) -> None:
    """A derived set's ``NAME.data`` (trainval / test) and ``NAME-split.data`` (train / val)."""
    for data, (train, valid) in {
        f"{name}.data": ("train.txt", "valid.txt"),
        f"{name}-split.data": ("split-train.txt", "split-val.txt"),
    }.items():
        (folder / data).write_text(
            f"classes={classes}\ntrain={train}\nvalid={valid}\nnames={name}.names\n"
        )


def shape_line(data: Path) -> str:
    """A set's training split in one line (:func:`darkyolo.data.shape.data_shape`)."""
    from darkyolo.data.dataset import load_split
    from darkyolo.data.layouts import load_dataset
    from darkyolo.data.shape import data_shape

    spec = load_dataset(data)
    records, _ = load_split(spec, "train")
    return f"{data.name}: train {data_shape(records, len(spec.names)).describe()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "suite")
    args = parser.parse_args()
    out = args.out.resolve()
    bccd = voc_set("bccd", out)
    aquarium = voc_set("aquarium", out)
    folders = [bccd, aquarium, one_class_of(bccd, "bccd-wbc", "WBC", out)]
    folders.append(cuts_of(aquarium, "aquarium-shark", ["shark"], SHARK_SHARE, out))
    folders.append(cuts_of(aquarium, "aquarium-animals", ANIMALS, ANIMALS_SHARE, out))
    for folder in folders:
        print(shape_line(folder / f"{folder.name}-split.data"))


if __name__ == "__main__":
    main()
