"""The engines that run a detection network: float32 pictures ``[B, H, W, 3]`` in 0..1 in, decoded
rows ``[B, N, 5+C]`` (``cx, cy, w, h`` normalised to the input, objectness, class probabilities)
out, as a CPU tensor.

* :class:`TorchBackend`: PyTorch, batch norm folded, channels-last, ``inference_mode``;
  optionally ``torch.compile`` or bfloat16 convolutions.
* :class:`OnnxBackend`: ONNX Runtime on a darkyolo ONNX export.
* :class:`OpenVinoBackend`: OpenVINO on a darkyolo ONNX export or an OpenVINO IR (``.xml`` with its
  ``.bin``, from ``darkyolo export --format openvino``).

:func:`~darkyolo.inference.engines.choose_backend` decides which runs. :class:`ExportedNetwork`
puts an exported file behind the module interface :func:`~darkyolo.evaluation.validate.evaluate`
uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from darkyolo.device import resolve_device
from darkyolo.errors import DarkyoloError, OptionError
from darkyolo.extras import require
from darkyolo.inference.optimize import inference_copy
from darkyolo.models.darknet import Darknet
from darkyolo.postprocess import NmsMethod


class TorchBackend:
    """PyTorch inference: an :func:`inference_copy` of the model (BN folded, in-place
    activations; the caller's network is left as it was), channels-last, ``inference_mode``,
    optionally ``torch.compile``.

    ``bf16``: convolutions in bfloat16 (about twice as fast on CPUs with AVX512-BF16 or AMX; scores
    move by about 1e-2), the raw maps decoded in float32. With ``compile`` every batch is padded to
    ``batch_size`` (a new shape would recompile).
    """

    name = "torch"

    def __init__(
        self,
        model: Darknet,
        device: str | torch.device = "cpu",
        *,
        channels_last: bool = True,
        compile: bool = False,
        batch_size: int | None = None,
        bf16: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        net = inference_copy(model).to(self.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        if bf16:
            for layer in net.conv_layers():
                layer.to(torch.bfloat16)
        self.model = net
        self.nms = NmsMethod.of(model)
        self.channels_last = channels_last
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.num_classes = net.num_classes
        self.stride = net.stride
        self.input_size = net.input_size
        self.names: list[str] | None = None
        self.pad_to = batch_size if compile else None
        self._run: Callable[[Tensor], Tensor] = self._forward
        if compile:
            self._run = torch.compile(self._forward, options={"freezing": True})

    def _forward(self, x: Tensor) -> Tensor:
        raw = self.model.forward_raw(x.to(self.dtype))
        return self.model.decode(raw, (x.shape[-2], x.shape[-1]))  # decoded in float32

    def __call__(self, batch: np.ndarray) -> Tensor:
        """``batch``: float32 ``[B, H, W, 3]`` -> decoded rows ``[B, N, 5+C]`` (CPU tensor)."""
        n = batch.shape[0]
        if self.pad_to and n < self.pad_to:
            pad = np.zeros((self.pad_to - n, *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)  # channels-last view
        if not self.channels_last:
            x = x.contiguous()
        with torch.inference_mode():
            out = self._run(x)
        return out[:n].float().cpu()


class _ExportedBackend:
    """What the engines of exported files share: the metadata darkyolo writes into an export
    (:mod:`darkyolo.export`), and a one-line error for an input shape the file does not take."""

    name = "exported"
    kind = "exported"

    def _read_metadata(self, meta: dict[str, str], where: str, shape: tuple) -> None:
        if meta.get("producer") != "darkyolo":
            raise DarkyoloError(f"{where}: not a darkyolo export (no darkyolo metadata)")
        self.where = where
        self.num_classes = int(meta["num_classes"])
        self.stride = int(meta["stride"])
        self.input_size = (int(meta["input_height"]), int(meta["input_width"]))
        self.nms = NmsMethod(meta.get("nms_kind", "default"), float(meta.get("beta_nms", 0.6)))
        self.names: list[str] | None = list(json.loads(meta["names"])) if "names" in meta else None
        #: the input shape the file was exported with: a number per fixed dimension, None (or a
        #: name) per free one (``export --static`` fixes them all)
        self.input_shape = shape

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """A shape the file does not take (a fixed-shape export at another batch or size) is one
        line naming both."""
        fixed = [isinstance(d, int) and d > 0 for d in self.input_shape]
        if len(self.input_shape) != len(shape) or any(
            f and d != n for f, d, n in zip(fixed, self.input_shape, shape)
        ):
            expected = ", ".join(str(d) if f else "*" for f, d in zip(fixed, self.input_shape))
            raise DarkyoloError(
                f"{self.where}: this {self.kind} file takes input [{expected}] (batch, channels, "
                f"height, width; fixed at export), given [{', '.join(map(str, shape))}]: use that "
                "batch and --img-size, or export again without --static"
            )

    def __call__(self, batch: np.ndarray) -> Tensor:
        """``batch``: float32 ``[B, H, W, 3]`` -> decoded rows ``[B, N, 5+C]``."""
        return self.run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))

    def run(self, x: np.ndarray) -> Tensor:
        """``x``: float32 ``[B, 3, H, W]`` -> decoded rows ``[B, N, 5+C]``."""
        self.check_shape(x.shape)
        return torch.from_numpy(self._infer(np.ascontiguousarray(x, dtype=np.float32)))

    def _infer(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxBackend(_ExportedBackend):
    """ONNX Runtime (CPU) inference over a darkyolo ONNX export (see :mod:`darkyolo.export`)."""

    name = "onnxruntime"
    kind = "ONNX"

    def __init__(
        self, source: str | Path | bytes, threads: int | None = None, spin: bool = False
    ) -> None:
        from darkyolo.export import INPUT_NAME, OUTPUT_NAME, onnx_metadata, onnx_session

        self.session = onnx_session(source, threads, spin)
        self.input_name, self.output_name = INPUT_NAME, OUTPUT_NAME
        where = "<memory>" if isinstance(source, bytes) else str(source)
        shape = tuple(self.session.get_inputs()[0].shape)
        self._read_metadata(onnx_metadata(self.session), where, shape)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]


class OpenVinoBackend(_ExportedBackend):
    """OpenVINO (CPU) inference over a darkyolo ONNX export or an OpenVINO IR.

    ``throughput``: OpenVINO's throughput hint, several streams at once; a batch is split into
    single pictures that run in parallel (what ``serve`` and ``detect --batch N`` want). Otherwise
    the latency hint: one request, all threads on it. ``precision``: ``f32`` (exact to ONNX Runtime
    within float rounding), or ``half``: bfloat16 where the CPU has it natively, else float16
    where it has that, else float32 (said in :attr:`precision`). An IR exported with ``--half``
    asks for ``half``.
    """

    name = "openvino"
    kind = "OpenVINO"

    def __init__(
        self,
        source: str | Path | bytes,
        threads: int | None = None,
        *,
        throughput: bool = False,
        precision: str | None = None,
    ) -> None:
        require("openvino", "--backend openvino", ("openvino",))
        from darkyolo.openvino_ir import compile_ir, openvino_core

        self.core = openvino_core()
        where = "<memory>" if isinstance(source, bytes) else str(source)
        try:
            model = self.core.read_model(source if isinstance(source, bytes) else str(source))
        except RuntimeError as error:
            first = next((line for line in str(error).splitlines() if line.strip()), str(error))
            raise DarkyoloError(f"{where}: OpenVINO cannot read it ({first.strip()})") from None
        meta = _rt_metadata(model)
        shape = tuple(
            d.get_length() if d.is_static else None for d in model.inputs[0].get_partial_shape()
        )
        self._read_metadata(meta, where, shape)
        self.model = model
        self.precision = _runtime_precision(self.core, precision or meta.get("precision", "f32"))
        self.compiled = compile_ir(
            model, throughput=throughput, precision=self.precision, threads=threads
        )
        self.streams = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.throughput = throughput and self.streams > 1
        # one request per stream; no Python callbacks are left with OpenVINO (they outlive the
        # objects they close over, and their clean-up at garbage collection is a crash)
        count = self.streams if self.throughput else 1
        self._requests = [self.compiled.create_infer_request() for _ in range(count)]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        if len(self._requests) == 1 or len(x) == 1:
            return self._requests[0].infer({0: x})[0].copy()
        out: list[np.ndarray] = []
        for start in range(0, len(x), len(self._requests)):  # a picture per stream at a time
            chunk = x[start : start + len(self._requests)]
            for request, picture in zip(self._requests, chunk):
                request.start_async({0: picture[None]})
            for request, _ in zip(self._requests, chunk):
                request.wait()
                out.append(request.get_output_tensor(0).data.copy())
        return np.concatenate(out)


def _rt_metadata(model) -> dict[str, str]:
    """The darkyolo metadata of an OpenVINO model: an ONNX file's ``metadata_props`` arrive as
    ``rt_info["framework"]``, and an IR saved from it keeps them there."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info()["framework"]
    return {key: model.get_rt_info(["framework", key]).astype(str) for key in framework}


def _runtime_precision(core, precision: str) -> str:
    """OpenVINO's inference precision for ``f32`` or ``half`` (see :class:`OpenVinoBackend`)."""
    if precision in ("f32", "float32", "fp32"):
        return "f32"
    if precision not in ("half", "bf16", "f16"):
        raise OptionError(f"OpenVINO precision must be f32 or half, got {precision!r}")
    capabilities = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if "BF16" in capabilities:
        return "bf16"
    if "FP16" in capabilities:
        return "f16"
    return "f32"


class ExportedNetwork(torch.nn.Module):
    """An exported network (float32 or int8, ONNX Runtime or OpenVINO) behind the module interface
    that :func:`darkyolo.evaluation.validate.evaluate` uses: ``x: float32 [B, 3, H, W]`` -> decoded
    rows ``[B, N, 5+C]``, on the CPU."""

    def __init__(self, backend: OnnxBackend | OpenVinoBackend, source: str) -> None:
        super().__init__()
        self.backend = backend
        self.source = source
        self.num_classes = backend.num_classes
        self.input_size = backend.input_size
        self.nms = backend.nms

    def forward(self, x: Tensor) -> Tensor:
        return self.backend.run(np.ascontiguousarray(x.detach().float().cpu().numpy()))


def exported_backend(
    name: str,
    source: str | Path | bytes | Darknet,
    threads: int | None = None,
    *,
    throughput: bool = False,
) -> OnnxBackend | OpenVinoBackend:
    """The engine ``name`` (``onnxruntime`` or ``openvino``) over an exported file or its bytes, or
    over a built network, exported to ONNX in memory first."""
    if isinstance(source, Darknet):
        from darkyolo.export import onnx_bytes

        source = onnx_bytes(source)
    if name == "openvino":
        return OpenVinoBackend(source, threads, throughput=throughput)
    return OnnxBackend(source, threads)
