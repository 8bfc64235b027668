"""``darkyolo info`` prints the layer table and Darknet's FLOPs."""

from __future__ import annotations

import pytest

from darkyolo.cli import main


@pytest.mark.parametrize(
    ("name", "gflops"), [("yolov3", "65.86"), ("yolov3-tiny", "5.56"), ("yolov2", "29.46")]
)
def test_info_prints_flops_at_416(
    name: str, gflops: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", name, "--img-size", "416"]) == 0
    out = capsys.readouterr().out
    assert f"{gflops} GFLOPs at 416x416" in out
    assert "conv" in out and ("yolo" in out or "region" in out)


def test_info_table_and_other_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "yolov2-voc", "--img-size", "320"]) == 0
    out = capsys.readouterr().out
    assert "reorg" in out and "256 x 10 x 10" in out
    assert "at 320x320" in out


def test_info_bad_model_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled names are" in err[0]


def test_info_size_not_multiple_of_stride(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["info", "yolov3", "--img-size", "300"])
    assert exit.value.code == 2
    assert "--img-size: expected a positive multiple of 32" in capsys.readouterr().err


def test_info_without_a_model_lists_the_bundled_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "yolov3-tiny-coco (alias coco) [default]: 80 classes" in out
    assert "yolov3-tiny-bccd (alias bccd): 3 classes" in out
    detectors, classifiers = out.splitlines()[-2:]
    assert detectors.startswith("  detectors: ") and "yolov2-tiny" in detectors
    assert classifiers.startswith("  classifiers (darkyolo classify): darknet, darknet19")
