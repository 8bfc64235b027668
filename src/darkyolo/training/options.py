"""What a training run is given: :class:`TrainOptions`, the choices its options allow, and the
kind of number each numeric option takes (:data:`NUMBERS`), checked when the options are made.

Torch-free: ``darkyolo train --help`` reads its defaults and choices from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from darkyolo.errors import OptionError
from darkyolo.evaluation.options import ValOptions
from darkyolo.values import (
    BELOW_ONE,
    INPUT_SIDE,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    OPEN_PROBABILITY,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    ValueKind,
)

#: ``darkyolo classify train``'s cfg when none is given
DEFAULT_CLASSIFIER = "darknet19"
AMP_MODES = ("auto", "off", "bf16", "fp16")
LR_POLICIES = ("auto", "cfg", "steps", "cosine", "poly", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")
#: training modes: ``darknet`` (each head's own Darknet loss, as its cfg says), ``scaled``
#: (:mod:`darkyolo.losses.scaled`: how the scaled-YOLOv4 weights were trained) or ``aligned``
#: (:mod:`darkyolo.losses.aligned`: task-aligned assignment, alignment-weighted objectness)
LOSS_MODES = ("darknet", "scaled", "aligned")
#: ``--loss`` when not given: :func:`~darkyolo.training.recipes.default_loss` picks the training mode
#: from the cfg's heads
DEFAULT_LOSS = "auto"

#: the kind of every numeric option (``None``, left out, is always allowed: it means the default
#: the option's help names). Zero is only allowed where it means something of its own: no
#: freezing, no burn-in, no clipping, no patience, no recalibration, no periodic saves.
NUMBERS: dict[str, ValueKind] = {
    "freeze": NON_NEGATIVE_INT,
    "epochs": POSITIVE_INT,
    "max_batches": POSITIVE_INT,
    "batch": POSITIVE_INT,
    "subdivisions": POSITIVE_INT,
    "img_size": INPUT_SIDE,
    "scale_interval": POSITIVE_INT,
    "workers": NON_NEGATIVE_INT,
    "seed": NON_NEGATIVE_INT,
    "patience": NON_NEGATIVE_INT,
    "eval_interval": POSITIVE_INT,
    "lr": POSITIVE_FLOAT,
    "lr_final": PROBABILITY,
    "burn_in": NON_NEGATIVE_INT,
    "warmup_epochs": NON_NEGATIVE_FLOAT,
    "momentum": BELOW_ONE,
    "decay": NON_NEGATIVE_FLOAT,
    "ema_decay": OPEN_PROBABILITY,
    "ema_tau": POSITIVE_FLOAT,
    "max_nan_skips": NON_NEGATIVE_INT,
    "bn_momentum": OPEN_PROBABILITY,
    "bn_recalib": NON_NEGATIVE_INT,
    "obj_prior": OPEN_PROBABILITY,
    "jitter": BELOW_ONE,
    "flip": PROBABILITY,
    "mosaic": PROBABILITY,
    "close_mosaic": NON_NEGATIVE_INT,
    "hue": PROBABILITY,
    "saturation": POSITIVE_FLOAT,
    "exposure": POSITIVE_FLOAT,
    "val_conf": PROBABILITY,
    "val_iou": PROBABILITY,
    "val_batch": POSITIVE_INT,
    "save_period": NON_NEGATIVE_INT,
    "log_interval": POSITIVE_INT,
    "threads": POSITIVE_INT,
    "clip_grad": NON_NEGATIVE_FLOAT,
}


def option_name(key: str) -> str:
    """``max_batches`` -> ``--max-batches``: the command-line spelling of an option."""
    return "--" + key.replace("_", "-")


@dataclass
class TrainOptions:
    """Everything a training run is given; ``None`` means "from the cfg" (or the noted default).

    Batch: ``batch`` images per optimiser update across all processes, ``subdivisions``
    micro-batches per update and process (cfg ``batch``/``subdivisions`` by default).
    Length: ``epochs``, or ``max_batches`` updates (Darknet's schedule from ``[net]``); with
    neither, 100 epochs. Learning rate: ``lr`` (cfg ``learning_rate``), ``lr_policy``: ``auto`` is
    ``cfg`` with ``max_batches`` and ``steps`` (x0.1 at 80% and 90%) with epochs; ``burn_in``
    updates (cfg's with ``max_batches``, else ``warmup_epochs`` epochs), ``power`` from the cfg.
    ``bn_momentum`` (0.03) replaces Darknet's 0.01 for the batch-norm running statistics: with
    0.01 they trail the weights for hundreds of updates, which spoils validation in short runs.
    ``bn_recalib`` training pictures, augmented and sized as training draws them, recompute the
    batch-norm statistics of the weights before each validation and save (0: keep the running
    averages).
    Augmentation: ``geometry`` jitter|square|letterbox, ``jitter`` (the last head's), ``scale``
    zoom range (default the last ``[yolo]``'s ``resize`` r: 1/r..r; 1, 1 without it), ``flip``, HSV from ``[net]`` unless given; ``mosaic`` probability of a four-picture
    mosaic, off for the last ``close_mosaic`` epochs; ``augment=False`` turns it all off.
    ``loss``: the training mode, ``darknet`` (each head's Darknet loss as its cfg says),
    ``scaled`` (:mod:`darkyolo.losses.scaled`, how the scaled-YOLOv4 weights were trained),
    ``aligned`` (:mod:`darkyolo.losses.aligned`) or ``auto`` (:func:`default_loss`).
    ``anchors``: ``auto`` replaces the cfg's anchors by k-means ones on the training boxes when
    those fit clearly better and the run starts from scratch (the trainer says so); ``cfg`` never.
    ``optimizer``: ``sgd`` (Darknet's), ``adam`` or ``adamw`` (decoupled decay; Adam's updates do
    not depend on the loss's scale, which suits short runs from scratch); default the training
    mode's.
    ``ema_tau``: the weight EMA's warm-up in updates; default a quarter of the run, 100..2000
    (:func:`~darkyolo.training.schedule.ema_warmup`).
    Classifier cfgs (no detection heads; ``darkyolo classify train``) read ``data`` as class
    folders or a Darknet list, crop as their ``[net]`` says, keep the cfg's ``poly`` policy, and
    scale the cfg's learning rate by ``batch / cfg batch`` unless ``lr`` is given.
    """

    model: str = "yolov3-tiny"
    data: str = ""
    weights: str | None = None
    freeze: int = 0
    epochs: int | None = None
    max_batches: int | None = None
    batch: int | None = None
    subdivisions: int | None = None
    img_size: int | None = None
    multi_scale: bool | None = None
    scale_interval: int = 10
    workers: int = 2
    device: str = "auto"
    cache: bool | None = None
    seed: int = 0
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: str | None = None
    patience: int = 0
    eval_interval: int = 1
    lr: float | None = None
    lr_policy: str = "auto"
    lr_final: float = 0.01
    burn_in: int | None = None
    warmup_epochs: float = 3.0
    momentum: float | None = None
    decay: float | None = None
    optimizer: str | None = None
    loss: str = DEFAULT_LOSS
    anchors: str = "auto"
    ema: bool = True
    ema_decay: float = 0.9999
    ema_tau: float | None = None
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    nan: str = "stop"
    max_nan_skips: int = 10
    sync_bn: bool = False
    bn_momentum: float | None = 0.03
    bn_recalib: int = 64
    init: str = "darknet"
    obj_prior: float | None = None
    augment: bool = True
    geometry: str = "jitter"
    jitter: float | None = None
    scale: tuple[float, float] | None = None
    flip: float = 0.5
    mosaic: float | None = None
    close_mosaic: int | None = None
    hue: float | None = None
    saturation: float | None = None
    exposure: float | None = None
    bad_images: str = "exclude"
    val_conf: float = ValOptions.conf
    val_iou: float = ValOptions.iou
    val_batch: int = ValOptions.batch_size
    save_period: int = 0
    log_interval: int = 10
    threads: int | None = None
    clip_grad: float | None = None
    progress: bool = True
    plots: bool = True

    def __post_init__(self) -> None:
        for key, kind in NUMBERS.items():
            value = getattr(self, key)
            if value is not None:
                kind.check(option_name(key), value)
        if self.scale is not None:
            for side in self.scale:
                POSITIVE_FLOAT.check("--scale", side)
            if self.scale[0] > self.scale[1]:
                raise OptionError(f"--scale must be LOW,HIGH with LOW <= HIGH, got {self.scale}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scale"] = None if self.scale is None else list(self.scale)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("scale") is not None:
            values["scale"] = tuple(values["scale"])
        return cls(**values)
