"""The kinds of numbers options take: one check for the command line and the Python API."""

from __future__ import annotations

import argparse
import re

import pytest

from darkyolo.errors import OptionError
from darkyolo.training.options import NUMBERS, TrainOptions
from darkyolo.values import (
    INPUT_SIDE,
    NON_NEGATIVE_INT,
    PORT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    input_hw,
)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (POSITIVE_INT, ["1", "64"], ["0", "-4", "1.5", "x", ""]),
        (NON_NEGATIVE_INT, ["0", "3"], ["-1", "2.0"]),
        (POSITIVE_FLOAT, ["0.001", "3"], ["0", "-1", "nan", "inf"]),
        (PROBABILITY, ["0", "0.25", "1"], ["-0.1", "1.01", "nan"]),
        (INPUT_SIDE, ["32", "416", "608"], ["0", "100", "-32", "16"]),
        (PORT, ["0", "8000", "65535"], ["-1", "65536"]),
    ],
)
def test_a_kind_reads_its_words_and_refuses_the_rest(kind, good, bad) -> None:
    for text in good:
        kind.parse(text)
    for text in bad:
        with pytest.raises(
            argparse.ArgumentTypeError, match=re.escape(f"expected {kind.what}, got")
        ):
            kind.parse(text)


def test_a_kind_checks_python_values_by_option_name() -> None:
    POSITIVE_INT.check("--batch", 16)
    with pytest.raises(OptionError, match=r"--batch must be a whole number of at least 1, got 0"):
        POSITIVE_INT.check("--batch", 0)
    with pytest.raises(OptionError, match=r"got 2\.5"):
        POSITIVE_INT.check("--batch", 2.5)
    with pytest.raises(OptionError, match="got True"):
        POSITIVE_INT.check("--batch", True)
    PROBABILITY.check("--conf", 1)  # an int is a number too


def test_input_hw_reads_one_side_or_two() -> None:
    assert input_hw(None) is None
    assert input_hw([416]) == (416, 416)
    assert input_hw([320, 640]) == (320, 640)


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", 0), ("epochs", -1), ("max_batches", -5), ("batch", 0), ("subdivisions", 0),
     ("img_size", 0), ("img_size", 100), ("lr", -1.0), ("workers", -1), ("mosaic", 1.5)],
)  # fmt: skip
def test_train_options_refuse_bad_numbers_by_their_flag(key: str, value: float) -> None:
    flag = "--" + key.replace("_", "-")
    with pytest.raises(OptionError, match=f"^{flag} must be "):
        TrainOptions(**{key: value})


def test_every_numeric_train_option_has_a_kind() -> None:
    defaults = TrainOptions()
    for name, value in vars(defaults).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert name in NUMBERS, name
    TrainOptions(epochs=1, freeze=0, clip_grad=0.0, patience=0, bn_recalib=0)  # zero means "off"
