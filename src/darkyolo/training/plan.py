"""A training run's settings, resolved before anything is built.

:func:`plan_training` takes the options (:class:`TrainOptions`, what the command line or a caller
gives), the cfg and the data description, and returns one frozen, printable :class:`TrainPlan`:
the cfg text adapted to the data's classes, the weights to start from, the batch arithmetic, the
input sizes, the augmentation, the optimiser and the learning-rate policy. It builds no network
and reads no picture; every "option, else the cfg's value" rule lives here, once. The trainer
builds from the plan alone, and writes it to the run folder as ``plan.json``.

The one quantity a plan cannot know is how many batches an epoch holds (pictures are scanned and
some may be left out): :meth:`TrainPlan.schedule` turns that number into the run's length and its
learning-rate schedule.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from darkyolo.classify.data import CropOptions, load_classification_data
from darkyolo.darknet.cfg import (
    NetworkConfig,
    YoloSpec,
    parse_cfg,
    read_cfg_text,
    resolve_cfg_path,
    with_yolo_default,
)
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.data.layouts import load_dataset
from darkyolo.data.multiscale import multiscale_sizes
from darkyolo.data.transforms import AugmentOptions
from darkyolo.errors import OptionError
from darkyolo.evaluation.options import ValOptions
from darkyolo.models.zoo import trained_model
from darkyolo.training.options import (
    AMP_MODES,
    LOSS_MODES,
    LR_POLICIES,
    OPTIMIZERS,
    TrainOptions,
)
from darkyolo.training.schedule import LRSchedule
from darkyolo.training.transfer import build_for_data


@dataclass(frozen=True)
class Recipe:
    """What a training mode sets for the options left open (``None``; an explicit option or the
    cfg's key wins). ``lr_per_image``: the learning rate is this times the images per update;
    ``lr_per_class``: it is this divided by (4 + the data's classes), ultralytics' rule for short
    runs (neither: the cfg's ``learning_rate``); ``close_mosaic_share``: mosaics stop for this
    share of the epochs at the end, at most ``close_mosaic_max``; ``iou_thresh``: written into
    every ``[yolo]`` section of the cfg that sets none (the cfg's own value wins; ``iou_thresh=1``
    is Darknet's off); ``hue``: replaces the cfg's ``hue`` (an explicit ``--hue`` still wins)."""

    optimizer: str = "sgd"
    lr_per_image: float | None = None
    lr_per_class: float | None = None
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
#: 0.432 -> 0.475 -> 0.498; docs/benchmarks.md). And ultralytics' hue jitter, 0.015 (``hsv_h``) in
#: place of the cfg's (0.1 in Darknet's): BCCD val, mAP@.5 / mAP@[.5:.95] 0.740 / 0.391 -> 0.791 /
#: 0.411.
_ALIGNED_RECIPE = replace(
    _YOLOV5_RECIPE, optimizer="adamw", lr_per_image=None, lr_per_class=0.04, momentum=0.9,
    decay=0.0005, hue=0.015,
)  # fmt: skip
RECIPES = {"darknet": _DARKNET_RECIPE, "scaled": _YOLOV5_RECIPE, "aligned": _ALIGNED_RECIPE}
#: what a ``--resume`` takes from the command line; every other given flag is ignored (and said)
#: (machine settings, and a longer ``epochs``)
RESUME_OVERRIDES = ("resume", "workers", "device", "threads", "progress", "epochs")


@dataclass(frozen=True)
class TrainPlan:
    """Everything a run is, resolved (see the module docstring).

    ``options``: as given, or for a resume the run's own with :data:`RESUME_OVERRIDES` applied;
    ``ignored``: flags a resume did not take. ``cfg_given`` is the cfg as written, ``cfg_text`` the
    same adapted to the data's classes (``classes_from``: the cfg's own count when it was). ``batch`` images per update over
    ``world_size`` processes, each doing ``subdivisions`` micro-batches of ``micro``. ``sizes``:
    the input sides multi-scale training draws from (one: ``img_size``). ``notes``: lines worth
    printing about decisions made.
    """

    options: TrainOptions
    resumed_from: str | None
    ignored: tuple[str, ...]
    data: str
    names: tuple[str, ...]
    cfg_source: str
    cfg_given: str
    cfg_text: str
    classes_from: int | None
    pretrained: str | None
    world_size: int
    batch: int
    subdivisions: int
    micro: int
    img_size: int
    sizes: tuple[int, ...]
    augment: AugmentOptions | CropOptions | None
    optimizer: str
    lr: float
    momentum: float
    decay: float
    lr_policy: str
    notes: tuple[str, ...] = field(default=())

    @property
    def config(self) -> NetworkConfig:
        """The adapted cfg, parsed."""
        return parse_cfg(self.cfg_text, self.cfg_source)

    @property
    def config_given(self) -> NetworkConfig:
        """The cfg as written (what pretrained ``.weights`` for it fit)."""
        return parse_cfg(self.cfg_given, self.cfg_source)

    def schedule(self, updates_per_epoch: int) -> tuple[int, int, LRSchedule, list[str]]:
        """``(epochs, total updates, learning-rate schedule, notes)`` for a run whose epoch is
        ``updates_per_epoch`` optimiser updates."""
        opt, net = self.options, self.config.net
        notes: list[str] = []
        if opt.max_batches:
            total = opt.max_batches
            epochs = -(-opt.max_batches // updates_per_epoch)
        else:
            epochs = opt.epochs or 100
            total = epochs * updates_per_epoch
        if self.lr_policy == "cfg":
            base = LRSchedule.from_net(net, total)
            steps, scales = base.steps, base.scales
            if steps and max(steps) > total:
                notes.append(
                    f"cfg steps {list(steps)} lie beyond the {total} updates of this run: using "
                    "x0.1 at 80% and 90% instead"
                )
                steps = (round(0.8 * total), round(0.9 * total))
                scales = (0.1, 0.1)
            burn = opt.burn_in if opt.burn_in is not None else min(net.burn_in, total // 4)
            policy = net.policy if net.policy in ("steps", "poly", "constant") else "constant"
            schedule = LRSchedule(
                self.lr, total, burn, net.power, policy, tuple(steps), tuple(scales), opt.lr_final
            )
        else:
            burn = (
                opt.burn_in
                if opt.burn_in is not None
                else round(opt.warmup_epochs * updates_per_epoch)
            )
            schedule = LRSchedule.for_epochs(
                self.lr, total, burn, net.power, self.lr_policy, opt.lr_final
            )
        return epochs, total, schedule, notes

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able values (``plan.json``)."""
        data = asdict(self)
        data["options"] = self.options.to_dict()
        data["augment"] = asdict(self.augment) if self.augment is not None else None
        return data

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def plan_training(
    options: TrainOptions,
    *,
    resume: dict[str, Any] | None = None,
    world_size: int = 1,
    task: str | None = None,
) -> TrainPlan:
    """Resolve ``options`` (and, for a resume, the checkpoint's stored options and cfg) with the
    cfg and the data description into a :class:`TrainPlan`. Bad values raise
    :class:`~darkyolo.errors.OptionError` naming the option; a cfg key training cannot honour
    raises :class:`~darkyolo.errors.ConfigError` naming file, line and key. ``task`` (``detect``
    or ``classify``) refuses a cfg of the other kind before any data is read."""
    ignored: tuple[str, ...] = ()
    resumed_from = None
    if resume is not None:  # the run continues with its own options
        stored = TrainOptions.from_dict(resume["options"])
        ignored = _ignored_by_resume(options, stored)
        merged = {  # given ones only: a resume without --threads keeps the run's own
            key: getattr(options, key)
            for key in RESUME_OVERRIDES
            if key != "epochs" and getattr(options, key) is not None
        }
        if options.epochs is not None and stored.epochs is not None:
            merged["epochs"] = max(options.epochs, stored.epochs)
        options = TrainOptions.from_dict({**stored.to_dict(), **merged})
        resumed_from = str(resume["_path"])
    opt = options

    pretrained: str | None = None
    if resume is not None:
        cfg_text, source = resume["cfg"], f"{resume['_path']}:cfg"
    else:
        trained = trained_model(opt.model)
        pretrained = opt.weights
        if trained is not None:  # a trained model: its cfg, and its weights to start from
            cfg_path, trained_weights, _ = trained.files()
            pretrained = pretrained or str(trained_weights)
        else:
            cfg_path = resolve_cfg_path(opt.model)
        cfg_text, cfg_path = read_cfg_text(cfg_path)
        source = str(cfg_path)
    parsed = parse_cfg(cfg_text, source)
    classifier = parsed.is_classifier
    loss_given = opt.loss
    opt = _apply_recipe(opt, parsed)
    _check_choices(opt)
    recipe = RECIPES["darknet" if classifier else opt.loss]
    if task is not None and classifier != (task == "classify"):
        kind, command = ("a classifier", "darkyolo classify train") if classifier else ("a detector", "darkyolo train")  # fmt: skip
        raise OptionError(f"{source} is {kind}: train it with {command}")
    if classifier:
        data = load_classification_data(opt.data)
        data_path, names = data.path, data.names
    else:
        spec = load_dataset(opt.data)
        data_path, names = spec.path, spec.names
    config, original, adapted_text = build_for_data(cfg_text, len(names), source)
    if not classifier:
        _refuse_unimplemented(config)
    notes = []
    if loss_given == "auto" and not classifier:
        notes.append(f"training mode {opt.loss} (the default for this cfg's heads; see --loss)")
    classes_from = original.num_classes if config is not original else None
    if classes_from is not None:
        what = "outputs" if classifier else "heads"
        notes.append(
            f"cfg {source}: {what} adapted from {original.num_classes} to {config.num_classes} "
            "classes (the data's)"
        )
    if not classifier and resume is None and recipe.iou_thresh is not None:
        value = f"{recipe.iou_thresh:g}"
        adapted_text, added = with_yolo_default(adapted_text, "iou_thresh", value, source)
        if added:
            config = parse_cfg(adapted_text, source)
            notes.append(
                f"iou_thresh={value} in the {added} [yolo] section(s) that set none: "
                "a truth is also a positive for every other anchor it fits with shape IoU above "
                "it (set iou_thresh in the cfg to choose, 1 for one anchor per truth)"
            )
    net = config.net

    batch = opt.batch or net.batch
    subdivisions = opt.subdivisions or (net.subdivisions if not opt.batch else 1)
    share = batch // world_size
    if batch % world_size or share % subdivisions:
        raise OptionError(
            f"batch {batch} must split evenly over {world_size} processes x {subdivisions} "
            "subdivisions"
        )
    img_size = opt.img_size or net.width
    augment: AugmentOptions | CropOptions | None = None
    if classifier:
        infer_shapes(config, img_size, img_size)  # any size its layers take
        sizes: tuple[int, ...] = (img_size,)
        if opt.augment:
            augment = CropOptions.from_net(
                net, img_size, flip=opt.flip, hue=opt.hue, saturation=opt.saturation,
                exposure=opt.exposure,
            )  # fmt: skip
    elif img_size % 32:
        raise OptionError(f"--img-size {img_size} is not a multiple of 32")
    else:
        last_head = config.heads[-1]
        multi = opt.multi_scale if opt.multi_scale is not None else last_head.random
        sizes = tuple(multiscale_sizes(img_size)) if multi else (img_size,)
    if opt.augment and not classifier:
        resize = getattr(last_head, "resize", 1.0)  # AlexeyAB: random zoom in 1/r..r
        augment = AugmentOptions(
            geometry=opt.geometry,
            jitter=opt.jitter if opt.jitter is not None else last_head.jitter,
            scale=tuple(opt.scale)
            if opt.scale is not None
            else (1.0 / resize, resize)
            if resize > 1.0
            else recipe.scale,
            flip=opt.flip,
            hue=next(h for h in (opt.hue, recipe.hue, net.hue) if h is not None),
            saturation=opt.saturation if opt.saturation is not None else net.saturation,
            exposure=opt.exposure if opt.exposure is not None else net.exposure,
            mosaic=opt.mosaic,
        )
    lr = opt.lr if opt.lr is not None else net.learning_rate
    if opt.lr is None and recipe.lr_per_image is not None:
        lr = recipe.lr_per_image * batch
        notes.append(f"learning rate {lr:g}: {recipe.lr_per_image:g} per image x batch {batch}")
    if opt.lr is None and recipe.lr_per_class is not None:
        lr = round(recipe.lr_per_class / (4 + len(names)), 6)
        notes.append(f"learning rate {lr:g}: {recipe.lr_per_class:g} / (4 + {len(names)} classes)")
    if classifier and opt.lr is None and batch != net.batch:
        # a classifier cfg's rate is for its own batch (128 for ImageNet): the linear scaling
        # rule keeps the step per image; unscaled, 0.1 at batch 32 diverges from scratch
        lr = net.learning_rate * batch / net.batch
        notes.append(
            f"learning rate {lr:g}: the cfg's {net.learning_rate:g} for its batch {net.batch}, "
            f"scaled to batch {batch}"
        )
    policy = opt.lr_policy
    if policy == "auto":  # classifiers keep Darknet's poly
        policy = "cfg" if opt.max_batches or classifier else "steps"
    return TrainPlan(
        options=opt,
        resumed_from=resumed_from,
        ignored=ignored,
        data=str(data_path),
        names=tuple(names),
        cfg_source=source,
        cfg_given=cfg_text,
        cfg_text=adapted_text,
        classes_from=classes_from,
        pretrained=pretrained,
        world_size=world_size,
        batch=batch,
        subdivisions=subdivisions,
        micro=share // subdivisions,
        img_size=img_size,
        sizes=sizes,
        augment=augment,
        optimizer=opt.optimizer,
        lr=lr,
        momentum=opt.momentum if opt.momentum is not None else net.momentum,
        decay=opt.decay if opt.decay is not None else net.decay,
        lr_policy=policy,
        notes=tuple(notes),
    )


def validation_options(plan: TrainPlan) -> ValOptions:
    """The validation a training run does after its epochs: the plan's input size, the run's
    ``val_*`` options, at most two loader workers."""
    options = plan.options
    return ValOptions(
        img_size=plan.img_size,
        batch_size=options.val_batch,
        conf=options.val_conf,
        iou=options.val_iou,
        workers=min(options.workers, 2),
    )


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


def _apply_recipe(opt: TrainOptions, config: NetworkConfig) -> TrainOptions:
    """``opt`` with the training mode resolved (``auto``: :func:`default_loss`) and every option
    left open set from its :class:`Recipe` (classifiers: Darknet's, with no mosaics)."""
    if opt.loss == "auto":
        opt = replace(opt, loss=default_loss(config))
    if opt.loss not in RECIPES:
        raise OptionError(f"--loss must be one of auto, {', '.join(RECIPES)}, got {opt.loss!r}")
    recipe = RECIPES["darknet" if config.is_classifier else opt.loss]
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


def _check_choices(opt: TrainOptions) -> None:
    choices = {
        "nan": ("stop", "skip"),
        "optimizer": OPTIMIZERS,
        "loss": LOSS_MODES,  # "auto" is resolved before
        "anchors": ("auto", "cfg"),
        "init": ("darknet", "torch"),
        "lr_policy": LR_POLICIES,
        "amp": AMP_MODES,
        "bad_images": ("exclude", "stop"),
    }
    for key, allowed in choices.items():
        value = getattr(opt, key)
        if value not in allowed:
            raise OptionError(f"--{key.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}")  # fmt: skip
    if not 0 <= opt.mosaic <= 1 or opt.close_mosaic < 0:
        raise OptionError(
            f"--mosaic must lie in 0..1 and --close-mosaic be >= 0, got {opt.mosaic}, "
            f"{opt.close_mosaic}"
        )
    if opt.init == "torch" and opt.obj_prior is not None and opt.resume is None:
        raise OptionError(
            "--obj-prior belongs to --init darknet (PyTorch's initialisation sets no prior)"
        )


def _ignored_by_resume(given: TrainOptions, stored: TrainOptions) -> tuple[str, ...]:
    """The flags given with ``--resume`` (differing from the defaults) that the resumed run does
    not take, because it keeps its own."""
    defaults = TrainOptions()
    return tuple(
        f"--{f.name.replace('_', '-')}"
        for f in fields(TrainOptions)
        if f.name not in RESUME_OVERRIDES
        and f.name != "data"
        and getattr(given, f.name) != getattr(defaults, f.name)
        and getattr(given, f.name) != getattr(stored, f.name)
    )


def _refuse_unimplemented(config: NetworkConfig) -> None:
    """Keys the cfg reader knows but detection training does not do: refused by name, never
    silently ignored. Darknet rotates only classifier pictures (``angle``); ``[region]
    absolute=1`` changes its box delta in a way darkyolo's region loss does not implement."""
    from darkyolo.darknet.cfg import RegionSpec
    from darkyolo.errors import ConfigError

    if config.net.angle:
        raise ConfigError(
            f"angle={config.net.angle:g}: rotation is a classifier augmentation in Darknet and "
            "darkyolo's detection training has none; set angle=0",
            config.source, config.net.line, "angle",
        )  # fmt: skip
    for spec in config.layers:
        if isinstance(spec, RegionSpec) and spec.absolute:
            raise ConfigError(
                "absolute=1 is not implemented by darkyolo's region loss; remove it or set 0",
                config.source, spec.line, "absolute",
            )  # fmt: skip
