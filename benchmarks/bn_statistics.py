"""The batch-norm statistics a run's saved weights are scored with, three ways, on its val split.

For each checkpoint (``last.pt`` or ``best.pt`` of a ``darkyolo train`` run that kept its training
weights beside the EMA), pycocotools mAP@.5 and mAP@[.5:.95] on the run's ``.data`` ``valid=`` list at the run's input
size with the statistics

* recomputed from plain letterboxed training pictures at the base side (the same pictures that
  darkyolo used before it drew them as training does),
* recomputed as the trainer now does: training pictures drawn as training draws them
  (:meth:`darkyolo.training.trainer.Trainer.recalibrate`),
* the training weights' own running averages (momentum ``--bn-momentum``).

With ``--per-class``, also for each class with the trainer's statistics: AP50 and AP, and for every
truth the same-class detection that overlaps it most: how often its IoU reaches .5 and .75, the
mean IoU, and the median of its score (a class found but scored low shows here).

Usage::

    python benchmarks/bn_statistics.py runs/train/exp/weights/last.pt [more checkpoints] [--per-class]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from darkyolo.data.records import ImageRecord
    from darkyolo.evaluation.evaluator import EvalResult


def rescore(path: Path, per_class: bool = False) -> list[tuple[float, float]]:
    """(mAP@.5, mAP@[.5:.95]) of ``path``'s EMA weights with the three kinds of statistics
    (``per_class``: also print :func:`class_report` for the trainer's)."""
    from darkyolo.data.dataset import DetectionDataset, collate_detection
    from darkyolo.evaluation.validate import ValOptions, evaluate, recalibrate_batch_norm
    from darkyolo.models.darknet import Darknet
    from darkyolo.models.io import read_checkpoint
    from darkyolo.training.options import TrainOptions
    from darkyolo.training.trainer import Trainer

    state = read_checkpoint(path)
    if state.get("train_model") is None:
        raise SystemExit(f"{path}: no training weights beside the EMA (a run with --no-ema)")
    with tempfile.TemporaryDirectory() as scratch:
        cfg = Path(scratch) / "model.cfg"
        cfg.write_text(state["cfg"])
        stored = TrainOptions.from_dict(state["options"])
        options = TrainOptions.from_dict(
            {**stored.to_dict(), "model": str(cfg), "anchors": "cfg", "weights": None,
             "project": scratch, "name": "bn", "cache": False, "progress": False, "plots": False,
             "resume": None, "workers": 0}
        )  # fmt: skip
        trainer = Trainer(options, log=lambda message: None)
        trainer.setup()
        trainer.epoch = int(state["epoch"])

        def model(weights: dict) -> Darknet:
            network = Darknet(trainer.plan.config)
            network.load_state_dict(weights)
            return network

        plain = model(state["model"])
        order = np.random.default_rng(options.seed).permutation(len(trainer.dataset))
        chosen = [trainer.dataset.records[i] for i in order[: options.bn_recalib]]
        letterboxed = DetectionDataset(chosen, trainer.plan.img_size, None)
        batches = (
            collate_detection([letterboxed[i] for i in range(s, min(s + 16, len(chosen)))])[0]
            for s in range(0, len(chosen), 16)
        )
        recalibrate_batch_norm(plain, batches)
        drawn = model(state["model"])
        trainer.recalibrate(drawn)
        running_stats = {k: v for k, v in state["train_model"].items() if "running" in k}
        running = model({**state["model"], **running_stats})
        settings = ValOptions(img_size=trainer.plan.img_size)
        results = [
            evaluate(network, trainer.val_records, trainer.names, settings)
            for network in (plain, drawn, running)
        ]
        if per_class:
            class_report(results[1], trainer.val_records, trainer.names)
        return [(result.map50, result.map) for result in results]


def class_report(result: EvalResult, records: Sequence[ImageRecord], names: Sequence[str]) -> None:
    """Print, per class, AP50 / AP and how the best-overlapping detection of each truth fares."""
    import torch
    from torchvision.ops import box_iou

    for c, name in enumerate(names):
        best_iou: list[float] = []
        best_score: list[float] = []
        for i, record in enumerate(records):
            truths = record.boxes[record.labels == c]
            if not len(truths):
                continue
            mine = (result.det_image_index == i) & (result.det_labels == c)
            if not mine.any():
                best_iou += [0.0] * len(truths)
                best_score += [0.0] * len(truths)
                continue
            iou = box_iou(torch.as_tensor(truths), torch.as_tensor(result.det_boxes[mine])).numpy()
            best_iou += list(iou.max(1))
            best_score += list(result.det_scores[mine][iou.argmax(1)])
        if not best_iou:
            continue
        ious, scores = np.array(best_iou), np.array(best_score)
        print(
            f"  {name:12} truths {len(ious):5}  AP50 {result.ap50[c]:.3f} AP {result.ap[c]:.3f}  "
            f"IoU>=.5 {np.mean(ious >= 0.5):.2f} >=.75 {np.mean(ious >= 0.75):.2f} "
            f"mean {ious.mean():.2f}  score median {np.median(scores):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--per-class", action="store_true", help="per-class report (see above)")
    args = parser.parse_args()
    print("mAP@.5 / mAP@[.5:.95] with the statistics of:")
    print(f"{'checkpoint':48} {'letterbox':>13} {'as trained':>13} {'running':>13}")
    for path in args.checkpoints:
        scores = rescore(path, args.per_class)
        cells = " ".join(f"{m50:6.3f}/{m:6.3f}" for m50, m in scores)
        print(f"{str(path)[-48:]:48} {cells}", flush=True)


if __name__ == "__main__":
    main()
