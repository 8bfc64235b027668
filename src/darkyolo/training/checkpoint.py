"""Training checkpoints: what they hold, and atomic writes (read with
:func:`darkyolo.models.io.read_checkpoint`).

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

from darkyolo.darknet.weights import WeightsHeader
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import FORMAT, VERSION, save_darknet_weights


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


def make_checkpoint(**fields: Any) -> dict[str, Any]:
    """A checkpoint dict: ``format`` and ``version`` plus ``fields`` (see the module docstring)."""
    return {"format": FORMAT, "version": VERSION, **fields}


class Checkpointer:
    """A run's ``weights/`` folder: ``last.pt`` after every epoch, ``best.pt`` and its Darknet
    ``best.weights`` when the score improved, ``epochN.pt`` every ``save_period`` epochs."""

    def __init__(self, folder: Path, save_period: int) -> None:
        self.folder = folder
        self.save_period = save_period

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    def periodic(self, epoch: int) -> bool:
        """Whether ``epoch`` gets its own ``epochN.pt``."""
        return bool(self.save_period) and epoch % self.save_period == 0

    def save(self, checkpoint: dict[str, Any], epoch: int, best_model: Any = None) -> None:
        """``last.pt``; with ``best_model`` (the network of an improved epoch) ``best.pt`` and
        ``best.weights``; ``epochN.pt`` when ``epoch`` is periodic."""
        atomic_save(checkpoint, self.last)
        if best_model is not None:
            atomic_save(checkpoint, self.best)
            self.write_best_weights(best_model, int(checkpoint["seen"]))
        if self.periodic(epoch):
            atomic_save(checkpoint, self.folder / f"epoch{epoch}.pt")

    def write_best_weights(self, model: Any, seen: int) -> None:
        """``best.weights``: ``best.pt``'s network as Darknet ``.weights`` (Darknet models only)."""
        if isinstance(model, Darknet):
            save_darknet_weights(model, self.folder / "best.weights", WeightsHeader(0, 2, 0, seen))
