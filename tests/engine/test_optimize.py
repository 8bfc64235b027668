import itertools
from types import SimpleNamespace

import pytest
import torch

from darkyolo.engine.optimize import PaddedMaxPool, inference_copy, padded_max_pool
from darkyolo.models.darknet import load_model
from darkyolo.models.layers import MaxPool


@pytest.mark.parametrize(
    ("size", "stride", "padding"),
    [(2, 2, 1), (2, 1, 1), (5, 1, 4), (9, 1, 8), (13, 1, 12), (3, 2, 2), (3, 1, 2), (3, 3, 2)],
)
@pytest.mark.parametrize(("h", "w"), [(13, 13), (16, 17), (5, 9), (26, 3)])
def test_rewritten_pools_equal_darknet_pools(size, stride, padding, h, w):
    pool = MaxPool(SimpleNamespace(size=size, stride=stride, padding=padding), (0,))
    fast = padded_max_pool(pool)
    if h + padding < size or w + padding < size:
        pytest.skip("input smaller than the window")
    x = torch.randn(2, 3, h, w)
    expected = pool(x)
    assert fast is not None
    assert torch.equal(fast(x), expected)
    assert torch.equal(fast(x.contiguous(memory_format=torch.channels_last)), expected)


def test_every_small_pool_either_rewrites_exactly_or_stays():
    kept = 0
    for size, stride, padding in itertools.product(range(1, 8), range(1, 4), range(0, 8)):
        pool = MaxPool(SimpleNamespace(size=size, stride=stride, padding=padding), (0,))
        fast = padded_max_pool(pool)
        if fast is None:
            kept += 1
            continue
        for h, w in [(7, 7), (8, 11)]:
            if min(h, w) + padding < size:
                continue
            x = torch.randn(1, 2, h, w)
            assert torch.equal(fast(x), pool(x)), (size, stride, padding, h, w)
    assert kept < 7 * 3 * 8  # most combinations have a rewrite


@pytest.mark.parametrize("cfg", ["yolov3-tiny", "yolov2-tiny"])
def test_inference_copy_gives_the_same_rows_and_leaves_the_model(cfg):
    model = load_model(cfg).randomize_(seed=0)
    fast = inference_copy(model)
    assert any(isinstance(layer, PaddedMaxPool) for layer in fast.layers)
    assert not any(isinstance(layer, PaddedMaxPool) for layer in model.layers)
    assert all(layer.bn is not None for layer in model.conv_layers() if layer.conv.bias is None)
    x = torch.rand(2, 3, 96, 160)  # a 3x5 last grid: odd sizes at the stride-1 pool
    with torch.inference_mode():
        expected = model(x)
        got = fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
