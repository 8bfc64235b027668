"""Read and write Darknet ``.weights`` files: the format alone, arrays in and out, no torch.

Layout (little-endian): int32 ``major``, ``minor``, ``revision``; then ``seen`` (images trained on) as
int64 when ``major*10 + minor >= 2``, else int32. Then, for each layer with weights in cfg order,
float32 arrays:

* ``[convolutional]``: with batch norm ``beta[n], gamma[n], running_mean[n], running_var[n]``,
  without it ``bias[n]``; then the kernel ``W[n, c/groups, k, k]``;
* ``[connected]``: ``bias[n]`` (batch norm's beta), the matrix ``W[n, inputs]``, then with batch
  norm ``gamma[n], running_mean[n], running_var[n]``: another order than conv's.

A ``.conv.N`` file (Darknet's ``partial``) holds only the layers before cfg layer N. How many
floats each layer holds follows from the cfg (:func:`weighted_layer_sizes`); putting them into a
network is :mod:`darkyolo.models.io`'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkyolo.darknet.cfg import ConnectedSpec, ConvSpec, NetworkConfig
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.errors import WeightsError

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


@dataclass(frozen=True)
class LayerSize:
    """One weighted layer's share of a ``.weights`` file: its cfg layer ``index``, ``kind``
    (``convolutional`` or ``connected``) and line, and the float counts of its arrays in file
    order (see the module docstring)."""

    index: int
    line: int
    counts: tuple[int, ...]
    kind: str = "convolutional"

    @property
    def floats(self) -> int:
        return sum(self.counts)


def weighted_layer_sizes(config: NetworkConfig) -> list[LayerSize]:
    """What each layer with weights holds in a ``.weights`` file, from the cfg alone."""
    shapes = infer_shapes(config, config.net.height, config.net.width)
    sizes = []
    for index, (spec, shape) in enumerate(zip(config.layers, shapes)):
        if isinstance(spec, ConvSpec):
            n = spec.filters
            kernel = n * (shape.inputs[0][0] // spec.groups) * spec.size * spec.size
            counts = (n, n, n, n, kernel) if spec.batch_normalize else (n, kernel)
            sizes.append(LayerSize(index, spec.line, counts))
        elif isinstance(spec, ConnectedSpec):
            c, h, w = shape.inputs[0]
            n = spec.output
            matrix = n * c * h * w
            counts = (n, matrix, n, n, n) if spec.batch_normalize else (n, matrix)
            sizes.append(LayerSize(index, spec.line, counts, "connected"))
    return sizes


def weights_file_size(config: NetworkConfig, header: WeightsHeader | None = None) -> int:
    """Bytes of the full ``.weights`` file for ``config`` (header included)."""
    header = header or WeightsHeader()
    return header.nbytes + 4 * sum(size.floats for size in weighted_layer_sizes(config))


@dataclass(frozen=True)
class WeightsFile:
    """A read ``.weights`` file: its header and, per convolutional layer present, its arrays."""

    header: WeightsHeader
    layers: list[list[np.ndarray]]


def read_weights(
    path: str | Path, config: NetworkConfig, *, allow_prefix: bool = False
) -> WeightsFile:
    """Read and check a ``.weights`` file against ``config``.

    With ``allow_prefix`` a file that ends cleanly after N < all weighted layers (a ``.conv.N``
    backbone) is accepted. Otherwise a file too short or too long for the cfg raises
    :class:`WeightsError` naming the layer and the bytes expected, and so does a layer holding NaN
    or infinite values.
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
    sizes = weighted_layer_sizes(config)
    expected_total = sum(size.floats for size in sizes)
    offset = 0
    layers: list[list[np.ndarray]] = []
    for number, size in enumerate(sizes):
        need = size.floats
        if offset == len(floats) and allow_prefix and number > 0:
            break
        where = f"layer {size.index} ({size.kind} #{number + 1} of {len(sizes)} weighted layers, cfg line {size.line})"
        if offset + need > len(floats):
            have = (len(floats) - offset) * 4
            raise WeightsError(
                f"{path}: too short for the cfg: {where} needs {need * 4} bytes, {have} are left; "
                f"the cfg needs {header.nbytes + expected_total * 4} bytes in all, the file has "
                f"{len(data)}. Is this the .weights file for this cfg?"
            )
        bad = int(np.count_nonzero(~np.isfinite(floats[offset : offset + need])))
        if bad:
            raise WeightsError(
                f"{path}: {where} holds {bad} NaN or infinite values of {need}; the file is "
                "damaged (or was saved from a diverged run)"
            )
        arrays = []
        for count in size.counts:
            arrays.append(floats[offset : offset + count])
            offset += count
        layers.append(arrays)
    if len(layers) == len(sizes) and offset != len(floats):
        extra = (len(floats) - offset) * 4
        raise WeightsError(
            f"{path}: {extra} bytes left over after the last weighted layer; the cfg needs "
            f"{header.nbytes + expected_total * 4} bytes, the file has {len(data)}. "
            "Is this the .weights file for this cfg (same classes and filters)?"
        )
    return WeightsFile(header, layers)


def write_weights(path: str | Path, header: WeightsHeader, layers: list[list[np.ndarray]]) -> None:
    """Write a ``.weights`` file from per-layer float arrays in file order. The file is written
    to a temporary name and renamed, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(header.to_bytes())
            for arrays in layers:
                for array in arrays:
                    handle.write(np.ascontiguousarray(array, dtype=_FLOAT).tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:  # a failed write (a full disk) leaves the old file and no temporary behind
        tmp.unlink(missing_ok=True)


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a torch checkpoint (a zip: darkyolo's, or a plain state dict) rather
    than a Darknet ``.weights`` file. A missing file raises :class:`WeightsError`."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    with open(path, "rb") as handle:
        return handle.read(2) == b"PK"
