"""Fuzz the dataset description: a ``.data`` file and its image list, mutated together.

Property: :func:`load_dataset` and reading the records it lists either succeed (finite boxes,
classes in range) or raise :class:`DataError` whose one-line message names the file at fault
(the ``.data`` file, the list with its line, the names file, a label file or an image). Inputs
include list entries that leave the dataset folder (refused), NUL characters and missing files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from fuzzing import FUZZ, check_error, mutated_lines, record, run_counted, tokens
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from darkyolo.data.description import DatasetSpec
from darkyolo.data.layouts import load_dataset
from darkyolo.errors import DataError

TMP = Path(tempfile.mkdtemp(prefix="darkyolo-fuzz-description-"))


def _check_boxes(boxes: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    assert boxes.dtype.kind == "f" and boxes.shape == (len(labels), 4)
    assert np.isfinite(boxes).all()
    assert ((labels >= 0) & (labels < num_classes)).all()


DATA_ROOT = TMP / "dataset"
DATA_TEXT = "classes=3\ntrain=train.txt\nvalid=valid.txt\nnames=bccd.names\nbackup=backup/\n"
LIST_TEXT = "images/train/a.png\nimages/train/b.png\n"


def _make_dataset_files() -> None:
    (DATA_ROOT / "images" / "train").mkdir(parents=True, exist_ok=True)
    (DATA_ROOT / "labels" / "train").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        Image.new("RGB", (16, 12), (90, 120, 150)).save(
            DATA_ROOT / "images" / "train" / f"{name}.png"
        )
    (DATA_ROOT / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (DATA_ROOT / "labels" / "train" / "b.txt").write_text("2 0.5 0.5 1 1\n1 0.2 0.2 0.1 0.1\n")
    (DATA_ROOT / "bccd.names").write_text("RBC\nWBC\nPlatelets\n")
    (DATA_ROOT / "valid.txt").write_text("images/train/b.png\n")


_make_dataset_files()
_DATA_LINES = st.tuples(
    st.sampled_from(("classes", "train", "valid", "val", "names", "backup", "eval", "nope")),
    st.one_of(tokens(), st.sampled_from(("train.txt", "valid.txt", "bccd.names", "images"))),
).map(lambda kv: f"{kv[0]}={kv[1]}")
_LIST_LINES = st.one_of(
    st.sampled_from(
        ("images/train/a.png", "../dataset/images/train/a.png", "../../../etc/passwd",
         "images/../../x.png", "missing.png", "bccd.names", "/dev/null", "images")
    ),
    tokens(),
)  # fmt: skip


@FUZZ
@given(
    st.one_of(mutated_lines(DATA_TEXT, _DATA_LINES), st.just(DATA_TEXT), st.text(max_size=60)),
    st.one_of(mutated_lines(LIST_TEXT, _LIST_LINES), st.just(LIST_TEXT)),
)
def _data_description(data_text: str, list_text: str) -> None:
    data_file = DATA_ROOT / "fuzz.data"
    list_file = DATA_ROOT / "train.txt"
    data_file.write_text(data_text, encoding="utf-8", errors="surrogatepass")
    list_file.write_text(list_text, encoding="utf-8", errors="surrogatepass")
    try:
        spec = load_dataset(data_file)
        assert isinstance(spec, DatasetSpec)
        for split in ("train", "val"):
            for item in spec.read(split):
                _check_boxes(item.boxes, item.labels, spec.num_classes)
    except DataError as error:
        # names the .data file, the list, a names file or an image: whichever is at fault
        assert error.file is not None, f"no file named: {error}"
        check_error(error, error.file)
        record(".data description", "DataError")
        return
    record(".data description", "ok")


def test_data_description():
    outcomes = run_counted(".data description", _data_description)
    assert outcomes["ok"] > 0 and outcomes["DataError"] > 0
