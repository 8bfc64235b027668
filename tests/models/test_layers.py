import itertools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from darkyolo.models.layers import MaxPool


def _pool(size: int, stride: int, padding: int) -> MaxPool:
    return MaxPool(SimpleNamespace(size=size, stride=stride, padding=padding), (0,))


def _replicate_reference(pool: MaxPool, x: torch.Tensor) -> torch.Tensor:
    """Darknet's pool with the padding made of edge copies (same maxima as -inf)."""
    return F.max_pool2d(F.pad(x, pool.pad, mode="replicate"), pool.size, pool.stride)


def _darknet_reference(pool: MaxPool, x: torch.Tensor) -> torch.Tensor:
    """Darknet's pool literally: ``padding//2`` of -inf before, the rest after."""
    return F.max_pool2d(F.pad(x, pool.pad, value=float("-inf")), pool.size, pool.stride)


@pytest.mark.parametrize(
    ("size", "stride", "padding"),
    [(2, 2, 1), (2, 1, 1), (5, 1, 4), (9, 1, 8), (13, 1, 12), (3, 2, 2), (3, 1, 2), (3, 3, 2)],
)
@pytest.mark.parametrize(("h", "w"), [(13, 13), (16, 17), (5, 9), (26, 3)])
def test_darknet_pools_are_one_max_pool2d_and_exact(size, stride, padding, h, w):
    pool = _pool(size, stride, padding)
    if h + padding < size or w + padding < size:
        pytest.skip("input smaller than the window")
    assert pool.native is not None
    x = torch.randn(2, 3, h, w, requires_grad=True)
    expected = _darknet_reference(pool, x)
    got = pool(x)
    assert torch.equal(got, expected)
    assert torch.equal(got, _replicate_reference(pool, x))
    assert torch.equal(pool(x.contiguous(memory_format=torch.channels_last)), expected)
    # the same gradient as the literal form (training goes through this layer too)
    weight = torch.randn_like(expected)
    (grad,) = torch.autograd.grad((got * weight).sum(), x)
    (want,) = torch.autograd.grad((expected * weight).sum(), x)
    assert torch.equal(grad, want)


def test_every_small_pool_is_exact_single_call_or_fallback():
    fallback = 0
    for size, stride, padding in itertools.product(range(1, 8), range(1, 4), range(0, 8)):
        pool = _pool(size, stride, padding)
        fallback += pool.native is None
        for h, w in [(7, 7), (8, 11)]:
            if min(h, w) + padding < size:
                continue
            x = torch.randn(1, 2, h, w)
            assert torch.equal(pool(x), _replicate_reference(pool, x)), (size, stride, padding)
    assert fallback < 7 * 3 * 8  # most combinations are a single max_pool2d
