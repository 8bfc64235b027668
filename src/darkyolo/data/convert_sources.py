"""Reading a dataset to convert: a COCO JSON (or a folder of ``annotations/instances_*.json``), a
VOC folder, or anything :func:`~darkyolo.data.layouts.load_dataset` reads (a Darknet ``.data``,
an ultralytics ``data.yaml``, a LabelImg folder) -> a :class:`~darkyolo.data.conversion.Source`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from darkyolo.data.conversion import ConvertOptions, ConvertReport, Source, SourceSplit, split_role
from darkyolo.data.description import IMAGE_SUFFIXES, image_size
from darkyolo.data.formats.coco import read_coco, split_name
from darkyolo.data.formats.voc import parse_voc_xml, voc_to_record
from darkyolo.data.formats.yolo import read_names
from darkyolo.data.layouts import load_dataset
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError


def _read_coco_source(src: Path, options: ConvertOptions, report: ConvertReport) -> Source:
    if src.is_dir():
        jsons = (
            sorted(src.glob("annotations/instances_*.json"))
            or sorted(src.glob("instances_*.json"))
            or sorted(src.glob("annotations/*.json"))
            or sorted(src.glob("*.json"))
        )
        if not jsons:
            raise DataError("no COCO JSON found (looked in annotations/ and the folder)", str(src))
        name = src.name
    else:
        jsons = [src]
        name = src.parent.parent.name if src.parent.name == "annotations" else src.stem
    if options.images_dir is not None and len(jsons) > 1:
        raise DataError(
            "images_dir applies to one JSON; give the JSON file as the source", str(src)
        )
    names: list[str] | None = None
    category_ids: list[int] | None = None
    splits = []
    for path in jsons:
        coco = read_coco(path, options.images_dir, options.include_crowd)
        if names is None:
            names, category_ids = coco.names, coco.category_ids
        elif (coco.names, coco.category_ids) != (names, category_ids):
            raise DataError(f"categories differ from those of {jsons[0].name}", str(path))
        report.add("crowd", coco.crowd_skipped)
        split = split_name(path)
        splits.append(SourceSplit(split, split_role(split), coco.records, list(coco.file_names)))
    assert names is not None
    return Source(name, names, splits, category_ids)


def _read_voc_source(src: Path, options: ConvertOptions, report: ConvertReport) -> Source:
    annotations = src / "Annotations"
    if not annotations.is_dir():
        raise DataError("not a VOC folder: no Annotations/ inside", str(src))
    image_dir = src / "JPEGImages"
    xmls = sorted(annotations.glob("*.xml"))
    if not xmls:
        raise DataError("no .xml files in Annotations/", str(annotations))
    parsed = [parse_voc_xml(x, options.one_based) for x in xmls]
    if options.names_file is not None:
        names = read_names(options.names_file)
    else:
        names = sorted({n for voc in parsed for n in voc.names})
    class_index = {n: i for i, n in enumerate(names)}
    on_disk = {p.name: p.name for p in image_dir.iterdir()} if image_dir.is_dir() else {}
    by_stem = {}
    for file in on_disk:
        stem, suffix = os.path.splitext(file)
        if suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(stem, file)
    records: dict[str, tuple[ImageRecord, str]] = {}
    for xml, voc in zip(xmls, parsed):
        relative = voc.filename if voc.filename in on_disk else by_stem.get(xml.stem)
        relative = relative or voc.filename or f"{xml.stem}.jpg"
        image = image_dir / relative
        size = None
        if (voc.width <= 0 or voc.height <= 0) and image.is_file():
            size = image_size(image)
        if options.skip_difficult:
            report.add("difficult", int(voc.difficult.sum()))
        record = voc_to_record(voc, image, class_index, options.skip_difficult, size)
        records[xml.stem] = (record, relative)
    splits = []
    main = src / "ImageSets" / "Main"
    train_list = next(
        (main / f for f in ("trainval.txt", "train.txt") if (main / f).is_file()), None
    )
    valid_list = next((main / f for f in ("test.txt", "val.txt") if (main / f).is_file()), None)
    if train_list is None and valid_list is None:
        items = list(records.values())
        splits.append(SourceSplit("train", "train", [r for r, _ in items], [n for _, n in items]))
    else:
        listed: set[str] = set()
        for role, list_file in (("train", train_list), ("valid", valid_list)):
            if list_file is None:
                continue
            ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
            unknown = [i for i in ids if i not in records]
            if unknown:
                raise DataError(
                    f"lists {len(unknown)} ids with no Annotations/<id>.xml, e.g. {unknown[0]!r}",
                    str(list_file),
                )
            listed.update(ids)
            items = [records[i] for i in ids]
            splits.append(
                SourceSplit(list_file.stem, role, [r for r, _ in items], [n for _, n in items])
            )
        unlisted = [stem for stem in records if stem not in listed]
        report.add("unlisted", len(unlisted), [f"{s}.xml" for s in unlisted])
    return Source(options.name or src.name, names, splits)


def _read_dataset_source(src: Path, options: ConvertOptions, report: ConvertReport) -> Source:
    """A ``.data`` set, an ultralytics ``data.yaml`` or a LabelImg folder: its train, val and
    test splits."""
    spec = load_dataset(src)
    splits = []
    for split, role in (("train", "train"), ("val", "valid"), ("test", "valid")):
        images = spec.images(split)
        if not images:
            continue
        records = spec.read(split)
        base = os.path.commonpath([str(p.parent) for p in images])
        relative = [os.path.relpath(p, base) for p in images]
        splits.append(SourceSplit(split, role, records, relative))
    name = spec.path.stem if spec.path.is_file() else spec.path.name
    if name == "data" and spec.path.suffix.lower() in (".yaml", ".yml"):
        name = spec.path.parent.name  # data.yaml: the dataset's folder names it
    return Source(name, spec.names, splits, spec.category_ids)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


#: each source format's reader
READERS: dict[str, Callable[[Path, ConvertOptions, ConvertReport], Source]] = {
    "coco": _read_coco_source,
    "voc": _read_voc_source,
    "yolo": _read_dataset_source,
    "ultralytics": _read_dataset_source,
    "labelimg": _read_dataset_source,
}
