"""``darkyolo classify`` end to end at tiny size: train at one size, score it, fine-tune the same
weights at twice the size (the 224 -> 448 step), export the backbone prefix, start a detector
from it (frozen), and the errors a user meets on the way."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny import class_folders, run_cli, tiny_cfg, tiny_classifier_cfg

from darkyolo.darknet.weights import read_header


def test_classifier_to_detector(tmp_path: Path, bccd_small: Path) -> None:
    data = class_folders(tmp_path / "shapes", per_class=8)
    (tmp_path / "cls.cfg").write_text(tiny_classifier_cfg(size=32))
    (tmp_path / "cls64.cfg").write_text(tiny_classifier_cfg(size=64, learning_rate=0.001))
    common = ["--workers", "0", "--no-progress", "--no-plots", "--batch", "8", "--exist-ok"]

    status, err, out = run_cli(["classify", "train", "--model", "cls.cfg", "--data", str(data), "--epochs", "4", "--name", "s32", *common], tmp_path)  # fmt: skip
    assert status == 0, err
    assert "top-1" in out and "(2 classes)" in out
    run = tmp_path / "runs" / "classify" / "s32"
    rows = (run / "results.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and "top1" in rows[0] and len(rows) == 5
    best = run / "weights" / "best.pt"
    assert best.is_file() and (run / "weights" / "best.weights").is_file()

    status, err, out = run_cli(["classify", "val", "--weights", str(best), "--data", str(data), "--no-plots"], tmp_path)  # fmt: skip
    assert status == 0, err
    metrics = json.loads((tmp_path / "runs" / "classify" / "val" / "metrics.json").read_text())
    assert metrics["images"] == 8 and metrics["names"] == ["blue", "red"]
    assert 0 <= metrics["top1"] <= metrics["top5"] == 1.0  # top-5 of two classes

    # the high-resolution fine-tune: the same weights at twice the size, a new run (seen from 0)
    status, err, out = run_cli(["classify", "train", "--model", "cls64.cfg", "--weights", str(best), "--data", str(data), "--epochs", "1", "--name", "s64", *common], tmp_path)  # fmt: skip
    assert status == 0, err
    assert "loaded" in out and "input 64" in out
    fine = tmp_path / "runs" / "classify" / "s64" / "weights" / "best.pt"

    status, err, out = run_cli(["classify", "predict", str(data / "val" / "red"), "--weights", str(fine), "--top", "2"], tmp_path)  # fmt: skip
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.endswith(("red", "blue"))]
    assert len(lines) == 4 and all("% red" in line and "% blue" in line for line in lines)
    written = tmp_path / "runs" / "classify" / "predict"
    predictions = json.loads((written / "predictions.json").read_text())
    assert len(predictions) == 4 and len(list((written / "labels").glob("*.txt"))) == 4
    first = Path(predictions[0]["image"]).stem
    rows = (written / "labels" / f"{first}.txt").read_text().splitlines()
    assert [row.split()[1] for row in rows] == [c["class"] for c in predictions[0]["top"]]
    assert sorted(row.split()[1] for row in rows) == ["blue", "red"]

    status, err, out = run_cli(["export", "--weights", str(fine), "--prefix", "5", "-o", "cls.conv.5"], tmp_path)  # fmt: skip
    assert status == 0, err
    prefix = tmp_path / "cls.conv.5"
    assert read_header(prefix.read_bytes(), "p").seen == 0
    conv_floats = [8 * 4 + 8 * 3 * 9, 16 * 4 + 16 * 8 * 9, 32 * 4 + 32 * 16 * 9]
    assert prefix.stat().st_size == 20 + 4 * sum(conv_floats)

    (tmp_path / "det.cfg").write_text(tiny_cfg(size=64))
    status, err, out = run_cli(["train", "--model", "det.cfg", "--data", str(bccd_small), "--weights", "cls.conv.5", "--freeze", "5", "--epochs", "1", "--project", "runs/det", *common], tmp_path)  # fmt: skip
    assert status == 0, err
    assert "froze layers 0..4" in out
    import torch

    from darkyolo.models.io import load_model

    detector = torch.load(tmp_path / "runs/det/exp/weights/last.pt", weights_only=True)[
        "train_model"
    ]
    backbone = load_model(tmp_path / "det.cfg", prefix)
    for key in ("layers.0.conv.weight", "layers.4.conv.weight", "layers.2.bn.running_var"):
        assert torch.equal(detector[key], backbone.state_dict()[key]), key  # frozen: unchanged
    assert not np.allclose(detector["layers.5.conv.weight"].numpy(), 0)


def test_classify_errors_are_one_line(tmp_path: Path, bccd_small: Path) -> None:
    data = class_folders(tmp_path / "shapes", per_class=2)
    (tmp_path / "cls.cfg").write_text(tiny_classifier_cfg(size=32))
    status, err, _ = run_cli(["classify", "train", "--model", "cls.cfg", "--data", str(data), "--mosaic", "0.5"], tmp_path)  # fmt: skip
    assert status == 2 and "darkyolo classify train: error: unrecognized option --mosaic" in err
    status, err, _ = run_cli(["train", "--model", "cls.cfg", "--data", str(data), "--epochs", "1"], tmp_path)  # fmt: skip
    assert status == 2 and "is a classifier: train it with darkyolo classify train" in err
    status, err, _ = run_cli(["classify", "val", "--model", "yolov3-tiny", "--weights", "x.weights", "--data", str(data)], tmp_path)  # fmt: skip
    assert status == 2 and "x.weights" in err
    status, err, _ = run_cli(["classify", "train", "--model", "cls.cfg", "--data", str(tmp_path / "nothing")], tmp_path)  # fmt: skip
    assert status == 2 and "nothing: no such folder or .data file" in err


def test_classify_train_help_lists_only_what_it_takes(capsys) -> None:
    from darkyolo.cli import main

    with pytest.raises(SystemExit):
        main(["classify", "train", "--help"])
    shown = capsys.readouterr().out
    for detection_only in ("--anchors", "--loss", "--mosaic", "--obj-prior", "--multi-scale", "--val-iou"):  # fmt: skip
        assert detection_only not in shown
    for shared in ("--epochs", "--batch", "--lr", "--flip", "--resume"):
        assert shared in shown


def test_a_classifier_is_not_a_detector(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((32, 32, 3), np.uint8))
    status, err, _ = run_cli(["detect", "x.jpg", "--model", "darknet", "--random-weights"], tmp_path)  # fmt: skip
    assert status == 2 and "is a classifier: use darkyolo classify val|predict" in err
    status, err, _ = run_cli(["export", "--model", "darknet", "--random-weights"], tmp_path)
    assert status == 2 and "is a classifier" in err
    status, err, _ = run_cli(["export", "--model", "darknet", "--random-weights", "--prefix", "13"], tmp_path)  # fmt: skip
    assert status == 0, err
    assert (tmp_path / "darknet.conv.13").stat().st_size == 20 + 4 * (29_293_940 - 20 - 4 * (1000 + 1024 * 1000)) // 4  # fmt: skip
