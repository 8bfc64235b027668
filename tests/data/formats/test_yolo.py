from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.formats.yolo import (
    format_labels,
    label_path_for,
    parse_labels,
    read_labels,
    read_names,
    write_labels,
    write_names,
)
from darkyolo.data.records import ImageRecord, Problem
from darkyolo.errors import DataError


def test_label_path_replaces_the_last_images_component():
    assert label_path_for("/d/images/train/x.jpg") == Path("/d/labels/train/x.txt")
    assert label_path_for("/images/d/images/a/x.png") == Path("/images/d/labels/a/x.txt")
    assert label_path_for("/d/pics/x.jpeg") == Path("/d/pics/x.txt")
    # a file called "images" is not a folder component
    assert label_path_for("/d/images") == Path("/d/images.txt")


def test_write_then_read_round_trip(tmp_path):
    record = ImageRecord("x.jpg", 640, 480, [[10, 20, 110, 220], [0, 0, 640, 480]], [2, 0])
    path = tmp_path / "x.txt"
    write_labels(path, record)
    lines = path.read_text().splitlines()
    assert lines[1] == "0 0.5 0.5 1 1"
    boxes, labels = read_labels(path, 640, 480, num_classes=3)
    np.testing.assert_allclose(boxes, record.boxes, atol=1e-4)
    assert labels.tolist() == [2, 0]


def test_empty_record_writes_empty_file(tmp_path):
    assert format_labels(ImageRecord("x.jpg", 5, 5)) == ""
    write_labels(tmp_path / "x.txt", ImageRecord("x.jpg", 5, 5))
    assert (tmp_path / "x.txt").read_text() == ""
    boxes, labels = read_labels(tmp_path / "x.txt", 5, 5, 1)
    assert boxes.shape == (0, 4) and labels.shape == (0,)


@pytest.mark.parametrize(
    ("line", "kind", "text"),
    [
        ("0 0.5 0.5 0.2", "unparsable", "5 numbers"),
        ("0 0.5 0.5 0.2 abc", "unparsable", "numbers"),
        ("1.5 0.5 0.5 0.2 0.2", "unparsable", "integer"),
        ("0 nan 0.5 0.2 0.2", "unparsable", "non-finite"),
        ("7 0.5 0.5 0.2 0.2", "class-range", "class 7 is outside 0..2"),
        ("-1 0.5 0.5 0.2 0.2", "class-range", "class -1"),
        ("0 320 240 64 48", "not-normalised", "pixels"),
        ("0 0.5 0.5 0 0.2", "zero-size", "must be > 0"),
        ("0 0.05 0.5 0.2 0.2", "out-of-range", "outside the image"),
    ],
)
def test_bad_lines_name_file_line_and_kind(line, kind, text):
    content = f"0 0.5 0.5 0.1 0.1\n\n{line}\n"
    with pytest.raises(DataError, match=text) as error:
        parse_labels(content, "l.txt", num_classes=3)
    assert (error.value.file, error.value.line) == ("l.txt", 3)
    problems: list[Problem] = []
    rows = parse_labels(content, "l.txt", num_classes=3, problems=problems)
    assert len(rows) == 1  # the good line is kept, the bad one left out
    assert [(p.kind, p.line, p.severity) for p in problems] == [(kind, 3, "error")]


def test_duplicates_are_warnings_and_kept():
    problems: list[Problem] = []
    text = "0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n0 0.5 0.5 0.1 0.1\n"
    rows = parse_labels(text, "l.txt", 2, problems)
    assert len(rows) == 3
    assert [(p.kind, p.line, p.message) for p in problems] == [
        ("duplicate", 3, "same box as line 1")
    ]


def test_tiny_overshoot_is_clipped_not_an_error():
    rows = parse_labels("0 0.5 0.5 1.000004 0.5\n", "l.txt", 1)
    assert rows[0, 3] == pytest.approx(1.0)


def test_names_round_trip_and_errors(tmp_path):
    write_names(tmp_path / "a.names", ["cat", "dog"])
    assert read_names(tmp_path / "a.names") == ["cat", "dog"]
    (tmp_path / "b.names").write_text("cat\n\ndog\n")
    with pytest.raises(DataError, match="empty class name") as error:
        read_names(tmp_path / "b.names")
    assert error.value.line == 2
    with pytest.raises(DataError, match="cannot be written"):
        write_names(tmp_path / "c.names", ["a\nb"])
