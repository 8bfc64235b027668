"""Training speed: darkyolo's trainer step vs PyTorch-YOLOv3 on the same cfg, input and batch.

What is timed (images per second, median of rounds, ours and the peer's rounds interleaved so the
machine's load drifts over both alike):

* ``darkyolo``: :meth:`darkyolo.training.trainer.Trainer.train_batch` - uint8 batch to float, forward,
  Darknet loss (sum / batch), backward, SGD (momentum, decay on kernels) and the EMA update;
* ``pytorchyolo``: PyTorch-YOLOv3 1.8.0 (``pytorchyolo``) ``model(x)``, ``compute_loss``, backward,
  SGD step (the same momentum and decay), in its own virtual environment (``--peer-python``);
* the data loader alone: darkyolo's augmenting loader (jitter, flip, HSV) at the same size and
  batch, so one can see the data pipeline is not the bottleneck;
* end to end (``--e2e-batches``, on by default): each project's own training loop as a user runs
  it, JPEG files in, its own loader (2 worker processes, its own augmentation) feeding its own
  update: darkyolo's ``Trainer.loader`` + ``train_batch`` (SGD) and pytorchyolo's
  ``_create_data_loader`` + ``model``/``compute_loss``/backward/step (Adam, its default for a cfg
  with no ``optimizer=``), the same cfg, fixed 416 input, batch 16, no caching.

Both networks get the same real batch: BCCD pictures augmented by darkyolo's pipeline, boxes as
``(image, class, cx, cy, w, h)`` targets, the cfg with its heads set to BCCD's 3 classes.

    python benchmarks/train_speed.py                      # yolov3-tiny and yolov2-tiny at 416, batch 16
    python benchmarks/train_speed.py --models yolov3-tiny --rounds 5 --variants fp32 bf16

The peer is skipped with a message when ``--peer-python`` does not import ``pytorchyolo`` or the
cfg has layers it cannot build (``[region]``: it has no YOLOv2 head).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT.parent / "shared" / "data" / "bccd"
PEER_PYTHON = Path("/work/peer_venv/bin/python")

PEER_SCRIPT = r"""
import json, sys, time, torch
from pytorchyolo.models import load_model
from pytorchyolo.utils.loss import compute_loss
cfg, batch_file, steps, warmup, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if threads: torch.set_num_threads(threads)
torch.manual_seed(0)
data = torch.load(batch_file)
images, targets = data["images"], data["targets"]
model = load_model(cfg).train()
hp = model.hyperparams
optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=hp["momentum"], weight_decay=hp["decay"])
def step():
    x = images.float() / 255
    outputs = model(x)
    loss, _ = compute_loss(outputs, targets, model)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.seen += x.shape[0]
for _ in range(warmup):
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"img_s": steps * images.shape[0] / (time.perf_counter() - start)}))
"""


PEER_E2E_SCRIPT = r"""
import json, sys, time, torch
from pytorchyolo.models import load_model
from pytorchyolo.train import _create_data_loader
from pytorchyolo.utils.loss import compute_loss
cfg, train_list, size, batch, batches, warmup, workers, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
if threads: torch.set_num_threads(threads)
torch.manual_seed(0)
model = load_model(cfg).train()
hp = model.hyperparams
optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=hp["decay"])
loader = _create_data_loader(train_list, batch, size, workers, multiscale_training=False)
count, start = 0, None
while True:
    for number, (_, imgs, targets) in enumerate(loader):
        if count == warmup * batch and start is None:
            start, count = time.perf_counter(), 0
        outputs = model(imgs)
        loss, _ = compute_loss(outputs, targets, model)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        count += imgs.shape[0]
        if start is not None and count >= batches * batch:
            break
    if start is not None and count >= batches * batch:
        break
print(json.dumps({"img_s": count / (time.perf_counter() - start)}))
"""


def make_dataset(root: Path) -> Path:
    """BCCD converted to a YOLO .data dataset in ``root``."""
    from darkyolo.data.convert import ConvertOptions, convert

    data = root / "bccd"
    convert(BCCD, data, "voc", "yolo", ConvertOptions())
    return next(data.glob("*.data"))


def real_batch(data_file: Path, size: int, batch: int, seed: int = 0):
    """``(uint8 [B, 3, S, S], float32 [T, 6])`` from darkyolo's augmenting pipeline."""
    from darkyolo.data.dataset import DetectionDataset, collate_detection, load_split
    from darkyolo.data.transforms import AugmentOptions

    records, _ = load_split(data_file, "train")
    dataset = DetectionDataset(records, size, AugmentOptions(), seed=seed)
    images, targets, _ = collate_detection([dataset[(i, size, 0)] for i in range(batch)])
    return images, targets


def loader_speed(data_file: Path, size: int, batch: int, workers: int, batches: int) -> float:
    from torch.utils.data import DataLoader, DistributedSampler

    from darkyolo.data.dataset import DetectionDataset, collate_detection, load_split
    from darkyolo.data.multiscale import MultiScaleBatchSampler
    from darkyolo.data.transforms import AugmentOptions

    records, _ = load_split(data_file, "train")
    dataset = DetectionDataset(records, size, AugmentOptions())
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(
        dataset,
        batch_sampler=MultiScaleBatchSampler(sampler, batch, [size]),
        num_workers=workers,
        collate_fn=collate_detection,
    )
    count, start = 0, None
    for number, (images, _, _) in enumerate(loader):
        if number == 1:  # the first batch pays the workers' start-up
            start, count = time.perf_counter(), 0
        count += images.shape[0]
        if number >= batches:
            break
    assert start is not None
    return count / (time.perf_counter() - start)


def ours(
    cfg: Path, data_file: Path, images, targets, variant: str, steps: int, warmup: int, out: Path
):
    """A callable that times ``steps`` updates of darkyolo's trainer on the batch."""
    from darkyolo.training.options import TrainOptions
    from darkyolo.training.trainer import Trainer

    options = TrainOptions(
        model=str(cfg),
        data=str(data_file),
        batch=images.shape[0],
        subdivisions=1,
        img_size=images.shape[-1],
        multi_scale=False,
        workers=0,
        device="cpu",
        lr=1e-5,
        amp="bf16" if "bf16" in variant else "off",
        channels_last="nchw" not in variant,
        compile="compile" in variant,
        project=str(out),
        name=variant,
        progress=False,
    )
    trainer = Trainer(options, log=lambda _m: None)
    trainer.setup()

    def run() -> float:
        for _ in range(warmup):
            trainer.train_batch(images, targets)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_batch(images, targets)
        return steps * images.shape[0] / (time.perf_counter() - start)

    return run


def ours_end_to_end(
    cfg: Path, data_file: Path, size: int, batch: int, batches: int, warmup: int, workers: int,
    out: Path,
) -> float:  # fmt: skip
    """darkyolo's own loop: its loader (JPEG decode, jitter, flip, HSV) feeding ``train_batch``."""
    from darkyolo.training.options import TrainOptions
    from darkyolo.training.trainer import Trainer

    options = TrainOptions(
        model=str(cfg), data=str(data_file), batch=batch, subdivisions=1, img_size=size,
        multi_scale=False, workers=workers, device="cpu", lr=1e-5, project=str(out),
        name="e2e", exist_ok=True, progress=False,
    )  # fmt: skip
    trainer = Trainer(options, log=lambda _m: None)
    trainer.setup()
    count, start, epoch = 0, None, 0
    while start is None or count < batches * batch:
        trainer.batch_sampler.set_epoch(epoch)
        for images, targets, _ in trainer.loader:
            if start is None and count == warmup * batch:
                start, count = time.perf_counter(), 0
            trainer.train_batch(images, targets)
            count += images.shape[0]
            if start is not None and count >= batches * batch:
                break
        epoch += 1
    return count / (time.perf_counter() - start)


def peer_end_to_end(
    python: Path, cfg: Path, data_file: Path, size: int, batch: int, batches: int, warmup: int,
    workers: int, threads: int,
) -> float:  # fmt: skip
    folder = data_file.parent
    listing = folder / "peer-train.txt"
    lines = (folder / "train.txt").read_text().split()
    listing.write_text("".join(f"{folder / line}\n" for line in lines))
    return _run_peer(python, PEER_E2E_SCRIPT, cfg, listing, size, batch, batches, warmup, workers, threads)  # fmt: skip


def peer(python: Path, cfg: Path, batch_file: Path, steps: int, warmup: int, threads: int) -> float:
    return _run_peer(python, PEER_SCRIPT, cfg, batch_file, steps, warmup, threads)


def _run_peer(python: Path, script: str, *args: object) -> float:
    """Run a peer script in the peer's interpreter -> the images/s it prints as JSON."""
    command = [str(python), "-c", script, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr else "failed")
    return json.loads(result.stdout.strip().splitlines()[-1])["img_s"]


def peer_available(python: Path) -> str | None:
    if not python.is_file():
        return f"{python} not found (make the peer venv, see docs/training.md)"
    check = subprocess.run(
        [str(python), "-c", "import pytorchyolo.models, pytorchyolo.utils.loss"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode:
        return f"{python} cannot import pytorchyolo: {check.stderr.strip().splitlines()[-1]}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov2-tiny"])
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed updates per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["fp32", "fp32-nchw", "bf16"],
                        help="darkyolo settings: fp32 (channels-last), fp32-nchw, bf16 (CPU autocast), fp32-compile (torch.compile; compiles in the first warm-up)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="loader processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--e2e-batches", type=int, default=8, help="timed batches of the end-to-end loops (0: skip)")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not BCCD.is_dir():
        print(f"skipped: {BCCD} not found")
        return 0
    from darkyolo.darknet.cfg import resolve_cfg_path
    from darkyolo.darknet.edits import adapt_classes

    print(f"command: python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; input {args.img_size}, batch {args.batch}")  # fmt: skip
    missing_peer = peer_available(args.peer_python)
    if missing_peer:
        print(f"peer skipped: {missing_peer}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_file = make_dataset(tmp)
        images, targets = real_batch(data_file, args.img_size, args.batch)
        batch_file = tmp / "batch.pt"
        torch.save({"images": images, "targets": targets}, batch_file)
        print(f"data loader alone ({args.workers} workers, jitter+flip+HSV): "
              f"{loader_speed(data_file, args.img_size, args.batch, args.workers, 12):.1f} images/s")  # fmt: skip
        for name in args.models:
            text, _ = adapt_classes(resolve_cfg_path(name).read_text(), 3)
            cfg = tmp / f"{name}-bccd.cfg"
            cfg.write_text(text)
            peer_reason = missing_peer
            if peer_reason is None and "[region]" in text:
                peer_reason = "pytorchyolo has no [region] (YOLOv2) layer"
            runners = {v: ours(cfg, data_file, images, targets, v, args.steps, args.warmup, tmp / "runs") for v in args.variants}  # fmt: skip
            timings: dict[str, list[float]] = {v: [] for v in args.variants}
            timings["pytorchyolo"] = []
            for _ in range(args.rounds):
                for variant, run in runners.items():
                    timings[variant].append(run())
                if peer_reason is None:
                    try:
                        timings["pytorchyolo"].append(
                            peer(args.peer_python, cfg, batch_file, args.steps, args.warmup, args.threads)
                        )  # fmt: skip
                    except RuntimeError as error:
                        peer_reason = f"peer failed: {error}"
            print(f"\n{name} (3 classes), {args.img_size}x{args.img_size}, batch {args.batch}: training images/s (median of {args.rounds})")  # fmt: skip
            base = statistics.median(timings["pytorchyolo"]) if timings["pytorchyolo"] else None
            for variant, values in timings.items():
                if not values:
                    continue
                speed = statistics.median(values)
                ratio = f"  {speed / base:.2f}x pytorchyolo" if base else ""
                print(f"  {variant:<12} {speed:7.2f}{ratio}   (rounds: {', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
            if peer_reason:
                print(f"  pytorchyolo  skipped: {peer_reason}")
            if args.e2e_batches:
                e2e = {"darkyolo": [], "pytorchyolo": []}
                for _ in range(args.rounds):
                    e2e["darkyolo"].append(ours_end_to_end(cfg, data_file, args.img_size, args.batch, args.e2e_batches, 2, args.workers, tmp / "runs"))  # fmt: skip
                    if peer_reason is None:
                        try:
                            e2e["pytorchyolo"].append(peer_end_to_end(args.peer_python, cfg, data_file, args.img_size, args.batch, args.e2e_batches, 2, args.workers, args.threads))  # fmt: skip
                        except RuntimeError as error:
                            peer_reason = f"peer failed: {error}"
                print(f"  end to end, own loaders ({args.workers} workers), {args.e2e_batches} batches after 2 warm-up, median of {args.rounds}:")  # fmt: skip
                base = statistics.median(e2e["pytorchyolo"]) if e2e["pytorchyolo"] else None
                for engine, values in e2e.items():
                    if values:
                        speed = statistics.median(values)
                        ratio = f"  {speed / base:.2f}x pytorchyolo" if base else ""
                        print(f"  {engine:<12} {speed:7.2f}{ratio}   (rounds: {', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
