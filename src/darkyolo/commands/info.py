"""``darkyolo info [MODEL]``: layers, output shapes, parameters and FLOPs; with no model, the
bundled trained models and cfgs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from darkyolo.values import add_input_size, input_hw

if TYPE_CHECKING:
    from darkyolo.models.darknet import Darknet

HELP = "list the bundled models, or show one's layers, output shapes, parameters and FLOPs"

#: checkpoint fields :func:`checkpoint_summary` reports, with their labels
_CHECKPOINT_FIELDS = (("epoch", "epochs"), ("updates", "updates"), ("seen", "pictures seen"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        nargs="?",
        help="trained model name (yolov3-tiny-coco), bundled cfg name (yolov3), .cfg path, "
        "training checkpoint (.pt) or ONNX export (.onnx); none: list the bundled models",
    )
    add_input_size(
        parser, "input size: one side, or height and width (default: the cfg's [net] size)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


def describe(model: Darknet, height: int, width: int) -> str:
    """The layer table and a summary line, as ``darkyolo info`` prints it."""
    from darkyolo.darknet.shapes import infer_shapes

    shapes = infer_shapes(model.config, height, width)
    params = [sum(p.numel() for p in layer.parameters()) for layer in model.layers]
    lines = [f"{'layer':>5}  {'type':<9}{'':<28}{'output':>18}  {'params':>10}  {'GFLOPs':>7}"]
    for shape, count in zip(shapes, params):
        c, h, w = shape.output
        output = f"{c} x {h} x {w}"
        gflops = f"{shape.flops / 1e9:.3f}" if shape.flops else ""
        count_text = f"{count:,}" if count else ""
        lines.append(
            f"{shape.index:>5}  {shape.kind:<9}{shape.description:<28}{output:>18}  "
            f"{count_text:>10}  {gflops:>7}"
        )
    lines.append(summary(model, height, width))
    return "\n".join(lines)


def summary(model: Darknet, height: int, width: int) -> str:
    from darkyolo.darknet.shapes import infer_shapes

    shapes = infer_shapes(model.config, height, width)
    params = sum(p.numel() for p in model.parameters())
    flops = sum(s.flops for s in shapes) / 1e9
    outputs = sum(
        head.num_anchors * shapes[i].output[1] * shapes[i].output[2]
        for i, head in zip(model.head_indices, model.heads)
    )
    task = (
        f"a classifier of {model.num_classes} classes"
        if model.task == "classify"
        else f"{len(model.heads)} head(s), {model.num_classes} classes, {outputs} boxes per image"
    )
    return (
        f"{model.config.source}: {len(shapes)} layers, {params:,} parameters, {flops:.2f} GFLOPs "
        f"at {height}x{width}, {task}"
    )


def bundled_models() -> str:
    """The trained models (name, aliases, classes, what for) and the bundled cfgs, as a table."""
    from darkyolo.darknet.cfg import bundled_cfgs, load_cfg
    from darkyolo.models.zoo import DEFAULT_MODEL, TRAINED_MODELS

    lines = ["trained models (cfg, weights and class names; --model NAME):"]
    for entry in TRAINED_MODELS:
        cfg, _, _ = entry.files()
        classes = load_cfg(cfg).num_classes
        default = " [default]" if entry.name == DEFAULT_MODEL else ""
        aliases = f" (alias {', '.join(entry.aliases)})" if entry.aliases else ""
        lines.append(f"  {entry.name}{aliases}{default}: {classes} classes; {entry.summary}")
    lines.append("architectures (cfg only; give --weights, e.g. Darknet's official .weights):")
    lines.append("  detectors: " + ", ".join(bundled_cfgs("detect")))
    lines.append("  classifiers (darkyolo classify): " + ", ".join(bundled_cfgs("classify")))
    return "\n".join(lines)


def checkpoint_summary(source) -> str:  # source: darkyolo.models.zoo.ModelSource
    """One line about a training checkpoint: how far it trained, at what size, its classes and
    its last scores."""
    checkpoint = source.checkpoint or {}
    parts = [f"{checkpoint[key]} {label}" for key, label in _CHECKPOINT_FIELDS if key in checkpoint]
    if source.trained_size:
        parts.append(f"trained at {source.trained_size}x{source.trained_size}")
    metrics = checkpoint.get("metrics") or {}
    scores = [f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)]
    names = source.names or []
    shown = ", ".join(names[:10]) + (f" ... ({len(names)})" if len(names) > 10 else "")
    line = f"{source.weights}: darkyolo checkpoint, " + ", ".join(parts)
    if scores:
        line += "; last validation " + ", ".join(scores)
    return line + (f"; classes: {shown}" if names else "")


def onnx_summary(path: str) -> str:
    """What an ONNX export is: its input and output shapes, opset, size, precision (int8 QDQ or
    float), classes and the size it was exported at."""
    import json
    from pathlib import Path

    from darkyolo.errors import DarkyoloError
    from darkyolo.extras import require

    require("export", "reading an ONNX file", ("onnx",))
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # onnx raises its own (protobuf) errors
        raise DarkyoloError(f"{path}: not a readable ONNX file ({error})") from None
    meta = {p.key: p.value for p in proto.metadata_props}

    def shape(value) -> str:
        dims = value.type.tensor_type.shape.dim
        return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"  # fmt: skip

    kinds = [node.op_type for node in proto.graph.node]
    quantized = kinds.count("QuantizeLinear")
    precision = f"int8 QDQ ({quantized} quantized tensors)" if quantized else "float32"
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    lines = [
        f"{path}: ONNX, opset {opset}, {len(kinds)} nodes, {precision}, "
        f"{Path(path).stat().st_size / 2**20:.1f} MiB"
        + (" (a darkyolo export)" if meta.get("producer") == "darkyolo" else " (not darkyolo's)"),
    ]
    for value in proto.graph.input:
        lines.append(f"  input {value.name}: {shape(value)}")
    for value in proto.graph.output:
        lines.append(f"  output {value.name}: {shape(value)}")
    if "input_height" in meta:
        lines.append(
            f"  exported at {meta['input_width']}x{meta['input_height']}, stride {meta.get('stride')}, "
            f"{meta.get('num_classes')} classes"
        )
    if "names" in meta:
        names = json.loads(meta["names"])
        lines.append("  classes: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.model is None:
        print(bundled_models())
        return 0
    if args.model.lower().endswith(".onnx"):
        print(onnx_summary(args.model))
        return 0
    from darkyolo.darknet.cfg import load_cfg
    from darkyolo.darknet.weights import is_checkpoint
    from darkyolo.models.darknet import Darknet
    from darkyolo.models.zoo import resolve_model, trained_model

    if Path(args.model).is_file() and is_checkpoint(args.model):
        source = resolve_model(None, args.model, task=None)
        print(checkpoint_summary(source))
        model = source.build()
    else:
        trained = trained_model(args.model)
        model = Darknet(load_cfg(trained.files()[0] if trained else args.model))
    size = input_hw(args.img_size)
    if size is not None:
        model.set_input_size(*size)
    height, width = model.input_size
    print(summary(model, height, width) if args.quiet else describe(model, height, width))
    return 0
