"""The labelled pictures to score: a split of a ``.data`` file, an image list or folder, or a COCO JSON.

``darkyolo val --data D --split S`` reads through :func:`open_split`:

* ``D`` a ``.data`` file (or a folder holding one), ``S`` one of ``train``, ``val``, ``test``:
  the pictures its ``train=``, ``valid=``/``val=`` or ``test=`` lists;
* ``D`` a ``.data`` file, ``S`` a ``.txt`` image list or a folder of pictures: those pictures,
  labels beside them by Darknet's ``images`` -> ``labels`` rule, classes from the ``.data``;
* ``D`` a COCO annotation JSON (``instances_val2017.json``): every image it lists, with its crowd
  regions and areas kept, so the scores are the ones pycocotools gives on that JSON. Pictures are
  looked for in the folder :func:`~darkyolo.data.formats.coco.default_images_dir` names.

Every picture is scanned first (:mod:`darkyolo.data.scan`): truncated ones are repaired, missing or
undecodable ones left out, counted and named in the report (or, with ``bad_images="stop"``, an
error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from darkyolo.data.dataset import SplitReport
from darkyolo.data.description import find_images, read_image_list
from darkyolo.data.formats.coco import coco_category_ids, read_coco
from darkyolo.data.layouts import load_dataset
from darkyolo.data.records import ImageRecord
from darkyolo.data.scan import cache_for, read_scanned, scan_images, stop_if_asked
from darkyolo.errors import DataError

#: the named splits of a ``.data`` file
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class LabelledSplit:
    """Pictures with their boxes, the class names and the COCO category id of each class.

    ``category_ids[k]`` is what the results JSON writes for class ``k`` (COCO's own ids for a COCO
    JSON or a ``.data`` with ``coco_ids=``; COCO's 80-class ids for the COCO names; else ``k + 1``).
    """

    name: str
    source: Path
    records: list[ImageRecord]
    names: list[str]
    category_ids: list[int]
    report: SplitReport


def is_coco_json(path: str | Path) -> bool:
    """Whether ``--data`` names a COCO annotation file rather than a ``.data`` description."""
    return str(path).lower().endswith(".json") and Path(path).is_file()


def open_split(
    data: str | Path, split: str | None = None, *, bad_images: str = "exclude"
) -> LabelledSplit:
    """The labelled pictures ``darkyolo val`` scores (see the module docstring).

    ``split`` defaults to ``val`` for a ``.data`` file; a COCO JSON is one split already, and a
    ``split`` given with it is refused. Every picture is scanned first (``bad_images``: see
    :func:`darkyolo.data.scan.read_scanned`). Raises :class:`DataError` when nothing usable is left,
    naming the splits that do have pictures.
    """
    if is_coco_json(data):
        if split is not None:
            raise DataError(
                f"a COCO JSON is one split already; --split {split} does not apply", str(data)
            )
        return _coco_split(Path(data), bad_images)
    spec = load_dataset(data)
    split = split or "val"
    report = SplitReport(split)
    if split in SPLIT_NAMES:
        images = spec.images(split)
    elif Path(split).is_dir():
        images = find_images(split)
    elif Path(split).is_file():
        images = read_image_list(split)
    else:
        raise DataError(
            f"--split {split}: expected {', '.join(SPLIT_NAMES)}, an image list or a folder",
            str(spec.path),
        )
    records, report.scan = read_scanned(
        images,
        spec.num_classes,
        report.problems,
        policy=bad_images,
        cache=cache_for(spec.path),
        what=f"{spec.path.name} {Path(split).name}",
        voc_names=spec.voc_names,
    )
    _count(report, records)
    if not records:
        sizes = spec.split_sizes()
        listed = ", ".join(f"{name} ({n})" for name, n in sizes.items() if n) or "none"
        where = f"the {split} split" if split in SPLIT_NAMES else split
        raise DataError(
            f"{where} has no usable images; splits with images: {listed}", str(spec.path)
        )
    ids = spec.category_ids or coco_category_ids(spec.names)
    return LabelledSplit(split, spec.path, records, spec.names, ids, report)


def _coco_split(path: Path, bad_images: str) -> LabelledSplit:
    coco = read_coco(path, include_crowd=True)
    report = SplitReport(path.name)
    by_path = {str(r.image): r for r in coco.records}
    _, report.scan = scan_images(list(by_path), cache=cache_for(path))
    stop_if_asked(report.scan, bad_images, path.name)
    excluded = {c.path for c in report.scan.excluded}
    report.scan.excluded_boxes = sum(len(by_path[p]) for p in excluded)
    kept = [r for r in coco.records if str(r.image) not in excluded]
    _count(report, kept)
    if not kept:
        folder = coco.records[0].image.parent if coco.records else path.parent
        raise DataError(
            f"none of its {len(coco.records)} images could be read (looked in {folder})", str(path)
        )
    return LabelledSplit(path.name, path, kept, coco.names, list(coco.category_ids), report)


def _count(report: SplitReport, records: list[ImageRecord]) -> None:
    report.images = len(records)
    report.boxes = sum(len(r) for r in records)
