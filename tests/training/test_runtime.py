"""``--amp`` resolved on a device: what ``auto`` picks on CPUs with and without native bfloat16."""

from __future__ import annotations

import pytest
import torch

from darkyolo.errors import OptionError
from darkyolo.training.runtime import amp_note, amp_setting, automatic_amp

CPU = torch.device("cpu")


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, None)])
def test_auto_is_bf16_only_on_a_cpu_that_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: torch.dtype | None
) -> None:
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: native)
    assert automatic_amp(CPU) == ("bf16" if native else "off")
    assert amp_setting("auto", CPU) == (expected, False)


def test_explicit_modes_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: True)
    assert amp_setting("off", CPU) == (None, False)
    assert amp_setting("bf16", CPU) == (torch.bfloat16, False)
    with pytest.raises(OptionError, match="fp16 needs a CUDA"):
        amp_setting("fp16", CPU)
    with pytest.raises(OptionError, match="--amp must be one of"):
        amp_setting("half", CPU)


def test_the_summary_says_why_auto_chose() -> None:
    assert amp_note("auto", CPU, torch.bfloat16) == "bf16 (--amp auto: native bfloat16 on this CPU)"
    assert amp_note("auto", CPU, None) == "off (--amp auto: no native bfloat16 on this CPU)"
    assert amp_note("bf16", CPU, torch.bfloat16) == "bf16"
    assert amp_note("auto", torch.device("cuda"), torch.float16) == "fp16 (--amp auto)"
