"""End to end through the CLI on real BCCD pictures: convert -> train (loss falls) -> checkpoint
-> resume -> val (COCO metrics) -> detect with the trained weights, as a user types it: the cfg
as written (for 80 classes), then the checkpoint, whose own cfg has the data's 3."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tiny import bccd_voc, tiny_cfg

from darkyolo.cli import main

#: 96x96 pictures, convs of 16, 32 and 32 filters, one head for 80 classes (training adapts it to
#: the data's 3), batches of 4 in one piece
CFG = tiny_cfg(
    classes=80,
    size=96,
    filters=(16, 32, 32),
    heads=1,
    anchors="8,8, 14,14, 24,24",
    batch=4,
    subdivisions=1,
    burn_in=4,
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_convert_train_resume_val_detect(tmp_path, capsys):
    voc = bccd_voc(tmp_path, 8, 4)
    names = tmp_path / "bccd.names"
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

    # val naming the cfg it trained from: the checkpoint's own (adapted) cfg, said in one line
    val_argv = ["val", "--model", str(cfg), "--weights", str(run / "weights" / "best.pt"), "--data", str(data), "--project", str(tmp_path / "val"), "--workers", "0", "--no-progress", "--no-plots"]  # fmt: skip
    assert main(val_argv) == 0
    out = capsys.readouterr().out
    assert (
        sum("using the checkpoint's own cfg (3 classes" in line for line in out.splitlines()) == 1
    )
    metrics2 = json.loads((tmp_path / "val" / "exp2" / "metrics.json").read_text())
    assert metrics2["map"] == metrics["map"]

    # detect with the checkpoint alone: its cfg and class names come with it
    picture = sorted((tmp_path / "yolo" / "images").rglob("*.jpg"))[0]
    detect_argv = ["detect", str(picture), "--weights", str(run / "weights" / "best.pt"), "--conf", "0.01", "--project", str(tmp_path / "detect"), "--save-txt", "--verbose"]  # fmt: skip
    assert main(detect_argv) == 0
    assert list((tmp_path / "detect").rglob("*.txt"))
    out = capsys.readouterr().out
    assert "(3 classes)" in out
    assert any(name in out for name in ("Platelets", "RBC", "WBC"))
