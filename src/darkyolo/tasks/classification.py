"""Classification: Darknet classifier cfgs (no detection heads, a final ``[softmax]``) on class
folders or a Darknet ``.data`` list, Darknet's crop augmentation, the ``[softmax]`` loss, top-1 /
top-5 on centre crops and a confusion matrix.

Its plan differs from a detector's in three rules: Darknet's recipe whatever ``--loss`` says (no
mosaics), the cfg's learning rate scaled linearly from the cfg's batch to the run's, and Darknet's
``poly`` schedule by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from darkyolo.classify.data import (
    ClassificationDataset,
    CropOptions,
    collate_classification,
    drop_unreadable,
    load_classification_data,
)
from darkyolo.classify.evaluate import ClassifyResult, evaluate_classifier, plot_confusion
from darkyolo.classify.loss import SoftmaxLoss
from darkyolo.darknet.cfg import NetworkConfig
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.tasks.base import Inputs, Log, LossFunction, Splits, Task
from darkyolo.training.options import TrainOptions
from darkyolo.training.plan import TrainPlan
from darkyolo.training.recipes import RECIPES, Recipe


class ClassificationTask(Task):
    """Train a classifier (see the module docstring). ``network`` replaces the network built from
    the cfg (a peer such as torchvision's ResNet-18 trained with the same loop; the cfg still
    gives the recipe)."""

    name = "classify"
    command = "darkyolo classify train"
    metrics = ("top1", "top5")

    def __init__(self, network: nn.Module | None = None) -> None:
        self.given_network = network

    # ---------------------------------------------------------------- planning

    def trains(self, config: NetworkConfig) -> bool:
        return not config.heads

    def read_names(self, data: str) -> tuple[str, list[str]]:
        found = load_classification_data(data)
        return str(found.path), list(found.names)

    def recipe(self, options: TrainOptions) -> Recipe:
        return RECIPES["darknet"]

    def inputs(
        self, options: TrainOptions, config: NetworkConfig, img_size: int, recipe: Recipe
    ) -> Inputs:
        infer_shapes(config, img_size, img_size)  # any size its layers take
        if not options.augment:
            return Inputs((img_size,), None)
        augment = CropOptions.from_net(
            config.net, img_size, flip=options.flip, hue=options.hue,
            saturation=options.saturation, exposure=options.exposure,
        )  # fmt: skip
        return Inputs((img_size,), augment)

    def learning_rate(
        self,
        options: TrainOptions,
        config: NetworkConfig,
        batch: int,
        classes: int,
        recipe: Recipe,
        boxes_per_picture: float | None = None,
    ) -> tuple[float, list[str]]:
        """A classifier cfg's rate is for its own batch (128 for ImageNet): the linear scaling
        rule keeps the step per image; unscaled, 0.1 at batch 32 diverges from scratch."""
        net = config.net
        if options.lr is not None or batch == net.batch:
            return super().learning_rate(options, config, batch, classes, recipe)
        lr = net.learning_rate * batch / net.batch
        return lr, [
            f"learning rate {lr:g}: the cfg's {net.learning_rate:g} for its batch {net.batch}, "
            f"scaled to batch {batch}"
        ]

    def lr_policy(self, options: TrainOptions) -> str:
        """Classifiers keep Darknet's schedule (``poly``) by default."""
        return "cfg" if options.lr_policy == "auto" else options.lr_policy

    # ---------------------------------------------------------------- running

    def load_splits(self, plan: TrainPlan, log: Log) -> Splits:
        data = load_classification_data(plan.data)
        policy = plan.options.bad_images
        train, train_lines = drop_unreadable(data.train, policy, "the train split")
        val, val_lines = drop_unreadable(data.val, policy, "the val split")
        for line in [*data.notes, *train_lines, *val_lines]:
            log(line)
        return Splits(train, val)

    def dataset(
        self, plan: TrainPlan, records: Sequence[Any], log: Log
    ) -> tuple[Dataset, Callable[..., Any]]:
        opt = plan.options
        dataset = ClassificationDataset(
            list(records), plan.img_size, plan.augment, seed=opt.seed, cache=bool(opt.cache),
            skip_unreadable=opt.bad_images == "exclude",
        )  # fmt: skip
        return dataset, collate_classification

    def network(self, plan: TrainPlan, fresh: bool, log: Log) -> nn.Module:
        if self.given_network is not None:
            return self.given_network
        from darkyolo.training.transfer import build_network

        return build_network(plan, fresh, log)

    def loss(self, model: nn.Module, plan: TrainPlan) -> LossFunction:
        return SoftmaxLoss(model)

    def score(
        self,
        model: nn.Module,
        records: Sequence[Any],
        plan: TrainPlan,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        log: Log,
    ) -> ClassifyResult:
        """Top-1/top-5 on the val split's centre crops."""
        result = evaluate_classifier(
            model, list(records), list(plan.names), plan.img_size, device,
            batch_size=plan.options.val_batch, amp_dtype=amp_dtype,
            progress=plan.options.progress,
        )  # fmt: skip
        if result.unreadable:
            log(f"warning: validation: {len(result.unreadable)} pictures could not be read")
        return result

    def numbers(self, result: ClassifyResult) -> dict[str, float]:
        return {"top1": result.top1, "top5": result.top5}

    def fitness(self, numbers: dict[str, float]) -> float:
        """0.9 top-1 + 0.1 top-5."""
        return 0.9 * numbers.get("top1", 0.0) + 0.1 * numbers.get("top5", 0.0)

    def describe(self, numbers: dict[str, float]) -> str:
        if not numbers:
            return ""
        return f"top-1 {numbers['top1']:.4f} top-5 {numbers['top5']:.4f}"

    def report(
        self, result: ClassifyResult, run_dir: Path, names: Sequence[str], plots: bool, log: Log
    ) -> None:
        if plots:
            plot_confusion(result, run_dir / "confusion_matrix.png")
        log(result.table())

    def write_metrics(self, result: ClassifyResult, path: Path) -> None:
        result.write_json(path)
