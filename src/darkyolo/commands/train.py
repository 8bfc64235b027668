"""``darkyolo train --model CFG --data DATASET``: train (or resume) a Darknet model.

Distributed: ``torchrun --nproc_per_node N -m darkyolo train ...``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from darkyolo.training.options import (
    AMP_MODES,
    LOSS_MODES,
    LR_POLICIES,
    NUMBERS,
    OPTIMIZERS,
    TrainOptions,
)
from darkyolo.values import POSITIVE_FLOAT

HELP = "train a Darknet cfg on a .data dataset (SGD, burn-in, EMA, multi-scale, DDP)"


def _zoom_range(text: str) -> tuple[float, float]:
    """``--scale LOW,HIGH`` (or one number for both): positive numbers, LOW <= HIGH."""
    try:
        parts = [POSITIVE_FLOAT.parse(v) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or parts[0] > parts[1]:
        raise argparse.ArgumentTypeError(
            f"expected LOW,HIGH: two numbers above 0 with LOW <= HIGH, got {text!r}"
        )
    return parts[0], parts[1]


def add_arguments(parser: argparse.ArgumentParser, task: str = "detect") -> None:
    """The training options; ``task="classify"`` leaves out those that only detection has
    (multi-scale, jitter geometry, mosaics, training modes, anchors, detection thresholds)."""
    detect = task == "detect"

    def add(group: argparse._ArgumentGroup, flag: str, **kwargs: Any) -> None:
        """An option; a numeric one gets its kind from :data:`NUMBERS` (checked when read)."""
        dest = flag.lstrip("-").replace("-", "_")
        if dest in NUMBERS:
            kwargs.setdefault("type", NUMBERS[dest])
        group.add_argument(flag, **kwargs)

    g = parser.add_argument_group("model and data")
    add(g, "--model", default="yolov3-tiny", help="bundled cfg name or .cfg path")
    add(g, "--data", help=".data file (or a folder holding one)" if detect else "class folders or a Darknet .data file")  # fmt: skip
    add(
        g,
        "--weights",
        help="start from: .weights (full or .conv.N prefix), a checkpoint, or none (from scratch); default: a trained model's own, else the bundled COCO weights where they fit every layer but the heads",
    )
    add(g, "--freeze", help="freeze the first N cfg layers (default 0)")
    add(g, "--resume", nargs="?", const="", help="continue last.pt (default: the latest run)")

    g = parser.add_argument_group("length and batch")
    add(g, "--epochs", help="epochs (default 100 unless --max-batches)")
    add(g, "--max-batches", help="optimiser updates; the cfg's Darknet schedule")
    add(g, "--batch", help="images per update, all processes (default: cfg)")
    add(g, "--subdivisions", help="micro-batches per update (default: cfg, or 1 with --batch)")
    add(g, "--img-size", help="input side, a multiple of 32 (default: cfg width)")
    if detect:
        ms = g.add_mutually_exclusive_group()
        ms.add_argument("--multi-scale", dest="multi_scale", action="store_true", default=None, help="new input side every --scale-interval updates (default: the cfg's random=)")  # fmt: skip
        ms.add_argument("--no-multi-scale", dest="multi_scale", action="store_false")
        add(g, "--scale-interval", help="updates between sizes (10)")

    g = parser.add_argument_group("optimiser and schedule")
    add(g, "--lr", help="base learning rate (default: cfg learning_rate)")
    add(g, "--lr-policy", choices=LR_POLICIES, help="auto: cfg with --max-batches, else steps x0.1 at 80%%/90%%")  # fmt: skip
    add(g, "--lr-final", help="cosine: final lr fraction")
    add(g, "--burn-in", help="burn-in updates (default: cfg, or --warmup-epochs)")
    add(g, "--warmup-epochs", help="burn-in length with --epochs")
    add(g, "--momentum", help="SGD momentum (default: cfg)")
    add(g, "--decay", help="weight decay on conv kernels (default: cfg)")
    add(g, "--optimizer", choices=OPTIMIZERS, help="sgd (Darknet's), adam or adamw; --momentum is Adam's beta1 (default: the training mode's, adamw for aligned, else sgd)")  # fmt: skip
    if detect:
        add(g, "--loss", choices=("auto", *LOSS_MODES), help="training mode: darknet (the cfg's Darknet losses), scaled (scaled-YOLOv4/YOLOv5 targets and CIoU on the same heads), aligned (task-aligned assignment, alignment-weighted objectness) or auto: aligned for new_coords [yolo] heads, else darknet")  # fmt: skip
        add(g, "--anchors", choices=("auto", "cfg"), help="auto: from scratch, k-means anchors on the training boxes when they fit clearly better than the cfg's (said in the log); cfg: keep the cfg's")  # fmt: skip
    g.add_argument("--no-ema", dest="ema", action="store_false", help="no weight EMA")
    add(g, "--ema-tau", help="EMA warm-up in updates (default: a quarter of the run, 100..2000)")
    add(g, "--clip-grad", help="clip the gradient norm (0: off; default: the training mode's)")
    add(g, "--nan", choices=("stop", "skip"), help="on a NaN/Inf loss")
    add(g, "--init", choices=("darknet", "torch"), help="initial weights before --weights: Darknet's He-normal kernels (default) or PyTorch's")  # fmt: skip
    if detect:
        add(g, "--obj-prior", help="with --init darknet: initial objectness probability of the heads (bias prior; default 0.01)")  # fmt: skip
    add(g, "--bn-recalib", help="training pictures that recompute the batch-norm statistics before each validation and save (0: off)")  # fmt: skip
    add(g, "--bn-momentum", help="batch-norm running-stat momentum (Darknet: 0.01)")

    g = parser.add_argument_group("augmentation")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="letterbox only" if detect else "centre crop only")  # fmt: skip
    if detect:
        add(g, "--geometry", choices=("jitter", "square", "letterbox"))
        add(g, "--jitter", help="Darknet jitter (default: the cfg's)")
        add(g, "--scale", type=_zoom_range, help="zoom range LOW,HIGH (the cfg's resize=r: 1/r,r; else 1,1)")  # fmt: skip
    add(g, "--flip", help="horizontal flip probability")
    if detect:
        add(g, "--mosaic", help="probability of a four-picture mosaic (default: the training mode's, 1 for scaled, 0 for darknet)")  # fmt: skip
        add(g, "--close-mosaic", help="no mosaics in the last N epochs (default: scaled a third of the epochs, at most 10)")  # fmt: skip
    add(g, "--hue", help="default: cfg hue")
    add(g, "--saturation", help="default: cfg saturation")
    add(g, "--exposure", help="default: cfg exposure")

    g = parser.add_argument_group("hardware")
    add(g, "--device", help="auto, cpu, cuda, cuda:1")
    add(g, "--workers", help="data loader processes")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None, help="keep the decoded pictures in RAM (default: when they fit in a quarter of the free memory)")  # fmt: skip
    add(g, "--amp", choices=AMP_MODES, help="auto: bf16/fp16 on CUDA, off on CPU")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs (DDP)")
    add(g, "--threads", help="torch CPU threads")

    g = parser.add_argument_group("validation and output")
    add(g, "--eval-interval", help="validate every K epochs")
    add(g, "--patience", help="stop after N epochs without gain (0: never)")
    add(g, "--bad-images", choices=("exclude", "stop"), help="pictures that cannot be decoded (all are checked first; truncated ones are repaired): leave them out, counted and named (default), or stop before training; during training: skip or stop with last.pt saved")  # fmt: skip
    if detect:
        add(g, "--val-conf", help="score threshold of validation")
        add(g, "--val-iou", help="NMS IoU of validation")
    add(g, "--val-batch", help="pictures per validation call")
    add(g, "--project", help="output root")
    add(g, "--name", help="run folder (exp, exp2, ...)")
    g.add_argument("--exist-ok", action="store_true", help="reuse --name if it exists")
    add(g, "--save-period", help="also keep epochN.pt every N (0: never)")
    add(g, "--log-interval", help="steps.csv row every N updates")
    add(g, "--seed", help="random seed")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    g.add_argument("--no-plots", dest="plots", action="store_false", help="no PNG plots")
    # one place decides each default: TrainOptions (argparse's parser-level defaults win)
    known = {action.dest for action in parser._actions}
    parser.set_defaults(**{k: v for k, v in asdict(TrainOptions()).items() if k in known})


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    keys = {f for f in TrainOptions.__dataclass_fields__}
    values = {k: v for k, v in vars(args).items() if k in keys and v is not None}
    return TrainOptions(**values)


def require_data(args: argparse.Namespace, what: str) -> None:
    """``--data`` (``what``) is needed unless the run is a ``--resume``, which keeps its own."""
    from darkyolo.errors import TrainingError

    if args.resume is None and not args.data:
        raise TrainingError(f"--data is required ({what}) unless --resume is given")
    if not args.data:
        args.data = ""


def run(args: argparse.Namespace) -> int:
    from darkyolo.tasks.detection import DetectionTask
    from darkyolo.training.trainer import Trainer

    require_data(args, "a .data file")
    trainer = Trainer(options_from_args(args), DetectionTask())
    try:
        trainer.fit()
    except KeyboardInterrupt:
        raise KeyboardInterrupt(trainer.interrupted_note()) from None
    return 0
