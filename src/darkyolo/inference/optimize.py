"""Inference-only rewrites of a built network: same outputs, less work on the CPU.

:func:`inference_copy` returns a copy of a :class:`Darknet` (the original is left alone) with

* batch norm folded into the convolutions (``Darknet.fuse``);
* leaky ReLUs working in place (they only ever see a fresh convolution output).

(Darknet's ``-inf``-padded max-pools are single ``max_pool2d`` calls in the model itself, see
:class:`darkyolo.models.layers.MaxPool`.)
"""

from __future__ import annotations

import copy

from torch import nn

from darkyolo.models.darknet import Darknet


def inference_copy(model: Darknet, in_place: bool = True) -> Darknet:
    """A fused, eval-mode copy of ``model`` with the rewrites above (``in_place``: leaky ReLUs)."""
    net = copy.deepcopy(model).eval().fuse()
    if in_place:
        for module in net.modules():
            if isinstance(module, nn.LeakyReLU):
                module.inplace = True
    return net
