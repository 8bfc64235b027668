"""Fuzz the weights readers: Darknet ``.weights`` bytes and darkyolo checkpoints (``.pt``).

Property: :func:`load_darknet_weights` / :func:`load_weights` either fill the model and return a
count, or raise :class:`WeightsError` whose one-line message names the file. A tiny cfg (three
small convolutions, 774 floats) keeps each case cheap.
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from fuzzing import FUZZ, check_error, mutated_bytes, record, run_counted
from hypothesis import given
from hypothesis import strategies as st
from tiny import cfg, conv, head, maxpools, net

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.darknet.weights import WeightsHeader
from darkyolo.errors import WeightsError
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import load_darknet_weights, load_weights, save_darknet_weights

#: 32x32 pictures: convs of 4 and 8 filters around a max-pool, one 1-class head
TINY_CFG = cfg(net(32), conv(4), maxpools(), conv(8), head(1, anchors="4,5, 8,9, 16,20"))

TMP = Path(tempfile.mkdtemp(prefix="darkyolo-fuzz-weights-"))
torch.manual_seed(0)
MODEL = Darknet(parse_cfg(TINY_CFG, "tiny.cfg"))
_VALID = TMP / "valid.weights"
save_darknet_weights(MODEL, _VALID, WeightsHeader(0, 2, 0, 12345))
VALID_WEIGHTS = _VALID.read_bytes()
_buffer = io.BytesIO()
torch.save({"model": MODEL.state_dict(), "epoch": 3}, _buffer)
VALID_CHECKPOINT = _buffer.getvalue()
STATE = {k: v.clone() for k, v in MODEL.state_dict().items()}


def _header(major: int, minor: int, revision: int, seen: int, wide: bool) -> bytes:
    head = b"".join(v.to_bytes(4, "little", signed=True) for v in (major, minor, revision))
    return head + seen.to_bytes(8 if wide else 4, "little", signed=True)


_INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from((0, 1, 2, 10, 1000, -1)))
WEIGHTS_BYTES = st.one_of(
    mutated_bytes(VALID_WEIGHTS),
    # a well-formed header of any version in front of the valid body, short or long
    st.builds(
        lambda major, minor, revision, wide, cut: (
            _header(major, minor, revision, 7, wide) + VALID_WEIGHTS[20 : 20 + cut]
        ),
        _INT32,
        _INT32,
        _INT32,
        st.booleans(),
        st.integers(0, len(VALID_WEIGHTS)),
    ),
    st.binary(max_size=64),
    st.binary(min_size=len(VALID_WEIGHTS) - 8, max_size=len(VALID_WEIGHTS) + 8),
)


def _check_model_is_filled(loaded: int) -> None:
    assert isinstance(loaded, int) and 0 <= loaded <= len(MODEL.conv_layers())


@FUZZ
@given(WEIGHTS_BYTES, st.booleans())
def _darknet_weights(data: bytes, allow_prefix: bool) -> None:
    path = TMP / "fuzz.weights"
    path.write_bytes(data)
    try:
        loaded = load_darknet_weights(MODEL, path, allow_prefix=allow_prefix)
    except WeightsError as error:
        check_error(error, str(path))
        record(".weights", "WeightsError")
        return
    _check_model_is_filled(loaded)
    assert loaded == len(MODEL.conv_layers()) or allow_prefix
    record(".weights", "ok")


# ----------------------------------------------------------------------------------------------
# Checkpoints: damaged zip bytes, and well-formed checkpoints holding the wrong things
# ----------------------------------------------------------------------------------------------

_KEYS = sorted(STATE)
_VALUES = st.one_of(
    st.sampled_from(_KEYS).map(lambda k: STATE[k].clone()),
    st.lists(st.integers(0, 3), min_size=0, max_size=3).map(lambda s: torch.zeros(s)),
    st.integers(),
    st.floats(allow_nan=True, allow_subnormal=False),  # training may leave flush-to-zero on
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.just(torch.zeros(2, dtype=torch.int64)),
    st.just(torch.full((1,), math.nan)),
)


@st.composite
def _hostile_state(draw: st.DrawFn) -> Any:
    """The valid state dict with keys dropped, added or given wrong values, wrapped oddly."""
    state = {k: v.clone() for k, v in STATE.items()}
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("drop", "replace", "add")))
        key = draw(st.sampled_from(_KEYS))
        if op == "drop":
            state.pop(key, None)
        elif op == "replace":
            state[key] = draw(_VALUES)
        else:
            state[draw(st.text(max_size=8))] = draw(_VALUES)
    wrap = draw(st.sampled_from(("model", "bare", "list", "value", "model-value")))
    if wrap == "model":
        return {"model": state, "epoch": 1}
    if wrap == "bare":
        return state
    if wrap == "list":
        return list(state.values())
    if wrap == "value":
        return draw(_VALUES)
    return {"model": draw(_VALUES)}


def _saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


CHECKPOINT_BYTES = st.one_of(
    mutated_bytes(VALID_CHECKPOINT),
    _hostile_state().map(_saved),
    st.binary(max_size=64).map(lambda b: b"PK" + b),
)


@FUZZ
@given(CHECKPOINT_BYTES, st.booleans())
def _checkpoints(data: bytes, allow_prefix: bool) -> None:
    path = TMP / "fuzz.pt"
    path.write_bytes(data)
    try:
        loaded = load_weights(MODEL, path, allow_prefix=allow_prefix)
    except WeightsError as error:
        check_error(error, str(path))
        record("checkpoint", "WeightsError")
        return
    assert isinstance(loaded, int) and loaded >= 0
    record("checkpoint", "ok")


def test_valid_inputs_load():
    """The mutation bases load (else the properties test only the error paths)."""
    assert load_darknet_weights(MODEL, _VALID) == 3
    path = TMP / "valid.pt"
    path.write_bytes(VALID_CHECKPOINT)
    assert load_weights(MODEL, path) == len(STATE)


def test_darknet_weights_bytes():
    outcomes = run_counted(".weights", _darknet_weights)
    assert outcomes["ok"] > 0 and outcomes["WeightsError"] > 0


def test_checkpoint_bytes():
    outcomes = run_counted("checkpoint", _checkpoints)
    assert outcomes["ok"] > 0 and outcomes["WeightsError"] > 0
