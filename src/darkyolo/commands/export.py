"""``darkyolo export [--model NAME_OR_CFG] [--weights FILE] --format onnx|weights``.

The model options mean what they mean for ``detect`` (see :mod:`darkyolo.models.zoo`): with none,
the default COCO model is exported; a checkpoint brings its own cfg and class names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from darkyolo.commands.model_args import add_model_arguments
from darkyolo.errors import DarkyoloError

HELP = "export a model to ONNX (checked in ONNX Runtime) or to Darknet .weights"

#: largest ONNX-vs-PyTorch difference accepted by the check
TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, onnx=False)
    parser.add_argument("--format", choices=("onnx", "weights"), default="onnx")
    parser.add_argument(
        "--output", "-o", type=Path, help="output file (default: <weights or cfg stem>.<format>)"
    )
    parser.add_argument(
        "--img-size",
        type=int,
        nargs="+",
        metavar="SIDE",
        help="example/default input size for ONNX: one side, or height and width",
    )
    parser.add_argument("--names", type=Path, help=".names file to embed in the ONNX metadata")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--static", action="store_true", help="fixed batch and input size")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime check")


def run(args: argparse.Namespace) -> int:
    from darkyolo.engine.predictor import class_names
    from darkyolo.export import check_onnx, export_onnx, export_weights
    from darkyolo.models.zoo import resolve_model

    source = resolve_model(args.model, args.weights, random_weights=args.random_weights)
    for note in source.notes:
        print(note)
    model = source.build()
    stem = Path(source.weights or model.config.source).stem
    output = args.output or Path(f"{stem}.{args.format}")
    if args.format == "weights":
        if source.weights and output.resolve() == source.weights.resolve():
            raise DarkyoloError(f"{output}: refusing to overwrite the input weights")
        export_weights(model, output)
        print(f"wrote {output}")
        return 0

    size = None
    if args.img_size:
        if len(args.img_size) > 2:
            raise DarkyoloError(
                f"--img-size takes one side or height and width, got {args.img_size}"
            )
        sides = list(args.img_size) * (2 if len(args.img_size) == 1 else 1)
        size = (sides[0], sides[1])
        model.set_input_size(*size)
    names = class_names(model.num_classes, args.names or source.names)
    export_onnx(model, output, size, names=names, opset=args.opset, dynamic=not args.static)
    print(f"wrote {output}")
    if not args.no_check:
        h, w = model.input_size
        shapes = [(1, h, w)] if args.static else None
        diff = check_onnx(model, output, shapes)
        verdict = "ok" if diff <= TOLERANCE else "TOO LARGE"
        print(f"ONNX Runtime vs PyTorch: max difference {diff:.2e} (absolute; {verdict})")
        if diff > TOLERANCE:
            raise DarkyoloError(
                f"{output}: ONNX Runtime differs from PyTorch by {diff:.2e} (> {TOLERANCE})"
            )
    return 0
