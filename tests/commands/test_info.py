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


def test_info_reads_a_checkpoint_and_an_onnx_export(
    tmp_path, bccd_small, tiny_cfg_file, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiny import train_tiny

    last = train_tiny(tiny_cfg_file, bccd_small, tmp_path / "runs") / "weights" / "last.pt"
    assert main(["info", str(last), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"{last}: darkyolo checkpoint, 1 epochs" in out
    assert "trained at 96x96" in out and "classes: Platelets, RBC, WBC" in out
    assert "at 96x96" in out.splitlines()[-1]  # the layer summary at the trained size

    pytest.importorskip("onnx")
    onnx_file = tmp_path / "m.onnx"
    assert (
        main(
            ["export", "--weights", str(last), "--output", str(onnx_file), "--static", "--no-check"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["info", str(onnx_file)]) == 0
    out = capsys.readouterr().out
    assert "ONNX, opset 17" in out and "float32" in out and "(a darkyolo export)" in out
    assert "input images: [1, 3, 96, 96]" in out
    assert "exported at 96x96, stride 32, 3 classes" in out


def test_info_on_a_file_that_is_not_onnx_is_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.onnx: not a readable ONNX file" in err[0]
