"""Inference-only rewrites of a built network: same outputs, less work on the CPU.

:func:`inference_copy` returns a copy of a :class:`Darknet` (the original is left alone) with

* batch norm folded into the convolutions (``Darknet.fuse``);
* leaky ReLUs working in place (they only ever see a fresh convolution output);
* each ``[maxpool]`` whose Darknet padding can be expressed as PyTorch's own ``-inf`` padding turned
  into a single ``max_pool2d`` (no replicate-padded copy of the feature map first). Darknet pads
  ``padding // 2`` before and the rest after, with ``-inf``:

  - before == after = p (SPP pools, odd sizes): ``max_pool2d(padding=p)`` (needs ``p <= size // 2``);
  - before = 0, after = stride - 1, size >= stride (the ``size=2 stride=2`` pools): ``ceil_mode``,
    whose partial last window covers exactly the real pixels;
  - before = 0, after = a <= size // 2, stride 1 (``size=2 stride=1`` in yolov3-tiny): symmetric
    padding ``a`` and the first ``a`` output rows and columns dropped.

  Any other combination keeps the original module.
"""

from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import Tensor, nn

from darkyolo.models.darknet import Darknet
from darkyolo.models.layers import MaxPool


class PaddedMaxPool(nn.Module):
    """Darknet's ``[maxpool]`` as one ``max_pool2d`` with ``-inf`` padding (see module docstring)."""

    def __init__(
        self,
        sources: tuple[int, ...],
        size: int,
        stride: int,
        padding: int,
        ceil_mode: bool,
        crop: int,
    ) -> None:
        super().__init__()
        self.sources = sources
        self.size, self.stride, self.padding = size, stride, padding
        self.ceil_mode, self.crop = ceil_mode, crop

    def forward(self, x: Tensor) -> Tensor:
        y = F.max_pool2d(x, self.size, self.stride, self.padding, ceil_mode=self.ceil_mode)
        if self.crop:
            y = y[:, :, self.crop :, self.crop :]
        return y


def padded_max_pool(pool: MaxPool) -> PaddedMaxPool | None:
    """The equivalent :class:`PaddedMaxPool` for a Darknet ``MaxPool``, or None if there is none."""
    before, after = pool.pad[0], pool.pad[1]
    size, stride = pool.size, pool.stride
    if before == after and before <= size // 2:
        return PaddedMaxPool(pool.sources, size, stride, before, False, 0)
    if before == 0 and after == stride - 1 and size >= stride:
        return PaddedMaxPool(pool.sources, size, stride, 0, True, 0)
    if before == 0 and stride == 1 and after <= size // 2:
        return PaddedMaxPool(pool.sources, size, stride, after, False, after)
    return None


def inference_copy(model: Darknet, in_place: bool = True) -> Darknet:
    """A fused, eval-mode copy of ``model`` with the rewrites above (``in_place``: leaky ReLUs)."""
    net = copy.deepcopy(model).eval().fuse()
    for index, layer in enumerate(net.layers):
        if isinstance(layer, MaxPool):
            faster = padded_max_pool(layer)
            if faster is not None:
                net.layers[index] = faster
    if in_place:
        for module in net.modules():
            if isinstance(module, nn.LeakyReLU):
                module.inplace = True
    return net
