"""``darkyolo train --model CFG --data DATASET``: train (or resume) a Darknet model.

Distributed: ``torchrun --nproc_per_node N -m darkyolo train ...``.
"""

from __future__ import annotations

import argparse

HELP = "train a Darknet cfg on a .data dataset (SGD, burn-in, EMA, multi-scale, DDP)"


def _pair(text: str) -> tuple[float, float]:
    parts = [float(v) for v in text.split(",")]
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
    return parts[0], parts[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from darkyolo.losses import LOSS_MODES
    from darkyolo.training.plan import AMP_MODES, DEFAULT_LOSS, LR_POLICIES
    from darkyolo.training.schedule import OPTIMIZERS

    g = parser.add_argument_group("model and data")
    g.add_argument("--model", default="yolov3-tiny", help="bundled cfg name or .cfg path")
    g.add_argument("--data", help=".data file (or a folder holding one)")
    g.add_argument("--weights", help="pretrained .weights (full or .conv.N prefix) or checkpoint")
    g.add_argument("--freeze", type=int, default=0, help="freeze the first N cfg layers")
    g.add_argument(
        "--resume", nargs="?", const="", help="continue last.pt (default: the latest run)"
    )

    g = parser.add_argument_group("length and batch")
    g.add_argument("--epochs", type=int, help="epochs (default 100 unless --max-batches)")
    g.add_argument("--max-batches", type=int, help="optimiser updates; the cfg's Darknet schedule")
    g.add_argument("--batch", type=int, help="images per update, all processes (default: cfg)")
    g.add_argument("--subdivisions", type=int, help="micro-batches per update (default: cfg, or 1 with --batch)")  # fmt: skip
    g.add_argument("--img-size", type=int, help="input side, a multiple of 32 (default: cfg width)")
    ms = g.add_mutually_exclusive_group()
    ms.add_argument("--multi-scale", dest="multi_scale", action="store_true", default=None, help="new input side every --scale-interval updates (default: the cfg's random=)")  # fmt: skip
    ms.add_argument("--no-multi-scale", dest="multi_scale", action="store_false")
    g.add_argument("--scale-interval", type=int, default=10, help="updates between sizes (10)")

    g = parser.add_argument_group("optimiser and schedule")
    g.add_argument("--lr", type=float, help="base learning rate (default: cfg learning_rate)")
    g.add_argument("--lr-policy", choices=LR_POLICIES, default="auto", help="auto: cfg with --max-batches, else steps x0.1 at 80%%/90%%")  # fmt: skip
    g.add_argument("--lr-final", type=float, default=0.01, help="cosine: final lr fraction")
    g.add_argument("--burn-in", type=int, help="burn-in updates (default: cfg, or --warmup-epochs)")
    g.add_argument("--warmup-epochs", type=float, default=3.0, help="burn-in length with --epochs")
    g.add_argument("--momentum", type=float, help="SGD momentum (default: cfg)")
    g.add_argument("--decay", type=float, help="weight decay on conv kernels (default: cfg)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (Darknet's), adam or adamw; --momentum is Adam's beta1 (default: the training mode's, adamw for aligned, else sgd)")  # fmt: skip
    g.add_argument("--loss", choices=("auto", *LOSS_MODES), default=DEFAULT_LOSS, help="training mode: darknet (the cfg's Darknet losses), scaled (scaled-YOLOv4/YOLOv5 targets and CIoU on the same heads), aligned (task-aligned assignment, alignment-weighted objectness) or auto: aligned for new_coords [yolo] heads, else darknet")  # fmt: skip
    g.add_argument("--anchors", choices=("auto", "cfg"), default="auto", help="auto: from scratch, k-means anchors on the training boxes when they fit clearly better than the cfg's (said in the log); cfg: keep the cfg's")  # fmt: skip
    g.add_argument("--no-ema", dest="ema", action="store_false", help="no weight EMA")
    g.add_argument("--ema-tau", type=float, help="EMA warm-up in updates (default: a quarter of the run, 100..2000)")  # fmt: skip
    g.add_argument(
        "--clip-grad",
        type=float,
        default=None,
        help="clip the gradient norm (0: off; default: the training mode's)",
    )
    g.add_argument("--nan", choices=("stop", "skip"), default="stop", help="on a NaN/Inf loss")
    g.add_argument("--init", choices=("darknet", "torch"), default="darknet", help="initial weights before --weights: Darknet's He-normal kernels (default) or PyTorch's")  # fmt: skip
    g.add_argument("--obj-prior", type=float, help="with --init darknet: initial objectness probability of the heads (bias prior; default 0.01)")  # fmt: skip
    g.add_argument("--bn-recalib", type=int, default=64, help="training pictures that recompute the batch-norm statistics before each validation and save (0: off)")  # fmt: skip
    g.add_argument("--bn-momentum", type=float, default=0.03, help="batch-norm running-stat momentum (Darknet: 0.01)")  # fmt: skip

    g = parser.add_argument_group("augmentation")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="letterbox only")
    g.add_argument("--geometry", choices=("jitter", "square", "letterbox"), default="jitter")
    g.add_argument("--jitter", type=float, help="Darknet jitter (default: the cfg's)")
    g.add_argument(
        "--scale",
        type=_pair,
        default=None,
        help="zoom range LOW,HIGH (the cfg's resize=r: 1/r,r; else 1,1)",
    )
    g.add_argument("--flip", type=float, default=0.5, help="horizontal flip probability")
    g.add_argument("--mosaic", type=float, default=None, help="probability of a four-picture mosaic (default: the training mode's, 1 for scaled, 0 for darknet)")  # fmt: skip
    g.add_argument(
        "--close-mosaic",
        type=int,
        default=None,
        help="no mosaics in the last N epochs (default: scaled a third of the epochs, at most 10)",
    )
    g.add_argument("--hue", type=float, help="default: cfg hue")
    g.add_argument("--saturation", type=float, help="default: cfg saturation")
    g.add_argument("--exposure", type=float, help="default: cfg exposure")

    g = parser.add_argument_group("hardware")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    g.add_argument("--workers", type=int, default=2, help="data loader processes")
    g.add_argument("--cache", action="store_true", help="keep decoded images in RAM")
    g.add_argument("--amp", choices=AMP_MODES, default="auto", help="auto: bf16/fp16 on CUDA, off on CPU")  # fmt: skip
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs (DDP)")
    g.add_argument("--threads", type=int, help="torch CPU threads")

    g = parser.add_argument_group("validation and output")
    g.add_argument("--eval-interval", type=int, default=1, help="validate every K epochs")
    g.add_argument("--patience", type=int, default=0, help="stop after N epochs without gain")
    g.add_argument("--bad-images", choices=("exclude", "stop"), default="exclude", help="pictures that cannot be decoded (all are checked first; truncated ones are repaired): leave them out, counted and named (default), or stop before training; during training: skip or stop with last.pt saved")  # fmt: skip
    g.add_argument("--val-conf", type=float, default=0.001)
    g.add_argument("--val-iou", type=float, default=0.6)
    g.add_argument("--val-batch", type=int, default=8)
    g.add_argument("--project", default="runs/train", help="output root")
    g.add_argument("--name", default="exp", help="run folder (exp, exp2, ...)")
    g.add_argument("--exist-ok", action="store_true", help="reuse --name if it exists")
    g.add_argument("--save-period", type=int, default=0, help="also keep epochN.pt every N")
    g.add_argument("--log-interval", type=int, default=10, help="steps.csv row every N updates")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", dest="progress", action="store_false")
    g.add_argument("--no-plots", dest="plots", action="store_false", help="no PNG plots")
    # one place decides each default: TrainOptions (argparse's parser-level defaults win)
    from dataclasses import asdict

    from darkyolo.training.plan import TrainOptions

    known = {action.dest for action in parser._actions}
    parser.set_defaults(**{k: v for k, v in asdict(TrainOptions()).items() if k in known})


def options_from_args(args: argparse.Namespace):  # -> TrainOptions
    from darkyolo.training.plan import TrainOptions

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
    from darkyolo.training.trainer import Trainer

    require_data(args, "a .data file")
    Trainer(options_from_args(args)).fit()
    return 0
