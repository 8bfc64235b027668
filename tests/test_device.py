"""One ``--device`` rule for every command."""

from __future__ import annotations

import pytest
import torch

from darkyolo.device import resolve_device
from darkyolo.errors import OptionError


def test_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("option", ["banana", "mps:x", "cuda:-1x"])
def test_nonsense_is_an_option_error(option: str) -> None:
    with pytest.raises(OptionError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device(option)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_says_so() -> None:
    with pytest.raises(OptionError, match="CUDA is not available here"):
        resolve_device("cuda:0")
