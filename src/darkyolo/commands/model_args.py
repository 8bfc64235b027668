"""The model options that ``detect``, ``val``, ``serve`` and ``export`` share (their meaning is
decided by :func:`darkyolo.models.zoo.resolve_model`), and the engine options of the first three."""

from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser, onnx: bool = True) -> None:
    """``--model``, ``--weights`` and ``--random-weights``, shared by detect, val and export."""
    from darkyolo.models.zoo import DEFAULT_MODEL, trained_model_list

    parser.add_argument(
        "--model",
        help=f"trained model name ({trained_model_list()}), bundled cfg name, .cfg path"
        + (", or .onnx export" if onnx else "")
        + f" (default: {DEFAULT_MODEL}, or the cfg inside a --weights checkpoint)",
    )
    parser.add_argument(
        "--weights",
        help=".weights or checkpoint (.pt) for the cfg" + (", or .onnx file" if onnx else ""),
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="build the cfg with untrained random weights (for tests and timing)",
    )


def add_engine_arguments(parser: argparse.ArgumentParser, torch_only: str) -> None:
    """``--backend`` (default ``auto``) and ``--threads``, shared by detect, val and serve;
    ``torch_only`` names the command's options that only PyTorch has (auto then picks it)."""
    from darkyolo.inference.engines import BACKENDS
    from darkyolo.values import POSITIVE_INT

    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference engine (default auto: OpenVINO, else ONNX Runtime, else PyTorch, by what "
        f"is installed; PyTorch for a GPU{torch_only})",
    )
    parser.add_argument("--threads", type=POSITIVE_INT, help="CPU threads for the network")
