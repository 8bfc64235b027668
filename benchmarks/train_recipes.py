"""Training recipes, one row per lever, beside ultralytics' ``yolov3-tiny.yaml`` from scratch.

Every arm is one ``darkyolo train`` on the same ``.data`` with the same epochs, input size and
batch; only the lever named differs. Scores are pycocotools mAP@.5 and mAP@[.5:.95] (conf 0.001)
on the ``.data``'s ``valid=`` list: use a train/val split for choosing (BCCD 205/87, aquarium
448/127), and a trainval/test one only for the final score. ``--peer`` also trains ultralytics in
its own environment (``benchmarks/peers/setup.sh``) and scores the predictions of its last epoch
with the same darkyolo evaluator (as the arms' last epoch; the ``valid=`` list never picks its
epoch). Finished arms and peer runs under ``--out`` are scored again, not retrained. ``--final``
(for a trainval/test ``.data``) trains the arms on a copy of the ``.data`` without ``valid=`` and
scores each one's last weights once afterwards, so the held-out list decides nothing. Usage::

    python benchmarks/train_recipes.py --data bccd/bccd-split.data --epochs 10 --img-size 320 \\
        --arms darknet,darknet+anchors,darknet-recipe,default --peer
    python benchmarks/train_recipes.py --data aquarium/aquarium.data --epochs 30 --img-size 416 \\
        --arms default --peer --final
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import darkyolo
from darkyolo.device import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parents[1]

#: AdamW as ultralytics' trainer picks it for short runs: beta1 0.9, decay 5e-4 and the learning
#: rate 0.01 / (4 + classes) ("{adamw_lr}" is filled in from the ``.data`` file's classes)
_ADAMW = ["--optimizer", "adamw", "--lr", "{adamw_lr}", "--momentum", "0.9", "--decay", "0.0005"]
#: arm -> (model, extra train flags); "default" is the quick start's command, with no training
#: flags (the aligned mode, which ``--loss auto`` picks for the new head, started from the bundled
#: COCO weights but the heads); "darknet-recipe" is Darknet's head with the darknet mode and its
#: recipe (the default before the aligned mode). The arms not in :data:`FROM_COCO` train from
#: scratch (``--weights none`` is added, as they did before the COCO start became the default),
#: so that their rows compare the levers alone. A model
#: ``NAME[key=value]`` is NAME's cfg with ``key=value`` in every ``[yolo]`` section (``iou_thresh=1``:
#: one anchor per truth, Darknet's own default, which the darknet recipe otherwise sets to 0.213)
ARMS: dict[str, tuple[str, list[str]]] = {
    "darknet": ("yolov3-tiny[iou_thresh=1]", ["--loss", "darknet", "--anchors", "cfg"]),
    "darknet+anchors": ("yolov3-tiny[iou_thresh=1]", ["--loss", "darknet"]),
    "darknet+anchors+newcoords": ("yolov3-tiny-newcoords", ["--loss", "darknet"]),
    "default": ("yolov3-tiny-newcoords", []),
    "darknet-recipe": ("yolov3-tiny", []),
    "darknet-recipe+iou_thresh=0.5": ("yolov3-tiny[iou_thresh=0.5]", []),
    "darknet-recipe-anchors": ("yolov3-tiny", ["--anchors", "cfg"]),
    "darknet-recipe+newcoords": ("yolov3-tiny-newcoords", ["--loss", "darknet"]),
    "scaled+adamw+newcoords": ("yolov3-tiny-newcoords", ["--loss", "scaled", *_ADAMW]),
    "aligned+adamw+newcoords": ("yolov3-tiny-newcoords", ["--loss", "aligned", *_ADAMW]),
    "aligned+adamw": ("yolov3-tiny", ["--loss", "aligned", *_ADAMW]),
    # the default command from scratch (its default before it started from the COCO weights)
    "default-scratch": ("yolov3-tiny-newcoords", []),
    # ... without mosaics (a lever for sets of large objects, which a mosaic's tiles cut)
    "default-scratch-nomosaic": ("yolov3-tiny-newcoords", ["--mosaic", "0"]),
    "default-nomosaic": ("yolov3-tiny-newcoords", ["--mosaic", "0"]),
    # ... at ultralytics' rate for short runs, and with its warm-up: at least 100 updates
    "default-scratch+quarter-lr": ("yolov3-tiny-newcoords", ["--lr", "{adamw_lr}"]),
    "default-scratch+burn-in-100": ("yolov3-tiny-newcoords", ["--burn-in", "100"]),
    "default+burn-in-100": ("yolov3-tiny-newcoords", ["--burn-in", "100"]),
    # ... and both starts at the class-count rate whatever the boxes a picture (the rule before
    # the rate followed them)
    "default-scratch+class-lr": ("yolov3-tiny-newcoords", ["--lr", "{class_lr}"]),
    "default+class-lr": ("yolov3-tiny-newcoords", ["--lr", "{class_lr}"]),
    # the COCO start at a quarter of the aligned mode's rate: ultralytics' 0.01 / (4 + classes)
    "default+quarter-lr": ("yolov3-tiny-newcoords", ["--lr", "{adamw_lr}"]),
    # the bundled COCO model itself as the start: Darknet's head, loss and SGD recipe
    "darknet-recipe+coco": ("yolov3-tiny-coco", []),
    # the default command's aligned mode on Darknet's classic head (yolov3-tiny), from COCO
    "default+classic-head": ("yolov3-tiny", ["--loss", "aligned"]),
}
#: the arms that start from the COCO weights (every other one from scratch)
FROM_COCO = (
    "default", "default-nomosaic", "default+quarter-lr", "default+class-lr", "default+burn-in-100",
    "darknet-recipe+coco", "default+classic-head",
)  # fmt: skip


def arm_model(model: str, out: Path) -> str:
    """``NAME[key=value]`` -> a variant cfg written under ``out`` (other names unchanged)."""
    if not model.endswith("]"):
        return model
    from darkyolo.darknet.cfg import read_cfg_text, resolve_cfg_path
    from darkyolo.darknet.edits import with_yolo_default

    name, setting = model[:-1].split("[")
    key, value = setting.split("=")
    text, _ = read_cfg_text(resolve_cfg_path(name))
    variant = out / f"{name}-{key}{value}.cfg"
    variant.write_text(with_yolo_default(text, key, value, name)[0])
    return str(variant)


def last_scores(run: Path) -> tuple[float, float]:
    """mAP@.5 and mAP@[.5:.95] of the last validated epoch (``results.csv``)."""
    with open(run / "results.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("map")]
    return float(rows[-1]["map50"]), float(rows[-1]["map"])


def train_only(data: Path, out: Path) -> Path:
    """A copy of ``data`` without ``valid=`` (absolute paths), so that a final run never scores
    the held-out list while it trains."""
    from darkyolo.data.description import resolve_data_path

    lines = []
    for number, line in enumerate(data.read_text().splitlines(), 1):
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key == "valid":
            continue
        if key in ("train", "names"):
            line = f"{key}={resolve_data_path(data, value, key, number).resolve()}"
        lines.append(line)
    copy = out / f"{data.stem}-train-only.data"
    out.mkdir(parents=True, exist_ok=True)
    copy.write_text("\n".join(lines) + "\n")
    return copy


def score_once(run: Path, data: Path) -> tuple[float, float]:
    """mAP@.5 and mAP@[.5:.95] of ``run``'s last weights on ``data``'s ``valid=`` list, scored
    once after training by ``darkyolo val``."""
    name = f"{run.name}-scored"
    darkyolo(["val", "--weights", str(run / "weights" / "last.pt"), "--data", str(data), "--split", "val", "--project", str(run.parent), "--name", name, "--exist-ok", "--no-plots", "--no-progress"])  # fmt: skip
    metrics = json.loads((run.parent / name / "metrics.json").read_text())
    return metrics["map50"], metrics["map"]


def run_minutes(csv_path: Path, column: str, cumulative: bool) -> float:
    """Training minutes from a run's per-epoch CSV (a reused run was not timed here)."""
    if not csv_path.is_file():
        return float("nan")
    with open(csv_path, newline="") as handle:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(handle)]
    values = [float(row[column]) for row in rows if row.get(column)]
    if not values:
        return float("nan")
    return (values[-1] if cumulative else sum(values)) / 60


def score_peer(data: Path, predictions: Path) -> tuple[float, float]:
    """The peer's predictions scored by darkyolo's pycocotools evaluator on ``valid=``."""
    from darkyolo.data.dataset import load_split
    from darkyolo.data.layouts import load_dataset
    from darkyolo.evaluation.evaluator import DetectionEvaluator

    spec = load_dataset(data)
    records, _ = load_split(spec, "val")
    found = json.loads(predictions.read_text())
    evaluator = DetectionEvaluator(spec.names)
    for index, record in enumerate(records):
        mine = found[str(Path(record.image).resolve())]
        evaluator.process(
            index, record.boxes, record.labels, mine["boxes"], mine["scores"], mine["labels"],
            record.width, record.height,
        )  # fmt: skip
    result = evaluator.compute()
    return result.map50, result.map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--img-size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--amp",
        default="bf16" if cpu_has_native_bf16() else "off",
        help="default: bf16 where the CPU has it natively, else off",
    )
    parser.add_argument(
        "--threads", type=int, help="torch threads of each run (default: darkyolo's)"
    )
    parser.add_argument(
        "--workers", type=int, help="loader workers of each run (default: darkyolo's)"
    )
    parser.add_argument("--seed", type=int, help="every arm's --seed (default: darkyolo's)")
    parser.add_argument("--arms", default="darknet-recipe,default")
    parser.add_argument("--peer", action="store_true", help="also train and score ultralytics")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-recipes")
    parser.add_argument("--final", action="store_true", help="train without validation, then score the last weights once on valid= (a trainval/test .data)")  # fmt: skip
    args = parser.parse_args()
    out = args.out.resolve()
    rows: list[tuple[str, float, float, float]] = []
    from darkyolo.data.layouts import load_dataset

    classes = len(load_dataset(args.data).names)
    rates = {
        "{adamw_lr}": f"{0.01 / (4 + classes):.6f}",
        "{class_lr}": f"{0.04 / (4 + classes):.6f}",
    }
    arms = [arm for arm in args.arms.split(",") if arm]  # --arms "" with --peer: the peer alone
    for arm in arms:
        model, flags = ARMS[arm]
        flags = [rates.get(flag, flag) for flag in flags]
        flags += [] if arm in FROM_COCO else ["--weights", "none"]
        flags += ["--threads", str(args.threads)] if args.threads else []
        flags += ["--workers", str(args.workers)] if args.workers is not None else []
        flags += ["--seed", str(args.seed)] if args.seed is not None else []
        model = arm_model(model, out)
        run = out / arm
        minutes = run_minutes(run / "results.csv", "time_s", cumulative=False)
        if not (run / "weights" / "last.pt").is_file():
            data = train_only(args.data, out) if args.final else args.data
            argv = ["train", "--model", model, "--data", str(data), "--epochs", str(args.epochs), "--batch", str(args.batch), "--img-size", str(args.img_size), "--amp", args.amp, "--cache", "--project", str(out), "--name", arm, "--exist-ok", "--no-progress", *flags]  # fmt: skip
            minutes = darkyolo(argv) / 60
        scores = score_once(run, args.data) if args.final else last_scores(run)
        rows.append((arm, *scores, minutes))
    if args.peer:
        peer_dir = out / "ultralytics"
        predictions = peer_dir / "predictions.json"
        minutes = run_minutes(peer_dir / "yolov3-tiny" / "results.csv", "time", cumulative=True)
        if not predictions.is_file():  # like the arms: a finished peer run is scored again
            python = ROOT / ".venv-peers" / "bin" / "python"
            start = time.perf_counter()
            command = [str(python), str(ROOT / "benchmarks" / "peers" / "ultralytics_detect.py"), "--data", str(args.data.resolve()), "--epochs", str(args.epochs), "--imgsz", str(args.img_size), "--batch", str(args.batch), "--project", str(peer_dir), "--last"]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
                sys.exit(f"the ultralytics peer failed (exit {done.returncode}):\n{tail}")
            minutes = (time.perf_counter() - start) / 60
        rows.append(("ultralytics yolov3-tiny.yaml", *score_peer(args.data, predictions), minutes))
    print(f"\n{args.data} ({args.epochs} epochs, {args.img_size} px, batch {args.batch})")
    print(f"{'arm':32} {'mAP@.5':>7} {'mAP@.5:.95':>10} {'minutes':>8}")
    peer = rows[-1] if args.peer else None
    for name, m50, m, minutes in rows:
        ratio = f"  {m / peer[2]:.2f}x the peer" if peer and name != peer[0] and peer[2] else ""
        print(f"{name:32} {m50:7.3f} {m:10.3f} {minutes:8.1f}{ratio}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
