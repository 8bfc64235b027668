"""The step engine: micro-batches in, optimiser updates out.

One optimiser update uses ``batch`` images (all processes together), split into ``subdivisions``
micro-batches per process. Each micro-batch's loss is the loss's sum divided by the images per
update (Darknet divides the summed deltas by ``batch``; the project's training notes, section 3),
so with ``SGD(lr, momentum, weight_decay=decay)`` on conv kernels only, an update is Darknet's.
Under DDP every process divides by its own share and DDP averages the gradients: the same thing.

Per update: the learning rate from the schedule, a finite-loss check (a NaN/Inf names the loss
part, the batch and its images; ``nan="skip"`` drops the update and counts it, ``nan="stop"``
stops), gradient clipping (and a finite-gradient check), the optimiser step under AMP's scaler,
the EMA.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from darkyolo.errors import TrainingError
from darkyolo.training.runtime import DistContext, communication_device
from darkyolo.training.schedule import LRSchedule, ModelEMA

#: one micro-batch of an update: (its number in the epoch, summed loss, loss parts, picture indices)
MicroBatch = tuple[int, Tensor, dict[str, Tensor], list[int]]


@dataclass
class NanGuard:
    """What a non-finite loss or gradient does: ``policy`` ``skip`` drops the update (at most
    ``max_skips`` times in a run), ``stop`` raises :class:`TrainingError`. ``files(indices)``
    names a batch's pictures; ``keep()`` says what a stop leaves (the last good checkpoint)."""

    policy: str
    max_skips: int
    files: Callable[[Sequence[int]], list[str]]
    keep: Callable[[], str]
    log: Callable[[str], None]
    skips: int = 0

    def __call__(self, window: list[MicroBatch], epoch: int, update: int, gradient: bool) -> None:
        """Name the update's bad batches (``gradient``: the loss was finite, its gradient not;
        every batch of the update is named), then skip the update or stop."""
        where = []
        for number, total, parts, indices in window:
            if not gradient and bool(torch.isfinite(total)):
                continue
            bad = [f"{k}={float(v)}" for k, v in parts.items() if not math.isfinite(float(v))]
            files = self.files(indices)
            shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
            named = "" if gradient else f"loss parts {', '.join(bad) or 'total'}; "
            where.append(f"batch {number} ({named}images {shown})")
        if not where:
            where.append("another process's batch")
        what = "gradient (the loss was finite)" if gradient else "loss"
        message = f"non-finite {what} in epoch {epoch + 1}, update {update}: " + "; ".join(where)
        if self.policy == "skip" and self.skips < self.max_skips:
            self.skips += 1
            self.log(f"{message}; update skipped ({self.skips}/{self.max_skips})")
            return
        raise TrainingError(message + self.keep())


@dataclass
class StepEngine:
    """Forward, loss and backward of micro-batches, and the update that closes a window of them
    (see the module docstring). ``model`` is the network itself, ``wrapped`` what runs it (DDP,
    ``torch.compile``); ``updates`` and ``seen`` (images, all processes) count the run so far."""

    model: nn.Module
    wrapped: nn.Module
    loss: Callable[..., tuple[Tensor, dict[str, Tensor]]]
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    device: torch.device
    images_per_update: int
    clip_grad: float
    guard: NanGuard
    ctx: DistContext = field(default_factory=DistContext)
    amp_dtype: torch.dtype | None = None
    scaler: Any = None  # torch.amp.GradScaler for fp16
    ema: ModelEMA | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    updates: int = 0
    seen: int = 0

    def forward_backward(
        self, images: Tensor, targets: Tensor, closes_update: bool = True
    ) -> tuple[Tensor, dict[str, Tensor], tuple[int, int]]:
        """One micro-batch: uint8 ``[B, 3, S, S]`` images and ``[T, 6]`` targets -> forward, loss
        (sum / images per update), backward. Returns the summed loss, its parts, the input size."""
        images = images.to(self.device, non_blocking=True)
        images = images.to(torch.float32).div_(255).contiguous(memory_format=self.memory_format)
        input_hw = (images.shape[-2], images.shape[-1])
        no_sync = (
            self.wrapped.no_sync()
            if self.ctx.enabled and not closes_update and hasattr(self.wrapped, "no_sync")
            else contextlib.nullcontext()
        )
        with no_sync:
            with torch.autocast(
                self.device.type,
                dtype=self.amp_dtype or torch.float32,
                enabled=self.amp_dtype is not None,
            ):
                raw = self.wrapped(images)
            total, parts = self.loss(raw, targets, input_hw, self.seen)
            loss = total / self.images_per_update
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        self.seen += images.shape[0] * self.ctx.world_size
        return total.detach(), parts, input_hw

    def update(self, window: list[MicroBatch], epoch: int) -> tuple[float, bool]:
        """Close one optimiser update: lr, finite check, clip, step, EMA -> (lr used, skipped)."""
        self.updates += 1
        lr = self.schedule(self.updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        totals = torch.stack([t for _, t, _, _ in window])
        finite = torch.isfinite(totals).all().to(torch.float32)
        if self.ctx.enabled:
            flag = finite.reshape(1).to(communication_device(self.device))
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = flag
        if not bool(finite.item()):
            return lr, self._skip(window, epoch, gradient=False)
        clip = self.clip_grad
        if self.scaler is not None:  # fp16: the scaler finds and skips its own overflows
            if clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        else:
            # a finite loss can still have a NaN gradient, and one such step turns every weight NaN
            norm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), clip if clip > 0 else math.inf
            )
            if not bool(torch.isfinite(norm)):
                return lr, self._skip(window, epoch, gradient=True)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        return lr, False

    def _skip(self, window: list[MicroBatch], epoch: int, gradient: bool) -> bool:
        self.guard(window, epoch, self.updates, gradient)
        self.optimizer.zero_grad(set_to_none=True)
        return True
