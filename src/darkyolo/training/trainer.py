"""The training loop: Darknet's schedule and reduction, EMA, AMP, gradient accumulation, DDP.

One optimiser update uses ``batch`` images (all processes together), split into ``subdivisions``
micro-batches per process. Each micro-batch's loss is the loss's sum divided by the images per
update (Darknet divides the summed deltas by ``batch``; the project's training notes, section 3),
so with ``SGD(lr, momentum, weight_decay=decay)`` on conv kernels only, an update is Darknet's.
Under DDP every process divides by its own share and DDP averages the gradients: the same thing.

Per update: learning rate from :class:`~darkyolo.training.schedule.LRSchedule`, a finite-loss check
(a NaN/Inf names the loss part, the batch and its images; ``nan="skip"`` drops the update and
counts it, ``nan="stop"`` stops, leaving the last good checkpoint), the optimiser step, the EMA.
Per epoch (or every ``eval_interval``): validation of the EMA weights with
:func:`~darkyolo.evaluation.validate.evaluate`, a CSV row, ``last.pt``/``best.pt`` written atomically
(best by fitness = 0.1 mAP@.5 + 0.9 mAP@.5:.95), ``best.weights`` in Darknet format.

Distributed runs start with ``torchrun --nproc_per_node N -m darkyolo train ...``: NCCL on GPUs,
gloo on CPUs, a :class:`~torch.utils.data.distributed.DistributedSampler` under the multi-scale
batch sampler (the same input side on every rank at every step), rank 0 the only writer.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.darknet.weights import WeightsHeader
from darkyolo.data.dataset import DetectionDataset, collate_detection, load_split
from darkyolo.data.layouts import load_dataset
from darkyolo.data.multiscale import MultiScaleBatchSampler
from darkyolo.data.scan import check_image
from darkyolo.device import cpu_has_native_bf16, resolve_device
from darkyolo.errors import DataError, OptionError, TrainingError, user_message
from darkyolo.evaluation.evaluator import EvalResult, format_table, write_metrics_json
from darkyolo.evaluation.validate import evaluate, recalibrate_batch_norm
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import save_darknet_weights
from darkyolo.training.checkpoint import (
    atomic_save,
    load_checkpoint,
    make_checkpoint,
    rng_state,
    set_rng_state,
)
from darkyolo.training.options import AMP_MODES, TrainOptions
from darkyolo.training.plan import plan_training, validation_options
from darkyolo.training.schedule import (
    ModelEMA,
    ema_warmup,
    make_optimizer,
    parameter_groups,
)
from darkyolo.training.transfer import (
    DEFAULT_OBJ_PRIOR,
    freeze_layers,
    init_from_scratch,
    load_pretrained,
)


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


# ----------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class DistContext:
    """This process's place in a distributed run (world 1 for a plain run)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _init_distributed(device_option: str) -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_option != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
        # rank 0 validates while the others wait at the next collective: allow for a long one
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(hours=2))
    return DistContext(world, rank, local)


def _device(option: str, ctx: DistContext) -> torch.device:
    device = resolve_device(option)
    if device.type == "cuda" and ctx.enabled:  # DDP: each process its own GPU
        device = torch.device("cuda", ctx.local_rank)
    return device


def _amp(option: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """-> (autocast dtype or None, use a GradScaler)."""
    if option not in AMP_MODES:
        raise OptionError(f"--amp must be one of {AMP_MODES}, got {option!r}")
    if option == "off" or (option == "auto" and device.type != "cuda"):
        return None, False
    if option == "auto":
        option = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if option == "fp16":
        if device.type != "cuda":
            raise OptionError("--amp fp16 needs a CUDA device (use bf16 on the CPU)")
        return torch.float16, True
    return torch.bfloat16, False


def fitness(metrics: dict[str, float]) -> float:
    """0.1·mAP@.5 + 0.9·mAP@.5:.95 (NaN counts as 0)."""

    def value(key: str) -> float:
        x = metrics.get(key, float("nan"))
        return 0.0 if x is None or math.isnan(x) else float(x)

    return 0.1 * value("map50") + 0.9 * value("map")


def find_last_checkpoint(project: str | Path) -> Path:
    """The most recently written ``*/weights/last.pt`` under ``project``."""
    found = sorted(Path(project).glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise TrainingError(f"--resume: no */weights/last.pt under {project}")
    return found[-1]


def _new_run_dir(project: str | Path, name: str, exist_ok: bool) -> Path:
    from darkyolo.inference.outputs import new_run_dir

    return new_run_dir(project, name, exist_ok)


class _CsvLog:
    """Append rows to a CSV; the header comes from the first row's keys."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file():
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), None)
            self.columns = header or None

    def write(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(self.columns)
            writer.writerow([_cell(row.get(c)) for c in self.columns])


def _epoch_line(epoch: int, epochs: int, stats: dict[str, float], metrics: str) -> str:
    parts = " ".join(
        f"{k} {v:.3g}" for k, v in stats.items() if k not in ("updates", "seen", "time_s", "img_s", "lr", "loss")
    )  # fmt: skip
    line = (
        f"epoch {epoch}/{epochs}: loss {stats['loss']:.4g} ({parts}) lr {stats['lr']:.3g}, "
        f"{stats['img_s']:.1f} img/s, {stats['time_s']:.0f} s"
    )
    return f"{line}; {metrics}" if metrics else line


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


# ----------------------------------------------------------------------------------- trainer


class Trainer:
    """Train a Darknet cfg on a ``.data`` dataset; see the module docstring.

    ``loss_builder(model)`` makes the loss (default :func:`darkyolo.losses.build_loss`); it must
    return ``callable(raw_maps, targets, input_hw, seen) -> (sum over the micro-batch, parts)``.
    """

    #: what the cfg must be: ``detect`` (with heads) or ``classify``
    TASK = "detect"

    def __init__(
        self,
        options: TrainOptions,
        loss_builder: Callable[[nn.Module], Callable[..., tuple[Tensor, dict[str, Tensor]]]]
        | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.options = options
        self.loss_builder = loss_builder
        self._log = log
        self.ctx = DistContext()
        self.ready = False

    # ------------------------------------------------------------------ setup

    def log(self, message: str) -> None:
        if self.ctx.is_main:
            self._log(message)

    def _resume_state(self) -> dict[str, Any] | None:
        if self.options.resume is None:
            return None
        path = Path(self.options.resume) if self.options.resume else None
        if path is None:
            path = find_last_checkpoint(self.options.project)
        if path.is_dir():
            path = path / "weights" / "last.pt"
        state = load_checkpoint(path)
        state["_path"] = str(path)
        return state

    def setup(self) -> None:
        """Resolve the plan (:func:`~darkyolo.training.plan.plan_training`), then build data,
        model, loaders, optimiser and run folder from it alone (``fit`` calls it)."""
        resume = self._resume_state()
        self.ctx = _init_distributed(self.options.device)
        plan = plan_training(
            self.options, resume=resume, world_size=self.ctx.world_size, task=self.TASK
        )
        self.plan, self.options = plan, plan.options
        if plan.ignored:
            self.log(
                f"--resume: the run keeps its own settings; ignoring {', '.join(plan.ignored)}"
            )
        opt = self.options
        self.device = _device(opt.device, self.ctx)
        if opt.threads:
            torch.set_num_threads(opt.threads)
        torch.manual_seed(opt.seed + self.ctx.rank)
        self.amp_dtype, use_scaler = _amp(opt.amp, self.device)
        bf16_on_cpu = self.amp_dtype == torch.bfloat16 and self.device.type == "cpu"
        if bf16_on_cpu and not cpu_has_native_bf16():
            self.log(
                "--amp bf16: this CPU has neither AVX512-BF16 nor AMX, so bfloat16 is "
                "emulated and trains many times slower than float32 (--amp off)"
            )
        self.names, self.config, self.cfg_text = list(plan.names), plan.config, plan.cfg_text
        self._load_data()
        for note in plan.notes:
            self.log(note)
        if resume is None:
            self._fit_anchors()
        model = self._build_model(fresh=resume is None)
        self._build_loader()
        self.epochs, self.total_updates, self.schedule, notes = plan.schedule(
            self.updates_per_epoch
        )
        for note in notes:
            self.log(note)
        self._after_schedule()
        self._build_optimization(model, use_scaler)
        self._open_run(resume)
        self.ready = True
        self.log(self._summary())

    def _after_schedule(self) -> None:
        """Once the run's length is known: mosaics stop ``close_mosaic`` epochs before the end."""
        self.dataset.mosaic_epochs = max(0, self.epochs - self.options.close_mosaic)

    def _load_data(self) -> None:
        """The plan's splits, every picture scanned first (``--bad-images``)."""
        self.spec = load_dataset(self.plan.data)
        policy = self.options.bad_images
        self.train_records, train_report = load_split(self.spec, "train", bad_images=policy)
        self.val_records, val_report = (
            load_split(self.spec, "val", bad_images=policy) if self.spec.val else ([], None)
        )
        self.unreadable: dict[int, str] = {}  # pictures that went bad during the run: index -> why
        for report in (train_report, val_report):
            if report is not None:
                for line in report.lines():
                    self.log(line)
        if not self.train_records:
            raise TrainingError(f"{self.spec.path}: the train split has no usable images")

    def _fit_anchors(self) -> None:
        """``--anchors auto``: from scratch, when k-means on the training boxes fits them clearly
        better than the cfg's anchors (:func:`darkyolo.anchors.anchor_fit`), train with those."""
        from darkyolo.anchors import anchor_fit, anchors_line, cfg_text_with_anchors, head_units

        opt, plan = self.options, self.plan
        if opt.anchors != "auto" or plan.pretrained or not self.config.heads:
            return
        fit = anchor_fit(self.config, self.train_records, plan.img_size, opt.seed)
        if fit is None or not fit.refit:
            return
        source = str(self.config.source)
        self.cfg_text = cfg_text_with_anchors(self.cfg_text, source, fit.fitted, len(self.names))
        self.config = parse_cfg(self.cfg_text, source)
        line = anchors_line(fit.fitted, head_units(self.config))
        self.log(
            f"anchors: the cfg's fit the training boxes with mean IoU {fit.cfg_iou:.2f}, k-means "
            f"on them {fit.fitted_iou:.2f}: training with {line} (--anchors cfg keeps the cfg's)"
        )

    def _build_model(self, fresh: bool) -> Darknet:
        """The network for the plan's cfg: initialised, pretrained weights, BN momentum, frozen."""
        opt, plan = self.options, self.plan
        model = Darknet(self.config)
        if opt.init == "darknet" and fresh:
            prior = opt.obj_prior if opt.obj_prior is not None else DEFAULT_OBJ_PRIOR
            init_from_scratch(model, prior)
        if fresh and plan.pretrained:
            for line in load_pretrained(model, plan.pretrained, plan.config_given).lines():
                self.log(line)
        if opt.bn_momentum is not None:  # Darknet's 0.01 lags far behind in short runs
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = opt.bn_momentum
        self.frozen_bn = freeze_layers(model, opt.freeze) if opt.freeze else []
        if opt.freeze:
            self.log(f"froze layers 0..{opt.freeze - 1} (their batch norm keeps its statistics)")
        return model

    def _build_loader(self) -> None:
        """Datasets, the multi-scale distributed sampler and the loader, from the plan."""
        opt, plan = self.options, self.plan
        self.batch, self.subdivisions, self.micro = plan.batch, plan.subdivisions, plan.micro
        self.images_per_update = plan.batch // plan.world_size  # DDP averages over processes
        self.img_size, self.sizes, self.augment = plan.img_size, list(plan.sizes), plan.augment
        self.dataset = DetectionDataset(
            self.train_records, self.img_size, self.augment, seed=opt.seed, cache=opt.cache,
            cache_side=max(self.sizes) if opt.cache else None, num_classes=len(self.names),
            skip_unreadable=opt.bad_images == "exclude",
        )  # fmt: skip
        if opt.cache:
            self.log(
                f"cached {len(self.dataset)} images: {self.dataset.source.cached_bytes / 2**20:.0f} MiB"
            )
        self._open_loader(collate_detection)

    def _open_loader(self, collate: Callable[..., Any]) -> None:
        """``self.dataset`` through the distributed sampler and the multi-scale batch sampler
        (one size: plain batches) into the loader; the epoch's batch and update counts."""
        opt = self.options
        self.collate = collate
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.ctx.world_size, rank=self.ctx.rank, shuffle=True,
            seed=opt.seed, drop_last=False,
        )  # fmt: skip
        self.batch_sampler = MultiScaleBatchSampler(
            self.sampler, self.micro, self.sizes,
            interval=opt.scale_interval * self.subdivisions, seed=opt.seed,
        )  # fmt: skip
        self.loader = DataLoader(
            self.dataset, batch_sampler=self.batch_sampler, num_workers=opt.workers,
            collate_fn=collate, pin_memory=self.device.type == "cuda",
            persistent_workers=opt.workers > 0, prefetch_factor=4 if opt.workers > 0 else None,
        )  # fmt: skip
        self.micro_per_epoch = len(self.batch_sampler)
        self.updates_per_epoch = -(-self.micro_per_epoch // self.subdivisions)

    def _build_optimization(self, model: Darknet, use_scaler: bool) -> None:
        """Device and memory format, EMA, optimiser, AMP scaler, DDP and compile wrappers, loss."""
        opt, plan = self.options, self.plan
        self.memory_format = torch.channels_last if opt.channels_last else torch.contiguous_format
        model = model.to(self.device, memory_format=self.memory_format)
        if opt.sync_bn and self.ctx.enabled:
            if self.device.type != "cuda":
                raise TrainingError(
                    "--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU only)"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model  # the Darknet itself
        tau = opt.ema_tau if opt.ema_tau is not None else ema_warmup(self.total_updates)
        self.ema = ModelEMA(model, opt.ema_decay, tau) if opt.ema else None
        groups = parameter_groups(model, plan.decay)
        self.optimizer = make_optimizer(plan.optimizer, groups, plan.lr, plan.momentum)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        wrapped: nn.Module = model
        if self.ctx.enabled:
            wrapped = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if opt.compile:
            wrapped = torch.compile(wrapped)
        self.wrapped = wrapped
        self.loss_fn = (self.loss_builder or self._default_loss)(model)

    def _default_loss(self, model: nn.Module) -> Callable[..., tuple[Tensor, dict[str, Tensor]]]:
        """The task's loss: Darknet's detection losses (:func:`darkyolo.losses.build_loss`)."""
        from darkyolo.losses import build_loss

        return build_loss(model, self.options.loss)

    def _open_run(self, resume: dict[str, Any] | None) -> None:
        """Counters (restored on resume) and the run folder with its cfg, options and plan."""
        opt = self.options
        self.epoch = self.updates = self.seen = self.nan_skips = 0
        self.best_fitness, self.best_epoch = -math.inf, -1
        self.last_metrics: dict[str, float] = {}
        if resume is not None:
            self._restore(resume)
            self.run_dir = Path(resume["_path"]).parent.parent
        elif self.ctx.is_main:
            self.run_dir = _new_run_dir(opt.project, opt.name, opt.exist_ok)
        else:
            self.run_dir = Path(opt.project) / opt.name
        self.weights_dir = self.run_dir / "weights"
        if self.ctx.is_main:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "model.cfg").write_text(self.cfg_text)
            (self.run_dir / "options.json").write_text(json.dumps(opt.to_dict(), indent=2))
            self.plan.write(self.run_dir / "plan.json")

    def _summary(self) -> str:
        s = self.schedule
        size = (
            f"{self.sizes[0]}..{self.sizes[-1]} every {self.options.scale_interval} updates"
            if len(self.sizes) > 1
            else str(self.img_size)
        )
        return (
            f"training {self.config.source} ({self.config.num_classes} classes) on "
            f"{len(self.train_records)} images, {len(self.val_records)} for validation, "
            f"device {self.device}{' x' + str(self.ctx.world_size) if self.ctx.enabled else ''}\n"
            f"  batch {self.batch} = {self.ctx.world_size} process(es) x {self.subdivisions} x "
            f"{self.micro} images; {self.updates_per_epoch} updates/epoch, {self.epochs} epochs, "
            f"{self.total_updates} updates\n"
            f"  lr {s.lr:g} {s.policy} (burn-in {s.burn_in} updates, power {s.power:g}), "
            f"{self.options.optimizer} ({self._momentum_text()}), "
            f"decay {self.optimizer.param_groups[0]['weight_decay']:g}; EMA "
            f"{f'tau {self.ema.tau:g}' if self.ema else 'off'}; AMP {self.amp_dtype or 'off'}\n"
            f"  input {size}; augmentation {self.augment or 'off'}\n"
            f"  writing to {self.run_dir}"
        )  # fmt: skip

    def _momentum_text(self) -> str:
        group = self.optimizer.param_groups[0]
        if "betas" in group:
            return f"betas {group['betas'][0]:g}, {group['betas'][1]:g}"
        return f"momentum {group['momentum']:g}"

    # ------------------------------------------------------------------ checkpoints

    @property
    def inference_model(self) -> nn.Module:
        """What is validated and saved for use: the EMA of the weights, or the weights."""
        return self.ema.module if self.ema is not None else self.model

    def _checkpoint(self) -> dict[str, Any]:
        model = self.model
        inference = self.inference_model
        return make_checkpoint(
            cfg=self.cfg_text,
            names=self.names,
            img_size=self.plan.img_size,
            model=inference.state_dict(),
            train_model=model.state_dict() if self.ema is not None else None,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            ema=self.ema.state_dict() if self.ema is not None else None,
            epoch=self.epoch,
            updates=self.updates,
            seen=self.seen,
            best_fitness=self.best_fitness,
            best_epoch=self.best_epoch,
            nan_skips=self.nan_skips,
            metrics=dict(self.last_metrics),
            options=self.options.to_dict(),
            rng=rng_state(),
        )

    def _restore(self, state: dict[str, Any]) -> None:
        train_state = (
            state["train_model"] if state.get("train_model") is not None else state["model"]
        )
        self.model.load_state_dict(train_state)
        if self.ema is not None:
            self.ema.module.load_state_dict(state["model"])
            if state.get("ema"):
                self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.updates = int(state["updates"])
        self.seen = int(state["seen"])
        self.best_fitness = float(state["best_fitness"])
        self.best_epoch = int(state.get("best_epoch", -1))
        self.nan_skips = int(state.get("nan_skips", 0))
        set_rng_state(state["rng"])
        self.log(f"resuming {state['_path']}: {self.epoch} epochs, {self.updates} updates done")

    def _periodic(self, epoch: int) -> bool:
        period = self.options.save_period
        return bool(period) and epoch % period == 0

    def _recalibrates_before_save(self, final: bool) -> bool:
        """Whether this epoch's save, in a run without validation, writes weights meant for use
        that must carry recomputed batch-norm statistics as validated weights do
        (``bn_recalib``): the final ``last.pt`` and an ``epochN.pt``. A mid-run ``last.pt`` is
        only for resuming, and a mid-run ``best.pt`` is mended once, at the end
        (:meth:`_mend_best`): with the training loss as the score nearly every epoch improves,
        and recomputing at each cost 7-10% of a run."""
        return self.options.bn_recalib > 0 and (final or self._periodic(self.epoch))

    def _mend_best(self) -> None:
        """Recompute the batch-norm statistics of a ``best.pt`` (and ``best.weights``) from an
        earlier epoch of a run without validation, once, after the final epoch, on pictures
        drawn as the final epoch draws them (mosaics closed by then in the default recipe). A
        best epoch that was the final or a periodic one already has them."""
        epoch = self.best_epoch
        if (
            self.options.bn_recalib <= 0
            or epoch < 0
            or epoch == self.epoch
            or self._periodic(epoch)
        ):
            return
        path = self.weights_dir / "best.pt"
        checkpoint = load_checkpoint(path)
        inference = copy.deepcopy(self.inference_model)
        inference.load_state_dict(checkpoint["model"])
        self.recalibrate(inference)
        checkpoint["model"] = inference.state_dict()
        atomic_save(checkpoint, path)
        self._write_best_weights(inference, int(checkpoint["seen"]))
        self.log(f"best.pt (epoch {epoch}): batch-norm statistics recomputed")

    def _write_best_weights(self, model: nn.Module, seen: int) -> None:
        """``best.weights``: ``best.pt``'s network as Darknet ``.weights`` (Darknet models only)."""
        if isinstance(model, Darknet):
            header = WeightsHeader(0, 2, 0, seen)
            save_darknet_weights(model, self.weights_dir / "best.weights", header)

    def _save(self, improved: bool) -> None:
        checkpoint = self._checkpoint()
        atomic_save(checkpoint, self.weights_dir / "last.pt")
        if improved:
            atomic_save(checkpoint, self.weights_dir / "best.pt")
            self._write_best_weights(self.inference_model, self.seen)
        if self._periodic(self.epoch):
            atomic_save(checkpoint, self.weights_dir / f"epoch{self.epoch}.pt")

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
        results = _CsvLog(self.run_dir / "results.csv") if self.ctx.is_main else None
        steps_log = _CsvLog(self.run_dir / "steps.csv") if self.ctx.is_main else None
        stopped_early = False
        best_result: EvalResult | None = None
        while self.epoch < self.epochs and self.updates < self.total_updates:
            if stop_after is not None and self.epoch >= stop_after:
                break
            try:
                epoch_stats = self._train_epoch(steps_log)
            except DataError as error:  # --bad-images stop: a picture went bad during the run
                raise TrainingError(self._stop_on_bad_picture(error)) from None
            self.epoch += 1
            metrics: dict[str, float] = {}
            evaluated = None
            last_epoch = self.epoch >= self.epochs or self.updates >= self.total_updates
            if self.ctx.is_main:
                if self.val_records and (
                    self.epoch % self.options.eval_interval == 0 or last_epoch
                ):
                    evaluated = self.validate()
                    metrics = self.metrics_of(evaluated)
                score = (
                    self.fitness(metrics)
                    if metrics
                    else (-epoch_stats["loss"] if not self.val_records else None)
                )
                improved = score is not None and score > self.best_fitness
                if improved:
                    self.best_fitness, self.best_epoch = score, self.epoch
                    if evaluated is not None:
                        best_result = evaluated
                        self._write_best_metrics(evaluated)
                if metrics:
                    self.last_metrics = metrics
                self.log(
                    _epoch_line(self.epoch, self.epochs, epoch_stats, self.metrics_text(metrics))
                )
                row: dict[str, Any] = {"epoch": self.epoch, **epoch_stats}
                row.update(
                    {key: metrics.get(key) for key in self.METRICS},
                    fitness=self.fitness(metrics) if metrics else None,
                )  # same columns in every row: blank where not evaluated
                assert results is not None
                results.write(row)
                patience = self.options.patience
                stopping = bool(patience) and 0 <= self.best_epoch <= self.epoch - patience
                final = last_epoch or stopping
                if evaluated is None and self._recalibrates_before_save(final):
                    self.recalibrate(self.inference_model)
                self._save(improved)
                if final and not self.val_records:
                    self._mend_best()
                if stopping:
                    self.log(
                        f"no improvement for {patience} epochs (best: epoch {self.best_epoch}): stopping"
                    )
                    stopped_early = True
            if self.ctx.enabled:
                flag = torch.tensor([1 if stopped_early else 0], device=self._comm_device())
                dist.broadcast(flag, 0)
                stopped_early = bool(flag.item())
            self.model.train()
            if stopped_early:
                break
        if self.ctx.is_main:
            self._finish(best_result)
        return TrainResult(
            run_dir=self.run_dir,
            epochs=self.epoch,
            updates=self.updates,
            seen=self.seen,
            best_fitness=self.best_fitness,
            best_epoch=self.best_epoch,
            last_metrics=dict(self.last_metrics),
            nan_skips=self.nan_skips,
            stopped_early=stopped_early,
        )

    def interrupted_note(self, command: str = "darkyolo train") -> str:
        """What an interrupted run kept and how to go on: the last finished epoch's ``last.pt``
        and the ``--resume`` command, or that nothing was saved yet."""
        last = self.weights_dir / "last.pt" if hasattr(self, "weights_dir") else None
        if last is None or not last.is_file():
            return "no epoch had finished, so nothing was saved"
        return f"the last finished epoch is in {last}; go on with: {command} --resume {last}"

    def _stop_on_bad_picture(self, error: DataError) -> str:
        """Save ``last.pt`` (the state of this moment; a resume repeats the epoch under way) and
        say which picture stopped the run."""
        where = ""
        if self.ctx.is_main and hasattr(self, "weights_dir"):
            atomic_save(self._checkpoint(), self.weights_dir / "last.pt")
            where = f"; saved {self.weights_dir / 'last.pt'} (resume with --resume)"
        return (
            f"stopped in epoch {self.epoch + 1}: {user_message(error)} (--bad-images stop){where}"
        )

    # ------------------------------------------------------------------ the task's metrics

    #: the validation numbers of a CSV row, in order
    METRICS: tuple[str, ...] = ("map50", "map", "map75")

    def metrics_of(self, result: Any) -> dict[str, float]:
        """A validation result -> the numbers of :attr:`METRICS`."""
        return {"map50": result.map50, "map": result.map, "map75": result.map75}

    def fitness(self, metrics: dict[str, float]) -> float:
        """What "best" maximises (see :func:`fitness`)."""
        return fitness(metrics)

    def metrics_text(self, metrics: dict[str, float]) -> str:
        """The validation part of an epoch's line."""
        if not metrics:
            return ""
        return f"mAP@.5 {metrics['map50']:.4f} mAP@.5:.95 {metrics['map']:.4f}"

    def _report_best(self, result: Any) -> None:
        """At the end: the best validation's plots (with ``plots``) and table."""
        if self.options.plots:
            from darkyolo.viz.plots import plot_pr_curves

            plot_pr_curves(result, self.names, self.run_dir / "pr_curve.png")
        self.log(format_table(result))

    def _write_best_metrics(self, result: Any) -> None:
        write_metrics_json(result, self.run_dir / "metrics.json")

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def validate(self) -> Any:
        """Score the EMA weights (or the model) on the validation split (after recomputing their
        batch-norm statistics, see ``bn_recalib``) with the task's :meth:`score`."""
        model = self.inference_model
        if self.options.bn_recalib > 0:
            self.recalibrate(model)
        result = self.score(model)
        self.model.train()
        return result

    def score(self, model: nn.Module) -> EvalResult:
        """The task's validation of ``model``: pycocotools mAP on the val split."""
        settings = validation_options(self.plan)
        result = evaluate(
            model, self.val_records, self.names, settings, self.device,
            progress=self.options.progress, amp_dtype=self.amp_dtype,
            skip_unreadable=self.options.bad_images == "exclude",
        )  # fmt: skip
        for note in result.notes:
            if "could not be read" in note:
                self.log(f"warning: validation: {note}")
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
        starts = range(0, count, self.micro)
        sizes = sorted(self.sizes)  # the middle of each of len(starts) equal shares of the range
        sides = [sizes[(2 * n + 1) * len(sizes) // (2 * len(starts))] for n in range(len(starts))]

        def batch(start: int, side: int) -> Tensor:
            picks = chosen[start : start + self.micro]
            return self.collate([self.dataset[(int(i), side, self.epoch)] for i in picks])[0]

        batches = (batch(start, side) for start, side in zip(starts, sides, strict=True))
        return recalibrate_batch_norm(model, batches, self.device)  # frozen ones are not BN

    def _finish(self, best_result: EvalResult | None) -> None:
        csv_path = self.run_dir / "results.csv"
        if self.options.plots and csv_path.is_file():
            from darkyolo.viz.plots import plot_training_curves

            with open(csv_path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            shown = [c for c in rows[0] if c not in ("updates", "seen", "time_s", "img_s", "map75", "fitness")] if rows else []  # fmt: skip
            plot_csv = self.run_dir / ".plot.csv"
            with open(plot_csv, "w", newline="") as handle:
                writer = csv.DictWriter(handle, shown, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            plot_training_curves(plot_csv, self.run_dir / "results.png")
            plot_csv.unlink()
        if best_result is not None:
            self._report_best(best_result)
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

    def _train_epoch(self, steps_log: _CsvLog | None) -> dict[str, float]:
        opt = self.options
        self.model.train()
        names = getattr(self.loss_fn, "part_names", ())
        part_sums: dict[str, Tensor | float] = {name: 0.0 for name in names}
        loss_sum = torch.zeros((), device=self.device)
        images_done = 0
        window: list[tuple[int, Tensor, dict[str, Tensor], list[int]]] = []
        bar = None
        if self.ctx.is_main and opt.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.micro_per_epoch, desc=f"epoch {self.epoch + 1}/{self.epochs}", unit="batch", dynamic_ncols=True, leave=True)  # fmt: skip
        start = time.perf_counter()
        sync_every = 1 if self.device.type == "cpu" else 10
        lr = self.schedule(self.updates + 1)
        self.optimizer.zero_grad(set_to_none=True)
        for number, images, targets, indices in self._batches():
            if self.updates >= self.total_updates:
                break
            closes_update = (
                number + 1
            ) % self.subdivisions == 0 or number + 1 == self.micro_per_epoch
            total, parts, input_hw = self._forward_backward(images, targets, closes_update)
            window.append((number, total, parts, indices))
            self.seen += images.shape[0] * self.ctx.world_size
            images_done += images.shape[0]
            if closes_update:
                lr, skipped = self._update(window)
                if not skipped:
                    for _, t, p, _ in window:
                        loss_sum += t
                        for name, value in p.items():
                            part_sums[name] = part_sums.get(name, 0) + value
                window = []
                if (
                    steps_log is not None
                    and opt.log_interval
                    and self.updates % opt.log_interval == 0
                ):
                    elapsed = time.perf_counter() - start
                    steps_log.write({
                        "step": self.updates, "epoch": self.epoch + (number + 1) / self.micro_per_epoch,
                        "seen": self.seen, "lr": lr, "loss": float(loss_sum) / max(images_done, 1),
                        "size": input_hw[0], "img_s": images_done * self.ctx.world_size / elapsed,
                    })  # fmt: skip
            if bar is not None:
                bar.update(1)
                if (number + 1) % sync_every == 0 or number + 1 == self.micro_per_epoch:
                    elapsed = time.perf_counter() - start
                    shown = {"loss": f"{float(loss_sum) / max(images_done, 1):.3g}"}
                    for name, value in part_sums.items():
                        shown[name] = f"{float(value) / max(images_done, 1):.3g}"
                    shown.update(lr=f"{lr:.2e}", size=input_hw[0], img_s=f"{images_done * self.ctx.world_size / elapsed:.1f}")  # fmt: skip
                    bar.set_postfix(shown, refresh=False)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - start
        stats = {
            "updates": self.updates,
            "seen": self.seen,
            "time_s": round(elapsed, 2),
            "img_s": images_done * self.ctx.world_size / max(elapsed, 1e-9),
            "lr": lr,
            "loss": float(loss_sum) / max(images_done, 1),
        }
        for name, value in part_sums.items():
            stats[name] = float(value) / max(images_done, 1)
        return stats

    def _forward_backward(
        self, images: Tensor, targets: Tensor, closes_update: bool = True
    ) -> tuple[Tensor, dict[str, Tensor], tuple[int, int]]:
        """One micro-batch: uint8 ``[B, 3, S, S]`` images and ``[T, 6]`` targets -> forward, loss
        (sum / images per update), backward. Returns the summed loss, its parts and the input size."""
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
            total, parts = self.loss_fn(raw, targets, input_hw, self.seen)
            loss = total / self.images_per_update
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        return total.detach(), parts, input_hw

    def train_batch(self, images: Tensor, targets: Tensor) -> tuple[float, bool]:
        """One whole update on one batch (after :meth:`setup`; for benchmarks and tests):
        uint8 ``[B, 3, S, S]`` images, ``[T, 6]`` targets -> (summed loss, update skipped)."""
        self.model.train()
        total, parts, _ = self._forward_backward(images, targets, True)
        self.seen += images.shape[0] * self.ctx.world_size
        _, skipped = self._update([(0, total, parts, [])])
        return float(total), skipped

    def _update(
        self, window: list[tuple[int, Tensor, dict[str, Tensor], list[int]]]
    ) -> tuple[float, bool]:
        """Close one optimiser update: lr, finite check, step, EMA -> (lr used, skipped)."""
        self.updates += 1
        lr = self.schedule(self.updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        totals = torch.stack([t for _, t, _, _ in window])
        finite = torch.isfinite(totals).all().to(torch.float32)
        if self.ctx.enabled:
            flag = finite.reshape(1).to(self._comm_device())
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = flag
        if not bool(finite.item()):
            self._non_finite(window)
            self.optimizer.zero_grad(set_to_none=True)
            return lr, True
        clip = self.options.clip_grad
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
                self._non_finite(window, gradient=True)
                self.optimizer.zero_grad(set_to_none=True)
                return lr, True
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        return lr, False

    def _non_finite(
        self, window: list[tuple[int, Tensor, dict[str, Tensor], list[int]]], gradient: bool = False
    ) -> None:
        """Name the update's bad batches (``gradient``: the loss was finite, its gradient not;
        every batch of the update is named), then skip the update or stop (``nan``)."""
        where = []
        for number, total, parts, indices in window:
            if not gradient and bool(torch.isfinite(total)):
                continue
            bad = [f"{k}={float(v)}" for k, v in parts.items() if not math.isfinite(float(v))]
            files = [str(self.train_records[i].image) for i in indices]
            shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
            named = "" if gradient else f"loss parts {', '.join(bad) or 'total'}; "
            where.append(f"batch {number} ({named}images {shown})")
        if not where:
            where.append("another process's batch")
        what = "gradient (the loss was finite)" if gradient else "loss"
        message = (
            f"non-finite {what} in epoch {self.epoch + 1}, update {self.updates}: "
            + "; ".join(where)
        )
        if self.options.nan == "skip" and self.nan_skips < self.options.max_nan_skips:
            self.nan_skips += 1
            self.log(f"{message}; update skipped ({self.nan_skips}/{self.options.max_nan_skips})")
            return
        last = self.weights_dir / "last.pt" if hasattr(self, "weights_dir") else None
        keep = (
            f"; the last good checkpoint is {last}" if last is not None and last.is_file() else ""
        )
        raise TrainingError(message + keep)


def train(options: TrainOptions, **kwargs: Any) -> TrainResult:
    """Build a :class:`Trainer` for ``options`` and run it."""
    return Trainer(options, **kwargs).fit()


__all__ = [
    "DistContext",
    "TrainOptions",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "find_last_checkpoint",
    "fitness",
    "train",
]
