"""A training run's settings, resolved before anything is built: the :class:`TrainPlan`.

:func:`darkyolo.training.planner.plan_training` makes it from the options, the cfg and the data
description; every decision that changes the network or the data is a step of planning that
returns a new frozen plan (the cfg adapted to the data's classes, the task's cfg edits such as
``iou_thresh``, the input size, the anchor fit from the training labels). The trainer builds from
the plan alone and writes it to the run folder as ``plan.json`` beside ``model.cfg`` (its
``cfg_text``) and ``model.names`` (its ``names``), so the folder says what was trained.

The one quantity a plan cannot know is how many batches an epoch holds (pictures are scanned and
some may be left out): :meth:`TrainPlan.schedule` turns that number into the run's length and its
learning-rate schedule.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from darkyolo.darknet.cfg import NetworkConfig, parse_cfg
from darkyolo.evaluation.options import ValOptions
from darkyolo.training.options import TrainOptions
from darkyolo.training.schedule import LRSchedule


@dataclass(frozen=True)
class TrainPlan:
    """Everything a run is, resolved (see the module docstring).

    ``options``: as given, or for a resume the run's own with :data:`RESUME_OVERRIDES` applied;
    ``ignored``: flags a resume did not take; ``task``: its kind (``detect``, ``classify``).
    ``cfg_given`` is the cfg as written, ``cfg_text`` the run's: adapted to the data's classes
    (``classes_from``: the cfg's own count when it was), with the task's edits and fitted anchors
    and the training size as its ``width``/``height``. ``batch`` images per update over
    ``world_size`` processes, each doing ``subdivisions`` micro-batches of ``micro``. ``sizes``:
    the input sides multi-scale training draws from (one: ``img_size``). ``notes``: lines worth
    printing about decisions made. ``pretrained``: the weights to start from, made for
    ``pretrained_cfg`` (``None``: the cfg as given); ``pretrained_heads``: whether the heads' last
    convolutions come from them too (a start from another model's weights trains new heads).
    """

    options: TrainOptions
    task: str
    resumed_from: str | None
    ignored: tuple[str, ...]
    data: str
    names: tuple[str, ...]
    cfg_source: str
    cfg_given: str
    cfg_text: str
    classes_from: int | None
    pretrained: str | None
    pretrained_cfg: str | None
    pretrained_heads: bool
    world_size: int
    batch: int
    subdivisions: int
    micro: int
    img_size: int
    sizes: tuple[int, ...]
    augment: Any  # the task's: AugmentOptions, CropOptions, or None for none
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
        """The cfg as written."""
        return parse_cfg(self.cfg_given, self.cfg_source)

    @property
    def pretrained_config(self) -> NetworkConfig:
        """The cfg the pretrained weights were made for (``.weights`` are read into it)."""
        return parse_cfg(self.pretrained_cfg or self.cfg_given, self.cfg_source)

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

    @property
    def anchors(self) -> list[list[list[float]]]:
        """Each head's anchors in the plan's cfg, ``(w, h)`` in the head's units."""
        return [[list(pair) for pair in head.anchors] for head in self.config.heads]

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able values (``plan.json``), with the anchors of its cfg."""
        data = asdict(self)
        data["options"] = self.options.to_dict()
        data["augment"] = asdict(self.augment) if self.augment is not None else None
        data["anchors"] = self.anchors
        return data

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


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
