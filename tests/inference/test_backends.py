"""The engines: auto's rule, OpenVINO against ONNX Runtime, and OpenVINO's IR export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import darkyolo.inference.engines as engines
from darkyolo.cli import main
from darkyolo.errors import DarkyoloError, OptionError
from darkyolo.inference.engines import choose_backend
from darkyolo.inference.predictor import Detector
from darkyolo.openvino_ir import openvino_core

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "darkyolo" / "assets" / "samples"


@pytest.fixture
def installed(monkeypatch):
    """``installed("onnx", "onnxruntime")``: only those optional modules are found."""

    def only(*names: str) -> None:
        monkeypatch.setattr(engines, "missing_modules", lambda mods: [m for m in mods if m not in names])  # fmt: skip

    return only


def test_auto_prefers_openvino_then_onnxruntime_then_torch(installed) -> None:
    installed("onnx", "onnxruntime", "openvino")
    assert choose_backend("auto")[0] == "openvino"
    assert choose_backend("auto", exported="m.onnx")[0] == "openvino"
    assert choose_backend("auto", torch_only="--compile")[0] == "torch"
    assert choose_backend("auto", device="cuda")[0] == "torch"
    installed("onnx", "onnxruntime")
    assert choose_backend("auto")[0] == "onnxruntime"
    assert choose_backend("auto", exported="m.onnx")[0] == "onnxruntime"
    assert choose_backend("auto", exported="m.xml")[0] == "openvino"  # an IR is OpenVINO's
    installed("onnxruntime", "openvino")  # no onnx: a cfg cannot be handed over
    assert choose_backend("auto")[0] == "torch"
    installed("onnx")
    backend, why = choose_backend("auto")
    assert backend == "torch" and why == "auto: neither OpenVINO nor ONNX Runtime is installed"
    assert choose_backend("onnxruntime") == ("onnxruntime", "asked for")
    with pytest.raises(OptionError, match="is an OpenVINO IR"):
        choose_backend("onnxruntime", exported="m.xml")
    with pytest.raises(OptionError, match="is an exported network"):
        choose_backend("torch", exported="m.onnx")


@pytest.fixture(scope="module")
def openvino():
    return pytest.importorskip("openvino")


def test_openvino_equals_onnxruntime_in_float32(openvino) -> None:
    pictures = sorted(SAMPLES.glob("*.jpg"))
    found = {
        name: Detector(backend=name, conf=0.1).predict(pictures)
        for name in ("onnxruntime", "openvino")
    }
    boxes = 0
    for a, b in zip(found["onnxruntime"], found["openvino"]):
        assert len(a) == len(b) and np.array_equal(a.labels, b.labels)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3, rtol=0)  # pixels
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-4, rtol=0)
        boxes += len(a)
    assert boxes > 10


def test_throughput_streams_give_what_one_request_gives(openvino) -> None:
    pictures = sorted(SAMPLES.glob("*.jpg"))
    one = Detector(backend="openvino", batch_size=1).predict(pictures)
    streams = Detector(backend="openvino", batch_size=4).predict(pictures)
    for a, b in zip(one, streams):
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3, rtol=0)


def test_openvino_ir_export_float_half_and_int8(openvino, tmp_path: Path, capsys) -> None:
    pytest.importorskip("nncf")
    ir = tmp_path / "tiny.xml"
    assert main(["export", "--format", "openvino", "-o", str(ir), "--img-size", "320"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {ir} and tiny.bin: OpenVINO IR, float32 weights" in out
    assert "OpenVINO vs PyTorch: max difference" in out and "(absolute; ok)" in out
    detector = Detector(ir)
    assert detector.backend_name == "openvino" and detector.input_hw == (320, 320)
    assert detector.names[0] == "person"  # the names travel in the IR

    half = tmp_path / "half.xml"
    assert main(["export", "--format", "openvino", "--half", "-o", str(half)]) == 0
    assert half.with_suffix(".bin").stat().st_size < 0.6 * ir.with_suffix(".bin").stat().st_size

    int8 = tmp_path / "int8.xml"
    argv = ["export", "--format", "openvino", "--int8", "--calib", str(SAMPLES), "-o", str(int8)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "OpenVINO IR int8 (NNCF), calibrated on" in out and "agreement with float32" in out
    model = openvino_core().read_model(str(int8))
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    assert "FakeQuantize" in kinds.values()
    head = model.get_ops()[[op.get_friendly_name() for op in model.get_ops()].index("/layers.15/conv/Conv/WithoutBiases")]  # fmt: skip
    assert head.input_value(0).get_node().get_type_name() != "FakeQuantize"  # kept float
    assert len(Detector(int8).predict(sorted(SAMPLES.glob("*.jpg"))[0])) > 0

    assert main(["export", "--format", "onnx", "--half"]) == 2
    assert "--half is a float OpenVINO export" in capsys.readouterr().err


def test_a_static_ir_names_the_shape_it_takes(openvino, tmp_path: Path) -> None:
    ir = tmp_path / "static.xml"
    assert main(["export", "--format", "openvino", "--static", "--img-size", "320", "-o", str(ir)]) == 0  # fmt: skip
    detector = Detector(ir, img_size=416)
    with pytest.raises(DarkyoloError, match=r"takes input \[1, 3, 320, 320\] .* given \[1, 3, 416, 416\]"):  # fmt: skip
        detector.predict(sorted(SAMPLES.glob("*.jpg"))[0])
