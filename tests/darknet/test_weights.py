"""`.weights` I/O: byte-exact round trips, official sizes, prefixes, and precise size errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from darkyolo import load_model
from darkyolo.darknet.weights import WeightsHeader, read_header
from darkyolo.errors import WeightsError
from darkyolo.models.io import load_darknet_weights, load_weights, save_darknet_weights


def test_round_trip_is_byte_exact(tmp_path: Path) -> None:
    model = load_model("yolov3-tiny").randomize_(seed=1)
    first, second = tmp_path / "a.weights", tmp_path / "b.weights"
    save_darknet_weights(model, first, WeightsHeader(0, 2, 5, seen=123456789012))
    reloaded = load_model("yolov3-tiny", first)
    save_darknet_weights(reloaded, second)
    assert first.read_bytes() == second.read_bytes()
    assert reloaded.weights_header == WeightsHeader(0, 2, 5, seen=123456789012)
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(a, b)


def test_old_header_has_32bit_seen(tmp_path: Path) -> None:
    model = load_model("yolov2-tiny").randomize_(seed=2)
    path = tmp_path / "old.weights"
    save_darknet_weights(model, path, WeightsHeader(0, 1, 0, seen=640))
    assert read_header(path.read_bytes(), str(path)) == WeightsHeader(0, 1, 0, 640)
    assert path.stat().st_size == 16 + 4 * (44948600 - 20) // 4


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("yolov3", 248_007_048),
        ("yolov3-tiny", 35_434_956),
        ("darknet19", 83_427_124),
        ("darknet53", 166_582_580),
        ("darknet", 29_293_940),
    ],
)
def test_sizes_match_the_official_files(name: str, size: int, tmp_path: Path) -> None:
    """Random weights written for each cfg have the official file's size, and read back to the
    same bytes."""
    path, again = tmp_path / f"{name}.weights", tmp_path / "again.weights"
    save_darknet_weights(load_model(name).randomize_(seed=4), path)
    assert path.stat().st_size == size
    save_darknet_weights(load_model(name, path), again)
    assert again.read_bytes() == path.read_bytes()


def test_prefix_backbone_file(tmp_path: Path) -> None:
    full = load_model("yolov3-tiny").randomize_(seed=3)
    prefix = tmp_path / "yolov3-tiny.conv.7"
    save_darknet_weights(full, prefix, cutoff=7)
    fresh = load_model("yolov3-tiny")
    with pytest.raises(
        WeightsError,
        match=r"too short for the cfg: layer 13 \(convolutional #8 of 13 weighted layers, cfg line \d+\) needs 1052672 bytes, 0 are left",
    ):
        load_darknet_weights(fresh, prefix)
    assert load_darknet_weights(fresh, prefix, allow_prefix=True) == 7
    assert torch.equal(fresh.conv_layers()[6].conv.weight, full.conv_layers()[6].conv.weight)
    assert not torch.equal(fresh.conv_layers()[7].conv.weight, full.conv_layers()[7].conv.weight)


def test_wrong_file_errors_say_layer_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tiny.weights"
    save_darknet_weights(load_model("yolov3-tiny"), path)
    data = path.read_bytes()
    (tmp_path / "cut.weights").write_bytes(data[:-400])
    with pytest.raises(
        WeightsError,
        match=r"layer 22 \(convolutional #13 of 13 weighted layers, cfg line \d+\) needs 262140 bytes, 261740",
    ):
        load_model("yolov3-tiny", tmp_path / "cut.weights")
    (tmp_path / "long.weights").write_bytes(data + b"\0" * 8)
    with pytest.raises(WeightsError, match="8 bytes left over"):
        load_model("yolov3-tiny", tmp_path / "long.weights")
    with pytest.raises(WeightsError, match="too short for the cfg"):
        load_model("yolov3", path)  # weights of another cfg
    (tmp_path / "odd.weights").write_bytes(data[:-3])
    with pytest.raises(WeightsError, match="whole number of float32"):
        load_model("yolov3-tiny", tmp_path / "odd.weights")
    (tmp_path / "empty.weights").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"too short for a \.weights header"):
        load_model("yolov3-tiny", tmp_path / "empty.weights")
    with pytest.raises(WeightsError, match="no such weights file"):
        load_model("yolov3-tiny", tmp_path / "missing.weights")


def test_nan_or_inf_values_name_the_layer(tmp_path: Path) -> None:
    path = tmp_path / "tiny.weights"
    save_darknet_weights(load_model("yolov3-tiny").randomize_(seed=3), path)
    data = bytearray(path.read_bytes())
    header = read_header(bytes(data), str(path)).nbytes
    data[header + 4 * 20 : header + 4 * 22] = np.array([np.nan, np.inf], np.float32).tobytes()
    (tmp_path / "nan.weights").write_bytes(bytes(data))
    with pytest.raises(
        WeightsError,
        match=r"layer 0 \(convolutional #1 of 13 weighted layers, cfg line \d+\) holds 2 NaN",
    ):
        load_model("yolov3-tiny", tmp_path / "nan.weights")


def test_checkpoint_state_dict_loads(tmp_path: Path) -> None:
    model = load_model("yolov3-tiny").randomize_(seed=4)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "epoch": 3}, path)
    other = load_model("yolov3-tiny")
    load_weights(other, path)
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(other(x), model.eval()(x))
    with pytest.raises(WeightsError, match="does not fit this cfg"):
        load_weights(load_model("yolov2-tiny"), path)


def test_saved_floats_are_in_darknet_order(tmp_path: Path) -> None:
    model = load_model("yolov2-tiny").randomize_(seed=5)
    path = tmp_path / "w.weights"
    save_darknet_weights(model, path)
    floats = np.frombuffer(path.read_bytes()[20:], dtype="<f4")
    first = model.conv_layers()[0]
    n = first.conv.out_channels
    assert first.bn is not None
    expected = [first.bn.bias, first.bn.weight, first.bn.running_mean, first.bn.running_var]
    for i, tensor in enumerate(expected):
        np.testing.assert_array_equal(floats[i * n : (i + 1) * n], tensor.detach().numpy())
    kernel = first.conv.weight.detach().numpy().ravel()
    np.testing.assert_array_equal(floats[4 * n : 4 * n + kernel.size], kernel)
