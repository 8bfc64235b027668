"""The training modes' recipes: what each sets for the options a user leaves open.

A :class:`Recipe` per ``--loss`` mode (``darknet``, ``scaled``, ``aligned``);
:func:`default_loss` picks the mode of ``--loss auto`` from the cfg's heads and
:func:`apply_recipe` fills the open options from the mode's recipe. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from darkyolo.darknet.cfg import NetworkConfig, YoloSpec
from darkyolo.errors import OptionError
from darkyolo.training.options import TrainOptions


@dataclass(frozen=True)
class Recipe:
    """What a training mode sets for the options left open (``None``; an explicit option or the
    cfg's key wins). ``lr_per_image``: the learning rate is this times the images per update;
    ``lr_per_class``: it is this divided by (4 + the data's classes), ultralytics' rule for short
    runs, times :func:`box_share` of the training set with ``lr_per_box`` (neither: the cfg's
    ``learning_rate``); ``close_mosaic_share``: mosaics stop for this
    share of the epochs at the end, at most ``close_mosaic_max``; ``iou_thresh``: written into
    every ``[yolo]`` section of the cfg that sets none (the cfg's own value wins; ``iou_thresh=1``
    is Darknet's off); ``hue``: replaces the cfg's ``hue`` (an explicit ``--hue`` still wins)."""

    optimizer: str = "sgd"
    lr_per_image: float | None = None
    lr_per_class: float | None = None
    lr_per_box: bool = False
    momentum: float | None = None
    decay: float | None = None
    lr_policy: str = "auto"
    mosaic: float = 0.0
    close_mosaic_share: float = 0.0
    close_mosaic_max: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    clip_grad: float = 0.0
    iou_thresh: float | None = None
    hue: float | None = None


#: ``darknet``: the cfg's own schedule and Darknet's augmentation, and a truth is also a positive
#: for every other anchor it fits with shape IoU above 0.213 (AlexeyAB's value in the yolov4 and
#: yolov4-tiny cfgs): with anchors fitted to the data several are often close in shape, and one
#: anchor per truth then teaches the others to stay silent on the same object (BCCD val, 30
#: epochs, last weights with fixed batch-norm statistics: mAP@[.5:.95] 0.356 -> 0.389,
#: docs/training.md).
_DARKNET_RECIPE = Recipe(iou_thresh=0.213)
#: ``scaled``: YOLOv5's hyp.scratch-low in darkyolo's units (its lr 0.01 with a nominal batch of
#: 64 and loss x batch is 0.01 per image here; its decay 5e-4 per 64-image step is 5e-4/64; its
#: gradient clip 10 on the 64-image sum is 10/64), mosaics closed for the last third of a run (at
#: most 10 epochs, as ultralytics), zoom 0.5..1.5.
_YOLOV5_RECIPE = Recipe(
    lr_per_image=0.01, momentum=0.937, decay=0.0005 / 64, lr_policy="cosine", mosaic=1.0,
    close_mosaic_share=1 / 3, close_mosaic_max=10, scale=(0.5, 1.5), clip_grad=10 / 64,
)  # fmt: skip
#: ``aligned``: the same augmentation and schedule with ultralytics' optimiser for runs under 10,000
#: updates (its ``optimizer=auto``): AdamW, beta1 0.9, decay 5e-4, but at four times its rate:
#: 0.04 / (4 + classes). Ultralytics sets 0.01 / (4 + classes) for updates of its nominal 64 images
#: (four batches of 16); darkyolo updates once per ``batch``, four times as often. Each doubling did
#: better on both val sets (30 epochs, 320, mAP@[.5:.95]: aquarium 0.054 -> 0.068 -> 0.079, BCCD
#: 0.432 -> 0.475 -> 0.498; docs/benchmarks.md), on sets of many boxes a picture; with fewer the
#: rate falls in proportion (:func:`box_share`). And ultralytics' hue jitter, 0.015 (``hsv_h``) in
#: place of the cfg's (0.1 in Darknet's): BCCD val, mAP@.5 / mAP@[.5:.95] 0.740 / 0.391 -> 0.791 /
#: 0.411.
_ALIGNED_RECIPE = replace(
    _YOLOV5_RECIPE, optimizer="adamw", lr_per_image=None, lr_per_class=0.04, momentum=0.9,
    decay=0.0005, hue=0.015, lr_per_box=True,
)  # fmt: skip
RECIPES = {"darknet": _DARKNET_RECIPE, "scaled": _YOLOV5_RECIPE, "aligned": _ALIGNED_RECIPE}


#: boxes a picture from which a ``lr_per_box`` recipe trains at its full class-count rate
FULL_RATE_BOXES = 4.0


def box_share(boxes_per_picture: float) -> float:
    """The share of the class-count rate for a training set with ``boxes_per_picture``: 1 from
    :data:`FULL_RATE_BOXES` up, in proportion below (a quarter at one box a picture).

    An update of ``batch`` pictures learns from the boxes in them, and a batch of a few boxes gives
    a noisy gradient, which AdamW turns into steps as long as a clean one's. The full rate was
    chosen on BCCD (13.7 boxes a picture) and aquarium (7.4); on ``aquarium-shark`` (1.4, one
    class of large objects) this rule did better (val, 30 epochs at 320, mean of two seeds, mAP@.5
    / mAP@[.5:.95]: from scratch 0.153 / 0.047 -> 0.201 / 0.074, from COCO 0.656 / 0.266 -> 0.643
    / 0.301); a quarter of the rate was level on ``bccd-wbc`` (1.0; 0.737 -> 0.735) and worse on
    BCCD (0.549 -> 0.521; docs/benchmarks.md)."""
    return min(1.0, boxes_per_picture / FULL_RATE_BOXES)


def default_loss(config: NetworkConfig) -> str:
    """The training mode of ``--loss auto``, from the heads (the best recipe found on the val
    splits of BCCD and aquarium, docs/benchmarks.md "The default recipe"): ``aligned`` when every
    head is a ``[yolo]`` with ``new_coords=1`` (the scaled-YOLOv4 head, as in
    ``yolov3-tiny-newcoords``), ``darknet`` for Darknet's own heads (``[region]``, classic
    ``[yolo]``), which the aligned mode trains worse (BCCD val, docs/benchmarks.md)."""
    heads = config.heads
    if heads and all(isinstance(h, YoloSpec) and h.new_coords for h in heads):
        return "aligned"
    return "darknet"


def resolve_loss(opt: TrainOptions, config: NetworkConfig) -> TrainOptions:
    """``opt`` with ``--loss auto`` resolved (:func:`default_loss`) and the mode checked."""
    if opt.loss == "auto":
        opt = replace(opt, loss=default_loss(config))
    if opt.loss not in RECIPES:
        raise OptionError(f"--loss must be one of auto, {', '.join(RECIPES)}, got {opt.loss!r}")
    return opt


def apply_recipe(opt: TrainOptions, recipe: Recipe) -> TrainOptions:
    """``opt`` with every option left open (``None``) set from ``recipe``."""
    epochs = opt.epochs or 0
    close = min(recipe.close_mosaic_max, int(epochs * recipe.close_mosaic_share))
    return replace(
        opt,
        momentum=opt.momentum if opt.momentum is not None else recipe.momentum,
        decay=opt.decay if opt.decay is not None else recipe.decay,
        optimizer=opt.optimizer or recipe.optimizer,
        lr_policy=recipe.lr_policy if opt.lr_policy == "auto" else opt.lr_policy,
        mosaic=opt.mosaic if opt.mosaic is not None else recipe.mosaic,
        close_mosaic=opt.close_mosaic if opt.close_mosaic is not None else close,
        clip_grad=opt.clip_grad if opt.clip_grad is not None else recipe.clip_grad,
    )
