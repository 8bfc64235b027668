"""The shipped default model (yolov3-tiny trained by darkyolo on BCCD) loads and finds blood cells."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from darkyolo.data.formats.yolo import read_labels, read_names
from darkyolo.inference.predictor import Detector

ASSETS = Path(str(resources.files("darkyolo") / "assets" / "bccd"))


def test_shipped_files_are_there() -> None:
    for name in ("yolov3-tiny-bccd.cfg", "yolov3-tiny-bccd.weights", "bccd.names", "LICENSE"):
        assert (ASSETS / name).is_file(), name
    assert (ASSETS / "yolov3-tiny-bccd.weights").stat().st_size < 40_000_000
    assert read_names(ASSETS / "bccd.names") == ["Platelets", "RBC", "WBC"]


def test_finds_each_class_on_a_shipped_picture_labelled_with_it() -> None:
    """Per class: some shipped picture whose labels hold it gets a detection of it (conf 0.25)."""
    detector = Detector(
        ASSETS / "yolov3-tiny-bccd.cfg",
        ASSETS / "yolov3-tiny-bccd.weights",
        names=ASSETS / "bccd.names",
        conf=0.25,
    )
    pictures = sorted((ASSETS / "images").glob("*.jpg"))
    assert len(pictures) >= 3
    found: dict[int, int] = {0: 0, 1: 0, 2: 0}
    for picture, prediction in zip(pictures, detector.predict(pictures)):
        _, labels = read_labels(ASSETS / "labels" / (picture.stem + ".txt"), 640, 480, 3)
        for label in set(labels.tolist()) & set(prediction.labels.tolist()):
            found[label] += 1
    assert all(found.values()), found
    # Every shipped picture holds all three classes; the model finds them in most of them.
    assert sum(found.values()) >= 2 * len(pictures), found
