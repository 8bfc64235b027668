"""What a task brings to training: its part of the plan and its runtime pieces.

The trainer (:mod:`darkyolo.training.trainer`) knows updates, epochs, checkpoints and logs; it
knows nothing of boxes or classes. A :class:`Task` answers everything else, in two groups:

* **planning** (no network, no picture): which cfgs it trains, where the class names come from,
  the training mode's recipe, its edits of the cfg, the input sides and augmentation, the
  learning rate's rule; and :meth:`Task.refine`, the plan steps that need the training labels
  (the detector's anchor fit);
* **running**: the splits, the dataset and its collate, the network, the loss, the score of a
  validation and the numbers, text, plots and files made from it.

A third task (say, instance segmentation) is a new subclass registered in
:data:`darkyolo.tasks.TASKS`; neither the trainer nor the planner changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkyolo.darknet.cfg import NetworkConfig
from darkyolo.training.options import TrainOptions
from darkyolo.training.recipes import FULL_RATE_BOXES, Recipe, box_share

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn
    from torch.utils.data import Dataset

    from darkyolo.training.plan import TrainPlan

Log = Callable[[str], None]
#: ``loss(raw outputs, targets, input (h, w), images seen) -> (sum over the micro-batch, parts)``
LossFunction = Callable[..., "tuple[Tensor, dict[str, Tensor]]"]


@dataclass(frozen=True)
class Inputs:
    """A task's planned inputs: the sides training draws from and the augmentation (``None``:
    off)."""

    sizes: tuple[int, ...]
    augment: Any


@dataclass(frozen=True)
class Splits:
    """The usable training and validation records (pictures a split could not read are left out
    and said)."""

    train: list[Any]
    val: list[Any]


class Task(ABC):
    """One kind of training (see the module docstring)."""

    #: ``detect`` or ``classify``: what ``--task``-like checks and messages call it
    name: str
    #: the command that trains it
    command: str
    #: the validation numbers of a ``results.csv`` row, in order
    metrics: tuple[str, ...]

    # ---------------------------------------------------------------- planning

    @abstractmethod
    def trains(self, config: NetworkConfig) -> bool:
        """Whether this task trains ``config``."""

    @abstractmethod
    def read_names(self, data: str) -> tuple[str, list[str]]:
        """The data description at ``data`` -> ``(its path, the class names)``."""

    @abstractmethod
    def recipe(self, options: TrainOptions) -> Recipe:
        """The recipe that fills the options left open."""

    def chosen_mode(self, options: TrainOptions) -> list[str]:
        """What to say of the training mode ``--loss auto`` chose (nothing by default)."""
        return []

    def edit_cfg(
        self, text: str, config: NetworkConfig, recipe: Recipe, fresh: bool
    ) -> tuple[str, list[str]]:
        """The task's own edits of the (class-adapted) cfg text -> ``(text, notes)``; ``fresh``:
        not a resume. None by default."""
        return text, []

    @abstractmethod
    def inputs(
        self, options: TrainOptions, config: NetworkConfig, img_size: int, recipe: Recipe
    ) -> Inputs:
        """The input sides and the augmentation for training at ``img_size``."""

    def learning_rate(
        self,
        options: TrainOptions,
        config: NetworkConfig,
        batch: int,
        classes: int,
        recipe: Recipe,
        boxes_per_picture: float | None = None,
    ) -> tuple[float, list[str]]:
        """The base learning rate (``--lr``, else the recipe's rule, else the cfg's) and what
        decided it. A ``lr_per_box`` recipe's class-count rate is scaled by
        :func:`~darkyolo.training.recipes.box_share` once the training set's
        ``boxes_per_picture`` is known (the planner has no labels; the task's :meth:`refine`
        asks again with them)."""
        if options.lr is not None:
            return options.lr, []
        if recipe.lr_per_image is not None:
            lr = recipe.lr_per_image * batch
            return lr, [f"learning rate {lr:g}: {recipe.lr_per_image:g} per image x batch {batch}"]
        if recipe.lr_per_class is not None:
            rule = f"{recipe.lr_per_class:g} / (4 + {classes} classes)"
            lr = round(recipe.lr_per_class / (4 + classes), 6)
            share = 1.0
            if recipe.lr_per_box and boxes_per_picture is not None:
                share = box_share(boxes_per_picture)
            if share >= 1:
                return lr, [f"learning rate {lr:g}: {rule}"]
            lr = round(lr * share, 6)
            said = (
                f"{boxes_per_picture:.1f} boxes a picture, the full rate from {FULL_RATE_BOXES:g}"
            )
            return lr, [f"learning rate {lr:g}: {rule} x {share:.2f} ({said})"]
        return config.net.learning_rate, []

    def lr_policy(self, options: TrainOptions) -> str:
        """``--lr-policy auto`` resolved: the cfg's schedule with ``--max-batches``, else steps."""
        if options.lr_policy != "auto":
            return options.lr_policy
        return "cfg" if options.max_batches else "steps"

    def refine(self, plan: TrainPlan, train: Sequence[Any]) -> TrainPlan:
        """Plan steps that need the training labels -> a new plan (none by default)."""
        return plan

    # ---------------------------------------------------------------- running

    @abstractmethod
    def load_splits(self, plan: TrainPlan, log: Log) -> Splits:
        """The plan's train and val records, bad pictures handled by ``--bad-images`` (the
        trainer refuses an empty train split)."""

    @abstractmethod
    def dataset(
        self, plan: TrainPlan, records: Sequence[Any], log: Log
    ) -> tuple[Dataset, Callable[..., Any]]:
        """The training dataset of ``records`` and its collate function."""

    def start_run(self, dataset: Dataset, plan: TrainPlan, epochs: int) -> None:  # noqa: B027
        """Once the run's length is known (nothing by default)."""

    @abstractmethod
    def network(self, plan: TrainPlan, fresh: bool, log: Log) -> nn.Module:
        """The network for the plan's cfg, initialised (``fresh``) and with its start weights."""

    @abstractmethod
    def loss(self, model: nn.Module, plan: TrainPlan) -> LossFunction:
        """The training loss of ``model``."""

    @abstractmethod
    def score(
        self,
        model: nn.Module,
        records: Sequence[Any],
        plan: TrainPlan,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        log: Log,
    ) -> Any:
        """Validate ``model`` on ``records`` -> the task's result."""

    @abstractmethod
    def numbers(self, result: Any) -> dict[str, float]:
        """A validation result -> the numbers of :attr:`metrics`."""

    @abstractmethod
    def fitness(self, numbers: dict[str, float]) -> float:
        """What "best" maximises."""

    @abstractmethod
    def describe(self, numbers: dict[str, float]) -> str:
        """The validation part of an epoch's line (empty without numbers)."""

    @abstractmethod
    def report(
        self, result: Any, run_dir: Path, names: Sequence[str], plots: bool, log: Log
    ) -> None:
        """At the end of a run: the best validation's table (and plots with ``plots``)."""

    @abstractmethod
    def write_metrics(self, result: Any, path: Path) -> None:
        """The best validation as ``metrics.json``."""
