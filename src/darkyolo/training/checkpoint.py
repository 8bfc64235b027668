"""Training checkpoints: atomic writes, and loading with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only (no pickled objects),
so it loads without running code:

* ``format`` (``"darkyolo-checkpoint"``), ``version``;
* ``cfg``: the cfg text the model was built from (classes already adapted); ``names``;
  ``img_size``: the input side it trained and validated at (what ``detect``, ``val`` and
  ``export`` use unless told another);
* ``model``: the weights to use for inference (the EMA when there is one) - what
  :func:`darkyolo.darknet.weights.load_weights` reads; ``train_model``: the raw training weights;
* ``optimizer``, ``scaler``, ``ema`` (its counters), ``epoch`` (epochs completed), ``updates``,
  ``seen`` (images trained on), ``best_fitness``, ``metrics``, ``options`` (the training options);
* ``rng``: torch, numpy and Python ``random`` states.

Writes go to a temporary file in the same folder, are flushed and fsync'ed, then renamed over
the target (``os.replace``): a crash leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darkyolo.errors import WeightsError
from darkyolo.models.io import safe_torch_load

FORMAT = "darkyolo-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """torch, numpy and Python random states as tensors, numbers and lists."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a darkyolo checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    return checked_checkpoint(safe_torch_load(path), path)


def checked_checkpoint(data: Any, path: str | Path) -> dict[str, Any]:
    """``data`` read from ``path``, if it is a darkyolo checkpoint this darkyolo can read."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a darkyolo training checkpoint (no format={FORMAT!r})")
    if int(data.get("version", 0)) > VERSION:
        raise WeightsError(
            f"{path}: checkpoint version {data['version']} is newer than this darkyolo reads "
            f"({VERSION})"
        )
    return data


def make_checkpoint(**fields: Any) -> dict[str, Any]:
    """A checkpoint dict: ``format`` and ``version`` plus ``fields`` (see the module docstring)."""
    return {"format": FORMAT, "version": VERSION, **fields}
