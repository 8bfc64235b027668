"""YOLO / Darknet text labels: one ``.txt`` per image, one ``class cx cy w h`` line per box.

``cx cy w h`` are the box centre and size divided by the image width and height (0..1); ``class`` is
the 0-based line number in the ``.names`` file. The label of ``.../images/<split>/x.jpg`` is
``.../labels/<split>/x.txt`` (the last ``images`` path component becomes ``labels``, Darknet's
convention); an image path with no ``images`` component has its ``.txt`` beside it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from darkyolo.data.records import ImageRecord, Problem
from darkyolo.errors import DataError

#: how far (in normalised units) a coordinate may stray outside 0..1 before it is an error
TOLERANCE = 1e-5
_LINE = "%d %.10g %.10g %.10g %.10g\n"
#: line breaks as editors count them (str.splitlines also breaks at \v, \f, \x85, \u2028, ...,
#: which would shift the reported line numbers; Darknet's fscanf reads those as spaces)
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    return _NEWLINE_RE.split(text)


def label_path_for(image: str | Path) -> Path:
    """The ``.txt`` label path of an image path (Darknet's ``images`` -> ``labels`` rule)."""
    path = Path(image)
    parts = list(path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return path.with_suffix(".txt")


def read_names(path: str | Path) -> list[str]:
    """Class names, one a line; blank lines at the end are ignored, blank lines inside are errors."""
    path = Path(path)
    try:
        lines = _lines(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise DataError(f"names file is not UTF-8 text (byte {error.start})", str(path)) from None
    except OSError as error:
        raise DataError(f"cannot read names file: {error.strerror}", str(path)) from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    for number, name in enumerate(names, start=1):
        if not name:
            raise DataError("empty class name", str(path), number)
    if not names:
        raise DataError("names file lists no classes", str(path))
    return names


def write_names(path: str | Path, names: list[str]) -> None:
    """Write class names, one a line."""
    for name in names:
        if not name.strip() or "\n" in name:
            raise DataError(f"class name {name!r} cannot be written to a .names file", str(path))
    Path(path).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")


def format_labels(record: ImageRecord) -> str:
    """The ``.txt`` text of a record: ``class cx cy w h`` normalised, 10 significant digits, one box a line."""
    n = len(record)
    if n == 0:
        return ""
    b = record.boxes.astype(np.float64)
    rows = np.empty((n, 5), dtype=np.float64)
    rows[:, 0] = record.labels
    rows[:, 1] = (b[:, 0] + b[:, 2]) / (2.0 * record.width)
    rows[:, 2] = (b[:, 1] + b[:, 3]) / (2.0 * record.height)
    rows[:, 3] = (b[:, 2] - b[:, 0]) / record.width
    rows[:, 4] = (b[:, 3] - b[:, 1]) / record.height
    return (_LINE * n) % tuple(rows.ravel().tolist())


def write_labels(path: str | Path, record: ImageRecord) -> None:
    """Write a record's boxes as a YOLO ``.txt`` (an empty file for an image without boxes)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(format_labels(record))


def parse_labels(
    text: str,
    file: str,
    num_classes: int | None,
    problems: list[Problem] | None = None,
) -> np.ndarray:
    """Parse YOLO label text into ``float64 [N, 5]`` rows ``class, cx, cy, w, h`` (normalised).

    Every line must be ``class cx cy w h``: an integer class in ``0..num_classes-1`` and four
    normalised numbers with ``w, h > 0`` and the box inside ``0..1`` (within :data:`TOLERANCE`;
    boxes that stray by less are clipped). Blank lines are skipped.

    With ``problems=None`` the first bad line raises :class:`DataError` naming ``file:line``.
    With a list, each bad line is appended as a :class:`Problem` and left out, and identical
    boxes are reported as ``duplicate`` warnings (they are kept, as when raising).
    """
    rows = _parse_fast(text, num_classes)
    if rows is None:
        rows, numbers = _parse_lines(text, file, num_classes, problems)
    elif problems is not None and len(rows) > 1:
        numbers = [i for i, line in enumerate(_lines(text), start=1) if line.strip()]
    if problems is not None and len(rows) > 1:
        _report_duplicates(rows, numbers, file, problems)
    return _clip(rows)


def read_labels(
    path: str | Path,
    width: int,
    height: int,
    num_classes: int | None,
    problems: list[Problem] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a label file -> (``float64 [N, 4]`` xyxy pixels, ``int64 [N]`` classes).

    See :func:`parse_labels` for the rules and for ``problems``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError("label file is not UTF-8 text", str(path)) from None
    except OSError as error:
        raise DataError(f"cannot read label file: {error.strerror}", str(path)) from None
    rows = parse_labels(text, str(path), num_classes, problems)
    return rows_to_boxes(rows, width, height)


def rows_to_boxes(rows: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 5]`` normalised ``class cx cy w h`` -> (``float64 [N, 4]`` xyxy pixels, ``int64 [N]``)."""
    boxes = np.empty((len(rows), 4), dtype=np.float64)
    half_w, half_h = rows[:, 3] / 2.0, rows[:, 4] / 2.0
    boxes[:, 0] = (rows[:, 1] - half_w) * width
    boxes[:, 1] = (rows[:, 2] - half_h) * height
    boxes[:, 2] = (rows[:, 1] + half_w) * width
    boxes[:, 3] = (rows[:, 2] + half_h) * height
    return boxes.astype(np.float64), rows[:, 0].astype(np.int64)


# ----------------------------------------------------------------------------------------------


def _parse_fast(text: str, num_classes: int | None) -> np.ndarray | None:
    """All lines good -> the rows; anything unusual -> None (the line parser then explains)."""
    fields = text.split()
    if len(fields) % 5:
        return None
    try:
        rows = np.array(fields, dtype=np.float64).reshape(-1, 5)
    except ValueError:
        return None
    if len(rows) and _row_errors(rows, num_classes).any():
        return None
    if len(rows) != sum(1 for line in _lines(text) if line.strip()):
        return None
    return rows


def _row_errors(rows: np.ndarray, num_classes: int | None) -> np.ndarray:
    cls, xywh = rows[:, 0], rows[:, 1:]
    bad = ~np.isfinite(rows).all(axis=1) | (cls != np.floor(cls)) | (cls < 0)
    if num_classes is not None:
        bad |= cls >= num_classes
    with np.errstate(invalid="ignore"):
        bad |= (xywh > 1 + TOLERANCE).any(axis=1) | (xywh[:, 2:] <= 0).any(axis=1)
        lo = xywh[:, :2] - xywh[:, 2:] / 2
        hi = xywh[:, :2] + xywh[:, 2:] / 2
        bad |= (lo < -TOLERANCE).any(axis=1) | (hi > 1 + TOLERANCE).any(axis=1)
    return bad


def _check_line(
    fields: list[str], num_classes: int | None
) -> tuple[str, str] | tuple[None, list[float]]:
    """One line's fields -> (kind, message) of its first problem, or (None, values)."""
    if len(fields) != 5:
        return "unparsable", f"expected 'class cx cy w h' (5 numbers), got {len(fields)} fields"
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return "unparsable", f"expected 'class cx cy w h' numbers, got {' '.join(fields)!r}"
    if not all(math.isfinite(v) for v in values):
        return "unparsable", f"non-finite number in {' '.join(fields)!r}"
    cls, cx, cy, w, h = values
    if cls != math.floor(cls):
        return "unparsable", f"class must be an integer, got {fields[0]!r}"
    if cls < 0 or (num_classes is not None and cls >= num_classes):
        limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        return "class-range", f"class {int(cls)} is outside {limit}"
    if max(cx, cy, w, h) > 1 + TOLERANCE:
        return (
            "not-normalised",
            f"coordinates must be normalised to 0..1, got {' '.join(fields[1:])} (pixels?)",
        )
    if w <= 0 or h <= 0:
        return "zero-size", f"box width and height must be > 0, got w={fields[3]} h={fields[4]}"
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if min(x1, y1) < -TOLERANCE or max(x2, y2) > 1 + TOLERANCE:
        return (
            "out-of-range",
            f"box ({x1:.6g}, {y1:.6g}, {x2:.6g}, {y2:.6g}) extends outside the image (0..1)",
        )
    return None, values


def _parse_lines(
    text: str, file: str, num_classes: int | None, problems: list[Problem] | None
) -> tuple[np.ndarray, list[int]]:
    """Line by line: the good rows and their line numbers; bad lines raise or are reported."""
    good: list[list[float]] = []
    numbers: list[int] = []
    for number, line in enumerate(_lines(text), start=1):
        fields = line.split()
        if not fields:
            continue
        kind, result = _check_line(fields, num_classes)
        if kind is None:
            good.append(result)  # type: ignore[arg-type]
            numbers.append(number)
            continue
        if problems is None:
            raise DataError(str(result), file, number)
        problems.append(Problem("error", kind, str(result), file, number))
    return np.array(good, dtype=np.float64).reshape(-1, 5), numbers


def _report_duplicates(
    rows: np.ndarray, numbers: list[int], file: str, problems: list[Problem]
) -> None:
    """Warn about each box identical (to 1e-6) to an earlier one in the same file."""
    keys = np.round(rows, 6)
    if len(np.unique(keys, axis=0)) == len(keys):
        return
    seen: dict[tuple[float, ...], int] = {}
    for i, row in enumerate(keys.tolist()):
        key = tuple(row)
        if key in seen:
            message = f"same box as line {numbers[seen[key]]}"
            problems.append(Problem("warning", "duplicate", message, file, numbers[i]))
        else:
            seen[key] = i


def _clip(rows: np.ndarray) -> np.ndarray:
    """Clip boxes that stray outside 0..1 (by less than the tolerance) back inside."""
    if not len(rows):
        return rows
    lo = rows[:, 1:3] - rows[:, 3:5] / 2
    hi = rows[:, 1:3] + rows[:, 3:5] / 2
    if lo.min() >= 0.0 and hi.max() <= 1.0:
        return rows
    lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    out = rows.copy()
    out[:, 1:3], out[:, 3:5] = (lo + hi) / 2, hi - lo
    return out
