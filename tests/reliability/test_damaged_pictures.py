"""A damaged picture never kills a run: found up front, decoded where it can be, counted, one line.

Real BCCD pictures in a small YOLO dataset (symlinks to ../shared), replaced by damaged copies:
truncated by 20 bytes and by half, zero bytes, a PNG named .jpg, a text file named .jpg; and a
picture deleted or rewritten after the scan, while training runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny import make_bccd_subset, run_cli, tiny_cfg

from darkyolo.data.dataset import load_split
from darkyolo.data.layouts import load_dataset
from darkyolo.errors import DataError, user_message
from darkyolo.models.io import read_checkpoint
from darkyolo.training.options import TrainOptions
from darkyolo.training.trainer import Trainer, TrainingError


def _replace(path: Path, data: bytes) -> None:
    """Put ``data`` in place of a picture that is a symlink into ../shared (the link is removed,
    never written through)."""
    original = path.read_bytes()
    path.unlink()
    path.write_bytes(data if data is not None else original)


@pytest.fixture
def damaged_data(tmp_path: Path) -> Path:
    """8 train + 4 val BCCD pictures; train 0-4 damaged five ways, val 0 truncated by half."""
    data = make_bccd_subset(tmp_path / "bccd", 8, 4)
    spec = load_dataset(data)
    train, val = spec.images("train"), spec.images("val")
    source = train[0].read_bytes()
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR))[1]
    _replace(train[0], source[:-20])
    _replace(train[1], train[1].read_bytes()[: len(train[1].read_bytes()) // 2])
    _replace(train[2], b"")
    _replace(train[3], png.tobytes())
    _replace(train[4], b"not a picture at all\n")
    _replace(val[0], val[0].read_bytes()[: len(val[0].read_bytes()) // 2])
    return data


def options(tmp_path: Path, data: Path, **changes) -> TrainOptions:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg())
    base = dict(
        model=str(cfg), data=str(data), epochs=1, batch=4, subdivisions=1, img_size=64,
        workers=0, device="cpu", project=str(tmp_path / "runs"), progress=False, plots=False,
        val_batch=4, bn_recalib=0, cache=False,  # pictures read while training, as these tests damage them
    )  # fmt: skip
    base.update(changes)
    return TrainOptions(**base)


def test_the_split_scan_repairs_excludes_and_counts(damaged_data: Path) -> None:
    records, report = load_split(damaged_data, "train")
    assert report.images == 6 and len(records) == 6  # empty and text excluded
    scan = report.scan
    assert scan is not None
    assert len(scan.repaired) == 2 and len(scan.excluded) == 2 and len(scan.renamed) == 1
    assert scan.excluded_boxes > 0
    line = report.lines()[1]
    assert "8 checked" in line and "2 truncated and repaired" in line
    assert f"2 excluded with their {scan.excluded_boxes} boxes" in line
    assert scan.listing is not None and len(scan.listing.read_text().splitlines()) == 5
    with pytest.raises(DataError, match=r"2 unreadable pictures in bccd.data train"):
        load_split(damaged_data, "train", bad_images="stop")


def test_training_completes_with_the_policy_result(tmp_path: Path, damaged_data: Path) -> None:
    logged: list[str] = []
    result = Trainer(options(tmp_path, damaged_data), log=logged.append).fit()
    text = "\n".join(logged)
    assert "train: 6 images" in text and "2 excluded" in text and "2 truncated and repaired" in text
    assert "val: 4 images" in text and "1 truncated and repaired" in text
    assert result.epochs == 1
    read_checkpoint(result.run_dir / "weights" / "last.pt")


def test_bad_images_stop_stops_before_training_in_one_line(
    tmp_path: Path, damaged_data: Path
) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg())
    argv = f"train --model {cfg} --data {damaged_data} --epochs 1 --batch 4 --img-size 64 --workers 0 --bad-images stop --no-progress --project {tmp_path / 'runs'}"  # fmt: skip
    status, err, _ = run_cli(argv.split(), tmp_path)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "2 unreadable pictures in bccd.data train (--bad-images stop)" in lines[0]
    assert "empty file, not an image" in lines[0]
    assert not (tmp_path / "runs" / "exp" / "weights").exists()


def test_a_picture_deleted_during_training_is_skipped_and_counted(tmp_path: Path) -> None:
    data = make_bccd_subset(tmp_path / "bccd", 8, 2)
    logged: list[str] = []
    trainer = Trainer(options(tmp_path, data, epochs=2), log=logged.append)
    trainer.setup()  # the scan found every picture fine
    victim = trainer.train_records[3].image
    victim.unlink()
    result = trainer.fit()
    text = "\n".join(logged)
    assert f"warning: {victim} can no longer be read" in text
    assert (
        f"1 training pictures could not be read during the run and were skipped: {victim}" in text
    )
    assert result.epochs == 2
    read_checkpoint(result.run_dir / "weights" / "last.pt")


def test_a_picture_deleted_during_training_stops_cleanly_with_last_pt(tmp_path: Path) -> None:
    data = make_bccd_subset(tmp_path / "bccd", 8, 2)
    trainer = Trainer(options(tmp_path, data, bad_images="stop"), log=lambda _: None)
    trainer.setup()
    victim = trainer.train_records[5].image
    victim.unlink()
    with pytest.raises(TrainingError) as error:
        trainer.fit()
    message = str(error.value)
    assert "\n" not in message
    assert str(victim) in message and "(--bad-images stop)" in message
    last = trainer.weights_dir / "last.pt"
    assert f"saved {last}" in message
    checkpoint = read_checkpoint(last)
    assert checkpoint["epoch"] == 0 and checkpoint["updates"] >= 0


def test_an_error_in_a_loader_worker_prints_as_one_line(tmp_path: Path) -> None:
    """The scan trusts its cache for a file of unchanged size and time. One rewritten behind its
    back (its header now claims 11000x11000 pixels, over the limit) fails in a DataLoader worker
    process, and still reaches the user as one line."""
    data = make_bccd_subset(tmp_path / "bccd", 8, 2)
    assert run_cli(["check", str(data)], tmp_path)[0] == 0  # scanned and remembered
    victim = load_dataset(data).images("train")[2]
    stat = victim.stat()
    pixels = bytearray(victim.read_bytes())
    sof = pixels.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    pixels[sof + 5 : sof + 9] = (11000).to_bytes(2, "big") * 2
    victim.unlink()
    victim.write_bytes(bytes(pixels))  # same size ...
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and time: the cache trusts it
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg())
    argv = f"train --model {cfg} --data {data} --epochs 1 --batch 4 --img-size 64 --workers 1 --no-cache --bad-images stop --no-progress --project {tmp_path / 'runs'}"  # fmt: skip
    status, err, _ = run_cli(argv.split(), tmp_path)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Caught" not in err
    assert str(victim) in lines[0] and "over the limit" in lines[0]
    assert "saved" in lines[0]
    read_checkpoint(tmp_path / "runs" / "exp" / "weights" / "last.pt")


def test_user_message_unwraps_a_worker_error() -> None:
    dataset = _Failing()
    loader = torch.utils.data.DataLoader(dataset, num_workers=1)
    with pytest.raises(DataError) as error:
        next(iter(loader))
    assert user_message(error.value) == "pic.jpg: damaged image: boom"


class _Failing(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        raise DataError("damaged image: boom", "pic.jpg")


def test_val_repairs_and_excludes(tmp_path: Path, damaged_data: Path) -> None:
    argv = f"val --model bccd --data {damaged_data} --split train --no-plots --no-progress --project {tmp_path / 'val'}"  # fmt: skip
    status, err, out = run_cli(argv.split(), tmp_path)
    assert status == 0, err
    assert "train: 6 images" in out and "2 truncated and repaired" in out and "2 excluded" in out
    status, err, _ = run_cli([*argv.split(), "--bad-images", "stop"], tmp_path)
    assert status == 2 and len(err.strip().splitlines()) == 1
