"""Training survives crashes: SIGKILL at random moments, and a full disk while saving.

* A tiny ``darkyolo train`` run (a 21-filter cfg, 16 synthetic 64x64 pictures, 12 epochs) is killed
  with SIGKILL three times at random moments after a checkpoint was written, and resumed with
  ``--resume`` each time. After every kill ``last.pt`` must load with
  ``torch.load(weights_only=True)``; the resumed run must end in the same state as an
  uninterrupted run with the same seed: same epoch/update/image counts and metrics, and every
  weight within ``TOLERANCE`` (measured: identical, max |diff| 0.0, on CPU with one thread).
* A disk that fills while ``last.pt`` is written: the write fails, the command says so in one
  line, and the previous ``last.pt`` is unchanged and loadable.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import cfg, conv, head, maxpools, net, start_cli, two_class_dataset

pytest.importorskip("darkyolo.training.trainer")
pytest.importorskip("darkyolo.commands.train")

from darkyolo.cli import main
from darkyolo.models.io import FORMAT, read_checkpoint

#: max |difference| allowed between a killed-and-resumed run's weights and an uninterrupted one's
TOLERANCE = 1e-6
EPOCHS = 12
KILLS = 3

#: 64x64 pictures: convs of 8 (stride 2) and 16 filters, four max-pools, a 21-filter head
CFG = cfg(
    net(64, batch=4),
    conv(8, stride=2),
    maxpools(),
    conv(16),
    maxpools(3),
    head(2, anchors="8,8, 16,16, 24,24"),
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict[str, Path]:
    """16 synthetic 64x64 pictures with two coloured boxes each (class 0 red, class 1 blue)."""
    root = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(0)
    pictures = []
    for _ in range(16):
        picture = np.full((64, 64, 3), 40, np.uint8)
        lines = []
        for _ in range(2):
            w, h = (int(v) for v in rng.integers(10, 30, 2))
            x, y = int(rng.integers(0, 64 - w)), int(rng.integers(0, 64 - h))
            label = int(rng.integers(0, 2))
            picture[y : y + h, x : x + w] = (200, 60, 60) if label == 0 else (60, 60, 200)
            lines.append(f"{label} {(x + w / 2) / 64} {(y + h / 2) / 64} {w / 64} {h / 64}")
        pictures.append((picture, "\n".join(lines) + "\n"))
    data = two_class_dataset(root / "ds", pictures)
    (root / "tiny.cfg").write_text(CFG)
    return {"root": root, "data": data, "cfg": root / "tiny.cfg"}


def _train_argv(
    dataset: dict[str, Path], project: Path, epochs: int = EPOCHS, threads: bool = True
) -> list[str]:
    """A subprocess runs on one thread (reproducible sums); in-process leaves torch's setting."""
    return [
        "train", "--model", str(dataset["cfg"]), "--data", str(dataset["data"]),
        "--epochs", str(epochs), "--img-size", "64", "--batch", "4", "--workers", "0",
        "--no-progress", "--project", str(project), "--seed", "3",
    ] + (["--threads", "1"] if threads else [])  # fmt: skip


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _wait_for_new_checkpoint(path: Path, since: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while _mtime(path) == since:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"training ended before writing a checkpoint:\n{output}")
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.01)


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel())


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(dataset):
    root = dataset["root"]
    reference = start_cli(_train_argv(dataset, root / "reference"), root, merge_output=True)
    last = root / "killed" / "exp" / "weights" / "last.pt"
    proc = start_cli(_train_argv(dataset, root / "killed"), root, merge_output=True)
    moments = random.Random()
    seen_epochs = []
    for kill in range(KILLS):
        _wait_for_new_checkpoint(last, _mtime(last), proc)
        # a random moment in the next epoch: training, validating or writing a checkpoint
        delay = moments.uniform(0.0, 0.4)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        checkpoint = torch.load(last, map_location="cpu", weights_only=True)
        assert checkpoint["format"] == FORMAT, f"kill {kill}: last.pt is not a checkpoint"
        assert read_checkpoint(last)["epoch"] == checkpoint["epoch"]
        seen_epochs.append(int(checkpoint["epoch"]))
        print(
            f"kill {kill + 1}: {delay:.3f} s after a checkpoint; last.pt at epoch {seen_epochs[-1]}"
        )
        if checkpoint["epoch"] >= EPOCHS:
            break  # the run finished before the kill landed; nothing left to resume
        resume = ["train", "--resume", str(last), "--workers", "0", "--no-progress"]
        proc = start_cli(resume, root, merge_output=True)
    else:
        output = proc.communicate(timeout=600)[0].decode()
        assert proc.returncode == 0, output
    assert seen_epochs == sorted(seen_epochs), f"a resume went backwards: {seen_epochs}"
    output = reference.communicate(timeout=600)[0].decode()
    assert reference.returncode == 0, output

    expected = torch.load(
        root / "reference" / "exp" / "weights" / "last.pt", map_location="cpu", weights_only=True
    )
    got = torch.load(last, map_location="cpu", weights_only=True)
    for key in ("epoch", "updates", "seen", "best_epoch"):
        assert got[key] == expected[key], key
    for key, value in expected["metrics"].items():
        assert got["metrics"][key] == pytest.approx(value, abs=TOLERANCE), key
    difference = _max_difference(got["model"], expected["model"])
    print(f"resumed vs uninterrupted: max |weight difference| {difference}")
    assert difference <= TOLERANCE
    assert _max_difference(got["train_model"], expected["train_model"]) <= TOLERANCE
    assert _max_difference(got["optimizer"]["state"][0], expected["optimizer"]["state"][0]) <= (
        TOLERANCE
    )


def test_full_disk_while_saving_keeps_the_previous_checkpoint(dataset, monkeypatch, capsys):
    """The second ``last.pt`` write runs out of space half-way: the command fails in one line and
    the first ``last.pt`` (epoch 1) is untouched."""
    project = dataset["root"] / "full-disk"
    real_save = torch.save
    writes: list[str] = []

    def save_until_full(obj, handle, *args, **kwargs):
        name = os.path.basename(getattr(handle, "name", str(handle)))
        if "last.pt" in name:
            writes.append(name)
            if len(writes) == 2:
                handle.write(b"PK\x03\x04" + b"\0" * 100)  # half a file, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    status = main(_train_argv(dataset, project, epochs=3, threads=False))
    err = capsys.readouterr().err
    assert status != 0 and len(writes) == 2
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and "No space left on device" in error_lines[0], err
    weights = project / "exp" / "weights"
    checkpoint = read_checkpoint(weights / "last.pt")
    assert checkpoint["epoch"] == 1
    assert not [p.name for p in weights.iterdir() if p.name.endswith(".tmp")], "temporary left"


def test_full_disk_while_writing_darknet_weights_keeps_the_previous_file(
    dataset, tmp_path, monkeypatch
):
    """``best.weights`` is written the same way: temporary file, then rename."""
    from darkyolo.darknet import weights as weights_format
    from darkyolo.darknet.cfg import load_cfg
    from darkyolo.models import io as weights_module
    from darkyolo.models.darknet import Darknet

    model = Darknet(load_cfg(dataset["cfg"]))
    path = tmp_path / "best.weights"
    weights_module.save_darknet_weights(model, path)
    before = path.read_bytes()

    class FullDisk:
        def __init__(self, name, mode):
            self.handle = open(name, mode)  # noqa: SIM115 - closed in __exit__
            self.name, self.written = name, 0

        def write(self, data: bytes) -> int:
            if self.written + len(data) > 64:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.name))
            self.written += len(data)
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(weights_format, "open", FullDisk, raising=False)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    with pytest.raises(OSError, match="No space left on device"):
        weights_module.save_darknet_weights(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights"]
