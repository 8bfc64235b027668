"""Layer shapes and FLOPs from a cfg alone: Darknet's arithmetic, no tensors (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

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
from darkyolo.errors import ConfigError


@dataclass(frozen=True)
class LayerShape:
    """One layer's input and output ``(C, H, W)`` at a given input size, and its cost."""

    index: int
    kind: str
    inputs: tuple[tuple[int, int, int], ...]
    output: tuple[int, int, int]
    flops: int  # 2 per multiply-add, convolutional and connected only (Darknet's BFLOPs)
    description: str


#: More convolution weights than this (4 GB of float32, 16x YOLOv3's 62 million) is a typo in a
#: cfg, not a network: refused before anything is allocated.
MAX_WEIGHTS = 1_000_000_000


def infer_shapes(config: NetworkConfig, height: int, width: int) -> list[LayerShape]:
    """Walk the cfg and compute every layer's output shape for a ``height x width`` input.

    Raises :class:`ConfigError` (with the layer's cfg line) when shapes do not fit together, or
    when the convolutions would hold more than :data:`MAX_WEIGHTS` weights.
    """
    shapes: list[tuple[int, int, int]] = []
    result: list[LayerShape] = []
    current = (config.net.channels, height, width)
    weights = 0

    def fail(spec: object, message: str) -> ConfigError:
        return ConfigError(message, config.source, getattr(spec, "line", None))

    def add_weights(count: int, spec: object, key: str, what: str) -> int:
        """The running weight count with ``count`` more; refused past :data:`MAX_WEIGHTS`."""
        total = weights + count
        if total > MAX_WEIGHTS:
            raise ConfigError(
                f"layer {index}: {what} brings the network to {total:,} weights, more than the "
                f"{MAX_WEIGHTS:,} any YOLO needs (a typo?)",
                config.source,
                getattr(spec, "line", None),
                key,
            )
        return total

    for index, spec in enumerate(config.layers):
        inputs = (current,)
        flops = 0
        c, h, w = current
        if isinstance(spec, ConvSpec):
            if c % spec.groups or spec.filters % spec.groups:
                raise fail(
                    spec,
                    f"layer {index}: groups={spec.groups} does not divide {c} -> {spec.filters}",
                )
            oh = (h + 2 * spec.padding - spec.size) // spec.stride + 1
            ow = (w + 2 * spec.padding - spec.size) // spec.stride + 1
            out = (spec.filters, oh, ow)
            flops = 2 * spec.filters * (c // spec.groups) * spec.size * spec.size * oh * ow
            weights = add_weights(
                spec.filters * (c // spec.groups) * spec.size * spec.size, spec, "filters",
                f"filters={spec.filters}, size={spec.size} on {c} channels",
            )  # fmt: skip
            kind = "conv"
            text = f"{spec.filters:5d} {spec.size}x{spec.size}/{spec.stride} {spec.activation}"
            text += " bn" if spec.batch_normalize else ""
        elif isinstance(spec, MaxPoolSpec):
            out = (
                c,
                (h + spec.padding - spec.size) // spec.stride + 1,
                (w + spec.padding - spec.size) // spec.stride + 1,
            )
            kind, text = "maxpool", f"      {spec.size}x{spec.size}/{spec.stride}"
        elif isinstance(spec, RouteSpec):
            inputs = tuple(shapes[i] for i in spec.layers)
            if len({s[1:] for s in inputs}) != 1:
                sizes = ", ".join(f"layer {i}: {s[1]}x{s[2]}" for i, s in zip(spec.layers, inputs))
                raise fail(spec, f"layer {index}: [route] inputs differ in size ({sizes})")
            out = (sum(s[0] for s in inputs), inputs[0][1], inputs[0][2])
            kind, text = "route", " ".join(str(i) for i in spec.layers)
        elif isinstance(spec, ShortcutSpec):
            inputs = (current, shapes[spec.source])
            if shapes[spec.source] != current:
                raise fail(
                    spec,
                    f"layer {index}: [shortcut] from layer {spec.source} has shape "
                    f"{shapes[spec.source]}, the previous layer {current}",
                )
            out = current
            kind, text = "shortcut", f"from {spec.source}"
        elif isinstance(spec, UpsampleSpec):
            out = (c, h * spec.stride, w * spec.stride)
            kind, text = "upsample", f"      x{spec.stride}"
        elif isinstance(spec, ReorgSpec):
            s = spec.stride
            if c % (s * s) or h % s or w % s:
                raise fail(spec, f"layer {index}: [reorg] stride {s} does not divide {c}x{h}x{w}")
            out = (c * s * s, h // s, w // s)
            kind, text = "reorg", f"      /{s}"
        elif isinstance(spec, ConnectedSpec):
            out = (spec.output, 1, 1)
            flops = 2 * c * h * w * spec.output
            weights = add_weights(
                c * h * w * spec.output,
                spec,
                "output",
                f"output={spec.output} on {c * h * w} inputs",
            )
            kind = "connected"
            text = f"{spec.output:5d} <- {c * h * w} {spec.activation}"
            text += " bn" if spec.batch_normalize else ""
        elif isinstance(spec, AvgPoolSpec):
            out = (c, 1, 1)
            kind, text = "avgpool", f"      {h}x{w} -> 1x1"
        elif isinstance(spec, SoftmaxSpec):
            if (c * h * w) % spec.groups:
                raise fail(spec, f"layer {index}: groups={spec.groups} does not divide {c * h * w}")
            out = current
            kind, text = "softmax", f"      {spec.groups} group(s)"
        elif isinstance(spec, CostSpec):
            out = current
            kind, text = "cost", f"      {spec.type}"
        elif isinstance(spec, DropoutSpec):
            out = current
            kind, text = "dropout", f"      p={spec.probability:g}"
        elif isinstance(spec, (RegionSpec, YoloSpec)):
            expected = len(spec.mask) * (5 + spec.classes)
            if c != expected:
                raise fail(spec, f"layer {index}: head expects {expected} input channels, gets {c}")
            out = current
            kind = "region" if isinstance(spec, RegionSpec) else "yolo"
            text = f"{len(spec.mask)} anchors, {spec.classes} classes"
        else:  # pragma: no cover - the parser produces only the kinds above
            raise TypeError(spec)
        if min(out[1:]) < 1:
            raise fail(spec, f"layer {index}: input {height}x{width} is too small (output {out})")
        shapes.append(out)
        result.append(LayerShape(index, kind, inputs, out, flops, text))
        current = out
    return result
