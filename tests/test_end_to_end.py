"""End to end through the CLI on real BCCD pictures: convert -> train (loss falls) -> checkpoint
-> resume -> val (COCO metrics) -> detect with the trained weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from darkyolo.cli import main

BCCD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bccd"

CFG = """[net]
batch=4
subdivisions=1
width=96
height=96
channels=3
momentum=0.9
decay=0.0005
saturation=1.5
exposure=1.5
hue=.1
learning_rate=0.002
burn_in=4
max_batches=100
policy=steps
steps=80,90
scales=.1,.1

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask=0,1,2
anchors=8,8, 14,14, 24,24
classes=3
num=3
jitter=.2
ignore_thresh=.7
truth_thresh=1
random=1
"""


def voc_subset(root: Path, train: int, val: int) -> Path:
    """A VOC folder with the first BCCD pictures (symlinks) and train/val lists."""
    stems = sorted(p.stem for p in (BCCD / "Annotations").glob("*.xml"))[: train + val]
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    for stem in stems:
        (root / "Annotations" / f"{stem}.xml").symlink_to((BCCD / "Annotations" / f"{stem}.xml").resolve())  # fmt: skip
        (root / "JPEGImages" / f"{stem}.jpg").symlink_to((BCCD / "JPEGImages" / f"{stem}.jpg").resolve())  # fmt: skip
    (root / "ImageSets/Main/train.txt").write_text("\n".join(stems[:train]) + "\n")
    (root / "ImageSets/Main/val.txt").write_text("\n".join(stems[train:]) + "\n")
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_convert_train_resume_val_detect(tmp_path, capsys):
    if not BCCD.is_dir():
        pytest.skip(f"BCCD not found at {BCCD}")
    names = tmp_path / "bccd.names"
    names.write_text("Platelets\nRBC\nWBC\n")
    voc = voc_subset(tmp_path / "voc", 8, 4)
    assert main(["convert", str(voc), str(tmp_path / "yolo"), "--from", "voc", "--to", "yolo", "--names", str(names), "--name", "bccd"]) == 0  # fmt: skip
    data = tmp_path / "yolo" / "bccd.data"
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(CFG)
    runs = tmp_path / "runs"
    common = ["--workers", "0", "--no-progress", "--no-plots", "--device", "cpu"]

    # train: 8 pictures, batch 4, multi-scale 64..128, Darknet augmentation
    argv = ["train", "--model", str(cfg), "--data", str(data), "--epochs", "4", "--project", str(runs), "--warmup-epochs", "1", *common]  # fmt: skip
    assert main(argv) == 0
    run = runs / "exp"
    rows = read_csv(run / "results.csv")
    assert len(rows) == 4
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.7 * losses[0], losses
    for name in ("last.pt", "best.pt", "best.weights"):
        assert (run / "weights" / name).is_file()

    # resume: two more epochs on top of the four
    assert main(["train", "--resume", str(run / "weights" / "last.pt"), "--epochs", "6", *common]) == 0  # fmt: skip
    rows = read_csv(run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert "resuming" in capsys.readouterr().out

    # val: COCO metrics through the evaluator, cfg taken from the checkpoint
    val_argv = ["val", "--weights", str(run / "weights" / "best.pt"), "--data", str(data), "--project", str(tmp_path / "val"), "--workers", "0", "--no-progress", "--voc07"]  # fmt: skip
    assert main(val_argv) == 0
    out = capsys.readouterr().out
    assert "mAP@.5:.95" in out and "voc07" in out
    metrics = json.loads((tmp_path / "val" / "exp" / "metrics.json").read_text())
    assert 0 <= metrics["map"] <= metrics["map50"] <= 1
    assert [c["name"] for c in metrics["classes"]] == ["Platelets", "RBC", "WBC"]
    assert (tmp_path / "val" / "exp" / "pr_curve.png").is_file()
    assert (tmp_path / "val" / "exp" / "predictions.json").is_file()

    # detect with the trained weights (the run keeps its adapted cfg as model.cfg)
    picture = sorted((tmp_path / "yolo" / "images").rglob("*.jpg"))[0]
    detect_argv = ["detect", str(picture), "--model", str(run / "model.cfg"), "--weights", str(run / "weights" / "best.pt"), "--names", str(names), "--conf", "0.01", "--project", str(tmp_path / "detect"), "--save-txt"]  # fmt: skip
    assert main(detect_argv) == 0
    assert list((tmp_path / "detect").rglob("*.txt"))
