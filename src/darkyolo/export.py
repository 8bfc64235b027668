"""Export a network: ONNX (decoded rows, dynamic batch and input size) or Darknet ``.weights``.

The ONNX graph takes ``images: float32 [B, 3, H, W]`` (RGB, 0..1, H and W multiples of the stride)
and returns ``detections: float32 [B, N, 5+C]``, the rows of :meth:`Darknet.decode` (cx, cy, w, h
normalised to the input, objectness, class probabilities); N follows H and W. Batch norm is folded
first. The file's metadata records ``num_classes``, ``input_height``, ``input_width``, ``stride``
and, when given, ``names`` (JSON), and the cfg's ``nms_kind``/``beta_nms`` when not the default, so
a runtime needs nothing else.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from darkyolo.darknet.weights import WeightsHeader
from darkyolo.errors import DarkyoloError, WeightsError
from darkyolo.inference.optimize import inference_copy
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import save_darknet_weights
from darkyolo.postprocess import NmsMethod

INPUT_NAME = "images"
OUTPUT_NAME = "detections"
DEFAULT_OPSET = 17


def _export_graph(model: Darknet, input_hw: tuple[int, int], opset: int, dynamic: bool) -> bytes:
    net = inference_copy(model, in_place=False).cpu().float()
    example = torch.rand(1, 3, *input_hw)
    axes = (
        {
            INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            OUTPUT_NAME: {0: "batch", 1: "rows"},
        }
        if dynamic
        else None
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is the one that needs no extra package (onnxscript); its
        # deprecation notice and the tracer's notes on shape arithmetic are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def onnx_bytes(
    model: Darknet,
    input_hw: tuple[int, int] | None = None,
    *,
    names: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
) -> bytes:
    """The serialized ONNX model for ``model`` (which is not changed; a fused copy is traced).

    ``input_hw`` is the example size for tracing and the default size in the metadata
    (default ``model.input_size``).
    """
    from darkyolo.extras import require

    require("export", "ONNX export", ("onnx", "onnxruntime"))
    import onnx

    input_hw = tuple(input_hw or model.input_size)  # type: ignore[assignment]
    stride = model.stride
    if input_hw[0] % stride or input_hw[1] % stride:
        raise DarkyoloError(f"input size {input_hw} is not a multiple of the stride {stride}")
    proto = onnx.load_from_string(_export_graph(model, input_hw, opset, dynamic))
    metadata = {
        "producer": "darkyolo",
        "num_classes": str(model.num_classes),
        "input_height": str(input_hw[0]),
        "input_width": str(input_hw[1]),
        "stride": str(stride),
        "output": "decoded rows: cx, cy, w, h (normalised), objectness, class probabilities",
    }
    nms = NmsMethod.of(model)
    if nms.kind != "default":  # the cfg's nms_kind, for runtimes that follow it
        metadata["nms_kind"], metadata["beta_nms"] = nms.kind, repr(nms.beta)
    if names is not None:
        metadata["names"] = json.dumps(list(names))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"darkyolo export of {Path(model.config.source).name}"
    return proto.SerializeToString()


def export_onnx(
    model: Darknet,
    path: str | Path,
    input_hw: tuple[int, int] | None = None,
    *,
    names: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
) -> Path:
    """Write ``model`` as an ONNX file (see :func:`onnx_bytes`); returns the path."""
    return write_file(path, onnx_bytes(model, input_hw, names=names, opset=opset, dynamic=dynamic))


def write_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, so a reader never sees half
    a file; the folder is made. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def onnx_session(model: str | Path | bytes, threads: int | None = None, spin: bool = True):
    """An ONNX Runtime CPU session with all graph optimisations (``threads`` intra-op threads;
    ``spin=False`` lets idle threads sleep)."""
    from darkyolo.extras import require

    require("export", "running an ONNX file", ("onnxruntime",))
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    if not spin:
        # idle worker threads sleep instead of spinning, leaving the cores to the rest of the
        # pipeline (reading, NMS, drawing) between network calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        where = "" if isinstance(model, bytes) else f"{model}: "
        raise WeightsError(f"{where}ONNX Runtime cannot load the model: {error}") from None


def onnx_metadata(session) -> dict[str, str]:
    """The metadata a session's model carries (see the module docstring)."""
    return dict(session.get_modelmeta().custom_metadata_map)


def check_onnx(
    model: Darknet,
    onnx_model: str | Path | bytes,
    shapes: Sequence[tuple[int, int, int]] | None = None,
    seed: int = 0,
) -> float:
    """Largest absolute difference ``max |onnx - torch|`` between ONNX Runtime and PyTorch on random
    inputs (see :func:`check_runner`)."""
    return check_runner(model, onnx_runner(onnx_model), shapes, seed)


def onnx_runner(onnx_model: str | Path | bytes) -> Callable[[np.ndarray], np.ndarray]:
    """``x: float32 [B, 3, H, W] -> rows`` through an ONNX Runtime session of ``onnx_model``."""
    session = onnx_session(onnx_model)
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def check_runner(
    model: Darknet,
    run: Callable[[np.ndarray], np.ndarray],
    shapes: Sequence[tuple[int, int, int]] | None = None,
    seed: int = 0,
) -> float:
    """Largest absolute difference between an exported network's engine (``run``) and PyTorch on
    random inputs (the output rows are normalised to the input, so 1e-4 is a meaningful bound).

    ``shapes``: ``(batch, height, width)`` to try; by default the model's size at batch 1 and a
    different, non-square size at batch 2 (checks that batch and spatial size are dynamic).
    """
    h, w = model.input_size
    stride = model.stride
    shapes = shapes or [(1, h, w), (2, max(stride, h - 2 * stride), w + stride)]
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    was_training = model.training
    model.eval()
    try:
        for batch, height, width in shapes:
            x = torch.rand(batch, 3, height, width, generator=generator)
            with torch.inference_mode():
                ref = model(x.to(next(model.parameters()).device)).float().cpu().numpy()
            out = run(x.numpy())
            if out.shape != ref.shape:
                raise DarkyoloError(f"exported output {out.shape} differs from PyTorch {ref.shape}")
            worst = max(worst, float(np.max(np.abs(out - ref))))
    finally:
        model.train(was_training)
    return worst


def export_weights(model: Darknet, path: str | Path) -> Path:
    """Write ``model`` as a Darknet ``.weights`` file (the model must not be fused)."""
    fused = [
        i
        for i, (layer, spec) in enumerate(zip(model.layers, model.config.layers))
        if getattr(spec, "batch_normalize", False) and getattr(layer, "bn", True) is None
    ]
    if fused:
        raise WeightsError(
            f"layer {fused[0]} has its batch norm folded (model.fuse()); .weights needs the "
            "unfused model"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_darknet_weights(model, path)
    return path


def export_prefix(model: Darknet, path: str | Path, layers: int) -> tuple[Path, int]:
    """Darknet's ``partial``: the weights of cfg layers ``0..layers-1`` as a ``.conv.N`` file
    (header 0.2.0, ``seen`` 0, so a detector started from it begins its schedule at zero).
    Returns the path and how many weighted layers it holds."""
    if not 0 < layers <= len(model.layers):
        raise WeightsError(f"--prefix {layers}: the model has {len(model.layers)} layers (1..{len(model.layers)})")  # fmt: skip
    weighted = {id(layer) for layer in model.weighted_layers()}
    count = sum(id(layer) in weighted for layer in list(model.layers)[:layers])
    if count == 0:
        raise WeightsError(f"--prefix {layers}: layers 0..{layers - 1} hold no weights")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_darknet_weights(model, path, WeightsHeader(0, 2, 0, 0), cutoff=count)
    return path, count
