"""``darkyolo check DATASET``: report bad labels (file:line), missing files and statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

from darkyolo.values import POSITIVE_INT

HELP = "check a YOLO dataset: bad labels with file:line, missing images, orphans, statistics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help=".data file, or a folder holding one")
    parser.add_argument("--split", choices=("train", "val", "test", "all"), default="all")
    parser.add_argument(
        "--strict", action="store_true", help="warnings also make the exit status 1"
    )
    parser.add_argument(
        "--show", type=POSITIVE_INT, default=20, help="problems listed per kind (default 20)"
    )


def run(args: argparse.Namespace) -> int:
    from darkyolo.data.check import check_dataset

    splits = ("train", "val", "test") if args.split == "all" else (args.split,)
    report = check_dataset(args.dataset, splits)
    print("\n".join(report.lines(limit=args.show)))
    if report.errors or (args.strict and report.warnings):
        return 1
    return 0
