"""The picture scan: real pictures damaged by the test, each with its verdict, message and count."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny import shared_data

from darkyolo.data.images import decode, read_image
from darkyolo.data.scan import check_image, scan_images


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    """One real BCCD picture, intact and damaged five ways."""
    source = shared_data("bccd/JPEGImages/BloodImage_00000.jpg").read_bytes()
    folder = tmp_path_factory.mktemp("damaged")
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR))[1]
    files = {
        "intact.jpg": source,
        "cut20.jpg": source[:-20],
        "half.jpg": source[: len(source) // 2],
        "empty.jpg": b"",
        "png.jpg": png.tobytes(),
        "text.jpg": b"a text file, not a picture\n",
        "halfpng.png": png.tobytes()[: len(png) // 2],
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def test_each_damage_gets_its_verdict_and_message(damaged: dict[str, Path]) -> None:
    verdicts = {name: check_image(path) for name, path in damaged.items()}
    assert verdicts["intact.jpg"].status == "ok"
    for name in ("cut20.jpg", "half.jpg"):
        assert verdicts[name].status == "repaired", verdicts[name]
        assert verdicts[name].message.startswith("truncated JPEG")
    assert verdicts["halfpng.png"].status == "repaired"
    assert verdicts["halfpng.png"].message.startswith("truncated PNG")
    assert verdicts["empty.jpg"].status == "excluded"
    assert verdicts["empty.jpg"].message == "empty file, not an image"
    assert verdicts["text.jpg"].status == "excluded"
    assert verdicts["text.jpg"].message == "not a recognised image format"
    assert verdicts["png.jpg"].status == "renamed"
    assert verdicts["png.jpg"].message == "PNG data in a .jpg file"


def test_a_truncated_jpeg_decodes_as_opencv_shows_it(damaged: dict[str, Path]) -> None:
    """What is there is the picture; the missing blocks are libjpeg's grey, as cv2.imread gives."""
    for name in ("cut20.jpg", "half.jpg"):
        decoded = decode(damaged[name].read_bytes(), name)
        assert decoded.repaired
        opencv = cv2.imread(str(damaged[name]))[:, :, ::-1]
        np.testing.assert_array_equal(decoded.pixels, opencv)
    half = read_image(damaged["half.jpg"])
    intact = read_image(damaged["intact.jpg"])
    np.testing.assert_array_equal(half[:100], intact[:100])  # the top is all there
    assert (half[-20:] == 128).all()  # the bottom is grey


def test_the_scan_counts_and_remembers(damaged: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "scan.json"
    paths = sorted(damaged.values())
    _, report = scan_images(paths, cache=cache)
    assert report.checked == 7 and report.cached == 0
    assert len(report.repaired) == 3 and len(report.excluded) == 2 and len(report.renamed) == 1
    line = report.summary()
    assert "7 checked" in line and "3 truncated and repaired" in line and "2 excluded" in line
    _, again = scan_images(paths, cache=cache)
    assert again.cached == 7 and [c.path for c in again.excluded] == [
        c.path for c in report.excluded
    ]
    # a file that changes is checked again
    damaged_copy = tmp_path / "changing.jpg"
    damaged_copy.write_bytes(damaged["intact.jpg"].read_bytes())
    _, first = scan_images([damaged_copy], cache=cache)
    damaged_copy.write_bytes(b"")
    os.utime(damaged_copy, ns=(1, 1))
    _, second = scan_images([damaged_copy], cache=cache)
    assert first.cached == 0 and second.cached == 0 and len(second.excluded) == 1


def test_a_damaged_cache_is_ignored(damaged: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "scan.json"
    cache.write_text("{not json")
    _, report = scan_images([damaged["intact.jpg"]], cache=cache)
    assert report.checked == 1 and report.cached == 0
