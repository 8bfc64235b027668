"""``--amp`` resolved on a device: ``auto`` is float32 on every CPU, and says where bf16 is native."""

from __future__ import annotations

import pytest
import torch

from darkyolo.errors import OptionError
from darkyolo.training.runtime import amp_note, amp_setting, automatic_amp

CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_float32_on_any_cpu(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: native)
    assert automatic_amp(CPU) == "off"
    assert amp_setting("auto", CPU) == (None, False)


def test_explicit_modes_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: True)
    assert amp_setting("off", CPU) == (None, False)
    assert amp_setting("bf16", CPU) == (torch.bfloat16, False)
    with pytest.raises(OptionError, match="fp16 needs a CUDA"):
        amp_setting("fp16", CPU)
    with pytest.raises(OptionError, match="--amp must be one of"):
        amp_setting("half", CPU)


def test_the_summary_hints_at_bf16_where_it_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: True)
    assert amp_note("auto", CPU, None) == "off (--amp auto; this CPU runs --amp bf16 natively, about 2x faster)"  # fmt: skip
    assert amp_note("bf16", CPU, torch.bfloat16) == "bf16"
    assert amp_note("auto", torch.device("cuda"), torch.float16) == "fp16 (--amp auto)"
    monkeypatch.setattr("darkyolo.training.runtime.cpu_has_native_bf16", lambda: False)
    assert amp_note("auto", CPU, None) == "off (--amp auto)"
