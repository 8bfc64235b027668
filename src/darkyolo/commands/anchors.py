"""``darkyolo anchors DATASET -k K``: anchors by k-means (1 - IoU) on the dataset's boxes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from darkyolo.values import INPUT_SIDE, NON_NEGATIVE_INT, POSITIVE_INT

if TYPE_CHECKING:
    import numpy as np

HELP = "fit anchors to a dataset's boxes by k-means with 1 - IoU distance"

#: the cfg whose anchors are compared when none is given, by units
DEFAULT_COMPARISON = {"grid": "yolov2-voc", "pixels": "yolov3"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help=".data file, or a folder holding one")
    parser.add_argument(
        "-k", type=POSITIVE_INT, help="number of anchors (default: the cfg's, else 5 or 9)"
    )
    parser.add_argument("--cfg", help="cfg (path or bundled name) for units, size and comparison")
    parser.add_argument(
        "--img-size", type=INPUT_SIDE, help="network input side (default: cfg width, 416)"
    )
    parser.add_argument(
        "--units",
        choices=("grid", "pixels"),
        help="grid cells of stride 32 ([region]) or input pixels ([yolo]); default from the cfg",
    )
    parser.add_argument("--split", choices=("train", "val", "all"), default="train")
    parser.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    parser.add_argument("--restarts", type=POSITIVE_INT, default=5)
    parser.add_argument("--center", choices=("mean", "median"), default="mean")
    parser.add_argument(
        "--plot", type=Path, help="write the elbow curve (mean IoU for k=1..10) here"
    )
    parser.add_argument("--write-cfg", type=Path, help="write a copy of --cfg with these anchors")
    parser.add_argument(
        "--stretch",
        action="store_true",
        help="size boxes for images stretched to the input (default: letterboxed, as darkyolo feeds them)",
    )


def _print_class_table(
    wh: np.ndarray, labels: np.ndarray, anchors: np.ndarray, names: list[str]
) -> None:
    """Median shape IoU of each class with each fitted anchor, and a ``[yolo] iou_thresh`` range."""
    import numpy as np

    from darkyolo.anchors import anchor_owners, class_anchor_iou, iou_thresh_range

    table = class_anchor_iou(wh, labels, anchors, len(names))
    owners = anchor_owners(wh, labels, anchors)
    width = max(9, *(len(n) for n in names))
    print(
        "median shape IoU of each class's boxes with each anchor (* = the class that picks it most):"
    )
    print(" " * width + "".join(f"  a{k:<4d}" for k in range(len(anchors))))
    for c, name in enumerate(names):
        if np.isnan(table[c]).all():
            continue
        cells = [
            f" {table[c, k]:.2f}{'*' if owners[k] == c else ' '} " for k in range(len(anchors))
        ]
        print(f"{name:<{width}}" + "".join(cells))
    bounds = iou_thresh_range(table, owners)
    if bounds is None:
        return
    cross, own = bounds
    if cross < own:
        print(f"[yolo] iou_thresh: between {cross:.2f} (a class with another's anchor) and "
              f"{own:.2f} (a class with its own), e.g. iou_thresh={(cross + own) / 2:.2f}; "
              f"1 (off) gives each box only its best anchor")  # fmt: skip
    else:
        print(f"[yolo] iou_thresh: no value separates the classes (a class reaches {cross:.2f} with "
              f"another's anchor, {own:.2f} with its own); leave it at 1 (off)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from darkyolo.anchors import (
        cfg_anchors,
        elbow,
        from_units,
        head_units,
        kmeans_anchors,
        labelled_boxes_wh,
        mean_iou,
        to_units,
        write_cfg_anchors,
    )
    from darkyolo.darknet.cfg import load_cfg
    from darkyolo.darknet.edits import anchors_line, round_anchors
    from darkyolo.data.layouts import load_dataset
    from darkyolo.errors import DataError

    spec = load_dataset(args.dataset)
    splits = ("train", "val") if args.split == "all" else (args.split,)
    records = [r for split in splits for r in spec.read(split)]
    wh, labels = labelled_boxes_wh(records, letterbox=not args.stretch)
    if not len(wh):
        raise DataError("the dataset has no boxes", str(spec.path))

    config = load_cfg(args.cfg) if args.cfg else None
    if args.write_cfg and config is None:
        raise DataError("--write-cfg needs --cfg (the cfg to copy)")
    units = args.units or (head_units(config) if config else "grid")
    comparison = config or load_cfg(DEFAULT_COMPARISON[units])
    size = (
        (args.img_size, args.img_size)
        if args.img_size
        else (config.net.width, config.net.height)
        if config
        else (416, 416)
    )
    k = args.k or (len(cfg_anchors(config)) if config else 5 if units == "grid" else 9)

    anchors_norm, _ = kmeans_anchors(
        wh, k, seed=args.seed, restarts=args.restarts, center=args.center
    )
    anchors = round_anchors(to_units(anchors_norm, size, units), units)
    fitted = mean_iou(wh, from_units(anchors, size, units))
    current_units = head_units(comparison)
    current = from_units(cfg_anchors(comparison), size, current_units)
    name = Path(comparison.source).name

    print(f"boxes: {len(wh)} in {len(records)} images ({'+'.join(splits)} of {spec.path})")
    where = (
        f"grid cells of stride 32 at {size[0]}x{size[1]}"
        if units == "grid"
        else (f"pixels of a {size[0]}x{size[1]} input")
    )
    print(f"k-means (1 - IoU): k={k}, {args.restarts} restarts, seed {args.seed}; units: {where}")
    print(anchors_line(anchors, units))
    print(f"mean IoU, k-means anchors: {fitted:.4f}")
    print(f"mean IoU, {name} anchors ({len(current)}, in {current_units} at the same size): "
          f"{mean_iou(wh, current):.4f}")  # fmt: skip
    if spec.num_classes > 1:
        _print_class_table(wh, labels, from_units(anchors, size, units), spec.names)

    if args.plot:
        from darkyolo.viz.plots import plot_elbow

        ks = list(range(1, 11))
        ious = elbow(wh, ks, seed=args.seed)
        plot_elbow(ks, ious, args.plot, chosen_k=k if k in ks else None)
        print("elbow: " + ", ".join(f"k={a}: {b:.3f}" for a, b in zip(ks, ious)))
        print(f"wrote {args.plot}")
    if args.write_cfg:
        assert config is not None
        target_units = head_units(config)
        written = np.asarray(
            round_anchors(to_units(anchors_norm, size, target_units), target_units)
        )
        path = write_cfg_anchors(args.cfg, args.write_cfg, written, spec.num_classes)
        print(f"wrote {path} ({k} anchors in {target_units}, classes={spec.num_classes})")
    return 0
