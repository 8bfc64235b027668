"""Fuzz the Darknet cfg parser: mutated bundled cfgs, random text and random bytes.

Property: :func:`parse_cfg` (and :func:`infer_shapes` on what it returns) either succeeds or raises
:class:`ConfigError` whose one-line message names the file, with a line number inside the text
and the key where one is given. Anything else (``ValueError``, ``IndexError``, ...) is a bug.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fuzzing import FUZZ, check_error, mutated_bytes, mutated_lines, record, run_counted, tokens
from hypothesis import given
from hypothesis import strategies as st

from darkyolo.darknet.cfg import NetworkConfig, bundled_cfgs, load_cfg, parse_cfg, resolve_cfg_path
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.errors import ConfigError

FILE = "fuzz.cfg"
BASES = {name: resolve_cfg_path(name).read_text(encoding="utf-8") for name in bundled_cfgs()}
_KEYS = sorted({m for text in BASES.values() for m in re.findall(r"^(\w+)\s*=", text, re.M)})
_SECTIONS = sorted({m for text in BASES.values() for m in re.findall(r"^\[(\w+)\]", text, re.M)})
#: plausible new lines: a known section header, or a known key with a hostile value
CFG_LINES = st.one_of(
    st.sampled_from(_SECTIONS).map(lambda s: f"[{s}]"),
    st.tuples(st.sampled_from(_KEYS), tokens()).map(lambda kv: f"{kv[0]}={kv[1]}"),
)
#: random text over the characters cfgs are made of, so that some of it gets past the first line
CFG_TEXT = st.text(alphabet="[]=#;,.-e0123456789 \nnetconvlutiaxpsyorgdfkb_", max_size=400)


def _check(name: str, text: str, file: str = FILE) -> None:
    try:
        config = parse_cfg(text, file)
        assert isinstance(config, NetworkConfig)
        infer_shapes(config, config.net.height, config.net.width)
    except ConfigError as error:
        _check_config_error(error, file, _count_lines(text))
        record(name, "ConfigError")
        return
    record(name, "ok")


def _count_lines(text: str) -> int:
    """Lines as an editor counts them (``\\n``, ``\\r\\n`` or ``\\r`` ends one)."""
    return len(re.split(r"\r\n|\r|\n", text.rstrip("\r\n"))) if text else 0


def _check_config_error(error: ConfigError, file: str, lines: int) -> None:
    check_error(error, file)
    assert error.file == file
    if error.line is not None:
        assert 1 <= error.line <= max(1, lines), f"line {error.line} of {lines}: {error}"
    if error.key is not None:
        assert f"key '{error.key}'" in str(error)


@FUZZ
@given(st.sampled_from(sorted(BASES)).flatmap(lambda n: mutated_lines(BASES[n], CFG_LINES)))
def _mutated_bundled(text: str) -> None:
    _check("cfg mutated", text)


@FUZZ
@given(st.one_of(st.text(max_size=300), CFG_TEXT))
def _random_text(text: str) -> None:
    _check("cfg random text", text)


_TMP = Path(tempfile.mkdtemp(prefix="darkyolo-fuzz-cfg-"))
_BYTES_BASE = BASES["yolov3-tiny"].encode()


@FUZZ
@given(st.one_of(mutated_bytes(_BYTES_BASE), st.binary(max_size=300)))
def _file_bytes(data: bytes) -> None:
    path = _TMP / "fuzz.cfg"
    path.write_bytes(data)
    try:
        config = load_cfg(path)
        assert isinstance(config, NetworkConfig)
    except ConfigError as error:
        _check_config_error(error, str(path), len(data.splitlines()))
        record("cfg file bytes", "ConfigError")
        return
    record("cfg file bytes", "ok")


def test_bundled_cfgs_parse():
    """The mutation bases themselves are valid (else the mutated property tests little)."""
    for name, text in BASES.items():
        config = parse_cfg(text, name)
        assert config.heads or config.is_classifier


def test_mutated_bundled_cfgs():
    outcomes = run_counted("cfg mutated", _mutated_bundled)
    assert outcomes["ConfigError"] > 0 and outcomes["ok"] > 0


def test_random_cfg_text():
    run_counted("cfg random text", _random_text)


def test_random_cfg_file_bytes():
    run_counted("cfg file bytes", _file_bytes)
