"""``darkyolo export [--model NAME_OR_CFG] [--weights FILE] --format onnx|weights [--prefix N]``.

``--prefix N`` is Darknet's ``partial``: the first N cfg layers' weights as ``<stem>.conv.N``
(``seen`` 0), the start of a detector (``darkyolo train --weights x.conv.N [--freeze N]``).

The model options mean what they mean for ``detect`` (see :mod:`darkyolo.models.zoo`): with none,
the default COCO model is exported; a checkpoint brings its own cfg and class names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from darkyolo.commands.model_args import add_model_arguments
from darkyolo.errors import DarkyoloError, OptionError
from darkyolo.values import POSITIVE_INT, add_input_size, input_hw

HELP = "export a model to ONNX (checked in ONNX Runtime), OpenVINO IR or Darknet .weights"

#: largest exported-vs-PyTorch difference accepted by the check
TOLERANCE = 1e-4
#: the file each format writes (OpenVINO: the .xml, with its .bin beside it)
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "weights": ".weights"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, onnx=False)
    parser.add_argument("--format", choices=tuple(SUFFIXES), default="onnx")
    parser.add_argument(
        "--prefix",
        type=POSITIVE_INT,
        metavar="N",
        help="write only cfg layers 0..N-1 as a Darknet .conv.N backbone (implies --format weights)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        help="output file (default: <weights or cfg stem>.onnx, .xml (+ .bin) or .weights)",
    )
    add_input_size(parser, "example/default input size for ONNX: one side, or height and width")
    parser.add_argument("--names", type=Path, help=".names file to embed in the file's metadata")
    parser.add_argument("--opset", type=POSITIVE_INT, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--static", action="store_true", help="fixed batch and input size")
    parser.add_argument("--no-check", action="store_true", help="skip the check against PyTorch")
    parser.add_argument(
        "--half",
        action="store_true",
        help="OpenVINO: float16 weights, run in bfloat16 or float16 where the CPU has them",
    )
    q = parser.add_argument_group(
        "int8 (ONNX: ONNX Runtime static quantization; OpenVINO: NNCF), the heads' last "
        "convolutions and the decode kept float32"
    )
    q.add_argument("--int8", action="store_true", help="quantize the export to int8")
    q.add_argument(
        "--calib",
        metavar="DATA_OR_FOLDER",
        help="pictures to calibrate on: a .data or data.yaml (its train split), folder, glob or list",
    )
    q.add_argument(
        "--calib-images", type=POSITIVE_INT, default=64, help="pictures used (default 64)"
    )
    q.add_argument(
        "--calib-method",
        choices=("minmax", "entropy", "percentile"),
        default="minmax",
        help="ONNX: how activation ranges are chosen (default minmax)",
    )


def run(args: argparse.Namespace) -> int:
    from darkyolo.export import export_weights
    from darkyolo.extras import require
    from darkyolo.inference.predictor import class_names
    from darkyolo.models.zoo import resolve_model

    task = None if args.prefix is not None or args.format == "weights" else "detect"
    if task == "detect":  # refused before the model loads
        what = f"darkyolo export --format {args.format}" + (" --int8" if args.int8 else "")
        require("export", what)
        if args.format == "openvino":
            require("openvino", what)
        if args.int8 and not args.calib:
            raise OptionError(
                "--int8 needs --calib DATA_OR_FOLDER: pictures like those it will see"
            )
        if args.calib and not args.int8:
            raise OptionError("--calib goes with --int8")
    if args.half and (args.format != "openvino" or args.int8):
        raise OptionError("--half is a float OpenVINO export: --format openvino without --int8")

    source = resolve_model(args.model, args.weights, random_weights=args.random_weights, task=task)
    for note in source.notes:
        print(note)
    model = source.build()
    stem = Path(source.weights or model.config.source).stem
    if args.prefix is not None:
        from darkyolo.export import export_prefix

        output = args.output or Path(f"{stem}.conv.{args.prefix}")
        if source.weights and output.resolve() == source.weights.resolve():
            raise DarkyoloError(f"{output}: refusing to overwrite the input weights")
        path, count = export_prefix(model, output, args.prefix)
        print(f"wrote {path}: layers 0..{args.prefix - 1} ({count} with weights), seen 0")
        return 0
    output = args.output or Path(f"{stem}{SUFFIXES[args.format]}")
    if args.format == "weights":
        if source.weights and output.resolve() == source.weights.resolve():
            raise DarkyoloError(f"{output}: refusing to overwrite the input weights")
        export_weights(model, output)
        print(f"wrote {output}")
        return 0

    size = input_hw(args.img_size)
    if size is not None:
        model.set_input_size(*size)
    names = class_names(model.num_classes, args.names or source.names)
    from darkyolo.export import onnx_bytes

    fp32 = onnx_bytes(model, size, names=names, opset=args.opset, dynamic=not args.static)
    if args.int8:
        _export_int8(model, fp32, output, args)
        return 0
    if args.format == "onnx":
        from darkyolo.export import onnx_runner, write_file

        write_file(output, fp32)
        print(f"wrote {output}")
        engine, run_exported = "ONNX Runtime", lambda: onnx_runner(output)
    else:
        from darkyolo.openvino_ir import ir_from_onnx, ir_runner, save_ir

        save_ir(ir_from_onnx(fp32), output, half=args.half)
        weights = "float16" if args.half else "float32"
        print(
            f"wrote {output} and {output.with_suffix('.bin').name}: OpenVINO IR, {weights} weights"
        )
        engine, run_exported = "OpenVINO", lambda: ir_runner(output)
    if not args.no_check:
        _check(model, run_exported(), engine, output, args.static, tolerance=1e-2 if args.half else TOLERANCE)  # fmt: skip
    return 0


def _check(model, run, engine: str, output: Path, static: bool, tolerance: float) -> None:
    """The exported file against PyTorch on random inputs, one line; an error past ``tolerance``."""
    from darkyolo.export import check_runner

    h, w = model.input_size
    diff = check_runner(model, run, [(1, h, w)] if static else None)
    verdict = "ok" if diff <= tolerance else "TOO LARGE"
    print(f"{engine} vs PyTorch: max difference {diff:.2e} (absolute; {verdict})")
    if diff > tolerance:
        raise DarkyoloError(
            f"{output}: {engine} differs from PyTorch by {diff:.2e} (> {tolerance})"
        )


def _export_int8(model, fp32: bytes, output: Path, args: argparse.Namespace) -> None:
    """``--int8``: :func:`darkyolo.quantize.export_int8`, then its report."""
    from darkyolo.quantize import export_int8

    result = export_int8(
        model, fp32, output, args.format, args.calib, args.calib_images, args.calib_method
    )
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    for line in result.lines():
        print(line)
