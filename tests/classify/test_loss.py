"""The classifier's gradient is Darknet's softmax delta, ``(1 + cost scale)(p - t)`` on the logits."""

from __future__ import annotations

import pytest
import torch

from darkyolo.classify.loss import SoftmaxLoss
from darkyolo.darknet.cfg import parse_cfg
from darkyolo.models.darknet import Darknet

BODY = (
    "[net]\nwidth=8\nheight=8\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[avgpool]\n"
)


@pytest.mark.parametrize(
    ("tail", "groups", "temperature", "weight"),
    [
        ("[softmax]\n", 1, 1.0, 1.0),
        ("[softmax]\ngroups=2\ntemperature=2\n", 2, 2.0, 1.0),
        ("[softmax]\n[cost]\ntype=sse\n", 1, 1.0, 2.0),
        ("[softmax]\n[cost]\ntype=smooth\nscale=.5\n", 1, 1.0, 1.5),
    ],
)
def test_gradient_is_darknets_delta(
    tail: str, groups: int, temperature: float, weight: float
) -> None:
    model = Darknet(parse_cfg(BODY + tail))
    loss = SoftmaxLoss(model)
    logits = torch.randn(4, 6, requires_grad=True)
    labels = torch.tensor([0, 5, 2, 3])
    total, parts = loss([logits], labels, (8, 8))
    total.backward()
    p = (logits.detach().view(4, groups, -1) / temperature).softmax(-1).view(4, 6)
    t = torch.nn.functional.one_hot(labels, 6).float()
    assert torch.allclose(logits.grad, weight * (p - t), atol=1e-6)
    expected = -(p.gather(1, labels[:, None])).log().sum()
    assert torch.allclose(parts["cls"], expected) and torch.allclose(total.detach(), expected)
