"""The classifier shares the detection engine: resume continues a run exactly, and two gloo
processes under torchrun match one process with the same global batch (see
tests/training/test_ddp.py for why they can)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import class_folders, tiny_classifier_cfg

from darkyolo.models.io import read_checkpoint
from darkyolo.training.options import TrainOptions
from darkyolo.training.trainer import Trainer

#: float32 (``--amp off``): the tests compare runs number for number, which bfloat16 (``--amp auto``
#: on a CPU that has it) would round apart
ARGS = dict(
    epochs=2, batch=4, subdivisions=1, img_size=32, workers=0, device="cpu", seed=3, amp="off"
)


def _options(tmp_path: Path, cfg: Path, data: Path, project: str, **extra) -> TrainOptions:
    values = {**ARGS, **extra}
    return TrainOptions(model=str(cfg), data=str(data), project=str(tmp_path / project), progress=False, plots=False, **values)  # fmt: skip


def test_resume_continues_exactly(tmp_path: Path) -> None:
    data = class_folders(tmp_path / "shapes", per_class=4)
    cfg = tmp_path / "c.cfg"
    cfg.write_text(tiny_classifier_cfg(size=32))
    straight = Trainer(_options(tmp_path, cfg, data, "straight"), log=lambda _m: None).fit()
    first = Trainer(_options(tmp_path, cfg, data, "cut"), log=lambda _m: None)
    first.fit(stop_after=1)
    resumed = Trainer(
        _options(tmp_path, cfg, data, "cut", resume=str(tmp_path / "cut" / "exp")),
        log=lambda _m: None,
    ).fit()
    assert resumed.epochs == straight.epochs == 2 and resumed.updates == straight.updates
    one = read_checkpoint(straight.run_dir / "weights" / "last.pt")
    two = read_checkpoint(resumed.run_dir / "weights" / "last.pt")
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, msg=name)


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path: Path) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    data = class_folders(tmp_path / "shapes", per_class=4)
    cfg = tmp_path / "plain.cfg"
    cfg.write_text(tiny_classifier_cfg(size=32, batch_normalize=False))
    single = Trainer(_options(tmp_path, cfg, data, "one"), log=lambda _m: None).fit()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "darkyolo", "classify", "train", "--model", str(cfg), "--data", str(data),
        "--project", str(tmp_path / "two"), "--no-progress", "--no-plots", "--epochs", "2",
        "--batch", "4", "--subdivisions", "1", "--img-size", "32", "--workers", "0",
        "--device", "cpu", "--seed", "3", "--amp", "off",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batch 4 = 2 process(es) x 1 x 2 images" in done.stdout
    one = read_checkpoint(single.run_dir / "weights" / "last.pt")
    two = read_checkpoint(tmp_path / "two" / "exp" / "weights" / "last.pt")
    assert one["updates"] == two["updates"] == 4 and one["seen"] == two["seen"] == 16
    for key in ("train_model", "model"):
        for name, value in one[key].items():
            torch.testing.assert_close(two[key][name], value, rtol=1e-4, atol=1e-5, msg=f"{key} {name}")  # fmt: skip
