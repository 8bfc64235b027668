from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.records import ImageRecord, Problem


def test_record_coerces_types_and_shapes():
    record = ImageRecord("a/b.jpg", 640, 480, [[0, 0, 64, 48]], [3], Path("a/b.txt"))
    assert record.image == Path("a/b.jpg")
    assert record.boxes.dtype == np.float64 and record.boxes.shape == (1, 4)
    assert record.labels.dtype == np.int64 and record.labels.tolist() == [3]
    assert len(record) == 1
    assert record.source == "a/b.txt"
    np.testing.assert_allclose(record.normalised_wh(), [[0.1, 0.1]])


def test_record_without_boxes_and_mismatch():
    empty = ImageRecord("x.jpg", 10, 10)
    assert empty.boxes.shape == (0, 4) and empty.labels.shape == (0,)
    assert empty.source == "x.jpg"
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        ImageRecord("x.jpg", 10, 10, np.zeros((2, 4)), [0])


def test_problem_text_names_file_and_line():
    assert str(Problem("error", "unparsable", "bad", "l.txt", 3)) == "l.txt:3: error: bad"
    assert str(Problem("warning", "empty-image", "no boxes", "x.jpg")) == "x.jpg: warning: no boxes"
