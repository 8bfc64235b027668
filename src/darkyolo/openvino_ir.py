"""OpenVINO IR export: float32, half, or int8 through NNCF, from darkyolo's float32 ONNX export.

:func:`ir_from_onnx` reads the ONNX bytes of :func:`darkyolo.export.onnx_bytes` into an OpenVINO
model; its metadata (classes, size, stride, names, NMS) travels as ``rt_info["framework"]``, which
:class:`~darkyolo.inference.backends.OpenVinoBackend` reads from either file. :func:`quantize_ir`
is NNCF's post-training quantization on the same letterboxed calibration pictures as
``export --int8`` (:func:`darkyolo.quantize.load_calibration`), with the same layers kept in
float32 (each head's last convolution and the decode after it, :func:`darkyolo.quantize.float_nodes`).
:func:`save_ir` writes ``.xml`` and ``.bin``: float32 weights, or with ``half`` float16 weights and
a request to run in bfloat16 or float16 where the CPU has them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkyolo.errors import DarkyoloError
from darkyolo.extras import require


@functools.cache
def openvino_core() -> Any:
    """The process's one ``openvino.Core``: it stays for the life of the process, since the models
    it reads and compiles run code from the libraries it loaded (a Core gone first leaves them to
    crash when they are freed)."""
    require("openvino", "OpenVINO", ("openvino",))
    import openvino as ov

    return ov.Core()


def ir_from_onnx(onnx: bytes) -> Any:
    """An ``openvino.Model`` from ONNX bytes (darkyolo's metadata kept)."""
    require("openvino", "the OpenVINO export", ("openvino",))
    return openvino_core().read_model(onnx)


def quantize_ir(model: Any, pictures: np.ndarray, keep_float: Sequence[str]) -> Any:
    """The int8 model NNCF makes of ``model`` (an ``openvino.Model``), calibrated on ``pictures``
    (float32 ``[N, H, W, 3]`` letterboxed, 0..1), with the ONNX nodes ``keep_float`` left float32
    (a convolution's OpenVINO name gains ``/WithoutBiases``, its bias ``Add`` keeps the name).
    Weights symmetric per channel, activations asymmetric per tensor (NNCF's ``MIXED`` preset):
    coco128 mAP@.5 0.3065 -> 0.3010 against 0.2885 with the symmetric default
    (docs/inference.md)."""
    require("openvino", "int8 through NNCF")
    import logging

    # NNCF looks for PyTorch's CUDA tools on the way; their "no CUDA runtime" warning is not ours
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import nncf

    if not len(pictures):
        raise DarkyoloError("no calibration pictures")
    batches = [np.ascontiguousarray(p[None].transpose(0, 3, 1, 2)) for p in pictures]
    names = [*keep_float, *(f"{name}/WithoutBiases" for name in keep_float)]
    return nncf.quantize(
        model,
        nncf.Dataset(batches),
        # asymmetric activation ranges, as the ONNX int8 export's uint8 ones: leaky-ReLU outputs
        # are nearly all positive, and a symmetric range spends half its levels on nothing
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(names=names, validate=False),
    )


def save_ir(model: Any, path: str | Path, half: bool = False) -> Path:
    """Write ``model`` as ``path`` (``.xml``) and its ``.bin``; ``half``: float16 weights, and
    ``rt_info`` asks the backend for half precision (bfloat16 or float16 where the CPU has it)."""
    import openvino as ov

    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise DarkyoloError(f"{path}: an OpenVINO IR is an .xml file (with a .bin beside it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.set_rt_info("half" if half else "f32", ["framework", "precision"])
    ov.save_model(model, str(path), compress_to_fp16=half)
    return path


def compile_ir(
    model: Any, *, throughput: bool = False, precision: str = "f32", threads: int | None = None
) -> Any:
    """``model`` compiled for the CPU: OpenVINO's latency hint (one request, all threads) or its
    throughput hint (several streams), in ``precision`` (``f32``, ``bf16`` or ``f16``)."""
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "THROUGHPUT" if throughput else "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return openvino_core().compile_model(model, "CPU", config)


def ir_runner(
    source: str | Path | Any, threads: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``x: float32 [B, 3, H, W] -> rows`` through OpenVINO, float32 precision (an IR path or an
    ``openvino.Model``), for checks and agreement reports."""
    model = openvino_core().read_model(str(source)) if isinstance(source, (str, Path)) else source
    request = compile_ir(model, threads=threads).create_infer_request()
    return lambda x: request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})[0].copy()
