"""The one rule for ``--device`` that train, val, detect, export and serve share."""

from __future__ import annotations

import torch

from darkyolo.errors import OptionError


def resolve_device(option: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or ``None``): the first CUDA device when there is one, else the CPU. ``cpu``,
    ``cuda`` or ``cuda:N``: that device, checked to exist. Anything else is an
    :class:`~darkyolo.errors.OptionError` naming the choices."""
    if isinstance(option, torch.device):
        option = str(option)
    if option is None or option == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(option)
    except (RuntimeError, ValueError):
        raise OptionError(f"--device {option!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise OptionError(f"--device {option!r}: expected auto, cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise OptionError(f"--device {option}: CUDA is not available here (use cpu or auto)")
    if device.index is not None and device.index >= count:
        raise OptionError(
            f"--device {option}: there are {count} CUDA devices (cuda:0..{count - 1})"
        )
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AVX512-BF16 or AMX). Without
    either, PyTorch emulates them and ``--amp bf16`` is far slower than float32 (measured 12x on
    an AVX2-only EPYC, docs/training.md)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
