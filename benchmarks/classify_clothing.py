"""Classifiers on a small real photo set (../shared/data/clothing: 1,435 train / 341 val, 10
classes), darkyolo beside two peers measured in the same run:

* darkyolo ``classify train`` with its defaults: Darknet's reference network and Darknet-19 at
  224 from scratch, then Darknet-19's 448 fine-tune (``darknet19_448`` started from the 224 run's
  best weights, a new run as Darknet's ``-clear``);
* torchvision's ``resnet18(weights=None)`` trained by darkyolo's loop with Darknet-19's recipe;
* ultralytics' own ``yolov8n-cls.yaml`` from scratch, same epochs, input size and batch, in its
  own environment (``benchmarks/peers/setup.sh`` makes ``.venv-peers``).

Every number is top-1/top-5 on val (centre crops), the best epoch of each run as each tool picks
it; wall-clock seconds of training. Prints a table and each darkyolo arm's top-1 as a ratio of
the better peer's. Usage::

    python benchmarks/classify_clothing.py --epochs 10 [--fine-tune-epochs 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import darkyolo

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


def best_metrics(run: Path) -> tuple[float, float]:
    data = json.loads((run / "metrics.json").read_text())
    return data["top1"], data["top5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clothing")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fine-tune-epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--amp", default="bf16", help="darkyolo's --amp (bf16 on AVX-512 CPUs)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-classify")
    parser.add_argument("--arms", default="reference,darknet19,fine-tune,resnet18,ultralytics")
    args = parser.parse_args()
    arms = args.arms.split(",")
    out = args.out.resolve()
    common = [
        "--data", str(args.data), "--epochs", str(args.epochs), "--batch", str(args.batch),
        "--img-size", str(args.img_size), "--amp", args.amp, "--project", str(out), "--exist-ok",
        "--no-progress",
    ]  # fmt: skip
    rows: list[tuple[str, str, float, float, float]] = []

    def report(name: str, command: str, seconds: float, run: Path) -> None:
        top1, top5 = best_metrics(run)
        rows.append((name, command, top1, top5, seconds))
        print(f"== {name}: top-1 {top1:.4f} top-5 {top5:.4f} in {seconds:.0f} s", flush=True)

    for model in ("darknet", "darknet19"):
        arm = "reference" if model == "darknet" else "darknet19"
        if arm in arms:
            argv = ["classify", "train", "--model", model, "--name", f"{model}-{args.img_size}", *common]  # fmt: skip
            report(f"darkyolo {model} @{args.img_size}", "darkyolo " + " ".join(argv), darkyolo(argv), out / f"{model}-{args.img_size}")  # fmt: skip
    if "fine-tune" in arms:
        start = out / f"darknet19-{args.img_size}" / "weights" / "best.pt"
        size = 2 * args.img_size
        argv = [
            "classify", "train", "--model", "darknet19_448", "--weights", str(start), "--data",
            str(args.data), "--epochs", str(args.fine_tune_epochs), "--batch", str(args.batch),
            "--img-size", str(size), "--amp", args.amp, "--project", str(out), "--exist-ok",
            "--no-progress", "--name", f"darknet19-{size}",
        ]  # fmt: skip
        report(f"darkyolo darknet19 fine-tune @{size}", "darkyolo " + " ".join(argv), darkyolo(argv), out / f"darknet19-{size}")  # fmt: skip
    if "resnet18" in arms:
        import torchvision

        from darkyolo.cli import build_parser
        from darkyolo.commands.train import options_from_args
        from darkyolo.tasks.classification import ClassificationTask
        from darkyolo.training.trainer import Trainer

        argv = ["classify", "train", "--model", "darknet19", "--name", "resnet18", *common]
        options = options_from_args(build_parser().parse_args(argv))
        network = torchvision.models.resnet18(weights=None, num_classes=10)
        start_time = time.perf_counter()
        Trainer(options, ClassificationTask(network)).fit()
        report("resnet18 in darkyolo's loop", "(darknet19's recipe) " + " ".join(argv[2:]), time.perf_counter() - start_time, out / "resnet18")  # fmt: skip
    if "ultralytics" in arms:
        if not PEER_PYTHON.is_file():
            raise SystemExit("no .venv-peers: run benchmarks/peers/setup.sh first")
        command = [
            str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "ultralytics_classify.py"),
            "--data", str(args.data), "--epochs", str(args.epochs), "--imgsz", str(args.img_size),
            "--batch", str(args.batch), "--project", str(out / "ultralytics"),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=out, check=False)
        if done.returncode:
            raise SystemExit(f"ultralytics failed:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(("ultralytics yolov8n-cls", "yolov8n-cls.yaml, pretrained=False", result["top1"], result["top5"], result["train_s"]))  # fmt: skip
        print(f"== ultralytics: top-1 {result['top1']:.4f} top-5 {result['top5']:.4f}", flush=True)

    peers = [r for r in rows if r[0].startswith(("resnet18", "ultralytics"))]
    best_peer = max((r[2] for r in peers), default=float("nan"))
    print(f"\nclothing val ({args.epochs} epochs at {args.img_size}, batch {args.batch}):")
    print(f"{'run':38} {'top-1':>7} {'top-5':>7} {'train s':>8} {'top-1 / best peer':>18}")
    for name, _, top1, top5, seconds in rows:
        print(f"{name:38} {top1:7.4f} {top5:7.4f} {seconds:8.0f} {top1 / best_peer:18.3f}")
    (out / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
