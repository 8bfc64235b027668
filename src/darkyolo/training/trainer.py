"""The training loop: a plan, a task and small parts with one job each.

:meth:`Trainer.setup` makes the plan (:func:`~darkyolo.training.planner.plan_training`), takes the
task's splits and its label-driven plan steps (the anchor fit), then builds everything from the
plan alone: the task's network, dataset and loss, the multi-scale distributed loader, the
optimiser, EMA and AMP in a :class:`~darkyolo.training.steps.StepEngine`, and the run folder
(``model.cfg``, ``model.names``, ``options.json``, ``plan.json``).

:meth:`Trainer.fit` runs epochs of updates. Per epoch (or every ``eval_interval``): validation of
the EMA weights with the task's score, a ``results.csv`` row (:mod:`~darkyolo.training.runlog`),
``last.pt``/``best.pt`` written atomically and ``best.weights`` in Darknet format
(:class:`~darkyolo.training.checkpoint.Checkpointer`; best by the task's fitness), early stopping
with ``patience``.

Distributed runs (``torchrun``, :mod:`~darkyolo.training.runtime`) put a
:class:`~torch.utils.data.distributed.DistributedSampler` under the multi-scale batch sampler (the
same input side on every rank at every step); rank 0 is the only writer.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from darkyolo.data.multiscale import MultiScaleBatchSampler
from darkyolo.data.scan import check_image
from darkyolo.device import cpu_has_native_bf16
from darkyolo.errors import DataError, TrainingError, user_message
from darkyolo.evaluation.validate import recalibrate_batch_norm
from darkyolo.models.io import read_checkpoint
from darkyolo.tasks import Task, task_named
from darkyolo.training.checkpoint import (  # fmt: skip
    Checkpointer,
    atomic_save,
    make_checkpoint,
    rng_state,
    set_rng_state,
)
from darkyolo.training.options import TrainOptions
from darkyolo.training.planner import plan_training
from darkyolo.training.runlog import CsvLog, EpochMeter, Progress, epoch_line, plot_results
from darkyolo.training.runtime import (
    DistContext,
    amp_note,
    amp_setting,
    communication_device,
    init_distributed,
    run_device,
)
from darkyolo.training.schedule import ModelEMA, ema_warmup, make_optimizer, parameter_groups
from darkyolo.training.steps import MicroBatch, NanGuard, StepEngine


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    run_dir: Path
    epochs: int
    updates: int
    seen: int
    best_fitness: float
    best_epoch: int
    last_metrics: dict[str, float] = field(default_factory=dict)
    nan_skips: int = 0
    stopped_early: bool = False


def find_last_checkpoint(project: str | Path) -> Path:
    """The most recently written ``*/weights/last.pt`` under ``project``."""
    found = sorted(Path(project).glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise TrainingError(f"--resume: no */weights/last.pt under {project}")
    return found[-1]


class Trainer:
    """Train a cfg with its task (see the module docstring). ``task``: the kind of training
    (default: the one that trains the cfg, :func:`darkyolo.tasks.task_for`); ``loss_builder(model)``
    replaces the task's loss (``callable(raw_maps, targets, input_hw, seen) -> (sum over the
    micro-batch, parts)``)."""

    def __init__(
        self,
        options: TrainOptions,
        task: Task | None = None,
        loss_builder: Callable[[nn.Module], Callable[..., tuple[Tensor, dict[str, Tensor]]]]
        | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.options = options
        self.task = task
        self.loss_builder = loss_builder
        self._log = log
        self.ctx = DistContext()
        self.ready = False

    def log(self, message: str) -> None:
        if self.ctx.is_main:
            self._log(message)

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Plan, then build data, model, loader, step engine and run folder from the plan alone
        (``fit`` calls it)."""
        resume = self._resume_state()
        self.ctx = init_distributed(self.options.device)
        plan = plan_training(
            self.options, resume=resume, world_size=self.ctx.world_size, task=self.task
        )
        task = self.task = self.task or task_named(plan.task)
        if plan.ignored:
            self.log(
                f"--resume: the run keeps its own settings; ignoring {', '.join(plan.ignored)}"
            )
        opt = self.options = plan.options
        self.device = run_device(opt.device, self.ctx)
        if opt.threads:
            torch.set_num_threads(opt.threads)
        # OpenCV's own thread pool does not survive the loader's fork (a worker's first resize
        # can wait forever on it): pictures are decoded and augmented one per thread or process
        cv2.setNumThreads(0)
        torch.manual_seed(opt.seed + self.ctx.rank)
        self.amp_dtype, use_scaler = amp_setting(opt.amp, self.device)
        if self.amp_dtype == torch.bfloat16 and self.device.type == "cpu" and not cpu_has_native_bf16():  # fmt: skip
            self.log(
                "--amp bf16: this CPU has neither AVX512-BF16 nor AMX, so bfloat16 is "
                "emulated and trains many times slower than float32 (--amp off)"
            )
        splits = task.load_splits(plan, self.log)
        if not splits.train:
            raise TrainingError(f"{plan.data}: the train split has no usable images")
        self.train_records, self.val_records = splits.train, splits.val
        self.unreadable: dict[int, str] = {}  # pictures that went bad during the run: index -> why
        self.plan = plan = task.refine(plan, self.train_records)
        for note in plan.notes:
            self.log(note)
        self.names, self.config = list(plan.names), plan.config
        model = task.network(plan, resume is None, self.log)
        self.dataset, self.collate = task.dataset(plan, self.train_records, self.log)
        self._open_loader()
        self.epochs, total_updates, schedule, notes = plan.schedule(self.updates_per_epoch)
        self.total_updates = total_updates
        for note in notes:
            self.log(note)
        task.start_run(self.dataset, plan, self.epochs)
        self.engine = self._step_engine(model, schedule, use_scaler)
        self.model, self.ema, self.optimizer = model, self.engine.ema, self.engine.optimizer
        self._open_run(resume)
        self.ready = True
        self.log(self._summary())

    def _resume_state(self) -> dict[str, Any] | None:
        if self.options.resume is None:
            return None
        path = Path(self.options.resume) if self.options.resume else None
        if path is None:
            path = find_last_checkpoint(self.options.project)
        if path.is_dir():
            path = path / "weights" / "last.pt"
        state = read_checkpoint(path)
        state["_path"] = str(path)
        return state

    def _open_loader(self) -> None:
        """The dataset through the distributed sampler and the multi-scale batch sampler (one
        size: plain batches) into the loader; the epoch's batch and update counts."""
        opt, plan = self.options, self.plan
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.ctx.world_size, rank=self.ctx.rank, shuffle=True,
            seed=opt.seed, drop_last=False,
        )  # fmt: skip
        self.batch_sampler = MultiScaleBatchSampler(
            self.sampler, plan.micro, list(plan.sizes),
            interval=opt.scale_interval * plan.subdivisions, seed=opt.seed,
        )  # fmt: skip
        self.loader = DataLoader(
            self.dataset, batch_sampler=self.batch_sampler, num_workers=opt.workers,
            collate_fn=self.collate, pin_memory=self.device.type == "cuda",
            persistent_workers=opt.workers > 0, prefetch_factor=4 if opt.workers > 0 else None,
        )  # fmt: skip
        self.micro_per_epoch = len(self.batch_sampler)
        self.updates_per_epoch = -(-self.micro_per_epoch // plan.subdivisions)

    def _step_engine(self, model: nn.Module, schedule: Any, use_scaler: bool) -> StepEngine:
        """Device and memory format, EMA, optimiser, AMP scaler, DDP and compile wrappers, loss."""
        opt, plan = self.options, self.plan
        memory_format = torch.channels_last if opt.channels_last else torch.contiguous_format
        model = model.to(self.device, memory_format=memory_format)
        if opt.sync_bn and self.ctx.enabled:
            if self.device.type != "cuda":
                raise TrainingError(
                    "--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU only)"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        tau = opt.ema_tau if opt.ema_tau is not None else ema_warmup(self.total_updates)
        ema = ModelEMA(model, opt.ema_decay, tau) if opt.ema else None
        optimizer = make_optimizer(
            plan.optimizer, parameter_groups(model, plan.decay), plan.lr, plan.momentum
        )
        scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        wrapped: nn.Module = model
        if self.ctx.enabled:
            wrapped = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if opt.compile:
            wrapped = torch.compile(wrapped)
        assert self.task is not None
        loss = (self.loss_builder or (lambda m: self.task.loss(m, plan)))(model)  # type: ignore[union-attr]
        guard = NanGuard(opt.nan, opt.max_nan_skips, self._files, self._kept, self.log)
        return StepEngine(
            model, wrapped, loss, optimizer, schedule, self.device, plan.batch // plan.world_size,
            opt.clip_grad, guard, self.ctx, self.amp_dtype, scaler, ema, memory_format,
        )  # fmt: skip

    def _files(self, indices: Sequence[int]) -> list[str]:
        return [str(self.train_records[i].image) for i in indices]

    def _kept(self) -> str:
        last = self.checkpoints.last if hasattr(self, "checkpoints") else None
        return (
            f"; the last good checkpoint is {last}" if last is not None and last.is_file() else ""
        )

    def _open_run(self, resume: dict[str, Any] | None) -> None:
        """Counters (restored on resume) and the run folder with its cfg, names, options and
        plan."""
        opt = self.options
        self.epoch = 0
        self.best_fitness, self.best_epoch = -math.inf, -1
        self.last_metrics: dict[str, float] = {}
        if resume is not None:
            self._restore(resume)
            self.run_dir = Path(resume["_path"]).parent.parent
        elif self.ctx.is_main:
            from darkyolo.inference.outputs import new_run_dir

            self.run_dir = new_run_dir(opt.project, opt.name, opt.exist_ok)
        else:
            self.run_dir = Path(opt.project) / opt.name
        self.weights_dir = self.run_dir / "weights"
        self.checkpoints = Checkpointer(self.weights_dir, opt.save_period)
        if self.ctx.is_main:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "model.cfg").write_text(self.plan.cfg_text)
            (self.run_dir / "model.names").write_text("".join(f"{n}\n" for n in self.names))
            (self.run_dir / "options.json").write_text(json.dumps(opt.to_dict(), indent=2))
            self.plan.write(self.run_dir / "plan.json")

    def _summary(self) -> str:
        plan, s, engine = self.plan, self.engine.schedule, self.engine
        sizes = plan.sizes
        size = (
            f"{sizes[0]}..{sizes[-1]} every {self.options.scale_interval} updates"
            if len(sizes) > 1
            else str(plan.img_size)
        )
        group = self.optimizer.param_groups[0]
        momentum = (
            f"betas {group['betas'][0]:g}, {group['betas'][1]:g}"
            if "betas" in group
            else f"momentum {group['momentum']:g}"
        )
        return (
            f"training {self.config.source} ({self.config.num_classes} classes) on "
            f"{len(self.train_records)} images, {len(self.val_records)} for validation, "
            f"device {self.device}{' x' + str(self.ctx.world_size) if self.ctx.enabled else ''}\n"
            f"  batch {plan.batch} = {self.ctx.world_size} process(es) x {plan.subdivisions} x "
            f"{plan.micro} images; {self.updates_per_epoch} updates/epoch, {self.epochs} epochs, "
            f"{self.total_updates} updates\n"
            f"  lr {s.lr:g} {s.policy} (burn-in {s.burn_in} updates, power {s.power:g}), "
            f"{self.options.optimizer} ({momentum}), decay {group['weight_decay']:g}; EMA "
            f"{f'tau {engine.ema.tau:g}' if engine.ema else 'off'}; AMP {amp_note(self.options.amp, self.device, self.amp_dtype)}\n"
            f"  input {size}; augmentation {plan.augment or 'off'}\n"
            f"  writing to {self.run_dir}"
        )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints

    @property
    def updates(self) -> int:
        return self.engine.updates

    @property
    def seen(self) -> int:
        return self.engine.seen

    @property
    def inference_model(self) -> nn.Module:
        """What is validated and saved for use: the EMA of the weights, or the weights."""
        return self.ema.module if self.ema is not None else self.model

    def _checkpoint(self) -> dict[str, Any]:
        engine = self.engine
        return make_checkpoint(
            cfg=self.plan.cfg_text,
            names=self.names,
            img_size=self.plan.img_size,
            model=self.inference_model.state_dict(),
            train_model=self.model.state_dict() if self.ema is not None else None,
            optimizer=self.optimizer.state_dict(),
            scaler=engine.scaler.state_dict() if engine.scaler is not None else None,
            ema=self.ema.state_dict() if self.ema is not None else None,
            epoch=self.epoch,
            updates=engine.updates,
            seen=engine.seen,
            best_fitness=self.best_fitness,
            best_epoch=self.best_epoch,
            nan_skips=engine.guard.skips,
            metrics=dict(self.last_metrics),
            options=self.options.to_dict(),
            rng=rng_state(),
        )

    def _restore(self, state: dict[str, Any]) -> None:
        engine = self.engine
        train_state = state["train_model"] if state.get("train_model") is not None else state["model"]  # fmt: skip
        self.model.load_state_dict(train_state)
        if self.ema is not None:
            self.ema.module.load_state_dict(state["model"])
            if state.get("ema"):
                self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if engine.scaler is not None and state.get("scaler"):
            engine.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        engine.updates = int(state["updates"])
        engine.seen = int(state["seen"])
        self.best_fitness = float(state["best_fitness"])
        self.best_epoch = int(state.get("best_epoch", -1))
        engine.guard.skips = int(state.get("nan_skips", 0))
        set_rng_state(state["rng"])
        self.log(f"resuming {state['_path']}: {self.epoch} epochs, {engine.updates} updates done")

    def _mend_best(self) -> None:
        """In a run without validation, ``best.pt`` (and ``best.weights``) from an earlier epoch
        gets batch-norm statistics recomputed once, after the final epoch, on pictures drawn as
        the final epoch draws them (mosaics closed by then in the default recipe). With the
        training loss as the score nearly every epoch improves, and recomputing at each would
        cost 7-10% of a run. A best epoch that was the final or a periodic one has them."""
        epoch = self.best_epoch
        if self.options.bn_recalib <= 0 or epoch < 0 or epoch == self.epoch or self.checkpoints.periodic(epoch):  # fmt: skip
            return
        checkpoint = read_checkpoint(self.checkpoints.best)
        inference = copy.deepcopy(self.inference_model)
        inference.load_state_dict(checkpoint["model"])
        self.recalibrate(inference)
        checkpoint["model"] = inference.state_dict()
        atomic_save(checkpoint, self.checkpoints.best)
        self.checkpoints.write_best_weights(inference, int(checkpoint["seen"]))
        self.log(f"best.pt (epoch {epoch}): batch-norm statistics recomputed")

    # ------------------------------------------------------------------ loop

    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Train (or resume) to the end; ``stop_after`` stops after that many epochs in all
        (as an interruption would, for tests)."""
        try:
            if not self.ready:
                self.setup()
            # denormal gradients late in training crawl on CPUs; the flag is process-wide, so
            # it is set for the run only (PyTorch's default, off, is restored afterwards)
            torch.set_flush_denormal(self.device.type == "cpu")
            return self._fit(stop_after)
        finally:
            torch.set_flush_denormal(False)
            if self.ctx.enabled and dist.is_initialized():
                dist.destroy_process_group()

    def _fit(self, stop_after: int | None) -> TrainResult:
        task, opt = self.task, self.options
        assert task is not None
        results = CsvLog(self.run_dir / "results.csv") if self.ctx.is_main else None
        steps_log = CsvLog(self.run_dir / "steps.csv") if self.ctx.is_main else None
        stopped_early = False
        best_result: Any = None
        while self.epoch < self.epochs and self.updates < self.total_updates:
            if stop_after is not None and self.epoch >= stop_after:
                break
            try:
                stats = self._train_epoch(steps_log)
            except DataError as error:  # --bad-images stop: a picture went bad during the run
                raise TrainingError(self._stop_on_bad_picture(error)) from None
            self.epoch += 1
            final = self.epoch >= self.epochs or self.updates >= self.total_updates
            if self.ctx.is_main:
                evaluated = None
                if self.val_records and (self.epoch % opt.eval_interval == 0 or final):
                    evaluated = self.validate()
                metrics = task.numbers(evaluated) if evaluated is not None else {}
                score = task.fitness(metrics) if metrics else None
                if score is None and not self.val_records:
                    score = -stats["loss"]
                improved = score is not None and score > self.best_fitness
                if improved:
                    self.best_fitness, self.best_epoch = score, self.epoch
                    if evaluated is not None:
                        best_result = evaluated
                        task.write_metrics(evaluated, self.run_dir / "metrics.json")
                if metrics:
                    self.last_metrics = metrics
                self.log(epoch_line(self.epoch, self.epochs, stats, task.describe(metrics)))
                assert results is not None  # same columns in every row: blank where not evaluated
                results.write({
                    "epoch": self.epoch, **stats, **{key: metrics.get(key) for key in task.metrics},
                    "fitness": task.fitness(metrics) if metrics else None,
                })  # fmt: skip
                patience = opt.patience
                stopped_early = bool(patience) and 0 <= self.best_epoch <= self.epoch - patience
                last = final or stopped_early
                if evaluated is None and opt.bn_recalib > 0 and (last or self.checkpoints.periodic(self.epoch)):  # fmt: skip
                    # weights meant for use carry recomputed batch-norm statistics, as validated
                    # ones do; a mid-run last.pt is only for resuming
                    self.recalibrate(self.inference_model)
                self.checkpoints.save(
                    self._checkpoint(), self.epoch, self.inference_model if improved else None
                )
                if last and not self.val_records:
                    self._mend_best()
                if stopped_early:
                    self.log(f"no improvement for {patience} epochs (best: epoch {self.best_epoch}): stopping")  # fmt: skip
            if self.ctx.enabled:
                flag = torch.tensor([int(stopped_early)], device=communication_device(self.device))
                dist.broadcast(flag, 0)
                stopped_early = bool(flag.item())
            self.model.train()
            if stopped_early:
                break
        if self.ctx.is_main:
            self._finish(best_result)
        return TrainResult(
            run_dir=self.run_dir, epochs=self.epoch, updates=self.updates, seen=self.seen,
            best_fitness=self.best_fitness, best_epoch=self.best_epoch,
            last_metrics=dict(self.last_metrics), nan_skips=self.engine.guard.skips,
            stopped_early=stopped_early,
        )  # fmt: skip

    def interrupted_note(self, command: str = "darkyolo train") -> str:
        """What an interrupted run kept and how to go on: the last finished epoch's ``last.pt``
        and the ``--resume`` command, or that nothing was saved yet."""
        last = self.checkpoints.last if hasattr(self, "checkpoints") else None
        if last is None or not last.is_file():
            return "no epoch had finished, so nothing was saved"
        return f"the last finished epoch is in {last}; go on with: {command} --resume {last}"

    def _stop_on_bad_picture(self, error: DataError) -> str:
        """Save ``last.pt`` (the state of this moment; a resume repeats the epoch under way) and
        say which picture stopped the run."""
        where = ""
        if self.ctx.is_main and hasattr(self, "checkpoints"):
            atomic_save(self._checkpoint(), self.checkpoints.last)
            where = f"; saved {self.checkpoints.last} (resume with --resume)"
        return (
            f"stopped in epoch {self.epoch + 1}: {user_message(error)} (--bad-images stop){where}"
        )

    def validate(self) -> Any:
        """Score the EMA weights (or the model) on the validation split with the task's score,
        after recomputing their batch-norm statistics (``bn_recalib``)."""
        assert self.task is not None
        model = self.inference_model
        if self.options.bn_recalib > 0:
            self.recalibrate(model)
        result = self.task.score(
            model, self.val_records, self.plan, self.device, self.amp_dtype, self.log
        )
        self.model.train()
        return result

    def recalibrate(self, model: nn.Module) -> int:
        """Recompute ``model``'s batch-norm statistics on ``bn_recalib`` training pictures, drawn
        as training draws them: the same augmentation (this epoch's: mosaics only while they are
        on), in micro-batches of the training size, at input sides spread evenly over the
        multi-scale range. The statistics must describe what the weights were trained on: from
        plain letterboxed pictures at one side they shift every layer's input, and with it the
        boxes' sizes (BCCD val, 30 epochs: boxes 10% too large, mAP@[.5:.95] 0.368 against 0.389
        for the same weights, docs/training.md)."""
        count = min(self.options.bn_recalib, len(self.dataset))
        chosen = np.random.default_rng(self.options.seed).permutation(len(self.dataset))[:count]
        micro = self.plan.micro
        starts = range(0, count, micro)
        sizes = sorted(self.plan.sizes)  # the middle of each of len(starts) equal shares
        sides = [sizes[(2 * n + 1) * len(sizes) // (2 * len(starts))] for n in range(len(starts))]

        def batch(start: int, side: int) -> Tensor:
            picks = chosen[start : start + micro]
            return self.collate([self.dataset[(int(i), side, self.epoch)] for i in picks])[0]

        batches = (batch(start, side) for start, side in zip(starts, sides, strict=True))
        return recalibrate_batch_norm(model, batches, self.device)  # frozen ones are not BN

    def _finish(self, best_result: Any) -> None:
        assert self.task is not None
        if self.options.plots:
            plot_results(self.run_dir)
        if best_result is not None:
            self.task.report(best_result, self.run_dir, self.names, self.options.plots, self.log)
        self.log(
            f"done: {self.epoch} epochs, {self.updates} updates, {self.seen} images; best fitness "
            f"{self.best_fitness:.4f} at epoch {self.best_epoch}; weights in {self.weights_dir}"
        )
        if self.unreadable:
            self.log(
                f"{len(self.unreadable)} training pictures could not be read during the run and "
                "were skipped: "
                + ", ".join(str(self.train_records[i].image) for i in sorted(self.unreadable))
            )

    def _batches(self) -> Iterator[tuple[int, Tensor, Tensor, list[int]]]:
        self.batch_sampler.set_epoch(self.epoch)
        for number, (images, targets, indices) in enumerate(self.loader):
            for failed in (i for i in indices if i < 0):
                self._unreadable(-1 - failed)
            yield number, images, targets, [i if i >= 0 else -1 - i for i in indices]

    def _unreadable(self, index: int) -> None:
        """A training picture that could not be read any more (``--bad-images exclude``): named
        once, counted; a grey picture without boxes stood in for it."""
        if index in self.unreadable:
            return
        path = self.train_records[index].image
        why = check_image(path).message or "read failed in a loader worker"
        self.unreadable[index] = why
        self.log(
            f"warning: {path} can no longer be read ({why}): skipped, a blank picture stands in "
            f"({len(self.unreadable)} such pictures so far)"
        )

    def _train_epoch(self, steps_log: CsvLog | None) -> dict[str, float]:
        """One epoch of updates -> its ``results.csv`` numbers (losses per image, speed, lr)."""
        opt, engine, subdivisions = self.options, self.engine, self.plan.subdivisions
        self.model.train()
        meter = EpochMeter(getattr(engine.loss, "part_names", ()), self.device, self.ctx.world_size)
        window: list[MicroBatch] = []
        bar = Progress(self.ctx.is_main and opt.progress, self.micro_per_epoch, f"epoch {self.epoch + 1}/{self.epochs}")  # fmt: skip
        sync_every = 1 if self.device.type == "cpu" else 10
        lr = engine.schedule(engine.updates + 1)
        self.optimizer.zero_grad(set_to_none=True)
        for number, images, targets, indices in self._batches():
            if engine.updates >= self.total_updates:
                break
            last_of_epoch = number + 1 == self.micro_per_epoch
            closes_update = (number + 1) % subdivisions == 0 or last_of_epoch
            total, parts, input_hw = engine.forward_backward(images, targets, closes_update)
            window.append((number, total, parts, indices))
            meter.images += images.shape[0]
            if closes_update:
                lr, skipped = engine.update(window, self.epoch)
                if not skipped:
                    meter.add((t, p) for _, t, p, _ in window)
                window = []
                if steps_log is not None and opt.log_interval and engine.updates % opt.log_interval == 0:  # fmt: skip
                    steps_log.write({
                        "step": engine.updates, "epoch": self.epoch + (number + 1) / self.micro_per_epoch,
                        "seen": engine.seen, "lr": lr, "loss": meter.per_image(meter.loss),
                        "size": input_hw[0], "img_s": meter.rate(),
                    })  # fmt: skip
            synced = (number + 1) % sync_every == 0 or last_of_epoch
            bar.step(meter.shown(lr, input_hw[0]) if bar.bar is not None and synced else None)
        bar.close()
        return meter.stats(engine.updates, engine.seen, lr)

    def train_batch(self, images: Tensor, targets: Tensor) -> tuple[float, bool]:
        """One whole update on one batch (after :meth:`setup`; for benchmarks and tests):
        uint8 ``[B, 3, S, S]`` images, ``[T, 6]`` targets -> (summed loss, update skipped)."""
        self.model.train()
        total, parts, _ = self.engine.forward_backward(images, targets, True)
        _, skipped = self.engine.update([(0, total, parts, [])], self.epoch)
        return float(total), skipped


def train(options: TrainOptions, **kwargs: Any) -> TrainResult:
    """Build a :class:`Trainer` for ``options`` and run it."""
    return Trainer(options, **kwargs).fit()


__all__ = ["TrainOptions", "TrainResult", "Trainer", "TrainingError", "find_last_checkpoint", "train"]  # fmt: skip
