"""Making a :class:`~darkyolo.training.plan.TrainPlan`: options, cfg and data description in, one
frozen plan out, in steps.

:func:`plan_training` resolves the options (a resume's own, the training mode and its recipe),
reads the cfg and the data's class names, adapts the cfg to the classes, lets the task edit it
(:meth:`~darkyolo.tasks.base.Task.edit_cfg`), writes the training size into it, and settles the
batch arithmetic, the inputs and the optimiser. It builds no network and reads no picture; every
"option, else the cfg's value" rule lives here or in the task, once. The steps that need the
training labels come after, from the task (:meth:`~darkyolo.tasks.base.Task.refine`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from darkyolo.darknet.cfg import NetworkConfig, parse_cfg, read_cfg_text, resolve_cfg_path
from darkyolo.darknet.edits import adapt_classes, with_input_size
from darkyolo.errors import OptionError
from darkyolo.models.zoo import TrainedModel, trained_model, training_start
from darkyolo.tasks import Task, task_for
from darkyolo.training.options import (
    AMP_MODES,
    LOSS_MODES,
    LR_POLICIES,
    OPTIMIZERS,
    TrainOptions,
)
from darkyolo.training.plan import TrainPlan
from darkyolo.training.recipes import apply_recipe, resolve_loss

#: what a ``--resume`` takes from the command line; every other given flag is ignored (and said)
#: (machine settings, and a longer ``epochs``)
RESUME_OVERRIDES = ("resume", "workers", "device", "threads", "progress", "epochs")


def plan_training(
    options: TrainOptions,
    *,
    resume: dict[str, Any] | None = None,
    world_size: int = 1,
    task: Task | None = None,
) -> TrainPlan:
    """Resolve ``options`` (and, for a resume, the checkpoint's stored options and cfg) with the
    cfg and the data description into a :class:`TrainPlan`. Bad values raise
    :class:`~darkyolo.errors.OptionError` naming the option; a cfg key training cannot honour
    raises :class:`~darkyolo.errors.ConfigError` naming file, line and key. ``task`` (default:
    the one that trains the cfg) refuses a cfg of another kind before any data is read."""
    options, resumed_from, ignored = _resumed_options(options, resume)
    trained = None
    if resume is not None:
        cfg_text, source = resume["cfg"], f"{resume['_path']}:cfg"
    else:
        trained = trained_model(options.model)
        cfg_path = trained.files()[0] if trained is not None else resolve_cfg_path(options.model)
        cfg_text, cfg_path = read_cfg_text(cfg_path)
        source = str(cfg_path)
    given = parse_cfg(cfg_text, source)
    start = _start(options, trained, given) if resume is None else _Start()
    task = task or task_for(given)
    if not task.trains(given):
        kind = "a detector" if given.heads else "a classifier"
        command = "darkyolo train" if given.heads else "darkyolo classify train"
        raise OptionError(f"{source} is {kind}: train it with {command}")
    loss_given = options.loss
    options = resolve_loss(options, given)
    recipe = task.recipe(options)
    opt = apply_recipe(options, recipe)
    _check_choices(opt)
    data_path, names = task.read_names(opt.data)
    notes: list[str] = [*start.notes]
    if loss_given == "auto":
        notes += task.chosen_mode(opt)

    # the cfg, step by step: the data's classes, the task's edits, the training size
    text, changed = adapt_classes(cfg_text, len(names), source)
    config = parse_cfg(text, source) if changed else given
    classes_from = given.num_classes if changed else None
    if changed:
        what = "heads" if given.heads else "outputs"
        notes.append(
            f"cfg {source}: {what} adapted from {given.num_classes} to {config.num_classes} "
            "classes (the data's)"
        )
    text, edited = task.edit_cfg(text, config, recipe, fresh=resume is None)
    notes += edited
    img_size = opt.img_size or config.net.width
    inputs = task.inputs(opt, config, img_size, recipe)
    text = with_input_size(text, img_size, source)
    config = parse_cfg(text, source)

    net = config.net
    batch = opt.batch or net.batch
    subdivisions = opt.subdivisions or (net.subdivisions if not opt.batch else 1)
    share = batch // world_size
    if batch % world_size or share % subdivisions:
        raise OptionError(
            f"batch {batch} must split evenly over {world_size} processes x {subdivisions} "
            "subdivisions"
        )
    lr, lr_notes = task.learning_rate(opt, config, batch, len(names), recipe)
    return TrainPlan(
        options=opt,
        task=task.name,
        resumed_from=resumed_from,
        ignored=ignored,
        data=data_path,
        names=tuple(names),
        cfg_source=source,
        cfg_given=cfg_text,
        cfg_text=text,
        classes_from=classes_from,
        pretrained=start.weights,
        pretrained_cfg=start.cfg,
        pretrained_heads=start.heads,
        world_size=world_size,
        batch=batch,
        subdivisions=subdivisions,
        micro=share // subdivisions,
        img_size=img_size,
        sizes=inputs.sizes,
        augment=inputs.augment,
        optimizer=opt.optimizer,
        lr=lr,
        momentum=opt.momentum if opt.momentum is not None else net.momentum,
        decay=opt.decay if opt.decay is not None else net.decay,
        lr_policy=task.lr_policy(opt),
        notes=(*notes, *lr_notes),
    )


@dataclass(frozen=True)
class _Start:
    """The weights a fresh run starts from: none, or a file (made for ``cfg``, default the run's
    own cfg as given) whose heads are loaded too or not."""

    weights: str | None = None
    cfg: str | None = None
    heads: bool = True
    notes: tuple[str, ...] = ()


def _start(options: TrainOptions, trained: TrainedModel | None, given: NetworkConfig) -> _Start:
    """``--weights FILE``: that file; ``--weights none``: from scratch; a trained model's name:
    its weights; else a detector starts from the bundled COCO weights when they fit every layer
    but the heads (:func:`~darkyolo.models.zoo.training_start`), with new heads."""
    if options.weights == "none":
        return _Start()
    if options.weights:
        return _Start(options.weights)
    if trained is not None:
        return _Start(str(trained.files()[1]))
    donor = training_start(given)
    if donor is None:
        return _Start()
    cfg, weights, _ = donor.files()
    note = (
        f"starting from {donor.name}'s weights ({donor.summary.split(':')[0]}): every layer but "
        "the heads' last convolutions; --weights none trains from scratch"
    )
    return _Start(str(weights), read_cfg_text(cfg)[0], False, (note,))


def _resumed_options(
    options: TrainOptions, resume: dict[str, Any] | None
) -> tuple[TrainOptions, str | None, tuple[str, ...]]:
    """``(options, resumed from, ignored flags)``: for a resume, the run's own options with
    :data:`RESUME_OVERRIDES` taken from the command line."""
    if resume is None:
        return options, None, ()
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
    return options, str(resume["_path"]), ignored


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
