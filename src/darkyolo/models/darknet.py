"""Build a PyTorch network from a parsed Darknet cfg.

The network is built once from the typed sections: each layer is a module that knows its
``sources`` (the earlier layers it reads), so ``forward`` is one loop with no string dispatch.

* ``model.forward_raw(x)`` -> list of raw head maps ``[B, A*(5+C), H, W]`` (what the losses use);
  for a classifier (no heads) one tensor, the logits ``[B, N]`` that its last ``[softmax]`` reads.
* ``model.decode(raw_maps, input_hw)`` -> ``[B, N, 5+C]`` decoded rows (see ``models.heads``).
* ``model(x)``: raw maps in training mode; in eval mode decoded rows, or a classifier's
  probabilities ``[B, N]``.

``x`` is ``float[B, 3, H, W]``, RGB in 0..1, H and W multiples of the network stride (32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from darkyolo.darknet.cfg import (
    AvgPoolSpec,
    ConnectedSpec,
    ConvSpec,
    CostSpec,
    DropoutSpec,
    MaxPoolSpec,
    NetworkConfig,
    RegionSpec,
    ReorgSpec,
    RouteSpec,
    ShortcutSpec,
    SoftmaxSpec,
    UpsampleSpec,
    YoloSpec,
)
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.errors import ConfigError
from darkyolo.models.heads import DetectionHead, RegionHead, YoloHead
from darkyolo.models.layers import (
    AvgPool,
    Connected,
    ConvBNAct,
    MaxPool,
    Passthrough,
    Reorg,
    Route,
    Shortcut,
    Softmax,
    Upsample,
)


def _previous(index: int) -> tuple[int, ...]:
    return (index - 1,) if index else ()


#: each layer kind's module, from ``(spec, layer index, (C, H, W) of its first input)``; a new
#: kind registers here (and in the parser's and the shapes' tables)
BUILDERS: dict[type, Callable[[Any, int, tuple[int, int, int]], nn.Module]] = {
    ConvSpec: lambda spec, i, chw: ConvBNAct(chw[0], spec, _previous(i)),
    MaxPoolSpec: lambda spec, i, chw: MaxPool(spec, _previous(i)),
    RouteSpec: lambda spec, i, chw: Route(spec.layers),
    ShortcutSpec: lambda spec, i, chw: Shortcut((i - 1, spec.source), spec.activation),
    UpsampleSpec: lambda spec, i, chw: Upsample(spec.stride, _previous(i)),
    ReorgSpec: lambda spec, i, chw: Reorg(spec.stride, _previous(i)),
    RegionSpec: lambda spec, i, chw: RegionHead(spec, _previous(i)),
    YoloSpec: lambda spec, i, chw: YoloHead(spec, _previous(i)),
    AvgPoolSpec: lambda spec, i, chw: AvgPool(_previous(i)),
    SoftmaxSpec: lambda spec, i, chw: Softmax(spec, _previous(i)),
    ConnectedSpec: lambda spec, i, chw: Connected(chw[0] * chw[1] * chw[2], spec, _previous(i)),
    DropoutSpec: lambda spec, i, chw: Passthrough(_previous(i), spec.probability),
    CostSpec: lambda spec, i, chw: Passthrough(_previous(i)),
}


class Darknet(nn.Module):
    """A network built from a :class:`NetworkConfig`: a detector (with ``[region]``/``[yolo]``
    heads) or a classifier (``task == "classify"``: no heads; its output is its last
    ``[softmax]``, or its last layer when it has none, as for a backbone).

    Attributes: ``config``; ``layers`` (``nn.ModuleList`` in cfg order); ``heads`` (the detection
    heads in cfg order); ``input_size`` ``(height, width)``, the default size for pre-processing,
    changed with :meth:`set_input_size` (no rebuild: the network is fully convolutional, unless it
    has ``[connected]`` layers).
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        shapes = infer_shapes(config, config.net.height, config.net.width)
        self.input_size = (config.net.height, config.net.width)
        layers: list[nn.Module] = []
        for index, (spec, shape) in enumerate(zip(config.layers, shapes)):
            layers.append(BUILDERS[type(spec)](spec, index, shape.inputs[0]))
        self.layers = nn.ModuleList(layers)
        self.head_indices = tuple(config.head_indices)
        self.task = "detect" if self.head_indices else "classify"
        #: a classifier's output layer (its last [softmax], else its last layer) and the index of
        #: the layer whose output is its logits
        self.output_index = self._output_index()
        self.logits_index = (
            self.output_index - 1
            if isinstance(config.layers[self.output_index], SoftmaxSpec)
            else self.output_index
        )
        # Free each output right after the last layer that reads it (heads' maps are returned).
        last_use = {i: i + 1 for i in range(len(layers))}
        for index, layer in enumerate(layers):
            for source in layer.sources:
                last_use[source] = max(last_use[source], index)
        self._free_after: tuple[tuple[int, ...], ...] = tuple(
            tuple(i for i, last in last_use.items() if last == index)
            for index in range(len(layers))
        )

    def _output_index(self) -> int:
        """A classifier's output layer; only ``[cost]``/``[dropout]`` may follow it."""
        specs = self.config.layers
        if self.head_indices:
            return len(specs) - 1
        softmax = self.config.softmax_index
        if softmax is None:
            return len(specs) - 1
        after = [s for s in specs[softmax + 1 :] if not isinstance(s, (CostSpec, DropoutSpec))]
        if after:
            raise ConfigError(
                "a classifier's last [softmax] may be followed only by [cost] or [dropout]",
                self.config.source,
                after[0].line,
            )
        if softmax == 0:
            raise ConfigError("[softmax] needs a layer before it", self.config.source)
        return softmax

    @property
    def heads(self) -> list[DetectionHead]:
        return [self.layers[i] for i in self.head_indices]  # type: ignore[misc]

    @property
    def num_classes(self) -> int:
        """The detector's classes, or the classifier's outputs."""
        return self.heads[0].num_classes if self.head_indices else self.config.num_classes

    @property
    def stride(self) -> int:
        """The largest downsampling factor (input sides must be multiples of it): the heads' for
        a detector, 1 for a classifier (its global pooling takes any size)."""
        if not self.head_indices:
            return 1
        shapes = infer_shapes(self.config, *self.input_size)
        return max(self.input_size[0] // shapes[i].output[1] for i in self.head_indices)

    def set_input_size(self, height: int, width: int | None = None) -> None:
        """Change the default input size (checked against the layers; nothing is rebuilt)."""
        width = height if width is None else width
        stride = self.stride
        if height % stride or width % stride:
            raise ConfigError(
                f"input size {height}x{width} must be a multiple of the network stride {stride}",
                self.config.source,
            )
        connected = [s for s in self.config.layers if isinstance(s, ConnectedSpec)]
        if connected and (height, width) != (self.config.net.height, self.config.net.width):
            raise ConfigError(
                f"a network with [connected] layers takes only its cfg's input size "
                f"{self.config.net.height}x{self.config.net.width}, not {height}x{width}",
                self.config.source,
                connected[0].line,
            )
        infer_shapes(self.config, height, width)
        self.input_size = (height, width)

    def forward_raw(self, x: Tensor) -> list[Tensor]:
        """``x: [B, 3, H, W]`` -> one raw map ``[B, A*(5+C), h, w]`` per head, in cfg order; for a
        classifier ``[logits [B, N]]``, the flattened input of its last ``[softmax]``."""
        outputs: list[Tensor | None] = [None] * len(self.layers)
        raw: list[Tensor] = []
        stop = self.logits_index if not self.head_indices else len(self.layers) - 1
        for index, layer in enumerate(self.layers[: stop + 1]):
            inputs = [outputs[s] for s in layer.sources] if layer.sources else [x]
            outputs[index] = layer(*inputs)
            if index in self.head_indices:
                raw.append(outputs[index])
            for done in self._free_after[index]:
                if done != stop:
                    outputs[done] = None
        if not self.head_indices:
            raw.append(outputs[stop].flatten(1))  # type: ignore[union-attr]
        return raw

    def classify(self, logits: Tensor) -> Tensor:
        """A classifier's ``[B, N]`` logits -> its output: the ``[softmax]`` probabilities (the
        logits themselves for a network without one)."""
        layer = self.layers[self.output_index]
        return layer.probabilities(logits) if isinstance(layer, Softmax) else logits

    def decode(self, raw_maps: list[Tensor], input_hw: tuple[int, int]) -> Tensor:
        """Raw maps -> ``[B, N, 5+C]`` rows (cx, cy, w, h normalised, objectness, class probs)."""
        return torch.cat([head.decode(r, input_hw) for head, r in zip(self.heads, raw_maps)], dim=1)

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        raw = self.forward_raw(x)
        if self.training:
            return raw
        if not self.head_indices:
            return self.classify(raw[0])
        return self.decode(raw, (x.shape[-2], x.shape[-1]))

    def conv_layers(self) -> list[ConvBNAct]:
        """Convolutional layers in cfg order."""
        return [layer for layer in self.layers if isinstance(layer, ConvBNAct)]

    def weighted_layers(self) -> list[ConvBNAct | Connected]:
        """Layers with weights, in cfg order: the order of ``.weights`` files."""
        return [layer for layer in self.layers if isinstance(layer, (ConvBNAct, Connected))]

    @torch.no_grad()
    def randomize_(self, seed: int = 0) -> Darknet:
        """Fill every parameter and batch-norm statistic with seeded random values; returns ``self``.

        For tests and benchmarks (no pretrained weights ship offline): kernels ~ N(0, 1/fan_in) so
        activations stay bounded through deep nets; BN statistics are deliberately non-trivial.
        """
        generator = torch.Generator().manual_seed(seed)

        def uniform(t: Tensor, low: float, high: float) -> None:
            t.copy_(torch.rand(t.shape, generator=generator) * (high - low) + low)

        for layer in self.weighted_layers():
            core = layer.conv if isinstance(layer, ConvBNAct) else layer.linear
            weight = core.weight
            fan_in = weight[0].numel()
            weight.copy_(torch.randn(weight.shape, generator=generator) / fan_in**0.5)
            if core.bias is not None:
                uniform(core.bias, -0.1, 0.1)
            if layer.bn is not None:
                uniform(layer.bn.weight, 0.5, 1.5)
                uniform(layer.bn.bias, -0.2, 0.2)
                uniform(layer.bn.running_mean, -0.2, 0.2)
                uniform(layer.bn.running_var, 0.5, 2.0)
        # Like a trained net, keep residual branches small so Darknet-53's 23 additions do not blow
        # the activations up, and keep the heads' raw outputs in a realistic range.
        for index, layer in enumerate(self.layers):
            before = self.layers[index - 1] if index else None
            if (
                isinstance(layer, Shortcut)
                and isinstance(before, ConvBNAct)
                and before.bn is not None
            ):
                before.bn.weight.mul_(0.2)
                before.bn.bias.mul_(0.2)
            if isinstance(layer, DetectionHead) and isinstance(before, ConvBNAct):
                before.conv.weight.mul_(0.5)
        return self

    def fuse(self) -> Darknet:
        """Fold batch norm into convolutions for inference; returns ``self``."""
        for layer in self.conv_layers():
            layer.fuse()
        return self
