"""The network built from each bundled cfg: shapes, FLOPs, passthrough order, input size, fusing."""

from __future__ import annotations

import pytest
import torch

from darkyolo import load_model
from darkyolo.darknet.cfg import bundled_cfgs, parse_cfg
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.errors import ConfigError
from darkyolo.models.darknet import Darknet
from darkyolo.models.layers import Reorg

GFLOPS_416 = {
    "yolov2": 29.46,
    "yolov2-tiny": 5.41,
    "yolov3": 65.86,
    "yolov3-tiny": 5.56,
    "yolov3-spp": 66.22,
}


@pytest.mark.parametrize("name", bundled_cfgs("detect"))
def test_output_shapes(name: str) -> None:
    model = load_model(name)
    x = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        rows = model(x)
        raw = model.forward_raw(x)
    classes = model.num_classes
    expected_rows = sum(h.num_anchors * r.shape[2] * r.shape[3] for h, r in zip(model.heads, raw))
    assert rows.shape == (2, expected_rows, 5 + classes)
    for head, r in zip(model.heads, raw):
        assert r.shape[:2] == (2, head.num_anchors * (5 + classes))
    assert ((rows[..., 4:] >= 0) & (rows[..., 4:] <= 1)).all()
    model.train()
    assert [t.shape for t in model(x)] == [r.shape for r in raw]


@pytest.mark.parametrize(("name", "gflops"), GFLOPS_416.items())
def test_flops_match_darknet(name: str, gflops: float) -> None:
    shapes = infer_shapes(load_model(name).config, 416, 416)
    assert round(sum(s.flops for s in shapes) / 1e9, 2) == gflops


def test_reorg_is_darknets_order() -> None:
    """Darknet's reorg: output[k, j, i] = input_as[C/4, 2H, 2W][k % (C/4), 2j + (k // (C/4)) // 2, 2i + (k // (C/4)) % 2]."""
    c, h, w = 8, 4, 6
    x = torch.arange(c * h * w, dtype=torch.float32).view(1, c, h, w)
    out = Reorg(2, ()).forward(x)
    assert out.shape == (1, 4 * c, h // 2, w // 2)
    wide = x.view(c // 4, 2 * h, 2 * w)
    flat_out = out.reshape(c, h, w)  # Darknet writes the output buffer with the input's indexing
    for k in range(c):
        for j in range(h):
            for i in range(w):
                offset = k // (c // 4)
                expected = wide[k % (c // 4), 2 * j + offset // 2, 2 * i + offset % 2]
                assert flat_out[k, j, i] == expected


def test_decoded_boxes_follow_the_formulas() -> None:
    model = load_model("yolov3-tiny").randomize_(seed=0)
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        raw = model.forward_raw(x)[0]  # stride 32 head: 2 x 3 grid, anchors 3, 4, 5
        rows = model(x)
    head = model.heads[0]
    p = head.split(raw)[0]  # [H, W, A, 5+C]
    y, xcell, a = 1, 2, 1
    row = rows[0, (y * 3 + xcell) * 3 + a]
    assert torch.isclose(row[0], (xcell + torch.sigmoid(p[y, xcell, a, 0])) / 3)
    assert torch.isclose(row[1], (y + torch.sigmoid(p[y, xcell, a, 1])) / 2)
    assert torch.isclose(row[2], torch.exp(p[y, xcell, a, 2]) * 135 / 96)
    assert torch.isclose(row[3], torch.exp(p[y, xcell, a, 3]) * 169 / 64)


def test_half_precision_maps_are_decoded_in_float32() -> None:
    model = load_model("yolov3-tiny").randomize_(seed=0)
    with torch.inference_mode():
        raw = model.forward_raw(torch.rand(1, 3, 320, 320))
        half = [r.bfloat16() for r in raw]
        rows = model.decode(half, (320, 320))
        exact = model.decode([r.float() for r in half], (320, 320))
    assert rows.dtype == torch.float32
    assert torch.equal(rows, exact)


def test_input_size_changes_without_rebuild() -> None:
    model = load_model("yolov2-tiny")
    model.set_input_size(320)
    assert model.input_size == (320, 320) and model.stride == 32
    with pytest.raises(ConfigError, match="multiple of the network stride 32"):
        model.set_input_size(320, 100)
    with pytest.raises(ConfigError, match="too small"):
        load_model(
            parse_cfg(
                "[net]\nwidth=4\nheight=4\n[convolutional]\nfilters=6\nsize=5\n"
                "[yolo]\nmask=0\nanchors=1,1\nclasses=1\nnum=1\n"
            )
        )


def test_fused_model_gives_the_same_rows() -> None:
    model = load_model("yolov2").randomize_(seed=9)
    x = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        before = model(x)
        after = model.fuse()(x)
    assert torch.allclose(before, after, atol=1e-4)


def test_shape_errors_name_the_line() -> None:
    text = (
        "[net]\nwidth=64\nheight=64\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\n"
        "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
        "[route]\nlayers=-1,-2\n"
    )
    message = (
        r"x.cfg:13: layer 2: \[route\] inputs differ in size \(layer 1: 32x32, layer 0: 64x64\)"
    )
    with pytest.raises(ConfigError, match=message):
        load_model(parse_cfg(text, "x.cfg"))


def test_an_absurd_filters_count_is_refused_before_allocating() -> None:
    text = "[net]\nwidth=64\nheight=64\nchannels=3\n\n[convolutional]\nfilters=1024\nsize=3\n\n[convolutional]\nfilters=200000000\nsize=3\n"
    config = parse_cfg(text, "huge.cfg")
    with pytest.raises(ConfigError, match="more than the 1,000,000,000 any YOLO needs") as caught:
        Darknet(config)
    assert caught.value.line == 10 and caught.value.key == "filters"


def test_load_model_honours_prefixes(tmp_path) -> None:
    """A ``.conv.N`` file fills the layers it holds; the others keep their initial values."""
    from darkyolo.export import export_prefix
    from darkyolo.models.io import load_model

    full = load_model("yolov3-tiny").randomize_(seed=3)
    path, count = export_prefix(full, tmp_path / "tiny.conv.15", 15)
    assert count == 9  # layers 0..14: 9 convolutions and 6 max-pools
    fresh = load_model("yolov3-tiny", path)
    assert torch.equal(fresh.layers[14].conv.weight, full.layers[14].conv.weight)
    assert not torch.equal(fresh.layers[15].conv.weight, full.layers[15].conv.weight)
