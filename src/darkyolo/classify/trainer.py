"""Training a classifier with the detection engine (:class:`~darkyolo.training.trainer.Trainer`):
the same optimiser updates, schedule, EMA, AMP, DDP, checkpoints and resume, CSV log and
progress bars. Only the task's parts differ: class folders or a Darknet list for data,
Darknet's crop augmentation, the ``[softmax]`` loss, top-1/top-5 validation on centre crops,
and a confusion matrix at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from darkyolo.classify.data import (
    ClassificationDataset,
    collate_classification,
    drop_unreadable,
    load_classification_data,
)
from darkyolo.classify.evaluate import ClassifyResult, evaluate_classifier, plot_confusion
from darkyolo.classify.loss import SoftmaxLoss
from darkyolo.errors import TrainingError
from darkyolo.training.options import DEFAULT_CLASSIFIER, TrainOptions
from darkyolo.training.trainer import Trainer, TrainResult


class ClassifierTrainer(Trainer):
    """Train a classifier cfg (no detection heads, a final ``[softmax]``) on a class-folder tree
    or a Darknet ``.data`` list. ``network`` replaces the network built from the cfg (a peer such
    as torchvision's ResNet-18 trained with the same loop; the cfg still gives the recipe)."""

    TASK = "classify"
    METRICS = ("top1", "top5")

    def __init__(
        self,
        options: TrainOptions,
        *,
        network: nn.Module | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__(options, log=log)
        self.network = network

    def _load_data(self) -> None:
        data = load_classification_data(self.plan.data)
        policy = self.options.bad_images
        self.train_records, train_lines = drop_unreadable(data.train, policy, "the train split")
        self.val_records, val_lines = drop_unreadable(data.val, policy, "the val split")
        self.unreadable: dict[int, str] = {}
        for line in [*data.notes, *train_lines, *val_lines]:
            self.log(line)
        if not self.train_records:
            raise TrainingError(f"{data.path}: the train split has no usable images")

    def _build_model(self, fresh: bool) -> nn.Module:
        if self.network is None:
            return super()._build_model(fresh)
        self.frozen_bn = []
        return self.network

    def _build_loader(self) -> None:
        opt, plan = self.options, self.plan
        self.batch, self.subdivisions, self.micro = plan.batch, plan.subdivisions, plan.micro
        self.images_per_update = plan.batch // plan.world_size
        self.img_size, self.sizes, self.augment = plan.img_size, [plan.img_size], plan.augment
        self.dataset = ClassificationDataset(
            self.train_records, self.img_size, self.augment, seed=opt.seed, cache=opt.cache,
            skip_unreadable=opt.bad_images == "exclude",
        )  # fmt: skip
        self._open_loader(collate_classification)

    def _after_schedule(self) -> None:
        """Nothing: no mosaics to close."""

    def _default_loss(self, model: nn.Module) -> SoftmaxLoss:
        return SoftmaxLoss(model)

    def score(self, model: nn.Module) -> ClassifyResult:
        """Top-1/top-5 on the val split's centre crops."""
        result = evaluate_classifier(
            model, self.val_records, self.names, self.img_size, self.device,
            batch_size=self.options.val_batch, amp_dtype=self.amp_dtype,
            progress=self.options.progress,
        )  # fmt: skip
        if result.unreadable:
            self.log(f"warning: validation: {len(result.unreadable)} pictures could not be read")
        return result

    def metrics_of(self, result: ClassifyResult) -> dict[str, float]:
        return {"top1": result.top1, "top5": result.top5}

    def fitness(self, metrics: dict[str, float]) -> float:
        """0.9 top-1 + 0.1 top-5."""
        return 0.9 * metrics.get("top1", 0.0) + 0.1 * metrics.get("top5", 0.0)

    def metrics_text(self, metrics: dict[str, float]) -> str:
        if not metrics:
            return ""
        return f"top-1 {metrics['top1']:.4f} top-5 {metrics['top5']:.4f}"

    def _report_best(self, result: ClassifyResult) -> None:
        if self.options.plots:
            plot_confusion(result, self.run_dir / "confusion_matrix.png")
        self.log(result.table())

    def _write_best_metrics(self, result: ClassifyResult) -> None:
        result.write_json(self.run_dir / "metrics.json")


def train_classifier(options: TrainOptions, **kwargs: Any) -> TrainResult:
    """Build a :class:`ClassifierTrainer` for ``options`` and run it."""
    return ClassifierTrainer(options, **kwargs).fit()


__all__ = ["DEFAULT_CLASSIFIER", "ClassifierTrainer", "train_classifier"]
