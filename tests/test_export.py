import numpy as np
import pytest
import torch

from darkyolo.errors import DarkyoloError, WeightsError
from darkyolo.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_onnx,
    export_onnx,
    export_weights,
    onnx_bytes,
    onnx_metadata,
    onnx_session,
)
from darkyolo.models.io import load_darknet_weights, load_model

pytest.importorskip("onnxruntime")


def randomized(cfg: str, size: int, seed: int = 0):
    """A model with random kernels and non-trivial batch-norm statistics (folding matters)."""
    model = load_model(cfg).randomize_(seed)
    model.set_input_size(size, size)
    return model


@pytest.mark.parametrize("cfg", ["yolov3-tiny", "yolov2-tiny", "yolov3-tiny-newcoords"])
def test_onnx_matches_pytorch_with_dynamic_batch_and_size(cfg, tmp_path):
    model = randomized(cfg, 96)
    path = export_onnx(model, tmp_path / f"{cfg}.onnx", names=[f"c{k}" for k in range(80)])
    # default check: batch 1 at 96x96, batch 2 at 64x128 (neither traced)
    assert check_onnx(model, path) <= 1e-4
    assert check_onnx(model, path, [(3, 160, 96)]) <= 1e-4
    meta = onnx_metadata(onnx_session(path))
    assert meta["num_classes"] == "80" and meta["stride"] == "32"
    assert (meta["input_height"], meta["input_width"]) == ("96", "96")
    if cfg.endswith("newcoords"):  # the cfg's DIoU-NMS travels with the file
        assert (meta["nms_kind"], meta["beta_nms"]) == ("diounms", "0.6")
    # the caller's model is left unfused
    assert all(layer.bn is not None for layer in model.conv_layers() if layer.conv.bias is None)


def test_yolov2_reorg_and_region_export(tmp_path):
    model = randomized("yolov2-voc", 64)
    data = onnx_bytes(model)
    assert check_onnx(model, data, [(1, 64, 64), (2, 96, 128)]) <= 1e-4


def test_onnx_output_layout():
    model = randomized("yolov3-tiny", 64)
    session = onnx_session(onnx_bytes(model))
    x = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    # two heads at strides 32 and 16, three anchors each
    assert out.shape == (2, 3 * (2 * 3 + 4 * 6), 85)
    assert np.all((out[..., 4:] >= 0) & (out[..., 4:] <= 1))
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(out - expected)) <= 1e-4  # plain absolute difference


def test_size_must_fit_the_stride():
    model = randomized("yolov3-tiny", 64)
    with pytest.raises(DarkyoloError, match="stride"):
        onnx_bytes(model, (100, 96))


def test_export_weights_round_trip(tmp_path):
    model = randomized("yolov3-tiny", 64)
    path = export_weights(model, tmp_path / "out.weights")
    again = load_model("yolov3-tiny")
    assert load_darknet_weights(again, path) == len(again.conv_layers())
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(WeightsError, match="folded"):
        export_weights(model.fuse(), tmp_path / "fused.weights")


def test_a_fixed_shape_export_names_the_shape_it_takes(tmp_path):
    from darkyolo.inference.predictor import OnnxBackend

    model = randomized("yolov3-tiny", 64)
    path = export_onnx(model, tmp_path / "static.onnx", dynamic=False)
    backend = OnnxBackend(path)
    assert backend(np.zeros((1, 64, 64, 3), np.float32)).shape[0] == 1
    with pytest.raises(DarkyoloError) as error:
        backend(np.zeros((2, 96, 64, 3), np.float32))
    message = str(error.value)
    assert "\n" not in message
    assert "static.onnx: this ONNX file takes input [1, 3, 64, 64]" in message
    assert "given [2, 3, 96, 64]" in message


def test_onnx_export_without_its_extra_says_what_to_install(tmp_path, monkeypatch):
    import darkyolo.extras

    real = darkyolo.extras.find_spec
    monkeypatch.setattr(
        darkyolo.extras, "find_spec", lambda name: None if name == "onnx" else real(name)
    )
    with pytest.raises(DarkyoloError, match=r"needs onnx, which is not installed: pip install 'darkyolo\[export\]'"):  # fmt: skip
        onnx_bytes(randomized("yolov3-tiny", 64))
