"""int8 ONNX: static QDQ quantization through ONNX Runtime, calibrated on the user's pictures.

:func:`quantize_onnx` takes darkyolo's float32 ONNX export (:func:`darkyolo.export.onnx_bytes`) and
returns the same graph with its convolutions in int8: weights per output channel (int8),
activations per tensor (uint8, the layout ONNX Runtime's x86 kernels are fastest with: u8 x s8),
as QuantizeLinear/DequantizeLinear pairs (QDQ) that ONNX Runtime fuses into integer kernels.
Activation ranges come from ``calibration`` pictures, letterboxed exactly as inference does
(:func:`darkyolo.data.letterbox.letterbox`), with ONNX Runtime's ``minmax``, ``entropy`` or
``percentile`` method.

Each head's last convolution (its outputs are box offsets and logits, where an int8 step would
move boxes and scores visibly) and the whole decode after it (sigmoid, exp, anchors) stay
float32: :func:`float_nodes` names them. The input and output names, shapes and row layout are
those of the float32 export, so ``detect``, ``val`` and the ``Detector`` run either file alike.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkyolo.errors import DarkyoloError, OptionError

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "minmax"


@dataclass(frozen=True)
class FloatNodes:
    """What stays float32: the heads' last convolutions and the decode nodes after them."""

    head_convs: tuple[str, ...]
    decode: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [*self.head_convs, *self.decode]


def float_nodes(proto, head_conv_positions: Sequence[int]) -> FloatNodes:
    """The nodes of ``proto`` (an ``onnx.ModelProto`` of a darkyolo export) that stay float.

    ``head_conv_positions``: the positions, among the graph's ``Conv`` nodes in order, of each
    head's last convolution (the k-th ``Conv`` of the export is the cfg's k-th convolution).
    """
    nodes = list(proto.graph.node)
    convs = [n for n in nodes if n.op_type == "Conv"]
    try:
        heads = [convs[i] for i in head_conv_positions]
    except IndexError:
        raise DarkyoloError(
            f"the ONNX graph has {len(convs)} convolutions; the heads' last ones were expected at "
            f"{list(head_conv_positions)}"
        ) from None
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    seen: set[str] = {n.name for n in heads}
    frontier = [out for n in heads for out in n.output]
    decode = []
    while frontier:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            if node.name not in seen:
                seen.add(node.name)
                decode.append(node.name)
                frontier.extend(node.output)
    order = {n.name: i for i, n in enumerate(nodes)}
    return FloatNodes(tuple(n.name for n in heads), tuple(sorted(decode, key=order.__getitem__)))


def head_conv_positions(model) -> list[int]:
    """For a :class:`~darkyolo.models.darknet.Darknet`: positions among its convolutions of the
    one right before each head."""
    convs = model.conv_layers()
    position = {id(layer): k for k, layer in enumerate(convs)}
    found = []
    for index in model.head_indices:
        before = model.layers[index - 1]
        if id(before) not in position:
            raise DarkyoloError(f"layer {index - 1} before a head is not a convolution")
        found.append(position[id(before)])
    return found


class _Pictures:
    """ONNX Runtime's CalibrationDataReader protocol over letterboxed pictures, ``batch`` at a time."""

    def __init__(self, batches: Iterator[np.ndarray], input_name: str) -> None:
        self.batches, self.input_name = batches, input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:  # pragma: no cover - part of the protocol, unused by static calib
        raise NotImplementedError


def network_batches(pictures: np.ndarray, batch: int = 8) -> Iterator[np.ndarray]:
    """``pictures``: float32 ``[N, H, W, 3]`` letterboxed -> ``[b, 3, H, W]`` batches."""
    for start in range(0, len(pictures), batch):
        yield np.ascontiguousarray(pictures[start : start + batch].transpose(0, 3, 1, 2))


def quantize_onnx(
    fp32: bytes,
    pictures: np.ndarray,
    keep_float: Sequence[str],
    method: str = DEFAULT_METHOD,
    extra_metadata: dict[str, str] | None = None,
) -> bytes:
    """int8 QDQ model bytes from float32 export bytes, calibrated on ``pictures`` (float32
    ``[N, H, W, 3]`` in 0..1, letterboxed); ``keep_float`` node names stay float32."""
    from darkyolo.extras import require

    require("export", "int8 quantization")
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        create_calibrator,
        quantize_static,
    )
    from onnxruntime.quantization.calibrate import save_tensors_data

    if method not in CALIBRATION_METHODS:
        raise OptionError(
            f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}"
        )
    if not len(pictures):
        raise DarkyoloError("no calibration pictures")
    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    source = onnx.load_from_string(fp32)
    metadata = {p.key: p.value for p in source.metadata_props}
    input_name = source.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        ranges = Path(tmp) / "ranges.json"
        fp32_path.write_bytes(fp32)
        # The activation ranges are computed here rather than inside quantize_static, which gives
        # the entropy method as many histogram bins as quantized levels (128): its search for a
        # threshold then has one candidate, the full range, and it equals minmax. 2048 bins,
        # as TensorRT's entropy calibration uses, give it the choice it is meant to have.
        calibrator = create_calibrator(
            fp32_path,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=calibrate,
            extra_options={"num_bins": 2048, "num_quantized_bins": 128}
            if method == "entropy"
            else {},
        )
        calibrator.collect_data(_Pictures(network_batches(pictures), input_name))
        save_tensors_data(calibrator.compute_data(), ranges)
        del calibrator
        quantize_static(
            str(fp32_path),
            str(int8_path),
            None,
            calibration_cache_path=ranges,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # 7-bit weights: CPUs without VNNI multiply u8 x s8 pairwise into int16
            # (vpmaddubsw), which saturates with full-range weights (255 x 127 x 2 > 32767).
            # With them an AVX2-only EPYC kept 87% of the float32 detections against 90%+.
            reduce_range=True,
            nodes_to_exclude=list(keep_float),
            calibrate_method=calibrate,
        )
        quantized = onnx.load(str(int8_path))
    metadata.update(extra_metadata or {})
    del quantized.metadata_props[:]
    for key, value in metadata.items():
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    quantized.doc_string = source.doc_string + " (int8)"
    return quantized.SerializeToString()


@dataclass(frozen=True)
class Agreement:
    """int8 against float32 on the same pictures.

    ``mean_score_diff``/``max_score_diff``: over every output row, the best class score
    (objectness x class probability). ``matched``: of the float32 detections (score >= ``conf``,
    after NMS), those with an int8 detection of the same class at IoU >= 0.5.
    """

    pictures: int
    mean_score_diff: float
    max_score_diff: float
    detections: int
    matched: int
    conf: float

    def lines(self) -> list[str]:
        share = self.matched / self.detections if self.detections else float("nan")
        return [
            f"agreement with float32 on {self.pictures} calibration pictures: best-class score "
            f"difference mean {self.mean_score_diff:.4f}, max {self.max_score_diff:.4f}; "
            f"{self.matched}/{self.detections} float32 boxes (score >= {self.conf}) matched by "
            f"int8 at IoU >= 0.5 ({100 * share:.1f}%)"
        ]


def agreement(
    run_fp32: Callable[[np.ndarray], np.ndarray],
    run_int8: Callable[[np.ndarray], np.ndarray],
    pictures: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.45,
) -> Agreement:
    """Run both networks (``x: float32 [B, 3, H, W] -> rows``; ONNX Runtime or OpenVINO) on
    ``pictures`` (float32 ``[N, H, W, 3]``) and compare (see :class:`Agreement`)."""
    import torch
    from torchvision.ops import box_iou

    from darkyolo.postprocess import postprocess

    input_hw = pictures.shape[1:3]
    diffs, detections, matched = [], 0, 0
    for batch in network_batches(pictures):
        a, b = run_fp32(batch), run_int8(batch)
        best = [(rows[..., 5:] * rows[..., 4:5]).max(axis=-1) for rows in (a, b)]
        diffs.append(np.abs(best[0] - best[1]).ravel())
        found = [postprocess(torch.from_numpy(r), input_hw, conf, iou) for r in (a, b)]
        for ref, new in zip(*found):
            detections += len(ref.labels)
            if not len(ref.labels) or not len(new.labels):
                continue
            overlap = box_iou(ref.boxes, new.boxes)
            overlap[ref.labels[:, None] != new.labels[None, :]] = 0
            matched += int((overlap.max(dim=1).values >= 0.5).sum())
    every = np.concatenate(diffs)
    return Agreement(
        len(pictures), float(every.mean()), float(every.max()), detections, matched, conf
    )


def calibration_metadata(method: str, pictures: int, keep: FloatNodes) -> dict[str, str]:
    """What the int8 file records about itself in its metadata."""
    return {
        "quantization": json.dumps(
            {
                "format": "QDQ int8 (weights per channel s8, activations u8)",
                "calibration": method,
                "pictures": pictures,
                "float32_nodes": keep.names,
            }
        )
    }


def calibration_images(source: str | Path) -> list[Path]:
    """Pictures to calibrate on: a ``.data`` file's or ``data.yaml``'s train split, or a folder,
    glob, picture or ``.txt`` list (as ``detect`` takes them)."""
    from darkyolo.data.images import collect_sources

    if str(source).lower().endswith((".data", ".yaml", ".yml")):
        from darkyolo.data.layouts import load_dataset

        return list(load_dataset(source).images("train"))
    found = collect_sources([source])
    if found.missing and not found.images:
        raise OptionError(f"--calib {source}: {found.missing[0]}")
    return found.images


def load_calibration(
    images: Sequence[Path], count: int, input_hw: tuple[int, int]
) -> tuple[np.ndarray, int]:
    """Up to ``count`` of ``images``, evenly spread, read and letterboxed as inference does ->
    (float32 ``[n, H, W, 3]``, n). A picture that cannot be read raises :class:`DataError`
    naming it."""
    from darkyolo.data.images import read_image
    from darkyolo.data.letterbox import letterbox

    if count < 1:
        raise OptionError(f"--calib-images must be at least 1, got {count}")
    if not images:
        raise DarkyoloError("no calibration pictures found")
    picks = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int))
    pictures = np.stack([letterbox(read_image(images[i]), input_hw)[0] for i in picks])
    return pictures.astype(np.float32), len(picks)


@dataclass
class Int8Export:
    """What :func:`export_int8` wrote and what it costs."""

    path: Path
    what: str
    size: int
    float_size: int
    keep: FloatNodes
    agreement: Agreement
    #: a line when the calibration source held fewer pictures than asked for
    warning: str | None = None

    def lines(self) -> list[str]:
        return [
            f"wrote {self.path}: {self.what}, {self.size / 2**20:.1f} MiB (float32 "
            f"{self.float_size / 2**20:.1f} MiB)",
            f"kept float32: the heads' last convolutions {', '.join(self.keep.head_convs)} and "
            f"the {len(self.keep.decode)} decode nodes after them (sigmoid, exp, anchors)",
            *self.agreement.lines(),
        ]


def export_int8(
    model,
    fp32: bytes,
    output: Path,
    file_format: str,
    calib: str | Path,
    count: int = 64,
    method: str = DEFAULT_METHOD,
) -> Int8Export:
    """Quantize ``model``'s float32 ONNX export ``fp32`` on ``count`` pictures of ``calib`` (a
    dataset, folder, glob or list), ONNX Runtime's QDQ for ``file_format`` ``onnx``, NNCF for
    ``openvino``; write it to ``output`` and measure its agreement with float32 on those
    pictures. The quantizers' own advice and progress lines are silenced."""
    import contextlib
    import io
    import logging

    import onnx

    from darkyolo.export import onnx_runner, write_file

    images = calibration_images(calib)
    pictures, used = load_calibration(images, count, model.input_size)
    warning = None
    if used < count:
        warning = f"{calib} holds {len(images)} pictures: calibrating on {used}, not {count}"
    keep = float_nodes(onnx.load_from_string(fp32), head_conv_positions(model))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if file_format == "onnx":
                metadata = calibration_metadata(method, used, keep)
                int8 = quantize_onnx(fp32, pictures, keep.names, method, metadata)
                write_file(output, int8)
                size, what = len(int8), f"int8 QDQ, calibrated on {used} pictures ({method})"
                runners = onnx_runner(fp32), onnx_runner(int8)
            else:
                from darkyolo.openvino_ir import ir_from_onnx, ir_runner, quantize_ir, save_ir

                save_ir(quantize_ir(ir_from_onnx(fp32), pictures, keep.names), output)
                size = output.stat().st_size + output.with_suffix(".bin").stat().st_size
                what = f"OpenVINO IR int8 (NNCF), calibrated on {used} pictures"
                runners = ir_runner(ir_from_onnx(fp32)), ir_runner(output)
    finally:
        root.setLevel(level)
    return Int8Export(output, what, size, len(fp32), keep, agreement(*runners, pictures), warning)
