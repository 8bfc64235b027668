"""The classifier's loss as Darknet's ``[softmax]`` (and ``[cost]``) layers compute it.

Darknet's softmax layer is its own loss: the error is ``-log p`` at the true class and the delta
handed back to the logits is ``t - p`` (one-hot ``t``), whatever the ``temperature`` and however
many ``groups`` there are; its backward passes the delta through unchanged. A ``[cost]`` layer
after it (AlexeyAB's cfgs still end in ``[cost] type=sse``) adds ``scale * (t - p)`` more, so the
logits get ``(1 + scale)(t - p)``. The gradient here is exactly that (descent direction
``p - t``); the value reported is the cross-entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darkyolo.darknet.cfg import CostSpec


class SoftmaxLoss:
    """``(logits list, labels, input_hw, seen) -> (summed loss, {"cls": ...})`` for a classifier.

    ``logits``: ``[[B, N]]`` (the model's ``forward_raw``); ``labels``: ``int64 [B]`` class
    indices. The sum is over the batch, as the detection losses (the trainer divides by the
    images per update, as Darknet divides its deltas by ``batch``).
    """

    part_names = ("cls",)

    def __init__(self, model: nn.Module) -> None:
        config = getattr(model, "config", None)
        self.probabilities = getattr(model, "classify", lambda x: x.float().softmax(dim=-1))
        self.weight = 1.0
        if config is not None and config.softmax_index is not None:
            after = config.layers[config.softmax_index + 1 :]
            self.weight += sum(s.scale for s in after if isinstance(s, CostSpec))

    def __call__(
        self, raw: list[Tensor], labels: Tensor, input_hw: tuple[int, int], seen: int = 0
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits = raw[0] if isinstance(raw, (list, tuple)) else raw
        labels = labels.to(logits.device)
        probs = self.probabilities(logits.float())
        truth = torch.zeros_like(probs).scatter_(1, labels[:, None], 1.0)
        surrogate = (self.weight * (probs - truth).detach() * logits.float()).sum()
        picked = probs.gather(1, labels[:, None]).clamp_min(1e-12)
        entropy = -picked.log().sum()
        total = entropy.detach() + surrogate - surrogate.detach()
        return total, {"cls": entropy.detach()}
