"""Weights into and out of a built network: Darknet ``.weights`` (through the torch-free
:mod:`darkyolo.darknet.weights`), darkyolo checkpoints and state dicts, and the one check of
whether a state dict fits a network.

Every ``.pt`` file darkyolo reads is read here, with ``torch.load(weights_only=True)``
(:func:`read_torch_file`); :func:`read_checkpoint` adds the darkyolo checkpoint's format and
version check (what a checkpoint holds: :mod:`darkyolo.training.checkpoint`). :func:`load_model`
builds a network from a cfg and fills it.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darkyolo.darknet.cfg import NetworkConfig, load_cfg
from darkyolo.darknet.weights import (
    WeightsHeader,
    is_checkpoint,
    read_weights,
    write_weights,
)
from darkyolo.errors import WeightsError
from darkyolo.models.darknet import Darknet
from darkyolo.models.layers import Connected, ConvBNAct

#: a darkyolo checkpoint's ``format`` entry, and the newest ``version`` this darkyolo reads
FORMAT = "darkyolo-checkpoint"
VERSION = 1


def _layer_tensors(layer: ConvBNAct | Connected) -> list[torch.Tensor]:
    """The tensors of one weighted layer in ``.weights`` order (see :mod:`darkyolo.darknet.weights`)."""
    linear = getattr(layer, "linear", None)
    if linear is not None:
        bn = layer.bn
        if bn is not None:
            return [bn.bias, linear.weight, bn.weight, bn.running_mean, bn.running_var]
        return [linear.bias, linear.weight]
    if layer.bn is not None:
        bn = layer.bn
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var, layer.conv.weight]
    if layer.conv.bias is None:  # pragma: no cover - built with bias whenever bn is absent
        raise WeightsError("a convolution without batch norm has no bias; was the model fused?")
    return [layer.conv.bias, layer.conv.weight]


def load_darknet_weights(model: Darknet, path: str | Path, *, allow_prefix: bool = False) -> int:
    """Load a ``.weights`` file into ``model``; returns how many weighted layers were filled.

    See :func:`darkyolo.darknet.weights.read_weights` for the checks and ``allow_prefix``. The
    header is kept as ``model.weights_header``.
    """
    read = read_weights(path, model.config, allow_prefix=allow_prefix)
    with torch.no_grad():
        for layer, arrays in zip(model.weighted_layers(), read.layers):
            for tensor, array in zip(_layer_tensors(layer), arrays):
                tensor.copy_(torch.from_numpy(array.copy()).view_as(tensor))
    model.weights_header = read.header
    return len(read.layers)


def save_darknet_weights(
    model: Darknet,
    path: str | Path,
    header: WeightsHeader | None = None,
    *,
    cutoff: int | None = None,
) -> None:
    """Write ``model`` as a ``.weights`` file (the first ``cutoff`` weighted layers if given).

    ``header`` defaults to the one the model was loaded with, else version 0.2.0 with ``seen=0``.
    """
    header = header or getattr(model, "weights_header", None) or WeightsHeader()
    layers = [
        [t.detach().to("cpu", torch.float32).contiguous().numpy().astype(np.float32) for t in _layer_tensors(layer)]
        for layer in model.weighted_layers()[:cutoff]
    ]  # fmt: skip
    write_weights(path, header, layers)


def read_torch_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, failures as a one-line WeightsError.

    A pickle that asks for anything but tensors and plain values (a class, a function such as
    ``os.system``) is refused without running it; the message says so instead of repeating
    torch's advice to retry with ``weights_only=False``.
    """
    try:
        with warnings.catch_warnings():  # torch asks to "file an issue" for odd pickle protocols
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path}: refused: the file asks to unpickle more than tensors and plain values "
            f"({_unpickling_reason(error)}); a darkyolo checkpoint never does, and loading it "
            "could run code"
        ) from None
    except Exception as error:  # a damaged zip, a truncated file, a bad tensor record, ...
        raise WeightsError(
            f"{path}: not a loadable checkpoint ({_clip(' '.join(str(error).split()))})"
        ) from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a darkyolo checkpoint safely (:func:`read_torch_file`) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    return checked_checkpoint(read_torch_file(path), path)


def is_darkyolo_checkpoint(data: Any) -> bool:
    """Whether ``data`` (read from a ``.pt``) is a darkyolo checkpoint, not a plain state dict."""
    return isinstance(data, dict) and data.get("format") == FORMAT


def checked_checkpoint(data: Any, path: str | Path) -> dict[str, Any]:
    """``data`` read from ``path``, if it is a darkyolo checkpoint this darkyolo can read."""
    if not is_darkyolo_checkpoint(data):
        raise WeightsError(f"{path}: not a darkyolo training checkpoint (no format={FORMAT!r})")
    if int(data.get("version", 0)) > VERSION:
        raise WeightsError(
            f"{path}: checkpoint version {data['version']} is newer than this darkyolo reads "
            f"({VERSION})"
        )
    return data


def model_state(checkpoint: Any, path: str | Path) -> dict[str, Any]:
    """The network's state dict in what a ``.pt`` held: a darkyolo checkpoint's ``model`` entry,
    or a plain state dict."""
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: checkpoint holds no model state dict")
    return state


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """The one informative paragraph of torch's weights-only refusal (not its advice)."""
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue")
    paragraphs = [p.strip() for p in str(error).split("\n\n")]
    reason = " ".join(p for p in paragraphs if p and not p.startswith(advice))
    return _clip(" ".join(reason.replace("WeightsUnpickler error:", "").split()) or "unsafe")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def state_dict_misfit(
    own: dict[str, torch.Tensor], state: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """How ``state`` fails to fit a network whose state dict is ``own``: the names present in both
    with another shape or type, and the names of ``own`` that ``state`` lacks."""
    mismatched = [
        k
        for k, v in state.items()
        if k in own and (not isinstance(v, torch.Tensor) or own[k].shape != v.shape)
    ]
    missing = [k for k in own if k not in state]
    return mismatched, missing


def load_weights(model: Darknet, path: str | Path, *, allow_prefix: bool = False) -> int:
    """Load a Darknet ``.weights`` file or a darkyolo checkpoint (``.pt``) into ``model``.

    Checkpoints are read with ``torch.load(weights_only=True)``: a pickle that would run code is
    refused. Returns the number of conv layers (``.weights``) or tensors (checkpoint) loaded.
    """
    path = Path(path)
    if not is_checkpoint(path):
        return load_darknet_weights(model, path, allow_prefix=allow_prefix)
    return load_checkpoint_state(model, read_torch_file(path), path, allow_prefix=allow_prefix)


def load_checkpoint_state(
    model: Darknet, checkpoint: Any, path: str | Path, *, allow_prefix: bool = False
) -> int:
    """Fill ``model`` from a checkpoint already read from ``path`` (a darkyolo checkpoint's
    ``model`` entry, or a plain state dict); refused by name when it does not fit."""
    state = model_state(checkpoint, path)
    own = model.state_dict()
    mismatched, missing = state_dict_misfit(own, state)
    if mismatched or (missing and not allow_prefix) or len(missing) == len(own):
        first = (mismatched or missing)[0]
        raise WeightsError(
            f"{path}: checkpoint does not fit this cfg ({len(mismatched)} tensors of another shape "
            f"or type, {len(missing)} of {len(own)} missing; first: {first})"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return len(own) - len(missing)


def load_model(cfg: str | Path | NetworkConfig, weights: str | Path | None = None) -> Darknet:
    """Build the network for ``cfg`` (bundled name, path or parsed config), load ``weights``.

    ``weights`` may be a Darknet ``.weights`` file (full, or a ``.conv.N`` prefix: the layers it
    does not hold keep their initial values) or a darkyolo checkpoint. The model is returned in
    eval mode.
    """
    config = cfg if isinstance(cfg, NetworkConfig) else load_cfg(cfg)
    model = Darknet(config)
    if weights is not None:
        load_weights(model, weights, allow_prefix=True)
    return model.eval()
