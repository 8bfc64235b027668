"""``darkyolo convert SRC DST``: COCO JSON / VOC XML / YOLO txt -> YOLO txt, COCO JSON, or
``--to crops``: every box as a picture in ``DST/train|val/<class>/`` (a classification set)."""

from __future__ import annotations

import argparse
from pathlib import Path

from darkyolo.data.convert import (
    LINK_MODES,
    SOURCE_FORMATS,
    TARGET_FORMATS,
    ConvertOptions,
    convert,
)
from darkyolo.errors import DataError
from darkyolo.values import NON_NEGATIVE_FLOAT, POSITIVE_INT

HELP = "convert labels (COCO JSON, VOC XML, YOLO txt) to YOLO txt, COCO JSON or box crops"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src",
        type=Path,
        help="source: COCO JSON or folder, VOC folder, .data file, data.yaml, LabelImg folder",
    )
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument(
        "--from",
        dest="source_format",
        choices=SOURCE_FORMATS,
        help="source format (default: guessed)",
    )
    parser.add_argument("--to", dest="target_format", choices=TARGET_FORMATS, default="yolo")
    parser.add_argument("--name", help="dataset name for <name>.names and <name>.data")
    parser.add_argument(
        "--names", type=Path, help="VOC: class names file (default: names found, sorted)"
    )
    parser.add_argument(
        "--link",
        choices=LINK_MODES,
        default="hardlink",
        help="how images reach DST (default hardlink)",
    )
    parser.add_argument("--include-crowd", action="store_true", help="COCO: keep iscrowd=1 boxes")
    parser.add_argument(
        "--out-of-image",
        choices=("clip", "drop"),
        default="clip",
        help="boxes reaching outside the image",
    )
    parser.add_argument(
        "--one-based", action="store_true", help="VOC: corners are 1-based inclusive pixel indices"
    )
    parser.add_argument(
        "--skip-difficult", action="store_true", help="VOC: leave out difficult objects"
    )
    parser.add_argument(
        "--images", type=Path, help="COCO: folder the file_name entries are relative to"
    )
    parser.add_argument(
        "--crop-pad",
        type=NON_NEGATIVE_FLOAT,
        default=0.1,
        help="--to crops: grow each box by this fraction on every side (default 0.1)",
    )
    parser.add_argument("--force", action="store_true", help="write into a non-empty DST")
    parser.add_argument(
        "--skip-missing", action="store_true", help="leave out missing images (counted)"
    )
    parser.add_argument(
        "--show", type=POSITIVE_INT, default=10, help="examples listed per finding (default 10)"
    )


def guess_format(src: Path) -> str:
    """``coco`` for a JSON or a folder with one, ``voc`` for a folder with Annotations/,
    ``ultralytics`` for a YAML file or a folder with a ``data.yaml``, ``yolo`` for a ``.data`` file
    or a folder with one, ``labelimg`` for a folder of pictures with labels beside them."""
    from darkyolo.data.layouts import YAML_SUFFIXES, labelimg_kind

    suffix = src.suffix.lower()
    if suffix == ".json":
        return "coco"
    if suffix == ".data":
        return "yolo"
    if suffix in YAML_SUFFIXES:
        return "ultralytics"
    if src.is_dir():
        if (src / "Annotations").is_dir():
            return "voc"
        if any(src.glob("*.data")):
            return "yolo"
        if (src / "data.yaml").is_file():
            return "ultralytics"
        if any(src.glob("annotations/*.json")) or any(src.glob("*.json")):
            return "coco"
        if labelimg_kind(src) is not None:
            return "labelimg"
    raise DataError(
        f"cannot tell the source format; give --from {'|'.join(SOURCE_FORMATS)}", str(src)
    )


def run(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        name=args.name,
        names_file=args.names,
        link=args.link,
        include_crowd=args.include_crowd,
        out_of_image=args.out_of_image,
        one_based=args.one_based,
        skip_difficult=args.skip_difficult,
        images_dir=args.images,
        force=args.force,
        skip_missing=args.skip_missing,
        crop_pad=args.crop_pad,
    )
    source_format = args.source_format or guess_format(args.src)
    report = convert(args.src, args.dst, source_format, args.target_format, options)
    print("\n".join(report.lines(limit=args.show)))
    return 0
