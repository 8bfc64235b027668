"""The building blocks of a Darknet network, each exactly as Darknet computes it.

Every layer declares ``sources``: the absolute indices of the earlier layers whose outputs it takes,
in order. The network's forward pass feeds them in; no layer looks anything up by name.
Tensors are ``[B, C, H, W]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darkyolo.darknet.cfg import ConnectedSpec, ConvSpec, MaxPoolSpec, SoftmaxSpec

#: Darknet's batch-norm epsilon (AlexeyAB; pjreddie's CPU path differs, see design notes fact 2).
BN_EPS = 1e-5
#: Darknet keeps running statistics as ``0.99 * old + 0.01 * new``.
BN_MOMENTUM = 0.01


def activation(name: str) -> nn.Module:
    """The Darknet activation ``name`` as a module (``leaky`` has slope 0.1)."""
    modules: dict[str, nn.Module] = {
        "leaky": nn.LeakyReLU(0.1),
        "linear": nn.Identity(),
        "relu": nn.ReLU(),
        "logistic": nn.Sigmoid(),
        "mish": nn.Mish(),
        "swish": nn.SiLU(),
    }
    return modules[name]


class Layer(nn.Module):
    """Base: ``sources`` are the absolute indices of the layers this one reads."""

    sources: tuple[int, ...]


class ConvBNAct(Layer):
    """``[convolutional]``: conv (bias only without batch norm) -> batch norm -> activation."""

    def __init__(self, in_channels: int, spec: ConvSpec, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.conv = nn.Conv2d(
            in_channels,
            spec.filters,
            spec.size,
            spec.stride,
            spec.padding,
            groups=spec.groups,
            bias=not spec.batch_normalize,
        )
        self.bn: nn.BatchNorm2d | None = (
            nn.BatchNorm2d(spec.filters, eps=BN_EPS, momentum=BN_MOMENTUM)
            if spec.batch_normalize
            else None
        )
        self.act = activation(spec.activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold batch norm into the convolution (inference only; the ``.weights`` view is lost)."""
        if self.bn is None:
            return
        bn, conv = self.bn, self.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True,
        ).to(conv.weight.device, conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv, self.bn = fused, None


class MaxPool(Layer):
    """``[maxpool]`` with Darknet's padding: ``padding//2`` before, the rest after, with ``-inf``.

    Output side: ``(side + padding - size) // stride + 1``. Where PyTorch's own (``-inf``) padding
    can say the same, it is one ``max_pool2d`` with no padded copy of the map:

    * before == after = p <= size // 2 (SPP pools, odd sizes): ``padding=p``;
    * before = 0, after = stride - 1, size >= stride (``size=2 stride=2``): ``ceil_mode``, whose
      partial last window covers exactly the real pixels;
    * before = 0, after = a <= size // 2, stride 1 (``size=2 stride=1``): ``padding=a`` and the first
      ``a`` output rows and columns dropped.

    Any other combination replicate-pads first (the edge copies give the same maxima as ``-inf``).
    """

    def __init__(self, spec: MaxPoolSpec, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.size, self.stride = spec.size, spec.stride
        before = spec.padding // 2
        after = spec.padding - before
        self.pad = (before, after, before, after)
        #: ``(padding, ceil_mode, crop)`` of the single ``max_pool2d``, or None: replicate-pad first
        self.native: tuple[int, bool, int] | None = None
        if before == after and before <= self.size // 2:
            self.native = (before, False, 0)
        elif before == 0 and after == self.stride - 1 and self.size >= self.stride:
            self.native = (0, True, 0)
        elif before == 0 and self.stride == 1 and after <= self.size // 2:
            self.native = (after, False, after)

    def forward(self, x: Tensor) -> Tensor:
        if self.native is None:
            return F.max_pool2d(F.pad(x, self.pad, mode="replicate"), self.size, self.stride)
        padding, ceil_mode, crop = self.native
        y = F.max_pool2d(x, self.size, self.stride, padding, ceil_mode=ceil_mode)
        return y[:, :, crop:, crop:] if crop else y


class Route(Layer):
    """``[route]``: concatenate the source outputs along channels, in cfg order."""

    def __init__(self, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources

    def forward(self, *inputs: Tensor) -> Tensor:
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)


class Shortcut(Layer):
    """``[shortcut]``: ``act(previous + source)`` (the residual connection of Darknet-53)."""

    def __init__(self, sources: tuple[int, ...], activation_name: str) -> None:
        super().__init__()
        self.sources = sources
        self.act = activation(activation_name)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.act(x + residual)


class Upsample(Layer):
    """``[upsample]``: nearest-neighbour by an integer ``stride``."""

    def __init__(self, stride: int, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=float(self.stride), mode="nearest")


class Reorg(Layer):
    """``[reorg]``: Darknet's passthrough, which is *not* a plain space-to-depth.

    Darknet reads the ``[B, C, H, W]`` buffer as ``[B, C/s², H*s, W*s]`` and writes the
    space-to-depth of that: output ``[B, C*s², H/s, W/s]`` with channel order (row offset,
    column offset, channel). Pretrained YOLOv2 weights expect exactly this order.
    """

    def __init__(self, stride: int, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        x = x.reshape(b, c // (s * s), h, s, w, s)
        return x.permute(0, 3, 5, 1, 2, 4).reshape(b, c * s * s, h // s, w // s)


class AvgPool(Layer):
    """``[avgpool]``: each channel's mean over the whole map, ``[B, C, H, W] -> [B, C, 1, 1]``."""

    def __init__(self, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class Connected(Layer):
    """``[connected]``: ``x`` flattened in Darknet's (C, H, W) order, ``x @ W.T``, then batch norm
    (whose beta is Darknet's bias) or a bias, then the activation. ``[B, C, H, W] -> [B, N, 1, 1]``.
    """

    def __init__(self, in_features: int, spec: ConnectedSpec, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.linear = nn.Linear(in_features, spec.output, bias=not spec.batch_normalize)
        self.bn: nn.BatchNorm1d | None = (
            nn.BatchNorm1d(spec.output, eps=BN_EPS, momentum=BN_MOMENTUM)
            if spec.batch_normalize
            else None
        )
        self.act = activation(spec.activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x.flatten(1))
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)[:, :, None, None]


class Softmax(Layer):
    """``[softmax]``: probabilities of ``x / temperature`` over the flattened ``C*H*W`` values,
    in ``groups`` equal parts; the output keeps the input's shape. :meth:`probabilities` works on
    flat logits ``[B, N]`` (what the classification loss reads)."""

    def __init__(self, spec: SoftmaxSpec, sources: tuple[int, ...]) -> None:
        super().__init__()
        self.sources = sources
        self.groups, self.temperature = spec.groups, spec.temperature

    def probabilities(self, logits: Tensor) -> Tensor:
        """``[B, N]`` logits -> ``[B, N]`` probabilities, each group summing to 1."""
        grouped = logits.float().reshape(logits.shape[0], self.groups, -1) / self.temperature
        return grouped.softmax(dim=-1).reshape(logits.shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.probabilities(x.flatten(1)).view(x.shape)


class Passthrough(Layer):
    """``[cost]`` (its training delta is the classification loss's business) and ``[dropout]``
    (``nn.Dropout``: zero with ``p`` in training, scale the rest by ``1/(1-p)``, as Darknet)."""

    def __init__(self, sources: tuple[int, ...], dropout: float = 0.0) -> None:
        super().__init__()
        self.sources = sources
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(x) if self.dropout is not None else x


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine values, for a frozen backbone (``--freeze``).

    The four values are buffers, not parameters: no gradient, no optimiser, and ``model.train()``
    cannot turn it back into a batch-statistics layer, so nothing has to re-apply eval mode.
    Attribute and state-dict names are ``nn.BatchNorm2d``'s (``num_batches_tracked`` included), so
    ``.weights`` files, checkpoints and folding read it alike.
    """

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.num_features, self.eps = bn.num_features, bn.eps
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(bn, name).detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )
