"""Detection: ``[region]``/``[yolo]`` cfgs on box data (a ``.data``, a ``data.yaml``, a LabelImg
folder), Darknet's and the newer losses, pycocotools mAP.

Its plan steps beyond the common ones: ``iou_thresh`` written into the ``[yolo]`` sections that
set none (the ``darknet`` recipe's), the augmentation from the last head's ``jitter``/``random``/
``resize``, and, from the training labels, the anchor fit (:meth:`DetectionTask.refine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from darkyolo.darknet.cfg import NetworkConfig, RegionSpec
from darkyolo.darknet.edits import anchors_line, with_anchors, with_yolo_default
from darkyolo.data.layouts import load_dataset
from darkyolo.data.multiscale import multiscale_sizes
from darkyolo.data.transforms import AugmentOptions
from darkyolo.errors import ConfigError, OptionError
from darkyolo.evaluation.evaluator import EvalResult
from darkyolo.evaluation.reports import format_table, write_metrics_json
from darkyolo.tasks.base import Inputs, Log, LossFunction, Splits, Task
from darkyolo.training.options import TrainOptions
from darkyolo.training.plan import TrainPlan, validation_options
from darkyolo.training.recipes import RECIPES, Recipe


def fitness(metrics: dict[str, float]) -> float:
    """0.1·mAP@.5 + 0.9·mAP@.5:.95 (NaN counts as 0)."""

    def value(key: str) -> float:
        x = metrics.get(key, float("nan"))
        return 0.0 if x is None or x != x else float(x)

    return 0.1 * value("map50") + 0.9 * value("map")


class DetectionTask(Task):
    """Train a detector (see the module docstring)."""

    name = "detect"
    command = "darkyolo train"
    metrics = ("map50", "map", "map75")

    # ---------------------------------------------------------------- planning

    def trains(self, config: NetworkConfig) -> bool:
        return bool(config.heads)

    def read_names(self, data: str) -> tuple[str, list[str]]:
        spec = load_dataset(data)
        return str(spec.path), list(spec.names)

    def recipe(self, options: TrainOptions) -> Recipe:
        return RECIPES[options.loss]

    def chosen_mode(self, options: TrainOptions) -> list[str]:
        return [f"training mode {options.loss} (the default for this cfg's heads; see --loss)"]

    def edit_cfg(
        self, text: str, config: NetworkConfig, recipe: Recipe, fresh: bool
    ) -> tuple[str, list[str]]:
        """Refuse what detection training does not do; the recipe's ``iou_thresh``."""
        _refuse_unimplemented(config)
        if not fresh or recipe.iou_thresh is None:
            return text, []
        value = f"{recipe.iou_thresh:g}"
        text, added = with_yolo_default(text, "iou_thresh", value, config.source)
        if not added:
            return text, []
        return text, [
            f"iou_thresh={value} in the {added} [yolo] section(s) that set none: a truth is also "
            "a positive for every other anchor it fits with shape IoU above it (set iou_thresh in "
            "the cfg to choose, 1 for one anchor per truth)"
        ]

    def inputs(
        self, options: TrainOptions, config: NetworkConfig, img_size: int, recipe: Recipe
    ) -> Inputs:
        if img_size % 32:
            raise OptionError(f"--img-size {img_size} is not a multiple of 32")
        head, net = config.heads[-1], config.net
        multi = options.multi_scale if options.multi_scale is not None else head.random
        sizes = tuple(multiscale_sizes(img_size)) if multi else (img_size,)
        if not options.augment:
            return Inputs(sizes, None)
        resize = getattr(head, "resize", 1.0)  # AlexeyAB: random zoom in 1/r..r
        if options.scale is not None:
            scale = tuple(options.scale)
        else:
            scale = (1.0 / resize, resize) if resize > 1.0 else recipe.scale
        augment = AugmentOptions(
            geometry=options.geometry,
            jitter=options.jitter if options.jitter is not None else head.jitter,
            scale=scale,
            flip=options.flip,
            hue=next(h for h in (options.hue, recipe.hue, net.hue) if h is not None),
            saturation=options.saturation if options.saturation is not None else net.saturation,
            exposure=options.exposure if options.exposure is not None else net.exposure,
            mosaic=options.mosaic,
        )
        return Inputs(sizes, augment)

    def refine(self, plan: TrainPlan, train: Sequence[Any]) -> TrainPlan:
        """``--anchors auto``: a fresh run whose heads are new (from scratch, or started from
        another model's weights but its heads) trains with k-means anchors when they fit the
        training boxes clearly better than the cfg's (:func:`darkyolo.anchors.anchor_fit`); the
        plan's cfg then holds them. Heads loaded from pretrained weights keep their anchors.
        The first note says the training split's shape (:func:`darkyolo.data.shape.data_shape`);
        a recipe's class-count rate is scaled by the boxes a picture (:meth:`_rate_for_boxes`)."""
        from darkyolo.anchors import anchor_fit, head_units
        from darkyolo.data.shape import data_shape

        shape = data_shape(train, len(plan.names))
        plan = replace(plan, notes=(f"training set: {shape.describe()}", *plan.notes))
        plan = self._rate_for_boxes(plan, shape.boxes_per_picture)
        opt, config = plan.options, plan.config
        heads_loaded = plan.pretrained is not None and plan.pretrained_heads
        if plan.resumed_from or opt.anchors != "auto" or heads_loaded or not config.heads:
            return plan
        fit = anchor_fit(config, train, plan.img_size, opt.seed)
        if fit is None or not fit.refit:
            return plan
        text = with_anchors(plan.cfg_text, plan.cfg_source, fit.fitted, len(plan.names))
        line = anchors_line(fit.fitted, head_units(config))
        note = (
            f"anchors: the cfg's fit the training boxes with mean IoU {fit.cfg_iou:.2f}, k-means "
            f"on them {fit.fitted_iou:.2f}: training with {line} (--anchors cfg keeps the cfg's)"
        )
        return replace(plan, cfg_text=text, notes=(*plan.notes, note))

    def _rate_for_boxes(self, plan: TrainPlan, boxes_per_picture: float) -> TrainPlan:
        """``plan`` with :meth:`learning_rate` asked again now that the training set's boxes a
        picture are known; the planner's rate note gives way to the new one."""
        opt = plan.options
        asked = (opt, plan.config, plan.batch, len(plan.names), self.recipe(opt))
        planned, planned_notes = self.learning_rate(*asked)
        lr, notes = self.learning_rate(*asked, boxes_per_picture)
        if (lr, notes) == (planned, planned_notes):
            return plan
        kept = tuple(note for note in plan.notes if note not in planned_notes)
        return replace(plan, lr=lr, notes=(*kept, *notes))

    # ---------------------------------------------------------------- running

    def load_splits(self, plan: TrainPlan, log: Log) -> Splits:
        from darkyolo.data.dataset import load_split

        spec = load_dataset(plan.data)
        policy = plan.options.bad_images
        train, train_report = load_split(spec, "train", bad_images=policy)
        val, val_report = load_split(spec, "val", bad_images=policy) if spec.val else ([], None)
        for report in (train_report, val_report):
            if report is not None:
                for line in report.lines():
                    log(line)
        return Splits(train, val)

    def dataset(
        self, plan: TrainPlan, records: Sequence[Any], log: Log
    ) -> tuple[Dataset, Callable[..., Any]]:
        from darkyolo.data.dataset import DetectionDataset, cache_fits, collate_detection

        opt = plan.options
        side = max(plan.sizes)
        cache = opt.cache if opt.cache is not None else cache_fits(records, side, plan.world_size)
        dataset = DetectionDataset(
            list(records), plan.img_size, plan.augment, seed=opt.seed, cache=cache,
            cache_side=side if cache else None, num_classes=len(plan.names),
            skip_unreadable=opt.bad_images == "exclude",
        )  # fmt: skip
        if cache:
            why = " (they fit in memory; --no-cache reads them from disk)" if opt.cache is None else ""  # fmt: skip
            log(f"cached {len(dataset)} images: {dataset.source.cached_bytes / 2**20:.0f} MiB{why}")
        return dataset, collate_detection

    def start_run(self, dataset: Dataset, plan: TrainPlan, epochs: int) -> None:
        """Mosaics stop ``close_mosaic`` epochs before the end."""
        dataset.mosaic_epochs = max(0, epochs - plan.options.close_mosaic)  # type: ignore[attr-defined]

    def network(self, plan: TrainPlan, fresh: bool, log: Log) -> nn.Module:
        from darkyolo.training.transfer import build_network

        return build_network(plan, fresh, log)

    def loss(self, model: nn.Module, plan: TrainPlan) -> LossFunction:
        from darkyolo.losses import build_loss

        return build_loss(model, plan.options.loss)

    def score(
        self,
        model: nn.Module,
        records: Sequence[Any],
        plan: TrainPlan,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        log: Log,
    ) -> EvalResult:
        """pycocotools mAP on ``records``."""
        from darkyolo.evaluation.validate import evaluate

        opt = plan.options
        result = evaluate(
            model, records, plan.names, validation_options(plan), device,
            progress=opt.progress, amp_dtype=amp_dtype,
            skip_unreadable=opt.bad_images == "exclude",
        )  # fmt: skip
        for note in result.notes:
            if "could not be read" in note:
                log(f"warning: validation: {note}")
        return result

    def numbers(self, result: EvalResult) -> dict[str, float]:
        return {"map50": result.map50, "map": result.map, "map75": result.map75}

    def fitness(self, numbers: dict[str, float]) -> float:
        return fitness(numbers)

    def describe(self, numbers: dict[str, float]) -> str:
        if not numbers:
            return ""
        return f"mAP@.5 {numbers['map50']:.4f} mAP@.5:.95 {numbers['map']:.4f}"

    def report(
        self, result: EvalResult, run_dir: Path, names: Sequence[str], plots: bool, log: Log
    ) -> None:
        if plots:
            from darkyolo.viz.plots import plot_pr_curves

            plot_pr_curves(result, list(names), run_dir / "pr_curve.png")
        log(format_table(result))

    def write_metrics(self, result: EvalResult, path: Path) -> None:
        write_metrics_json(result, path)


def _refuse_unimplemented(config: NetworkConfig) -> None:
    """Keys the cfg reader knows but detection training does not do: refused by name, never
    silently ignored. Darknet rotates only classifier pictures (``angle``); ``[region]
    absolute=1`` changes its box delta in a way darkyolo's region loss does not implement."""
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


__all__ = ["DetectionTask", "fitness"]
