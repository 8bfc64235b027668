"""Shared pieces of the reliability fuzz tests: settings, case counting, mutation strategies.

The property every reader must hold: given any input it either returns its documented result or
raises one of :mod:`darkyolo.errors`' types whose one-line message names the file (and the line
or key where the reader knows it). Any other exception is a bug.

``DARKYOLO_FUZZ_EXAMPLES`` sets the examples per property (default 2,000, the CI setting);
``scripts/fuzz_long.py`` raises it for the long run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from darkyolo.errors import DarkyoloError

EXAMPLES = int(os.environ.get("DARKYOLO_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

#: outcomes of each property: name -> Counter("ok" | error type name -> cases)
OUTCOMES: dict[str, Counter[str]] = {}


def record(name: str, outcome: str) -> None:
    """Count one case of property ``name``."""
    OUTCOMES.setdefault(name, Counter())[outcome] += 1


def run_counted(name: str, prop: Callable[[], None], minimum: int = EXAMPLES) -> Counter[str]:
    """Run a Hypothesis property (a no-argument ``@given`` function), print and check its count."""
    OUTCOMES[name] = Counter()
    prop()
    outcomes = OUTCOMES[name]
    total = sum(outcomes.values())
    detail = ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
    print(f"fuzz {name}: {total} cases ({detail})")
    assert total >= minimum, f"{name}: only {total} cases ran, expected at least {minimum}"
    return outcomes


def check_error(error: DarkyoloError, file: str) -> None:
    """A user-facing error: one line, naming the file."""
    text = str(error)
    assert file in text, f"message does not name the file {file!r}: {text!r}"
    assert "\n" not in text and "\r" not in text, f"message is not one line: {text!r}"


# ----------------------------------------------------------------------------------------------
# Mutations
# ----------------------------------------------------------------------------------------------

#: values that break number parsing, ranges and types
TOKENS = (
    "0", "-1", "1", "-0", "2", "3.0", "1.5", "-2.5", "1e400", "-1e400", "1e-400", "nan", "NaN",
    "inf", "-inf", "Infinity", "99999999999999999999999", "-99999999999999999999", "2147483648",
    "abc", "", " ", ",", "1,", ",,", "1,,2", "0x10", "1_0", "\x00", "é", "\u0663", "=", "[",
    "]", "#", ";", "<", ">", "&", "\"", "'", "\\", "/", "../..", "\t", "\u2028", "\x85",
)  # fmt: skip


def tokens() -> st.SearchStrategy[str]:
    """An interesting token or a short random string."""
    return st.one_of(st.sampled_from(TOKENS), st.text(max_size=12))


@st.composite
def mutated_lines(
    draw: st.DrawFn, base: str, extra: st.SearchStrategy[str] | None = None, max_edits: int = 4
) -> str:
    """``base`` text with 1..``max_edits`` line and character edits.

    Edits: delete, duplicate, swap or insert a line (``extra`` supplies plausible new lines);
    replace a whole ``key=value`` value or one comma-separated item of it, or one whitespace
    field, with a token; delete, insert or replace one character; truncate.
    """
    lines = base.splitlines()
    new_line = st.one_of(tokens(), extra) if extra is not None else tokens()
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(
            st.sampled_from(
                ("delete", "duplicate", "swap", "insert", "value", "item", "field", "char",
                 "truncate")
            )
        )  # fmt: skip
        if not lines:
            lines = [draw(new_line)]
            continue
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, draw(new_line))
        elif op == "value" and "=" in line:
            lines[i] = line.split("=", 1)[0] + "=" + draw(tokens())
        elif op == "item" and "=" in line:
            key, value = line.split("=", 1)
            items = value.split(",")
            items[draw(st.integers(0, len(items) - 1))] = draw(tokens())
            lines[i] = key + "=" + ",".join(items)
        elif op == "field" and line.split():
            fields = line.split()
            fields[draw(st.integers(0, len(fields) - 1))] = draw(tokens())
            lines[i] = " ".join(fields)
        elif op == "char":
            lines[i] = _edit_char(draw, line)
        elif op == "truncate":
            lines = [*lines[:i], line[: draw(st.integers(0, len(line)))]]
    return "\n".join(lines) + draw(st.sampled_from(("\n", "", "\r\n")))


def _edit_char(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(("delete", "insert", "replace")))
    char = draw(st.one_of(st.sampled_from("[]=#;,.-+e0123456789 \t\x00\n"), st.characters()))
    if kind == "delete":
        return text[:at] + text[at + 1 :]
    if kind == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + char + text[at + 1 :]


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, max_edits: int = 4) -> bytes:
    """``base`` with 1..``max_edits`` byte edits: flip, overwrite a run, delete a run, insert,
    truncate, or append."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(st.sampled_from(("flip", "overwrite", "delete", "insert", "truncate", "append")))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "truncate":
            del data[at:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)
