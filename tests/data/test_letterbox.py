import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from darkyolo.data.letterbox import Letterbox, clip_boxes, letterbox, letterbox_params
from darkyolo.errors import DataError


def test_wide_image_gets_bars_top_and_bottom():
    image = np.full((100, 200, 3), 255, dtype=np.uint8)
    out, box = letterbox(image, (416, 416))
    assert out.shape == (416, 416, 3) and out.dtype == np.float32
    assert box.resized_hw == (208, 416)
    assert (box.pad_x, box.pad_y) == (0, 104)
    assert np.all(out[:104] == 0.5) and np.all(out[-104:] == 0.5)
    assert np.allclose(out[104:312], 1.0)


def test_tall_odd_image_uses_darknet_rounding():
    # 333 wide, 517 high into 416: height fits, new_w = 333 * 416 // 517 = 267, pad (416-267)//2 = 74
    box = letterbox_params((517, 333), (416, 416))
    assert box.resized_hw == (416, 267)
    assert (box.pad_x, box.pad_y) == (74, 0)
    out, _ = letterbox(np.zeros((517, 333, 3), np.uint8), (416, 416))
    assert np.all(out[:, :74] == 0.5) and np.all(out[:, 74 + 267 :] == 0.5)
    assert np.all(out[:, 74 : 74 + 267] == 0.0)


def test_rectangular_network_and_same_size_is_identity():
    image = np.random.default_rng(0).integers(0, 256, (320, 416, 3), dtype=np.uint8)
    out, box = letterbox(image, (320, 416))
    assert (box.scale_x, box.scale_y, box.pad_x, box.pad_y) == (1.0, 1.0, 0, 0)
    assert np.allclose(out, image / 255.0, atol=1e-6)


def test_image_corners_map_to_the_picture_window():
    box = letterbox_params((517, 333), (416, 416))
    corners = np.array([[0.0, 0.0, 333.0, 517.0]])
    net = box.to_network(corners)
    assert np.allclose(net, [[74, 0, 74 + 267, 416]])
    assert np.allclose(box.to_original(net), corners)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 2000),
    w=st.integers(1, 2000),
    net_h=st.sampled_from([32, 96, 320, 416, 608]),
    net_w=st.sampled_from([32, 160, 416, 608]),
    data=st.data(),
)
def test_inverse_is_exact_on_odd_sizes(h, w, net_h, net_w, data):
    box = letterbox_params((h, w), (net_h, net_w))
    new_h, new_w = box.resized_hw
    assert new_h <= net_h and new_w <= net_w
    assert new_h == net_h or new_w == net_w
    coords = data.draw(st.lists(st.floats(-50, 2500, allow_nan=False), min_size=8, max_size=8))
    boxes = np.array(coords, dtype=np.float64).reshape(2, 4)
    assert np.allclose(box.to_original(box.to_network(boxes)), boxes, atol=1e-9)
    assert np.allclose(box.to_network(box.to_original(boxes)), boxes, atol=1e-9)


def test_torch_boxes_keep_type_and_match_numpy():
    box = letterbox_params((481, 641), (416, 416))
    boxes = np.array([[10.0, 20.0, 300.0, 400.0], [0.5, 1.5, 640.0, 480.0]])
    t = box.to_network(torch.tensor(boxes, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert np.allclose(t.numpy(), box.to_network(boxes), atol=1e-4)
    back = box.to_original(t)
    assert torch.allclose(back, torch.tensor(boxes, dtype=torch.float32), atol=1e-3)


def test_clip_to_original():
    box = Letterbox((100, 200), (416, 416), 416 / 200, 208 / 100, 0, 104)
    inside = box.to_original(np.array([[-10.0, 50.0, 500.0, 400.0]]), clip=True)
    assert np.allclose(inside, [[0, 0, 200, 100]])
    t = clip_boxes(torch.tensor([[-1.0, -1.0, 300.0, 300.0]]), (100, 200))
    assert t.tolist() == [[0.0, 0.0, 200.0, 100.0]]


def test_float_and_single_channel_images():
    gray = np.random.default_rng(1).random((50, 30, 1), dtype=np.float32)
    out, box = letterbox(gray, (64, 64))
    assert out.shape == (64, 64, 1)
    assert box.resized_hw == (64, 38)


def test_bad_inputs_raise_data_error():
    with pytest.raises(DataError):
        letterbox(np.zeros((10, 10), np.uint8), (32, 32))
    with pytest.raises(DataError):
        letterbox_params((0, 10), (32, 32))
