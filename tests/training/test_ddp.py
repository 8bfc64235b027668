"""DistributedDataParallel on the CPU: ``torchrun --nproc_per_node 2 -m darkyolo train`` (gloo)
matches one process with the same global batch.

Why it can match: the per-sample augmentation and the multi-scale draws depend only on
(seed, epoch, index / step); the two ranks' DistributedSampler shares of a step make up exactly the
single process's batch; each rank divides its loss sum by its share of the batch and DDP averages
the gradients, which is the single process's sum / batch. The cfg has no batch norm (per-rank
statistics would differ without SyncBatchNorm, which PyTorch supports on GPUs only), so the two
runs differ only by float summation order: tolerance 1e-4 relative, 1e-5 absolute.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from darkyolo.models.io import read_checkpoint
from darkyolo.training.options import TrainOptions
from darkyolo.training.trainer import Trainer

ARGS = dict(
    epochs=2, batch=4, subdivisions=1, img_size=64, workers=0, device="cpu", seed=3, amp="off"
)


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path, bccd_small, make_cfg):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    cfg = tmp_path / "plain.cfg"
    cfg.write_text(make_cfg(batch_normalize=False))
    single = Trainer(
        TrainOptions(
            model=str(cfg),
            data=str(bccd_small),
            project=str(tmp_path / "one"),
            progress=False,
            plots=False,
            **ARGS,
        ),
        log=lambda _m: None,
    ).fit()

    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "darkyolo", "train", "--model", str(cfg), "--data", str(bccd_small),
        "--project", str(tmp_path / "two"), "--no-progress", "--no-plots",
        "--epochs", "2", "--batch", "4", "--subdivisions", "1", "--img-size", "64",
        "--workers", "0", "--device", "cpu", "--seed", "3", "--amp", "off",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x2" in done.stdout and "batch 4 = 2 process(es) x 1 x 2 images" in done.stdout
    assert done.stdout.count("done:") == 1  # rank 0 is the only writer

    one = read_checkpoint(single.run_dir / "weights" / "last.pt")
    two = read_checkpoint(tmp_path / "two" / "exp" / "weights" / "last.pt")
    assert one["updates"] == two["updates"] == 4 and one["seen"] == two["seen"] == 16
    for key in ("train_model", "model"):
        for name, value in one[key].items():
            torch.testing.assert_close(two[key][name], value, rtol=1e-4, atol=1e-5, msg=f"{key} {name}")  # fmt: skip
