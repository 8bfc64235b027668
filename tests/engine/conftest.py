"""Tiny cfgs and small real datasets (a few BCCD pictures) for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

BCCD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bccd"
NAMES = "Platelets\nRBC\nWBC\n"


def tiny_cfg(batch_normalize: bool = True, classes: int = 3, size: int = 64) -> str:
    """A yolov3-tiny-like cfg: 5 convs, 2 max-pools, an upsample/route and two [yolo] heads."""
    bn = "batch_normalize=1\n" if batch_normalize else ""
    filters = 3 * (5 + classes)
    return f"""[net]
batch=8
subdivisions=2
width={size}
height={size}
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate=0.002
burn_in=2
max_batches=100
policy=steps
steps=80,90
scales=.1,.1

[convolutional]
{bn}filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
{bn}filters=16
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
{bn}filters=32
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=3,4,5
anchors=6,6, 10,10, 16,16, 24,24, 36,36, 60,60
classes={classes}
num=6
jitter=.2
ignore_thresh=.7
truth_thresh=1
random=1

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,3

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=0,1,2
anchors=6,6, 10,10, 16,16, 24,24, 36,36, 60,60
classes={classes}
num=6
jitter=.2
ignore_thresh=.7
truth_thresh=1
random=1
"""


def make_bccd_subset(root: Path, n_train: int, n_val: int, skip: int = 0) -> Path:
    """The first BCCD pictures as a YOLO dataset (``n_train`` train, ``n_val`` valid) -> .data."""
    from darkyolo.data.convert import ConvertOptions, convert

    if not BCCD.is_dir():
        pytest.skip(f"BCCD not found at {BCCD}")
    stems = sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))[skip:]
    train, val = stems[:n_train], stems[n_train : n_train + n_val]
    voc = root / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    for stem in train + val:
        (voc / "Annotations" / f"{stem}.xml").symlink_to(
            (BCCD / "Annotations" / f"{stem}.xml").resolve()
        )
        (voc / "JPEGImages" / f"{stem}.jpg").symlink_to(
            (BCCD / "JPEGImages" / f"{stem}.jpg").resolve()
        )
    (voc / "ImageSets" / "Main" / "train.txt").write_text("\n".join(train) + "\n")
    if val:
        (voc / "ImageSets" / "Main" / "val.txt").write_text("\n".join(val) + "\n")
    names = root / "bccd.names"
    names.write_text(NAMES)
    out = root / "yolo"
    convert(voc, out, "voc", "yolo", ConvertOptions(name="bccd", names_file=names, link="symlink"))
    return out / "bccd.data"


@pytest.fixture
def bccd_small(tmp_path: Path) -> Path:
    """8 train and 4 valid BCCD pictures as a YOLO .data dataset."""
    return make_bccd_subset(tmp_path / "bccd", 8, 4)


@pytest.fixture
def tiny_cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.cfg"
    path.write_text(tiny_cfg())
    return path


@pytest.fixture
def make_cfg():
    """``make_cfg(batch_normalize=True, classes=3, size=64)`` -> tiny cfg text."""
    return tiny_cfg
