"""The development suite: the public sets recipes are screened on, laid out as YOLO txt with
their own splits, and the statistics that tell their shapes apart.

Each set gets two ``.data`` files under ``--out``: ``NAME-split.data`` (train / val: for choosing)
and ``NAME.data`` (trainval / test: for the final score only). The sets:

* ``bccd``: BCCD blood cells (3 classes, 14 boxes a picture, small and medium), train 205 / val 87,
  trainval 292 / test 72;
* ``aquarium``: 7 classes, many small fish; train 448 / val 127, trainval 575 / test 63;
* ``bccd-wbc``: BCCD's white cells alone, the same pictures and splits: one class, one box a
  picture, each about a third of the picture's side (large). The other cells are background.

Usage::

    python benchmarks/suite.py --out runs/suite
    python benchmarks/train_recipes.py --data runs/suite/bccd-wbc/bccd-wbc-split.data ...
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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
    for data, (train, valid) in {
        f"{name}.data": ("train.txt", "valid.txt"),
        f"{name}-split.data": ("split-train.txt", "split-val.txt"),
    }.items():
        (folder / data).write_text(f"classes=1\ntrain={train}\nvalid={valid}\nnames={name}.names\n")
    return folder


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
    folders = [bccd, voc_set("aquarium", out), one_class_of(bccd, "bccd-wbc", "WBC", out)]
    for folder in folders:
        print(shape_line(folder / f"{folder.name}-split.data"))


if __name__ == "__main__":
    main()
