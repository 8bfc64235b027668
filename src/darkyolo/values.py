"""The kinds of numbers that options take, each checked the same way on the command line and in
the Python API.

A :class:`ValueKind` reads a command-line word (``kind.parse("16")``, the ``type=`` of an argparse
option: a bad word is one usage line naming the option, the value and what is allowed) and checks
a value given from Python (``kind.check("--batch", 16)``: an :class:`~darkyolo.errors.OptionError`
otherwise). ``0`` is a value like any other here: where an option's left-out default differs, the
option is left out (``None``), never set to ``0``.

This module imports nothing heavy: the command line's ``--help`` reads it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from darkyolo.errors import OptionError

#: input sides are multiples of the networks' largest stride
STRIDE = 32


@dataclass(frozen=True)
class ValueKind:
    """A kind of number: ``what`` says what is allowed ("a whole number of at least 1"),
    ``convert`` reads a word (``int`` or ``float``), ``allowed`` tests a value."""

    what: str
    convert: Callable[[str], int | float]
    allowed: Callable[[float], bool]

    def parse(self, text: str) -> int | float:
        """argparse ``type=``: the value of ``text``, or :class:`argparse.ArgumentTypeError`,
        which argparse prints as ``argument --batch: expected ..., got '0'``."""
        try:
            value = self.convert(text)
        except ValueError:
            value = None
        if value is None or not self.allowed(value):
            raise argparse.ArgumentTypeError(f"expected {self.what}, got {text!r}")
        return value

    def check(self, option: str, value: object) -> None:
        """Raise :class:`OptionError` naming ``option`` unless ``value`` is of this kind."""
        whole = self.convert is int
        right_type = isinstance(value, int if whole else (int, float)) and not isinstance(
            value, bool
        )
        if not right_type or not self.allowed(value):  # type: ignore[arg-type]
            raise OptionError(f"{option} must be {self.what}, got {value!r}")

    def __call__(self, text: str) -> int | float:  # argparse calls its ``type=``
        return self.parse(text)


def _finite(value: float) -> bool:
    return math.isfinite(value)


POSITIVE_INT = ValueKind("a whole number of at least 1", int, lambda v: v >= 1)
NON_NEGATIVE_INT = ValueKind("a whole number of at least 0", int, lambda v: v >= 0)
POSITIVE_FLOAT = ValueKind("a number above 0", float, lambda v: _finite(v) and v > 0)
NON_NEGATIVE_FLOAT = ValueKind("a number of at least 0", float, lambda v: _finite(v) and v >= 0)
PROBABILITY = ValueKind("a number from 0 to 1", float, lambda v: 0 <= v <= 1)
#: a probability that must leave room on both sides (a prior, a momentum)
OPEN_PROBABILITY = ValueKind("a number between 0 and 1 (not 0, not 1)", float, lambda v: 0 < v < 1)
BELOW_ONE = ValueKind("a number from 0 up to (not including) 1", float, lambda v: 0 <= v < 1)
INPUT_SIDE = ValueKind(
    f"a positive multiple of {STRIDE} (320, 416, 608, ...)",
    int,
    lambda v: v >= STRIDE and v % STRIDE == 0,
)
PORT = ValueKind("a TCP port from 0 to 65535", int, lambda v: 0 <= v <= 65535)


class InputSize(argparse.Action):
    """``--img-size SIDE`` or ``--img-size HEIGHT WIDTH``, each a positive multiple of 32: stored
    as a list of one or two sides. Use with ``nargs="+"`` and ``type=INPUT_SIDE``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        if len(values) > 2:
            parser.error(
                f"argument {option_string}: takes one side or height and width, got "
                f"{' '.join(map(str, values))}"
            )
        setattr(namespace, self.dest, list(values))


def add_input_size(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """The one ``--img-size`` of the commands that take a height and width (detect, export, info,
    serve): one side for a square input, or height and width."""
    parser.add_argument(
        "--img-size",
        type=INPUT_SIDE,
        nargs="+",
        action=InputSize,
        metavar="SIDE",
        help=help,
    )


def input_hw(sides: list[int] | None) -> tuple[int, int] | None:
    """``--img-size``'s list (one side or height and width) as ``(height, width)``; None stays."""
    if not sides:
        return None
    return (sides[0], sides[0]) if len(sides) == 1 else (sides[0], sides[1])
