"""Darknet ``.cfg`` text as raw sections: ``[kind]`` blocks of ordered ``key=value`` strings with
their line numbers (:func:`read_sections`), and back to text (:func:`render_cfg`). Every edit of a
cfg's text works at this level (:mod:`darkyolo.darknet.edits`); the typed reading is
:mod:`darkyolo.darknet.parser`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from darkyolo.errors import ConfigError

_SECTION_RE = re.compile(r"^\[\s*([A-Za-z_]+)\s*\]$")
#: line breaks as editors (and Python's universal newlines) count them; str.splitlines also
#: breaks at \v, \f, \x1c-\x1e, \x85 and \u2028, which would shift reported line numbers
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")


@dataclass
class RawSection:
    """One ``[kind]`` block: ordered options as written, and where each came from."""

    kind: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)


def read_sections(text: str, file: str = "<cfg>") -> list[RawSection]:
    """Split cfg text into sections. ``#`` and ``;`` start comments; keys are case-sensitive."""
    sections: list[RawSection] = []
    for number, raw_line in enumerate(_NEWLINE_RE.split(text), start=1):
        line = raw_line.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        header = _SECTION_RE.match(line)
        if header:
            sections.append(RawSection(kind=header.group(1).lower(), line=number))
            continue
        if line.startswith("["):
            raise ConfigError(f"malformed section header {line!r}, expected [name]", file, number)
        if not sections:
            raise ConfigError(f"option {line!r} before the first [section]", file, number)
        if "=" not in line:
            raise ConfigError(f"expected key=value, got {line!r}", file, number)
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise ConfigError("empty key before '='", file, number)
        if not value:
            raise ConfigError("missing value after '='", file, number, key)
        section = sections[-1]
        if key in section.options:
            raise ConfigError(
                f"key given twice in [{section.kind}] (first on line {section.key_lines[key]})",
                file,
                number,
                key,
            )
        section.options[key] = value
        section.key_lines[key] = number
    return sections


def render_cfg(sections: Iterable[RawSection]) -> str:
    """Write sections back as cfg text (comments are not kept)."""
    blocks = []
    for section in sections:
        lines = [f"[{section.kind}]"] + [f"{key}={value}" for key, value in section.options.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
