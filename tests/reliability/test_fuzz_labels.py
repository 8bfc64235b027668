"""Fuzz the label readers: YOLO txt, ``.names``, VOC XML and COCO JSON.

Property: each reader either returns its documented result (finite boxes, classes in range) or
raises :class:`DataError` whose one-line message names the file (and, for line-based formats, a
line inside the text). Inputs are valid files with random edits, plus fully random text/bytes.
Files are written to one temporary folder per module, overwritten for each case.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from fuzzing import (
    FUZZ,
    check_error,
    mutated_bytes,
    mutated_lines,
    record,
    run_counted,
    tokens,
)
from hypothesis import given
from hypothesis import strategies as st

from darkyolo.data.formats.coco import CocoFile, read_coco
from darkyolo.data.formats.voc import VocFile, parse_voc_xml, voc_to_record
from darkyolo.data.formats.yolo import parse_labels, read_labels, read_names
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.errors import DataError

TMP = Path(tempfile.mkdtemp(prefix="darkyolo-fuzz-labels-"))
LABEL_FILE = "fuzz.txt"


def _count_lines(text: str) -> int:
    """Lines as an editor counts them."""
    return len(re.split(r"\r\n|\r|\n", text.rstrip("\r\n"))) if text else 0


def _check_data_error(error: DataError, file: str, lines: int | None = None) -> None:
    check_error(error, file)
    assert error.file == file
    if error.line is not None:
        assert lines is not None, f"a line number for a file without lines: {error}"
        assert 1 <= error.line <= max(1, lines), f"line {error.line} of {lines}: {error}"


def _check_boxes(boxes: np.ndarray, labels: np.ndarray, num_classes: int | None) -> None:
    assert boxes.dtype == np.float64 and boxes.shape == (len(labels), 4)
    assert np.isfinite(boxes).all()
    assert (labels >= 0).all()
    if num_classes is not None:
        assert (labels < num_classes).all()


# ----------------------------------------------------------------------------------------------
# YOLO txt
# ----------------------------------------------------------------------------------------------

_ROW = st.tuples(
    st.integers(0, 2),
    st.floats(0.25, 0.75),
    st.floats(0.25, 0.75),
    st.floats(0.01, 0.5),
    st.floats(0.01, 0.5),
).map(lambda r: f"{r[0]} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f} {r[4]:.6f}")
_VALID_LABELS = st.lists(_ROW, min_size=1, max_size=6).map("\n".join)
LABEL_TEXT = st.one_of(
    _VALID_LABELS.flatmap(lambda text: mutated_lines(text, _ROW)),
    st.text(alphabet="0123456789.-+e \t\nnaifNAIF", max_size=120),
    st.text(max_size=80),
)
NUM_CLASSES = st.sampled_from((None, 1, 3, 80))


def _check_rows(rows: np.ndarray, num_classes: int | None) -> None:
    assert rows.dtype == np.float64 and rows.ndim == 2 and rows.shape[1] == 5
    assert np.isfinite(rows).all()
    assert (rows[:, 0] >= 0).all() and (rows[:, 0] == np.floor(rows[:, 0])).all()
    if num_classes is not None:
        assert (rows[:, 0] < num_classes).all()
    assert (rows[:, 3:] > 0).all()
    assert (rows[:, 1:3] - rows[:, 3:] / 2 >= -1e-9).all()
    assert (rows[:, 1:3] + rows[:, 3:] / 2 <= 1 + 1e-9).all()


@FUZZ
@given(LABEL_TEXT, NUM_CLASSES)
def _yolo_text(text: str, num_classes: int | None) -> None:
    lines = _count_lines(text)
    try:
        rows = parse_labels(text, LABEL_FILE, num_classes)
    except DataError as error:
        _check_data_error(error, LABEL_FILE, lines)
        assert error.line is not None, f"a bad label line without its number: {error}"
        outcome = "DataError"
    else:
        _check_rows(rows, num_classes)
        outcome = "ok"
    # Collecting problems instead of raising: never raises, every bad line is reported.
    problems: list[Problem] = []
    kept = parse_labels(text, LABEL_FILE, num_classes, problems)
    _check_rows(kept, num_classes)
    for problem in problems:
        assert problem.file == LABEL_FILE and problem.line is not None
        assert 1 <= problem.line <= max(1, lines)
    errors = [p for p in problems if p.severity == "error"]
    assert bool(errors) == (outcome == "DataError")
    record("yolo txt", outcome)


@FUZZ
@given(
    st.one_of(
        _VALID_LABELS.map(str.encode).flatmap(mutated_bytes),
        st.binary(max_size=100),
    ),
    NUM_CLASSES,
)
def _yolo_file(data: bytes, num_classes: int | None) -> None:
    path = TMP / "labels.txt"
    path.write_bytes(data)
    try:
        boxes, labels = read_labels(path, 640, 480, num_classes)
    except DataError as error:
        _check_data_error(error, str(path), len(data.splitlines()))
        record("yolo txt file", "DataError")
        return
    _check_boxes(boxes, labels, num_classes)
    record("yolo txt file", "ok")


@FUZZ
@given(
    st.one_of(
        mutated_bytes(b"RBC\nWBC\nPlatelets\n"),
        st.binary(max_size=60),
        st.text(max_size=60).map(str.encode),
    )
)
def _names_file(data: bytes) -> None:
    path = TMP / "fuzz.names"
    path.write_bytes(data)
    try:
        names = read_names(path)
    except DataError as error:
        _check_data_error(error, str(path), len(data.splitlines()))
        record("names file", "DataError")
        return
    assert names and all(isinstance(n, str) and n for n in names)
    record("names file", "ok")


# ----------------------------------------------------------------------------------------------
# VOC XML
# ----------------------------------------------------------------------------------------------

VOC_XML = """<annotation>
  <folder>JPEGImages</folder>
  <filename>BloodImage_00000.jpg</filename>
  <size>
    <width>640</width>
    <height>480</height>
    <depth>3</depth>
  </size>
  <object>
    <name>WBC</name>
    <difficult>0</difficult>
    <bndbox>
      <xmin>260</xmin>
      <ymin>177</ymin>
      <xmax>491</xmax>
      <ymax>376</ymax>
    </bndbox>
  </object>
  <object>
    <name>RBC</name>
    <difficult>1</difficult>
    <bndbox>
      <xmin>78</xmin>
      <ymin>336</ymin>
      <xmax>184</xmax>
      <ymax>435</ymax>
    </bndbox>
  </object>
</annotation>
"""
VOC_CLASSES = {"RBC": 0, "WBC": 1, "Platelets": 2}
_XML_LINES = st.one_of(
    st.sampled_from(
        (
            "<object><name>RBC</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax>"
            "<ymax>4</ymax></bndbox></object>",
            "<object><name>Dog</name></object>",
            "<object><bndbox/></object>",
            "<size><width>0</width></size>",
            '<!DOCTYPE a [<!ENTITY e "x">]>',
            "<!DOCTYPE a SYSTEM 'file:///etc/passwd'>",
            "&e;",
            "<![CDATA[ x ]]>",
            "<?xml version='1.0' encoding='utf-16'?>",
            "<?xml version='1.0' encoding='nope'?>",
        )
    ),
    st.tuples(
        st.sampled_from(("width", "height", "xmin", "ymin", "xmax", "ymax", "difficult", "name")),
        tokens(),
    ).map(lambda kv: f"<{kv[0]}>{kv[1]}</{kv[0]}>"),
)


def _voc_numbers_mutated(text: str) -> st.SearchStrategy[str]:
    """Replace the text of one numeric element with a token."""
    numbers = list(re.finditer(r">(\d+)<", text))

    def replace(args: tuple[int, str]) -> str:
        match = numbers[args[0] % len(numbers)]
        return text[: match.start(1)] + args[1] + text[match.end(1) :]

    return st.tuples(st.integers(0, len(numbers) - 1), tokens()).map(replace)


_ENCODINGS = ("utf-8", "UTF-8", "latin-1", "ascii", "utf-16", "utf-32", "utf-7", "nope", "rot13",
              "hex", "idna", "", "x" * 300)  # fmt: skip
VOC_BYTES = st.one_of(
    st.sampled_from(_ENCODINGS)
    .map(lambda e: f"<?xml version='1.0' encoding='{e}'?>\n{VOC_XML}")
    .map(str.encode),
    mutated_lines(VOC_XML, _XML_LINES).map(lambda t: t.encode("utf-8", "surrogatepass")),
    _voc_numbers_mutated(VOC_XML).map(str.encode),
    mutated_bytes(VOC_XML.encode()),
    st.binary(max_size=200),
)


@FUZZ
@given(VOC_BYTES, st.booleans())
def _voc_xml(data: bytes, one_based: bool) -> None:
    path = TMP / "fuzz.xml"
    path.write_bytes(data)
    try:
        voc = parse_voc_xml(path, one_based=one_based)
        assert isinstance(voc, VocFile)
        assert voc.boxes.shape == (len(voc.names), 4) and np.isfinite(voc.boxes).all()
        record_ = voc_to_record(voc, TMP / "image.jpg", VOC_CLASSES, size=(640, 480))
        assert isinstance(record_, ImageRecord)
        _check_boxes(record_.boxes, record_.labels, len(VOC_CLASSES))
    except DataError as error:
        # expat counts \n, \r\n and \r as line ends and reports the end of input as the line
        # after the last line break
        lines = len(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))
        _check_data_error(error, str(path), lines)
        record("voc xml", "DataError")
        return
    record("voc xml", "ok")


# ----------------------------------------------------------------------------------------------
# COCO JSON
# ----------------------------------------------------------------------------------------------

COCO: dict[str, Any] = {
    "info": {"description": "fuzz"},
    "images": [
        {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
        {"id": 7, "file_name": "sub/b.jpg", "width": 20, "height": 10},
    ],
    "categories": [{"id": 3, "name": "cat"}, {"id": 1, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 20, 10], "iscrowd": 1},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1.5, 2.5, 3.5, 4.5]},
    ],
}
_HOSTILE_NUMBERS = st.sampled_from(
    (0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 10**400, 1.5, -0.0, 1e308, math.nan, math.inf,
     -math.inf, True, False)
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        _HOSTILE_NUMBERS,
        st.floats(allow_subnormal=False),  # training may leave flush-to-zero on
        st.text(max_size=8),
        st.sampled_from(("../../etc/passwd", "/etc/passwd", "a\x00b.jpg", "", "C:\\x.jpg")),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) pair inside a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in list(items):
        out.append((value, key))
        if isinstance(child, (dict, list)):
            _slots(child, out)
    return out


@st.composite
def mutated_coco(draw: st.DrawFn) -> dict[str, Any]:
    """The valid COCO dict with 1..4 structural edits: delete, replace, duplicate, wrap."""
    data = copy.deepcopy(COCO)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(data, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(("delete", "replace", "number", "duplicate", "wrap", "str")))
        if op == "delete":
            del container[key]
        elif op == "replace":
            container[key] = draw(JSON_VALUES)
        elif op == "number":
            container[key] = draw(_HOSTILE_NUMBERS)
        elif op == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
        elif op == "wrap":
            container[key] = [container[key]]
        elif op == "str":
            container[key] = str(container[key])
    return data


COCO_BYTES = st.one_of(
    mutated_coco().map(lambda d: json.dumps(d).encode()),
    mutated_bytes(json.dumps(COCO).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=120),
)


@FUZZ
@given(COCO_BYTES, st.booleans())
def _coco_json(data: bytes, include_crowd: bool) -> None:
    path = TMP / "instances_fuzz.json"
    path.write_bytes(data)
    try:
        coco = read_coco(path, TMP / "images", include_crowd=include_crowd)
    except DataError as error:
        _check_data_error(error, str(path))
        record("coco json", "DataError")
        return
    assert isinstance(coco, CocoFile)
    assert len(coco.names) == len(coco.category_ids)
    for item in coco.records:
        assert isinstance(item, ImageRecord) and item.width > 0 and item.height > 0
        assert (TMP / "images") in item.image.parents, f"escaped the images folder: {item.image}"
        _check_boxes(item.boxes, item.labels, len(coco.names))
    record("coco json", "ok")


def test_yolo_label_text():
    outcomes = run_counted("yolo txt", _yolo_text)
    assert outcomes["ok"] > 0 and outcomes["DataError"] > 0


def test_yolo_label_file_bytes():
    run_counted("yolo txt file", _yolo_file)


def test_names_file_bytes():
    run_counted("names file", _names_file)


def test_voc_xml():
    outcomes = run_counted("voc xml", _voc_xml)
    assert outcomes["ok"] > 0 and outcomes["DataError"] > 0


def test_coco_json():
    outcomes = run_counted("coco json", _coco_json)
    assert outcomes["ok"] > 0 and outcomes["DataError"] > 0
