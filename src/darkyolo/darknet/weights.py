"""Read and write Darknet ``.weights`` files.

Layout (little-endian): int32 ``major``, ``minor``, ``revision``; then ``seen`` (images trained on) as
int64 when ``major*10 + minor >= 2``, else int32. Then, for each ``[convolutional]`` layer in cfg order,
float32 arrays: with batch norm ``beta[n], gamma[n], running_mean[n], running_var[n]``, without it
``bias[n]``; then the kernel ``W[n, c/groups, k, k]``. A ``.conv.N`` file holds only the first N
convolutional layers (a backbone for transfer learning).
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from darkyolo.errors import WeightsError

if TYPE_CHECKING:
    from darkyolo.models.darknet import Darknet
    from darkyolo.models.layers import ConvBNAct

_FLOAT = np.dtype("<f4")


@dataclass(frozen=True)
class WeightsHeader:
    """The header of a ``.weights`` file; ``seen`` is the number of images trained on."""

    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def wide_seen(self) -> bool:
        return self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def nbytes(self) -> int:
        return 12 + (8 if self.wide_seen else 4)

    def to_bytes(self) -> bytes:
        head = np.array([self.major, self.minor, self.revision], dtype="<i4").tobytes()
        return head + np.array([self.seen], dtype="<i8" if self.wide_seen else "<i4").tobytes()


def _conv_tensors(layer: ConvBNAct) -> list[torch.Tensor]:
    """The tensors of one conv layer in ``.weights`` order."""
    if layer.bn is not None:
        bn = layer.bn
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var, layer.conv.weight]
    if layer.conv.bias is None:  # pragma: no cover - built with bias whenever bn is absent
        raise WeightsError("a convolution without batch norm has no bias; was the model fused?")
    return [layer.conv.bias, layer.conv.weight]


def _layer_floats(layer: ConvBNAct) -> int:
    return sum(t.numel() for t in _conv_tensors(layer))


def read_header(data: bytes | np.ndarray, file: str) -> WeightsHeader:
    raw = bytes(data[:20])
    if len(raw) < 16:
        raise WeightsError(
            f"{file}: {len(raw)} bytes is too short for a .weights header (16 or 20)"
        )
    major, minor, revision = (int(v) for v in np.frombuffer(raw[:12], dtype="<i4"))
    header = WeightsHeader(major, minor, revision)
    if header.wide_seen and len(raw) < 20:
        raise WeightsError(
            f"{file}: header version {major}.{minor} needs 20 bytes, file has {len(raw)}"
        )
    seen_dtype = "<i8" if header.wide_seen else "<i4"
    seen = int(np.frombuffer(raw[12 : header.nbytes], dtype=seen_dtype)[0])
    return WeightsHeader(major, minor, revision, seen)


def load_darknet_weights(model: Darknet, path: str | Path, *, allow_prefix: bool = False) -> int:
    """Load a ``.weights`` file into ``model``; returns how many conv layers were filled.

    With ``allow_prefix`` a file that ends cleanly after N < all conv layers (a ``.conv.N`` backbone)
    is accepted. Otherwise a file too short or too long for the cfg raises :class:`WeightsError`
    naming the layer and the bytes expected, and so does a layer holding NaN or infinite values.
    The header is kept as ``model.weights_header``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(f"{path}: cannot read: {error.strerror}") from None
    header = read_header(data, str(path))
    body = data[header.nbytes :]
    if len(body) % 4:
        raise WeightsError(f"{path}: body of {len(body)} bytes is not a whole number of float32")
    floats = np.frombuffer(body, dtype=_FLOAT)
    layers = model.conv_layers()
    conv_indices = [i for i, m in enumerate(model.layers) if m in layers]
    expected_total = sum(_layer_floats(layer) for layer in layers)
    offset = 0
    loaded = 0
    for number, (layer, index) in enumerate(zip(layers, conv_indices)):
        need = _layer_floats(layer)
        if offset == len(floats) and allow_prefix and number > 0:
            break
        if offset + need > len(floats):
            have = (len(floats) - offset) * 4
            raise WeightsError(
                f"{path}: too short for the cfg: layer {index} (convolutional #{number + 1} of "
                f"{len(layers)}, cfg line {model.config.layers[index].line}) needs {need * 4} bytes, "
                f"{have} are left; the cfg "
                f"needs {header.nbytes + expected_total * 4} bytes in all, the file has {len(data)}. "
                "Is this the .weights file for this cfg?"
            )
        bad = int(np.count_nonzero(~np.isfinite(floats[offset : offset + need])))
        if bad:
            raise WeightsError(
                f"{path}: layer {index} (convolutional #{number + 1} of {len(layers)}, cfg line "
                f"{model.config.layers[index].line}) holds {bad} NaN or infinite values of {need}; "
                "the file is damaged (or was saved from a diverged run)"
            )
        with torch.no_grad():
            for tensor in _conv_tensors(layer):
                chunk = floats[offset : offset + tensor.numel()]
                tensor.copy_(torch.from_numpy(chunk.copy()).view_as(tensor))
                offset += tensor.numel()
        loaded += 1
    if loaded == len(layers) and offset != len(floats):
        extra = (len(floats) - offset) * 4
        raise WeightsError(
            f"{path}: {extra} bytes left over after the last conv layer; the cfg needs "
            f"{header.nbytes + expected_total * 4} bytes, the file has {len(data)}. "
            "Is this the .weights file for this cfg (same classes and filters)?"
        )
    model.weights_header = header
    return loaded


def save_darknet_weights(
    model: Darknet,
    path: str | Path,
    header: WeightsHeader | None = None,
    *,
    cutoff: int | None = None,
) -> None:
    """Write ``model`` as a ``.weights`` file (the first ``cutoff`` conv layers if given).

    ``header`` defaults to the one the model was loaded with, else version 0.2.0 with ``seen=0``.
    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    header = header or getattr(model, "weights_header", None) or WeightsHeader()
    layers = model.conv_layers()[:cutoff]
    parts = [header.to_bytes()]
    for layer in layers:
        for tensor in _conv_tensors(layer):
            parts.append(
                tensor.detach()
                .to("cpu", torch.float32)
                .contiguous()
                .numpy()
                .astype(_FLOAT)
                .tobytes()
            )
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            for part in parts:
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:  # a failed write (a full disk) leaves the old file and no temporary behind
        tmp.unlink(missing_ok=True)


def safe_torch_load(path: str | Path) -> Any:
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


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """The one informative paragraph of torch's weights-only refusal (not its advice)."""
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue")
    paragraphs = [p.strip() for p in str(error).split("\n\n")]
    reason = " ".join(p for p in paragraphs if p and not p.startswith(advice))
    return _clip(" ".join(reason.replace("WeightsUnpickler error:", "").split()) or "unsafe")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a torch checkpoint (a zip: darkyolo's, or a plain state dict) rather
    than a Darknet ``.weights`` file. A missing file raises :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    with open(path, "rb") as handle:
        return handle.read(2) == b"PK"


def load_weights(model: Darknet, path: str | Path, *, allow_prefix: bool = False) -> int:
    """Load a Darknet ``.weights`` file or a darkyolo checkpoint (``.pt``) into ``model``.

    Checkpoints are read with ``torch.load(weights_only=True)``: a pickle that would run code is
    refused. Returns the number of conv layers (``.weights``) or tensors (checkpoint) loaded.
    """
    path = Path(path)
    if not is_checkpoint(path):
        return load_darknet_weights(model, path, allow_prefix=allow_prefix)
    checkpoint = safe_torch_load(path)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: checkpoint holds no model state dict")
    own = model.state_dict()
    mismatched = [
        k
        for k, v in state.items()
        if k in own and (not isinstance(v, torch.Tensor) or own[k].shape != v.shape)
    ]
    missing = [k for k in own if k not in state]
    if mismatched or (missing and not allow_prefix) or len(missing) == len(own):
        first = (mismatched or missing)[0]
        raise WeightsError(
            f"{path}: checkpoint does not fit this cfg ({len(mismatched)} tensors of another shape "
            f"or type, {len(missing)} of {len(own)} missing; first: {first})"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return len(own) - len(missing)
