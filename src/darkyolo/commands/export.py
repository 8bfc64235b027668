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

HELP = "export a model to ONNX (checked in ONNX Runtime) or to Darknet .weights"

#: largest ONNX-vs-PyTorch difference accepted by the check
TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, onnx=False)
    parser.add_argument("--format", choices=("onnx", "weights"), default="onnx")
    parser.add_argument(
        "--prefix",
        type=POSITIVE_INT,
        metavar="N",
        help="write only cfg layers 0..N-1 as a Darknet .conv.N backbone (implies --format weights)",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="output file (default: <weights or cfg stem>.<format>)"
    )
    add_input_size(parser, "example/default input size for ONNX: one side, or height and width")
    parser.add_argument("--names", type=Path, help=".names file to embed in the ONNX metadata")
    parser.add_argument("--opset", type=POSITIVE_INT, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--static", action="store_true", help="fixed batch and input size")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime check")
    q = parser.add_argument_group("int8 (ONNX Runtime static quantization)")
    q.add_argument("--int8", action="store_true", help="quantize the ONNX export to int8 (QDQ)")
    q.add_argument(
        "--calib",
        metavar="DATA_OR_FOLDER",
        help="pictures to calibrate on: a .data file (its train split), folder, glob or list",
    )
    q.add_argument(
        "--calib-images", type=POSITIVE_INT, default=64, help="pictures used (default 64)"
    )
    q.add_argument(
        "--calib-method",
        choices=("minmax", "entropy", "percentile"),
        default="minmax",
        help="how activation ranges are chosen (default minmax)",
    )


def run(args: argparse.Namespace) -> int:
    from darkyolo.export import check_onnx, export_onnx, export_weights
    from darkyolo.inference.predictor import class_names
    from darkyolo.models.zoo import resolve_model

    task = None if args.prefix is not None or args.format == "weights" else "detect"
    if task == "detect":  # before the model loads
        from darkyolo.extras import require

        require("export", "darkyolo export --format onnx" + (" --int8" if args.int8 else ""))

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
    output = args.output or Path(f"{stem}.{args.format}")
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
    if args.int8:
        return _export_int8(model, output, size, names, args)
    if args.calib:
        raise OptionError("--calib goes with --int8")
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


def _export_int8(model, output: Path, size, names, args: argparse.Namespace) -> int:
    """Quantize the float32 export on ``--calib`` pictures, write it, and report what it costs."""
    import contextlib
    import io
    import logging

    import onnx

    from darkyolo.export import onnx_bytes
    from darkyolo.quantize import (
        agreement,
        calibration_images,
        calibration_metadata,
        float_nodes,
        head_conv_positions,
        load_calibration,
        quantize_onnx,
    )

    if args.format != "onnx":
        raise OptionError("--int8 is an ONNX export: use --format onnx")
    if not args.calib:
        raise OptionError("--int8 needs --calib DATA_OR_FOLDER: pictures like those it will see")
    images = calibration_images(args.calib)
    pictures, used = load_calibration(images, args.calib_images, model.input_size)
    if used < args.calib_images:
        print(
            f"warning: {args.calib} holds {len(images)} pictures: calibrating on {used}, not "
            f"{args.calib_images}",
            file=sys.stderr,
        )
    fp32 = onnx_bytes(model, size, names=names, opset=args.opset, dynamic=not args.static)
    keep = float_nodes(onnx.load_from_string(fp32), head_conv_positions(model))
    metadata = calibration_metadata(args.calib_method, used, keep)
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # ONNX Runtime's advice to pre-process is not for this graph
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its histogram progress lines
            int8 = quantize_onnx(fp32, pictures, keep.names, args.calib_method, metadata)
    finally:
        quiet.setLevel(level)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(int8)
    print(
        f"wrote {output}: int8 QDQ, {len(int8) / 2**20:.1f} MiB (float32 {len(fp32) / 2**20:.1f} "
        f"MiB), calibrated on {used} pictures ({args.calib_method})"
    )
    print(
        f"kept float32: the heads' last convolutions {', '.join(keep.head_convs)} and the "
        f"{len(keep.decode)} decode nodes after them (sigmoid, exp, anchors)"
    )
    for line in agreement(fp32, int8, pictures).lines():
        print(line)
    return 0
