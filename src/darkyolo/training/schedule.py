"""Learning-rate schedule, optimiser parameter groups and the weight EMA.

Learning rate (Darknet ``get_current_rate``; the project's training notes, section 5): update
``k`` (1-based, the batch number Darknet uses) during burn-in gets ``lr·(k/burn_in)^power``;
afterwards ``policy`` decides:

* ``steps``: ``lr`` times every ``scales[i]`` whose ``steps[i] <= k`` (Darknet's ``steps``);
* ``cosine``: from ``lr`` at the end of burn-in down to ``lr·final`` at ``total`` updates;
* ``poly``: ``lr·(1 - k/total)^power`` (Darknet's ``poly``, the classifiers' policy);
* ``constant``: ``lr``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from darkyolo.darknet.cfg import NetSpec
from darkyolo.errors import OptionError
from darkyolo.training.options import OPTIMIZERS

POLICIES = ("steps", "cosine", "poly", "constant")


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate per optimiser update (see the module docstring). All counts are updates."""

    lr: float
    total: int
    burn_in: int = 0
    power: float = 4.0
    policy: str = "steps"
    steps: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    final: float = 0.01

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise OptionError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if len(self.steps) != len(self.scales):
            raise OptionError(f"{len(self.steps)} steps but {len(self.scales)} scales")

    @classmethod
    def from_net(cls, net: NetSpec, total: int | None = None) -> LRSchedule:
        """Darknet's own schedule from ``[net]`` (``total`` defaults to ``max_batches``)."""
        policy = net.policy if net.policy in POLICIES else "constant"
        return cls(
            lr=net.learning_rate,
            total=total or net.max_batches,
            burn_in=net.burn_in,
            power=net.power,
            policy=policy,
            steps=net.steps,
            scales=net.scales,
        )

    @classmethod
    def for_epochs(
        cls,
        lr: float,
        total: int,
        burn_in: int,
        power: float = 4.0,
        policy: str = "steps",
        final: float = 0.01,
    ) -> LRSchedule:
        """An epoch-length schedule: burn-in, then ``cosine`` or ``steps`` (x0.1 at 80% and 90%)."""
        steps: tuple[int, ...] = ()
        scales: tuple[float, ...] = ()
        if policy == "steps":
            steps = (max(1, round(0.8 * total)), max(1, round(0.9 * total)))
            scales = (0.1, 0.1)
        return cls(lr, total, burn_in, power, policy, steps, scales, final)

    def __call__(self, update: int) -> float:
        """Learning rate of the ``update``-th optimiser step (1-based)."""
        if update < self.burn_in:
            return self.lr * (update / self.burn_in) ** self.power
        if self.policy == "steps":
            rate = self.lr
            for step, scale in zip(self.steps, self.scales):
                if update >= step:
                    rate *= scale
            return rate
        if self.policy == "poly":
            return self.lr * max(0.0, 1 - update / max(1, self.total)) ** self.power
        if self.policy == "cosine":
            span = max(1, self.total - self.burn_in)
            progress = min(1.0, max(0.0, (update - self.burn_in) / span))
            return self.lr * (
                self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))
            )
        return self.lr


def parameter_groups(model: nn.Module, decay: float) -> list[dict]:
    """Two groups: convolution/linear kernels get ``weight_decay=decay``; biases and batch-norm
    weights none (Darknet decays only conv/FC weights). Frozen parameters are left out."""
    decayed, plain = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            is_kernel = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decayed if is_kernel else plain).append(param)
    groups = [{"params": decayed, "weight_decay": decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(
    name: str, groups: list[dict], lr: float, momentum: float
) -> torch.optim.Optimizer:
    """``sgd`` (Darknet: momentum, L2 decay in the gradient), ``adam`` (L2 decay in the gradient)
    or ``adamw`` (decoupled decay); ``momentum`` is SGD's momentum or Adam's ``beta1``."""
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=False)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999))
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))
    raise OptionError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


EMA_TAU, EMA_TAU_MIN = 2000.0, 100.0


def ema_warmup(total_updates: int) -> float:
    """The EMA's ``tau`` for a run of ``total_updates``: a quarter of the run, within 100..2000.

    With YOLOv5's 2000 alone a short run never averages: after BCCD's 390 updates ``d`` is 0.18,
    so the EMA is the last weights, and val mAP@[.5:.95] swung by 0.05 between the last epochs.
    With a quarter, ``d`` reaches ``1 - e^-4 = 0.98`` by the end and the saved weights average
    about the last 40-50 updates. The floor keeps that average within the last tenth of any run:
    runs of a few hundred updates or fewer keep (nearly) their last weights, as before."""
    return min(EMA_TAU, max(total_updates / 4, EMA_TAU_MIN))


class ModelEMA:
    """Exponential moving average of a model's floating-point state (parameters and BN stats).

    ``ema = d·ema + (1 - d)·model`` after every optimiser update, with ``d`` ramping up as
    ``decay·(1 - exp(-updates / tau))`` so early, fast-changing weights are not over-averaged
    (``tau``: :func:`ema_warmup`). Integer buffers (BN's batch counter) are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = EMA_TAU) -> None:
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = 0

    def factor(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau)) if self.tau > 0 else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.factor()
        own = self.module.state_dict()
        floats_ema, floats_new = [], []
        for name, value in model.state_dict().items():
            target = own[name]
            if target.is_floating_point():
                floats_ema.append(target)
                floats_new.append(value.detach())
            else:
                target.copy_(value)
        for target, value in zip(floats_ema, floats_new):
            target.lerp_(value.to(target.dtype), 1.0 - d)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "decay": self.decay, "tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
        self.tau = float(state["tau"])
