"""Darknet's layer kinds as typed, frozen specs: one dataclass per ``[section]``, each field a cfg
key with its default written once, here. :mod:`darkyolo.darknet.parser` reads every plain field
through its default and type (``int``, ``float``, ``bool`` for 0/1, ``str``, comma lists); a
:func:`setting` adds the cfg's key where it differs from the field's name, a minimum, or the
allowed values; a :func:`computed` field is worked out by the kind's parse function (anchors,
resolved layer indices, padding). :data:`SECTION_KINDS` maps every section name to its spec.

Layer indices follow Darknet: the first section after ``[net]`` is layer 0. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("leaky", "linear", "relu", "logistic", "mish", "swish")


def setting(
    default: Any, *, key: str | None = None, minimum: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:  # fmt: skip
    """A cfg key's field: its default, and where they apply the cfg's ``key``, the ``minimum``
    or the allowed ``choices``."""
    return field(default=default, metadata={"key": key, "minimum": minimum, "choices": choices})


def computed(default: Any) -> Any:
    """A field the kind's parse function works out (not one key's plain value)."""
    return field(default=default, metadata={"computed": True})


#: ``iou_loss`` values (AlexeyAB's ``IOU_LOSS``; ``mse`` is pjreddie's loss).
IOU_LOSSES = ("mse", "giou", "diou", "ciou")
#: ``nms_kind`` values: Darknet's default greedy IoU NMS, ``greedynms`` (greedy on DIoU with
#: exponent 0.6), ``diounms`` (greedy on DIoU with exponent ``beta_nms``). AlexeyAB's ``cornersnms``
#: is not supported.
NMS_KINDS = ("default", "greedynms", "diounms")


@dataclass(frozen=True)
class NetSpec:
    """``[net]``: input size, the training schedule and the augmentation keys. The classifier
    keys follow Darknet: ``min_crop``/``max_crop`` (the shorter side is scaled into that range
    before the crop; defaults ``width`` and ``2*width``), ``aspect`` (aspect-ratio jitter) and
    ``angle`` (rotation in degrees); ``policy=poly`` decays as ``(1 - k/total)^power``."""

    width: int = setting(416, minimum=1)
    height: int = setting(416, minimum=1)
    channels: int = setting(3, minimum=1)
    batch: int = setting(1, minimum=1)
    subdivisions: int = setting(1, minimum=1)
    learning_rate: float = 0.001
    momentum: float = 0.9
    decay: float = 0.0001
    burn_in: int = setting(0, minimum=0)
    power: float = 4.0
    max_batches: int = setting(0, minimum=0)
    policy: str = setting("constant", choices=("constant", "steps", "poly"))
    steps: tuple[int, ...] = computed(())
    scales: tuple[float, ...] = computed(())
    angle: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    min_crop: int = computed(416)  # default: width
    max_crop: int = computed(832)  # default: 2 * width
    aspect: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class ConvSpec:
    """``[convolutional]``: ``padding`` is the resolved per-side padding."""

    filters: int = setting(1, minimum=1)
    size: int = setting(1, minimum=1)
    stride: int = setting(1, minimum=1)
    padding: int = computed(0)  # ``pad=1``: size // 2, else ``padding``
    groups: int = setting(1, minimum=1)
    batch_normalize: bool = False
    activation: str = setting("logistic", choices=ACTIVATIONS)
    line: int = 0


@dataclass(frozen=True)
class MaxPoolSpec:
    """``[maxpool]``: Darknet pads ``padding`` in total, ``padding//2`` before and the rest after."""

    size: int = computed(1)  # default: stride
    stride: int = setting(1, minimum=1)
    padding: int = computed(0)  # default: size - 1
    line: int = 0


@dataclass(frozen=True)
class RouteSpec:
    """``[route]``: concatenate the outputs of ``layers`` (absolute indices) on channels."""

    layers: tuple[int, ...] = computed(())
    line: int = 0


@dataclass(frozen=True)
class ShortcutSpec:
    """``[shortcut]``: add the output of layer ``source`` (absolute) to the previous output."""

    source: int = computed(0)  # from ``from=``
    activation: str = setting("linear", choices=ACTIVATIONS)
    line: int = 0


@dataclass(frozen=True)
class UpsampleSpec:
    stride: int = setting(2, minimum=1)
    line: int = 0


@dataclass(frozen=True)
class ReorgSpec:
    """``[reorg]``: Darknet's passthrough reshuffle (not a true space-to-depth; see layers.Reorg)."""

    stride: int = setting(1, minimum=1)
    line: int = 0


@dataclass(frozen=True)
class AvgPoolSpec:
    """``[avgpool]``: the mean of each channel over H x W -> ``C x 1 x 1``."""

    line: int = 0


@dataclass(frozen=True)
class SoftmaxSpec:
    """``[softmax]``: softmax of ``logits / temperature`` over the flattened input, in ``groups``
    equal parts. In training it is also the loss: cross-entropy, delta ``t - p`` (Darknet)."""

    groups: int = setting(1, minimum=1)
    temperature: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class CostSpec:
    """``[cost]``: identity forward; in training adds ``scale * (t - p)`` to the delta of the
    softmax before it (sse, masked and smooth all give that on probabilities)."""

    type: str = setting("sse", choices=("sse", "masked", "smooth"))
    scale: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class ConnectedSpec:
    """``[connected]``: fully connected, ``x @ W.T`` (W stored ``output x inputs``), then batch
    norm or a bias, then the activation (Darknet's default: logistic)."""

    output: int = setting(1, minimum=1)
    activation: str = setting("logistic", choices=ACTIVATIONS)
    batch_normalize: bool = False
    line: int = 0


@dataclass(frozen=True)
class DropoutSpec:
    """``[dropout]``: in training, zero with ``probability`` and scale the rest by ``1/(1-p)``."""

    probability: float = 0.5
    line: int = 0


@dataclass(frozen=True)
class RegionSpec:
    """``[region]`` (YOLOv2). ``anchors`` are (w, h) in grid cells of the head's stride."""

    anchors: tuple[tuple[float, float], ...] = computed(())
    classes: int = setting(20, minimum=1)
    num: int = setting(1, minimum=1)
    coords: int = 4
    softmax: bool = False
    jitter: float = 0.2
    rescore: bool = False
    bias_match: bool = False
    thresh: float = 0.5
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    coord_scale: float = 1.0
    random: bool = False
    absolute: bool = False
    max_boxes: int = setting(30, key="max", minimum=1)
    line: int = 0

    @property
    def mask(self) -> tuple[int, ...]:
        """A region head uses all its anchors."""
        return tuple(range(self.num))


@dataclass(frozen=True)
class YoloSpec:
    """``[yolo]`` (YOLOv3). ``anchors`` are all (w, h) in input pixels; ``mask`` picks this head's."""

    anchors: tuple[tuple[float, float], ...] = computed(())
    mask: tuple[int, ...] = computed(())  # default: every anchor
    classes: int = setting(20, minimum=1)
    num: int = setting(1, minimum=1)
    jitter: float = 0.2
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    random: bool = False
    max_boxes: int = setting(90, key="max", minimum=1)
    scale_x_y: float = 1.0
    iou_loss: str = setting("mse", choices=IOU_LOSSES)
    iou_normalizer: float = 1.0
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    label_smooth_eps: float = 0.0
    rescore: bool = False
    new_coords: bool = False
    max_delta: float = math.inf
    objectness_smooth: bool = False
    nms_kind: str = setting("default", choices=NMS_KINDS)
    beta_nms: float = 0.6
    resize: float = 1.0
    line: int = 0


LayerSpec = (
    ConvSpec
    | MaxPoolSpec
    | RouteSpec
    | ShortcutSpec
    | UpsampleSpec
    | ReorgSpec
    | RegionSpec
    | YoloSpec
    | AvgPoolSpec
    | SoftmaxSpec
    | CostSpec
    | ConnectedSpec
    | DropoutSpec
)
HeadSpec = RegionSpec | YoloSpec


@dataclass(frozen=True)
class NetworkConfig:
    """A whole cfg: ``[net]`` plus the layers in order (layer 0 is the first after ``[net]``)."""

    source: str
    net: NetSpec
    layers: tuple[LayerSpec, ...]
    #: the values the last ``[softmax]`` puts out at the cfg's size (the parser works it out)
    softmax_outputs: int = 0

    @property
    def heads(self) -> list[HeadSpec]:
        """The ``[region]``/``[yolo]`` layers, in cfg order."""
        return [layer for layer in self.layers if isinstance(layer, (RegionSpec, YoloSpec))]

    @property
    def head_indices(self) -> list[int]:
        return [
            i for i, layer in enumerate(self.layers) if isinstance(layer, (RegionSpec, YoloSpec))
        ]

    @property
    def class_layers(self) -> list[int]:
        """The layers whose outputs the class count sets: the conv before each head; for a
        classifier, the last ``[convolutional]``/``[connected]`` before its last ``[softmax]``."""
        if self.head_indices:
            return [i - 1 for i in self.head_indices]
        if self.softmax_index is None:
            return []
        weighted = [
            i
            for i, layer in enumerate(self.layers[: self.softmax_index])
            if isinstance(layer, (ConvSpec, ConnectedSpec))
        ]
        return weighted[-1:]

    @property
    def softmax_index(self) -> int | None:
        """The last ``[softmax]`` layer (a classifier's output), if any."""
        found = [i for i, layer in enumerate(self.layers) if isinstance(layer, SoftmaxSpec)]
        return found[-1] if found else None

    @property
    def is_classifier(self) -> bool:
        """A network without detection heads: a classifier (ending in ``[softmax]``) or a
        backbone."""
        return not self.head_indices

    @property
    def num_classes(self) -> int:
        """The heads' class count; for a classifier, the outputs of its last ``[softmax]``
        (0 when it has none)."""
        heads = self.heads
        return heads[0].classes if heads else self.softmax_outputs


#: every section name Darknet accepts for a layer, and its spec (one registry: the parser and
#: every per-kind table are checked against it)
SECTION_KINDS: dict[str, type] = {
    "convolutional": ConvSpec, "conv": ConvSpec, "maxpool": MaxPoolSpec, "max": MaxPoolSpec,
    "route": RouteSpec, "shortcut": ShortcutSpec, "upsample": UpsampleSpec, "reorg": ReorgSpec,
    "region": RegionSpec, "yolo": YoloSpec, "avgpool": AvgPoolSpec, "avg": AvgPoolSpec,
    "softmax": SoftmaxSpec, "soft": SoftmaxSpec, "cost": CostSpec, "connected": ConnectedSpec,
    "conn": ConnectedSpec, "dropout": DropoutSpec,
}  # fmt: skip
