"""What many tests build: tiny Darknet cfgs, small datasets (a few BCCD pictures, or synthetic
two-class ones) and ``darkyolo`` command-line runs.

``tests/conftest.py`` puts this folder on ``sys.path``: tests ``from tiny import ...``.

A cfg is written from blocks, e.g. ``cfg(net(64, batch=2), conv(4, stride=2), maxpools(4),
head(2, anchors="4,5, 8,9, 16,20"))``; :func:`tiny_cfg` is the yolov3-tiny-like one that the
training tests share.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BCCD = SHARED_DATA / "bccd"
BCCD_NAMES = "Platelets\nRBC\nWBC\n"

# ----------------------------------------------------------------------------------------------
# Cfg text
# ----------------------------------------------------------------------------------------------

#: the [net] training options of :func:`tiny_cfg` (besides batch, subdivisions and burn_in)
TRAINING_NET = {
    "channels": 3,
    "momentum": 0.9,
    "decay": 0.0005,
    "saturation": 1.5,
    "exposure": 1.5,
    "hue": ".1",
    "learning_rate": 0.002,
    "max_batches": 100,
    "policy": "steps",
    "steps": "80,90",
    "scales": ".1,.1",
}
#: the [yolo] training options of :func:`tiny_cfg`'s heads
TRAINING_YOLO = {"jitter": ".2", "ignore_thresh": ".7", "truth_thresh": 1, "random": 1}


def section(kind: str, **options: object) -> str:
    """``[kind]`` and a ``key=value`` line per option."""
    return "\n".join([f"[{kind}]", *(f"{key}={value}" for key, value in options.items())]) + "\n"


def cfg(*sections: str) -> str:
    """Sections (or groups of them) as one cfg text, a blank line between sections."""
    return "\n".join(sections)


def net(size: int, batch: int = 1, **options: object) -> str:
    """``[net]`` for ``size`` x ``size`` pictures."""
    return section("net", batch=batch, width=size, height=size, **options)


def conv(
    filters: int,
    size: int = 3,
    stride: int = 1,
    batch_normalize: bool = True,
    activation: str = "leaky",
) -> str:
    """A padded ``[convolutional]`` (``pad=1``: ``size // 2`` on each side)."""
    bn = {"batch_normalize": 1} if batch_normalize else {}
    return section(
        "convolutional",
        **bn,
        filters=filters,
        size=size,
        stride=stride,
        pad=1,
        activation=activation,
    )


def maxpools(count: int = 1) -> str:
    """``count`` 2x2 stride-2 ``[maxpool]`` sections."""
    return cfg(*[section("maxpool", size=2, stride=2)] * count)


def head(classes: int, anchors: str, mask: str = "0,1,2", **yolo: object) -> str:
    """A YOLO head: the 1x1 linear conv with ``len(mask) * (5 + classes)`` filters, then
    ``[yolo]`` over ``anchors`` ("w,h, w,h, ...") with ``yolo``'s extra options."""
    filters = len(mask.split(",")) * (5 + classes)
    num = len(anchors.split(",")) // 2
    return cfg(
        conv(filters, size=1, batch_normalize=False, activation="linear"),
        section("yolo", mask=mask, anchors=anchors, classes=classes, num=num, **yolo),
    )


def tiny_cfg(
    batch_normalize: bool = True,
    classes: int = 3,
    size: int = 64,
    *,
    filters: tuple[int, int, int] = (8, 16, 32),
    heads: int = 2,
    anchors: str = "6,6, 10,10, 16,16, 24,24, 36,36, 60,60",
    batch: int = 8,
    subdivisions: int = 2,
    burn_in: int = 2,
) -> str:
    """A yolov3-tiny-like training cfg: three 3x3 stride-2 convs (``filters``) with a max-pool
    after the first two, a [yolo] head on the last conv and, with ``heads=2``, a second head on
    the upsampled features routed with layer 3. Each head takes three of ``anchors``, the first
    head the largest."""
    assert heads in (1, 2), heads
    masks = ["3,4,5", "0,1,2"][-heads:]
    first, second, third = (conv(f, stride=2, batch_normalize=batch_normalize) for f in filters)
    layers = [first, maxpools(), second, maxpools(), third]
    layers.append(head(classes, anchors, masks[0], **TRAINING_YOLO))
    if heads == 2:
        layers += [
            section("route", layers=-3),
            section("upsample", stride=2),
            section("route", layers="-1,3"),
            head(classes, anchors, masks[1], **TRAINING_YOLO),
        ]
    training = {"subdivisions": subdivisions, "burn_in": burn_in, **TRAINING_NET}
    return cfg(net(size, batch, **training), *layers)


def tiny_classifier_cfg(
    classes: int = 2,
    size: int = 32,
    *,
    filters: tuple[int, int, int] = (8, 16, 32),
    batch_normalize: bool = True,
    **net_options: object,
) -> str:
    """A classifier whose layers 0-4 are :func:`tiny_cfg`'s (so its ``.conv.5`` prefix starts
    that detector): the same three convs and two max-pools, then a 1x1 linear conv with
    ``classes`` filters, ``[avgpool]``, ``[softmax]``."""
    first, second, third = (conv(f, stride=2, batch_normalize=batch_normalize) for f in filters)
    training = {
        "learning_rate": 0.05,
        "policy": "poly",
        "power": 4,
        "momentum": 0.9,
        "decay": 0.0005,
    }
    training.update(net_options)
    return cfg(
        net(size, 8, **training),
        first, maxpools(), second, maxpools(), third,
        conv(classes, size=1, batch_normalize=False, activation="linear"),
        section("avgpool"),
        section("softmax", groups=1),
    )  # fmt: skip


def class_folders(root: Path, per_class: int = 12, size: int = 48) -> Path:
    """``root/train/<red|blue>/`` and ``root/val/<red|blue>/``: noisy pictures, each holding a
    disc of its class's colour on grey -> ``root``."""
    rng = np.random.default_rng(0)
    colours = {"blue": (40, 60, 220), "red": (220, 50, 40)}
    for split, count in (("train", per_class), ("val", max(2, per_class // 2))):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(90, 160, (size, size + 8, 3), dtype=np.uint8)
                yy, xx = np.mgrid[:size, : size + 8]
                cy, cx, r = (
                    rng.integers(14, size - 14),
                    rng.integers(14, size - 6),
                    rng.integers(8, 13),
                )
                pixels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------


def shared_data(relative: str) -> Path:
    """A path under ``../shared/data``; skips the test when it is not there."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{relative} not found under {SHARED_DATA}")
    return path


def bccd_voc(root: Path, n_train: int, n_val: int, skip: int = 0) -> Path:
    """The first BCCD pictures (after ``skip``) as ``root/voc``, a VOC folder of symlinks with
    train (``n_train``) and val (``n_val``) lists, and ``root/bccd.names``; -> ``root/voc``.
    Skips the test when BCCD is not there."""
    if not BCCD.is_dir():
        pytest.skip(f"BCCD not found at {BCCD}")
    stems = sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))[skip:]
    train, val = stems[:n_train], stems[n_train : n_train + n_val]
    voc = root / "voc"
    for folder, suffix in (("Annotations", "xml"), ("JPEGImages", "jpg")):
        (voc / folder).mkdir(parents=True)
        for stem in train + val:
            name = f"{stem}.{suffix}"
            (voc / folder / name).symlink_to((BCCD / folder / name).resolve())
    lists = voc / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(train) + "\n")
    if val:
        (lists / "val.txt").write_text("\n".join(val) + "\n")
    (root / "bccd.names").write_text(BCCD_NAMES)
    return voc


def make_bccd_subset(root: Path, n_train: int, n_val: int, skip: int = 0) -> Path:
    """:func:`bccd_voc` converted to a YOLO dataset in ``root/yolo`` -> its ``bccd.data``."""
    from darkyolo.data.convert import ConvertOptions, convert

    voc = bccd_voc(root, n_train, n_val, skip)
    out = root / "yolo"
    options = ConvertOptions(name="bccd", names_file=root / "bccd.names", link="symlink")
    convert(voc, out, "voc", "yolo", options)
    return out / "bccd.data"


def two_class_dataset(folder: Path, pictures: Sequence[tuple[np.ndarray, str]]) -> Path:
    """``images/train/<i>.png`` and ``labels/train/<i>.txt`` for each (pixels, label text), names
    a and b, every picture in both the train and the valid list -> ``folder/t.data``."""
    for split in ("images", "labels"):
        (folder / split / "train").mkdir(parents=True)
    for i, (pixels, labels) in enumerate(pictures):
        Image.fromarray(pixels).save(folder / "images" / "train" / f"{i}.png")
        (folder / "labels" / "train" / f"{i}.txt").write_text(labels)
    (folder / "t.names").write_text("a\nb\n")
    (folder / "t.txt").write_text("".join(f"images/train/{i}.png\n" for i in range(len(pictures))))
    (folder / "t.data").write_text("classes=2\ntrain=t.txt\nvalid=t.txt\nnames=t.names\n")
    return folder / "t.data"


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``darkyolo argv`` in this process, from ``cwd`` -> (exit status, stderr, stdout)."""
    from darkyolo.cli import main

    err, out = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            status = main(argv)
    except SystemExit as error:  # argparse
        status = error.code if isinstance(error.code, int) else 1
        if isinstance(error.code, str):
            err.write(error.code + "\n")
    finally:
        os.chdir(previous)
    return status, err.getvalue(), out.getvalue()


def train_tiny(cfg: Path, data: Path, runs: Path, epochs: int = 1, size: int = 96) -> Path:
    """``darkyolo train`` of ``cfg`` on ``data`` for a few quick epochs at ``size``, in a new
    process; the run folder (``runs/exp``)."""
    status, err, _ = run_cli(
        ["train", "--model", str(cfg), "--data", str(data), "--epochs", str(epochs),
         "--batch", "4", "--img-size", str(size), "--workers", "0", "--no-progress", "--no-plots",
         "--project", str(runs)],
        runs.parent,
    )  # fmt: skip
    assert status == 0, err
    return runs / "exp"


def start_cli(
    argv: list[str], cwd: Path, merge_output: bool = False, text: bool = False
) -> subprocess.Popen:
    """``python -m darkyolo argv`` in a new process from ``cwd``, stdout and stderr piped
    (``merge_output``: stderr into stdout)."""
    return subprocess.Popen(
        [sys.executable, "-m", "darkyolo", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=text,
    )


# ----------------------------------------------------------------------------------------------
# The layouts people bring: LabelImg folders and ultralytics data.yaml
# ----------------------------------------------------------------------------------------------


def picture(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)
    return path


def voc_xml(path: Path, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    boxes = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2) in objects
    )
    path.write_text(
        f"<annotation><filename>{path.stem}.jpg</filename><size><width>64</width>"
        f"<height>48</height><depth>3</depth></size>{boxes}</annotation>"
    )


def ultralytics_set(root: Path, yaml_text: str | None = None) -> Path:
    """images/{train,val}/*.jpg with labels/{train,val}/*.txt and a data.yaml (names as a mapping)."""
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            picture(root / "images" / split / f"{split}{i}.jpg")
            label = root / "labels" / split / f"{split}{i}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"{i % 2} 0.5 0.5 0.25 0.5\n")
    text = yaml_text or (
        "path: .\ntrain: images/train\nval: images/val\nnc: 2\nnames:\n  0: cat\n  1: dog\n"
        "download: https://example.invalid/never-fetched.zip\n"
    )
    (root / "data.yaml").write_text(text)
    return root / "data.yaml"
