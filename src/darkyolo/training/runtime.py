"""Where a run executes: its place in a distributed run, its device and its mixed precision.

Distributed runs start with ``torchrun --nproc_per_node N -m darkyolo train ...``: NCCL on GPUs,
gloo on CPUs, rank 0 the only writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from darkyolo.device import cpu_has_native_bf16, resolve_device
from darkyolo.errors import OptionError
from darkyolo.training.options import AMP_MODES


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


def init_distributed(device_option: str) -> DistContext:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE`` > 1), else a plain run."""
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


def run_device(option: str, ctx: DistContext) -> torch.device:
    """``--device`` resolved; under DDP each process takes its own GPU."""
    device = resolve_device(option)
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    return device


def automatic_amp(device: torch.device) -> str:
    """What ``--amp auto`` means on ``device``: ``bf16`` on a GPU that has it (else ``fp16``),
    ``off`` (float32) on the CPU. Even where the CPU runs bfloat16 natively (2.1x the float32
    update there), training in it left the boxes of a one-class set of large objects less tight
    (bccd-wbc val, two seeds: mAP@[.5:.95] -0.009 and -0.015; docs/training.md, "Speed as
    typed"), so it stays an explicit ``--amp bf16``."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "off"


def amp_setting(option: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``--amp`` on ``device`` -> (autocast dtype or None, use a GradScaler)."""
    if option not in AMP_MODES:
        raise OptionError(f"--amp must be one of {AMP_MODES}, got {option!r}")
    if option == "auto":
        option = automatic_amp(device)
    if option == "off":
        return None, False
    if option == "fp16":
        if device.type != "cuda":
            raise OptionError("--amp fp16 needs a CUDA device (use bf16 on the CPU)")
        return torch.float16, True
    return torch.bfloat16, False


def amp_note(option: str, device: torch.device, dtype: torch.dtype | None) -> str:
    """The autocast ``dtype`` in the run's summary; where ``--amp auto`` left a CPU that runs
    bfloat16 natively in float32, a hint that ``--amp bf16`` is faster there."""
    name = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    if option != "auto":
        return name
    if device.type == "cpu" and cpu_has_native_bf16():
        return f"{name} (--amp auto; this CPU runs --amp bf16 natively, about 2x faster)"
    return f"{name} (--amp auto)"


def communication_device(device: torch.device) -> torch.device:
    """Where small tensors for collectives live: the GPU under NCCL, else the CPU."""
    return device if device.type == "cuda" else torch.device("cpu")
