"""Layer shapes and FLOPs from a cfg alone: Darknet's arithmetic, no tensors (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from darkyolo.darknet.specs import (
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


@dataclass(frozen=True)
class _Step:
    """One layer's shape rule's answer: output ``(C, H, W)``, FLOPs, weights, kind and text."""

    output: tuple[int, int, int]
    kind: str
    text: str
    flops: int = 0
    weights: int = 0
    inputs: tuple[tuple[int, int, int], ...] | None = None  # None: the previous output


_Fail = Callable[[str], ConfigError]
_Rule = Callable[[Any, int, tuple[int, int, int], list[tuple[int, int, int]], _Fail], _Step]


def _conv(
    spec: ConvSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    c, h, w = chw
    if c % spec.groups or spec.filters % spec.groups:
        raise fail(f"layer {index}: groups={spec.groups} does not divide {c} -> {spec.filters}")
    oh = (h + 2 * spec.padding - spec.size) // spec.stride + 1
    ow = (w + 2 * spec.padding - spec.size) // spec.stride + 1
    kernel = spec.filters * (c // spec.groups) * spec.size * spec.size
    text = f"{spec.filters:5d} {spec.size}x{spec.size}/{spec.stride} {spec.activation}"
    text += " bn" if spec.batch_normalize else ""
    return _Step((spec.filters, oh, ow), "conv", text, 2 * kernel * oh * ow, kernel)


def _maxpool(
    spec: MaxPoolSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    c, h, w = chw
    oh = (h + spec.padding - spec.size) // spec.stride + 1
    ow = (w + spec.padding - spec.size) // spec.stride + 1
    return _Step((c, oh, ow), "maxpool", f"      {spec.size}x{spec.size}/{spec.stride}")


def _route(
    spec: RouteSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    inputs = tuple(shapes[i] for i in spec.layers)
    if len({s[1:] for s in inputs}) != 1:
        sizes = ", ".join(f"layer {i}: {s[1]}x{s[2]}" for i, s in zip(spec.layers, inputs))
        raise fail(f"layer {index}: [route] inputs differ in size ({sizes})")
    out = (sum(s[0] for s in inputs), inputs[0][1], inputs[0][2])
    return _Step(out, "route", " ".join(str(i) for i in spec.layers), inputs=inputs)


def _shortcut(
    spec: ShortcutSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    if shapes[spec.source] != chw:
        raise fail(
            f"layer {index}: [shortcut] from layer {spec.source} has shape "
            f"{shapes[spec.source]}, the previous layer {chw}"
        )
    return _Step(chw, "shortcut", f"from {spec.source}", inputs=(chw, shapes[spec.source]))


def _reorg(
    spec: ReorgSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    s, (c, h, w) = spec.stride, chw
    if c % (s * s) or h % s or w % s:
        raise fail(f"layer {index}: [reorg] stride {s} does not divide {c}x{h}x{w}")
    return _Step((c * s * s, h // s, w // s), "reorg", f"      /{s}")


def _connected(
    spec: ConnectedSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    inputs = chw[0] * chw[1] * chw[2]
    text = f"{spec.output:5d} <- {inputs} {spec.activation}" + (
        " bn" if spec.batch_normalize else ""
    )
    return _Step(
        (spec.output, 1, 1), "connected", text, 2 * inputs * spec.output, inputs * spec.output
    )


def _softmax(
    spec: SoftmaxSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    size = chw[0] * chw[1] * chw[2]
    if size % spec.groups:
        raise fail(f"layer {index}: groups={spec.groups} does not divide {size}")
    return _Step(chw, "softmax", f"      {spec.groups} group(s)")


def _head(
    spec: RegionSpec | YoloSpec, index: int, chw: tuple[int, int, int], shapes: list, fail: _Fail
) -> _Step:
    expected = len(spec.mask) * (5 + spec.classes)
    if chw[0] != expected:
        raise fail(f"layer {index}: head expects {expected} input channels, gets {chw[0]}")
    kind = "region" if isinstance(spec, RegionSpec) else "yolo"
    return _Step(chw, kind, f"{len(spec.mask)} anchors, {spec.classes} classes")


#: each layer kind's shape rule ``(spec, index, input (C, H, W), outputs so far, fail) -> _Step``;
#: a new kind registers here (and in the parser's and the network builder's tables)
SHAPE_RULES: dict[type, _Rule] = {
    ConvSpec: _conv,
    MaxPoolSpec: _maxpool,
    RouteSpec: _route,
    ShortcutSpec: _shortcut,
    UpsampleSpec: lambda spec, i, chw, shapes, fail: _Step(
        (chw[0], chw[1] * spec.stride, chw[2] * spec.stride), "upsample", f"      x{spec.stride}"
    ),
    ReorgSpec: _reorg,
    ConnectedSpec: _connected,
    AvgPoolSpec: lambda spec, i, chw, shapes, fail: _Step(
        (chw[0], 1, 1), "avgpool", f"      {chw[1]}x{chw[2]} -> 1x1"
    ),
    SoftmaxSpec: _softmax,
    CostSpec: lambda spec, i, chw, shapes, fail: _Step(chw, "cost", f"      {spec.type}"),
    DropoutSpec: lambda spec, i, chw, shapes, fail: _Step(
        chw, "dropout", f"      p={spec.probability:g}"
    ),
    RegionSpec: _head,
    YoloSpec: _head,
}


def infer_shapes(config: NetworkConfig, height: int, width: int) -> list[LayerShape]:
    """Walk the cfg and compute every layer's output shape for a ``height x width`` input.

    Raises :class:`ConfigError` (with the layer's cfg line) when shapes do not fit together, or
    when the convolutions would hold more than :data:`MAX_WEIGHTS` weights.
    """
    shapes: list[tuple[int, int, int]] = []
    result: list[LayerShape] = []
    current = (config.net.channels, height, width)
    weights = 0
    for index, spec in enumerate(config.layers):
        line = getattr(spec, "line", None)

        def fail(message: str, line: int | None = line) -> ConfigError:
            return ConfigError(message, config.source, line)

        step = SHAPE_RULES[type(spec)](spec, index, current, shapes, fail)
        if step.weights:
            weights += step.weights
            if weights > MAX_WEIGHTS:
                key = "output" if isinstance(spec, ConnectedSpec) else "filters"
                what = (
                    f"output={spec.output} on {step.weights // spec.output} inputs"
                    if isinstance(spec, ConnectedSpec)
                    else f"filters={spec.filters}, size={spec.size} on {current[0]} channels"  # type: ignore[union-attr]
                )
                raise ConfigError(
                    f"layer {index}: {what} brings the network to {weights:,} weights, more than "
                    f"the {MAX_WEIGHTS:,} any YOLO needs (a typo?)",
                    config.source, line, key,
                )  # fmt: skip
        out = step.output
        if min(out[1:]) < 1:
            raise fail(f"layer {index}: input {height}x{width} is too small (output {out})")
        inputs = step.inputs if step.inputs is not None else (current,)
        shapes.append(out)
        result.append(LayerShape(index, step.kind, inputs, out, step.flops, step.text))
        current = out
    return result
