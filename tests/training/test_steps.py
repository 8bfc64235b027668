"""The step engine's NaN guard: name the bad batch and its pictures, skip or stop."""

from __future__ import annotations

import pytest
import torch

from darkyolo.errors import TrainingError
from darkyolo.training.steps import NanGuard


def _guard(policy: str, logged: list[str], max_skips: int = 2) -> NanGuard:
    def files(indices):
        return [f"img{i}.jpg" for i in indices]

    return NanGuard(policy, max_skips, files, lambda: "; kept last.pt", logged.append)


def test_skip_names_the_batch_and_counts_up_to_the_limit() -> None:
    logged: list[str] = []
    guard = _guard("skip", logged)
    good = (0, torch.tensor(1.0), {"box": torch.tensor(0.5)}, [0, 1])
    bad = (1, torch.tensor(float("nan")), {"box": torch.tensor(float("nan"))}, [2, 3])
    guard([good, bad], epoch=0, update=7, gradient=False)
    assert guard.skips == 1
    assert logged == [
        "non-finite loss in epoch 1, update 7: batch 1 (loss parts box=nan; images img2.jpg, "
        "img3.jpg); update skipped (1/2)"
    ]
    guard([bad], epoch=0, update=8, gradient=False)
    with pytest.raises(TrainingError, match=r"update 9: batch 1 .*; kept last\.pt$"):
        guard([bad], epoch=0, update=9, gradient=False)


def test_stop_names_every_batch_of_a_bad_gradient() -> None:
    guard = _guard("stop", [])
    window = [(n, torch.tensor(1.0), {}, [n]) for n in range(2)]
    with pytest.raises(TrainingError, match=r"non-finite gradient \(the loss was finite\).*batch 0.*batch 1"):  # fmt: skip
        guard(window, epoch=2, update=1, gradient=True)
