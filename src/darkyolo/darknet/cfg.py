"""Parse Darknet ``.cfg`` text into typed sections.

Two levels:

* :func:`read_sections` splits the text into :class:`RawSection` (``[kind]`` + ordered ``key=value``
  strings with their line numbers); :func:`render_cfg` writes them back. Tools that edit a cfg
  (anchors, a new class count) work at this level.
* :func:`parse_cfg` / :func:`load_cfg` turn the raw sections into frozen dataclasses, one per layer
  kind, with every value converted and checked, every ``[route]``/``[shortcut]`` index resolved to an
  absolute layer index, and every problem reported as :class:`~darkyolo.errors.ConfigError` naming the
  file, the line and the key. Nothing here imports torch.

Layer indices follow Darknet: the first section after ``[net]`` is layer 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TypeVar

from darkyolo.errors import ConfigError

ACTIVATIONS = ("leaky", "linear", "relu", "logistic", "mish", "swish")
_SECTION_RE = re.compile(r"^\[\s*([A-Za-z_]+)\s*\]$")
#: line breaks as editors (and Python's universal newlines) count them; str.splitlines also
#: breaks at \v, \f, \x1c-\x1e, \x85 and \u2028, which would shift reported line numbers
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_BUNDLED_PACKAGE = "darkyolo.config"


# --------------------------------------------------------------------------------------------
# Raw level
# --------------------------------------------------------------------------------------------


@dataclass
class RawSection:
    """One ``[kind]`` block: ordered options as written, and where each came from."""

    kind: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)


def read_sections(text: str, file: str = "<cfg>") -> list[RawSection]:
    """Split cfg text into sections. ``#`` and ``;`` start comments; keys are case-sensitive."""
    sections: list[RawSection] = []
    for number, raw_line in enumerate(_NEWLINE_RE.split(text), start=1):
        line = raw_line.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        header = _SECTION_RE.match(line)
        if header:
            sections.append(RawSection(kind=header.group(1).lower(), line=number))
            continue
        if line.startswith("["):
            raise ConfigError(f"malformed section header {line!r}, expected [name]", file, number)
        if not sections:
            raise ConfigError(f"option {line!r} before the first [section]", file, number)
        if "=" not in line:
            raise ConfigError(f"expected key=value, got {line!r}", file, number)
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise ConfigError("empty key before '='", file, number)
        if not value:
            raise ConfigError("missing value after '='", file, number, key)
        section = sections[-1]
        if key in section.options:
            raise ConfigError(
                f"key given twice in [{section.kind}] (first on line {section.key_lines[key]})",
                file,
                number,
                key,
            )
        section.options[key] = value
        section.key_lines[key] = number
    return sections


def render_cfg(sections: Iterable[RawSection]) -> str:
    """Write sections back as cfg text (comments are not kept)."""
    blocks = []
    for section in sections:
        lines = [f"[{section.kind}]"] + [f"{key}={value}" for key, value in section.options.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def set_head_classes(
    sections: list[RawSection], position: int, num_classes: int, file: str
) -> None:
    """Give the ``[yolo]``/``[region]`` section at ``position`` ``num_classes`` classes, and the
    ``[convolutional]`` right before it the matching ``filters``: one box of ``5 + classes``
    values per anchor the head predicts (``len(mask)`` for ``[yolo]``, ``num`` for ``[region]``).
    The one raw-section edit behind class adaptation and ``anchors --write-cfg``."""
    head = sections[position]
    options = head.options
    num = int(float(options.get("num", "1")))
    anchors = (
        len(options["mask"].split(",")) if head.kind == "yolo" and options.get("mask") else num
    )
    previous = sections[position - 1] if position > 0 else None
    if previous is None or previous.kind not in ("convolutional", "conv"):
        raise ConfigError(
            f"[{head.kind}] must follow a [convolutional] to set its filters for the class count",
            file,
            head.line,
        )
    options["classes"] = str(num_classes)
    previous.options["filters"] = str(anchors * (5 + num_classes))


def with_yolo_default(text: str, key: str, value: str, file: str = "<cfg>") -> tuple[str, int]:
    """``text`` with ``key=value`` added to every ``[yolo]`` section that does not set ``key``
    -> ``(text, sections changed)``; with none changed, ``text`` itself (comments kept)."""
    sections = read_sections(text, file)
    missing = [s for s in sections if s.kind == "yolo" and key not in s.options]
    for section in missing:
        section.options[key] = value
    return (render_cfg(sections), len(missing)) if missing else (text, 0)


def set_classifier_classes(sections: list[RawSection], num_classes: int, file: str) -> bool:
    """Give a classifier ``num_classes`` outputs: the last ``[convolutional]`` (``filters``) or
    ``[connected]`` (``output``) before its last ``[softmax]``. Returns whether anything changed;
    a cfg without ``[softmax]`` is left alone."""
    softmax = [i for i, s in enumerate(sections) if s.kind in ("softmax", "soft")]
    if not softmax:
        return False
    for section in reversed(sections[: softmax[-1]]):
        key = {"convolutional": "filters", "conv": "filters", "connected": "output", "conn": "output"}.get(section.kind)  # fmt: skip
        if key is None:
            continue
        if int(float(section.options.get(key, "1"))) == num_classes:
            return False
        section.options[key] = str(num_classes)
        return True
    raise ConfigError(
        "[softmax] has no [convolutional] or [connected] before it to give the classes",
        file,
        sections[softmax[-1]].line,
    )


# --------------------------------------------------------------------------------------------
# Typed level
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetSpec:
    """``[net]``: input size, the training schedule and the augmentation keys. The classifier
    keys follow Darknet: ``min_crop``/``max_crop`` (the shorter side is scaled into that range
    before the crop; defaults ``width`` and ``2*width``), ``aspect`` (aspect-ratio jitter) and
    ``angle`` (rotation in degrees); ``policy=poly`` decays as ``(1 - k/total)^power``."""

    width: int = 416
    height: int = 416
    channels: int = 3
    batch: int = 1
    subdivisions: int = 1
    learning_rate: float = 0.001
    momentum: float = 0.9
    decay: float = 0.0001
    burn_in: int = 0
    power: float = 4.0
    max_batches: int = 0
    policy: str = "constant"
    steps: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    angle: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    min_crop: int = 416
    max_crop: int = 832
    aspect: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class ConvSpec:
    """``[convolutional]``: ``padding`` is the resolved per-side padding."""

    filters: int
    size: int
    stride: int
    padding: int
    groups: int
    batch_normalize: bool
    activation: str
    line: int = 0


@dataclass(frozen=True)
class MaxPoolSpec:
    """``[maxpool]``: Darknet pads ``padding`` in total, ``padding//2`` before and the rest after."""

    size: int
    stride: int
    padding: int
    line: int = 0


@dataclass(frozen=True)
class RouteSpec:
    """``[route]``: concatenate the outputs of ``layers`` (absolute indices) on channels."""

    layers: tuple[int, ...]
    line: int = 0


@dataclass(frozen=True)
class ShortcutSpec:
    """``[shortcut]``: add the output of layer ``source`` (absolute) to the previous output."""

    source: int
    activation: str
    line: int = 0


@dataclass(frozen=True)
class UpsampleSpec:
    stride: int
    line: int = 0


@dataclass(frozen=True)
class ReorgSpec:
    """``[reorg]``: Darknet's passthrough reshuffle (not a true space-to-depth; see layers.Reorg)."""

    stride: int
    line: int = 0


@dataclass(frozen=True)
class AvgPoolSpec:
    """``[avgpool]``: the mean of each channel over H x W -> ``C x 1 x 1``."""

    line: int = 0


@dataclass(frozen=True)
class SoftmaxSpec:
    """``[softmax]``: softmax of ``logits / temperature`` over the flattened input, in ``groups``
    equal parts. In training it is also the loss: cross-entropy, delta ``t - p`` (Darknet)."""

    groups: int = 1
    temperature: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class CostSpec:
    """``[cost]``: identity forward; in training adds ``scale * (t - p)`` to the delta of the
    softmax before it (sse, masked and smooth all give that on probabilities)."""

    type: str = "sse"
    scale: float = 1.0
    line: int = 0


@dataclass(frozen=True)
class ConnectedSpec:
    """``[connected]``: fully connected, ``x @ W.T`` (W stored ``output x inputs``), then batch
    norm or a bias, then the activation (Darknet's default: logistic)."""

    output: int
    activation: str
    batch_normalize: bool
    line: int = 0


@dataclass(frozen=True)
class DropoutSpec:
    """``[dropout]``: in training, zero with ``probability`` and scale the rest by ``1/(1-p)``."""

    probability: float = 0.5
    line: int = 0


@dataclass(frozen=True)
class RegionSpec:
    """``[region]`` (YOLOv2). ``anchors`` are (w, h) in grid cells of the head's stride."""

    anchors: tuple[tuple[float, float], ...]
    classes: int
    num: int
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
    max_boxes: int = 30
    line: int = 0

    @property
    def mask(self) -> tuple[int, ...]:
        """A region head uses all its anchors."""
        return tuple(range(self.num))


@dataclass(frozen=True)
class YoloSpec:
    """``[yolo]`` (YOLOv3). ``anchors`` are all (w, h) in input pixels; ``mask`` picks this head's."""

    anchors: tuple[tuple[float, float], ...]
    mask: tuple[int, ...]
    classes: int
    num: int
    jitter: float = 0.2
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    random: bool = False
    max_boxes: int = 90
    scale_x_y: float = 1.0
    iou_loss: str = "mse"
    iou_normalizer: float = 1.0
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    label_smooth_eps: float = 0.0
    rescore: bool = False
    new_coords: bool = False
    max_delta: float = math.inf
    objectness_smooth: bool = False
    nms_kind: str = "default"
    beta_nms: float = 0.6
    resize: float = 1.0
    line: int = 0


#: ``iou_loss`` values (AlexeyAB's ``IOU_LOSS``; ``mse`` is pjreddie's loss).
IOU_LOSSES = ("mse", "giou", "diou", "ciou")
#: ``nms_kind`` values: Darknet's default greedy IoU NMS, ``greedynms`` (greedy on DIoU with
#: exponent 0.6), ``diounms`` (greedy on DIoU with exponent ``beta_nms``). AlexeyAB's ``cornersnms``
#: is not supported.
NMS_KINDS = ("default", "greedynms", "diounms")


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
        if heads:
            return heads[0].classes
        from darkyolo.darknet.shapes import infer_shapes

        if self.softmax_index is None:
            return 0
        c, h, w = infer_shapes(self, self.net.height, self.net.width)[self.softmax_index].output
        return c * h * w


# --------------------------------------------------------------------------------------------
# Value readers
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


class _Options:
    """Typed access to one section's options; tracks which keys were used."""

    def __init__(self, section: RawSection, file: str) -> None:
        self.section, self.file, self.used = section, file, set[str]()

    def error(self, key: str | None, message: str) -> ConfigError:
        line = self.section.key_lines.get(key, self.section.line) if key else self.section.line
        return ConfigError(f"[{self.section.kind}] {message}", self.file, line, key)

    def _get(self, key: str, default: T | None, convert: Callable[[str], T], kind: str) -> T:
        self.used.add(key)
        if key not in self.section.options:
            if default is None:
                raise self.error(None, f"missing required key '{key}'")
            return default
        text = self.section.options[key]
        try:
            return convert(text)
        except ValueError:
            raise self.error(key, f"expected {kind}, got {text!r}") from None

    def integer(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        value = self._get(key, default, _to_int, "an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        return self._get(key, default, _to_float, "a number")

    def flag(self, key: str, default: bool) -> bool:
        return self.integer(key, int(default)) != 0

    def text(self, key: str, default: str | None = None) -> str:
        return self._get(key, default, str, "text")

    def integers(self, key: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        return self._get(key, default, lambda s: tuple(_to_int(v) for v in _split(s)), "integers")

    def numbers(self, key: str, default: tuple[float, ...] | None = None) -> tuple[float, ...]:
        return self._get(key, default, lambda s: tuple(_to_float(v) for v in _split(s)), "numbers")

    def activation(self, default: str) -> str:
        value = self.text("activation", default)
        if value not in ACTIVATIONS:
            raise self.error(
                "activation", f"unknown activation {value!r}, expected one of {ACTIVATIONS}"
            )
        return value

    def reject_unknown(self, ignored: Iterable[str] = ()) -> None:
        unknown = [k for k in self.section.options if k not in self.used and k not in set(ignored)]
        if unknown:
            raise self.error(unknown[0], f"unknown key '{unknown[0]}' for [{self.section.kind}]")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _to_int(text: str) -> int:
    value = float(text)  # Darknet's atoi accepts "1.0"; reject "1.5".
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def _to_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


# Keys that Darknet (pjreddie or AlexeyAB) accepts and that change nothing this implementation computes:
# display and bookkeeping options, and augmentations this project does not implement. They are kept
# out of the typed sections on purpose; anything else unknown is an error.
_NET_IGNORED = frozenset(
    {"mosaic", "letter_box", "flip", "blur", "mixup", "cutmix", "max_chart_loss", "gaussian_noise", "track", "augment_speed", "sequential_subdivisions",
     "time_steps", "random_placing", "resize_step", "adversarial_lr", "max_batches_warmup"}
)  # fmt: skip
_REGION_IGNORED = frozenset({"classfix", "log", "sqrt", "map", "tree", "focus"})


def _parse_net(options: _Options) -> NetSpec:
    steps = options.integers("steps", ())
    scales = options.numbers("scales", ())
    if len(steps) != len(scales):
        raise options.error("scales", f"has {len(scales)} values but steps has {len(steps)}")
    spec = NetSpec(
        width=options.integer("width", 416, minimum=1),
        height=options.integer("height", 416, minimum=1),
        channels=options.integer("channels", 3, minimum=1),
        batch=options.integer("batch", 1, minimum=1),
        subdivisions=options.integer("subdivisions", 1, minimum=1),
        learning_rate=options.number("learning_rate", 0.001),
        momentum=options.number("momentum", 0.9),
        decay=options.number("decay", 0.0001),
        burn_in=options.integer("burn_in", 0, minimum=0),
        power=options.number("power", 4.0),
        max_batches=options.integer("max_batches", 0, minimum=0),
        policy=options.text("policy", "constant"),
        steps=steps,
        scales=scales,
        angle=options.number("angle", 0.0),
        saturation=options.number("saturation", 1.0),
        exposure=options.number("exposure", 1.0),
        hue=options.number("hue", 0.0),
        line=options.section.line,
    )
    width = spec.width
    spec = replace(
        spec,
        min_crop=options.integer("min_crop", width, minimum=1),
        max_crop=options.integer("max_crop", 2 * width, minimum=1),
        aspect=options.number("aspect", 1.0),
    )
    if spec.max_crop < spec.min_crop:
        raise options.error("max_crop", f"must be at least min_crop={spec.min_crop}")
    if spec.aspect <= 0:
        raise options.error("aspect", f"must be positive, got {spec.aspect:g}")
    if spec.policy not in ("constant", "steps", "poly"):
        raise options.error(
            "policy", f"unsupported policy {spec.policy!r}, expected constant|steps|poly"
        )
    if spec.batch % spec.subdivisions:
        raise options.error("subdivisions", f"batch={spec.batch} is not divisible by it")
    options.reject_unknown(_NET_IGNORED)
    return spec


def _parse_conv(options: _Options) -> ConvSpec:
    size = options.integer("size", 1, minimum=1)
    pad = options.flag("pad", False)
    padding = options.integer("padding", 0, minimum=0)
    if pad:
        padding = size // 2
    spec = ConvSpec(
        filters=options.integer("filters", 1, minimum=1),
        size=size,
        stride=options.integer("stride", 1, minimum=1),
        padding=padding,
        groups=options.integer("groups", 1, minimum=1),
        batch_normalize=options.flag("batch_normalize", False),
        activation=options.activation("logistic"),
        line=options.section.line,
    )
    for key in ("dilation", "binary", "xnor", "stride_x", "stride_y", "antialiasing"):
        if key in options.section.options:
            raise options.error(key, f"'{key}' is not supported by darkyolo")
    options.reject_unknown()
    return spec


def _parse_maxpool(options: _Options) -> MaxPoolSpec:
    stride = options.integer("stride", 1, minimum=1)
    size = options.integer("size", stride, minimum=1)
    spec = MaxPoolSpec(
        size=size,
        stride=stride,
        padding=options.integer("padding", size - 1, minimum=0),
        line=options.section.line,
    )
    options.reject_unknown()
    return spec


def _resolve(options: _Options, key: str, index: int, offset: int) -> int:
    """Darknet's index rule: negative is relative to this layer, else absolute."""
    target = index + offset if offset < 0 else offset
    if not 0 <= target < index:
        raise options.error(
            key,
            f"layer {index} refers to layer {offset} (-> {target}), which is not an earlier layer",
        )
    return target


def _parse_route(options: _Options, index: int) -> RouteSpec:
    offsets = options.integers("layers")
    if not offsets:
        raise options.error("layers", "needs at least one layer")
    if "groups" in options.section.options or "group_id" in options.section.options:
        raise options.error("groups", "grouped [route] is not supported by darkyolo")
    spec = RouteSpec(
        tuple(_resolve(options, "layers", index, o) for o in offsets), options.section.line
    )
    options.reject_unknown()
    return spec


def _parse_shortcut(options: _Options, index: int) -> ShortcutSpec:
    offsets = options.integers("from")
    if len(offsets) != 1:
        raise options.error("from", f"expected one layer, got {len(offsets)}")
    spec = ShortcutSpec(
        source=_resolve(options, "from", index, offsets[0]),
        activation=options.activation("linear"),
        line=options.section.line,
    )
    options.reject_unknown()
    return spec


def _parse_upsample(options: _Options) -> UpsampleSpec:
    spec = UpsampleSpec(options.integer("stride", 2, minimum=1), options.section.line)
    options.reject_unknown()
    return spec


def _parse_reorg(options: _Options) -> ReorgSpec:
    spec = ReorgSpec(options.integer("stride", 1, minimum=1), options.section.line)
    for key in ("reverse", "flatten", "extra"):
        if options.integer(key, 0):
            raise options.error(key, f"[reorg] {key}=1 is not supported by darkyolo")
    options.reject_unknown()
    return spec


def _anchors(options: _Options, num: int) -> tuple[tuple[float, float], ...]:
    values = options.numbers("anchors", ())
    if len(values) % 2:
        raise options.error("anchors", f"needs (w, h) pairs, got {len(values)} numbers")
    pairs = tuple(zip(values[::2], values[1::2]))
    if len(pairs) != num:
        raise options.error("anchors", f"has {len(pairs)} (w, h) pairs but num={num}")
    if any(w <= 0 or h <= 0 for w, h in pairs):
        raise options.error("anchors", "every anchor width and height must be positive")
    return pairs


def _parse_region(options: _Options) -> RegionSpec:
    num = options.integer("num", 1, minimum=1)
    spec = RegionSpec(
        anchors=_anchors(options, num),
        classes=options.integer("classes", 20, minimum=1),
        num=num,
        coords=options.integer("coords", 4),
        softmax=options.flag("softmax", False),
        jitter=options.number("jitter", 0.2),
        rescore=options.flag("rescore", False),
        bias_match=options.flag("bias_match", False),
        thresh=options.number("thresh", 0.5),
        object_scale=options.number("object_scale", 1.0),
        noobject_scale=options.number("noobject_scale", 1.0),
        class_scale=options.number("class_scale", 1.0),
        coord_scale=options.number("coord_scale", 1.0),
        random=options.flag("random", False),
        absolute=options.flag("absolute", False),
        max_boxes=options.integer("max", 30, minimum=1),
        line=options.section.line,
    )
    if spec.coords != 4:
        raise options.error("coords", f"only coords=4 is supported, got {spec.coords}")
    options.reject_unknown(_REGION_IGNORED)
    return spec


def _parse_yolo(options: _Options) -> YoloSpec:
    num = options.integer("num", 1, minimum=1)
    anchors = _anchors(options, num)
    mask = options.integers("mask", tuple(range(num)))
    bad = [m for m in mask if not 0 <= m < num]
    if bad:
        raise options.error("mask", f"index {bad[0]} is outside the {num} anchors")
    iou_loss = options.text("iou_loss", "mse")
    if iou_loss not in IOU_LOSSES:
        raise options.error("iou_loss", f"expected {'|'.join(IOU_LOSSES)}, got {iou_loss!r}")
    nms_kind = options.text("nms_kind", "default")
    if nms_kind not in NMS_KINDS:
        raise options.error("nms_kind", f"expected {'|'.join(NMS_KINDS)}, got {nms_kind!r}")
    iou_thresh_kind = options.text("iou_thresh_kind", "iou")
    if iou_thresh_kind != "iou":
        raise options.error(
            "iou_thresh_kind", f"only iou is supported by darkyolo, got {iou_thresh_kind!r}"
        )
    spec = YoloSpec(
        anchors=anchors,
        mask=mask,
        classes=options.integer("classes", 20, minimum=1),
        num=num,
        jitter=options.number("jitter", 0.2),
        ignore_thresh=options.number("ignore_thresh", 0.5),
        truth_thresh=options.number("truth_thresh", 1.0),
        iou_thresh=options.number("iou_thresh", 1.0),
        random=options.flag("random", False),
        max_boxes=options.integer("max", 90, minimum=1),
        scale_x_y=options.number("scale_x_y", 1.0),
        iou_loss=iou_loss,
        iou_normalizer=options.number("iou_normalizer", 1.0),
        obj_normalizer=options.number("obj_normalizer", 1.0),
        cls_normalizer=options.number("cls_normalizer", 1.0),
        label_smooth_eps=options.number("label_smooth_eps", 0.0),
        rescore=options.flag("rescore", False),
        new_coords=options.flag("new_coords", False),
        max_delta=options.number("max_delta", math.inf),
        objectness_smooth=options.flag("objectness_smooth", False),
        nms_kind=nms_kind,
        beta_nms=options.number("beta_nms", 0.6),
        resize=options.number("resize", 1.0),
        line=options.section.line,
    )
    if spec.max_delta <= 0:
        raise options.error("max_delta", f"must be positive, got {spec.max_delta:g}")
    if spec.resize < 1.0:
        raise options.error(
            "resize", f"must be at least 1 (zoom between 1/r and r), got {spec.resize:g}"
        )
    options.reject_unknown()
    return spec


def _parse_avgpool(options: _Options) -> AvgPoolSpec:
    options.reject_unknown()
    return AvgPoolSpec(options.section.line)


def _parse_softmax(options: _Options) -> SoftmaxSpec:
    spec = SoftmaxSpec(
        groups=options.integer("groups", 1, minimum=1),
        temperature=options.number("temperature", 1.0),
        line=options.section.line,
    )
    if spec.temperature <= 0:
        raise options.error("temperature", f"must be positive, got {spec.temperature:g}")
    for key in ("tree", "spatial", "noloss"):
        if key in options.section.options and options.section.options[key] not in ("0",):
            raise options.error(key, f"{key} is not supported by darkyolo")
        options.used.add(key)
    options.reject_unknown()
    return spec


_COST_TYPES = ("sse", "masked", "smooth")


def _parse_cost(options: _Options) -> CostSpec:
    spec = CostSpec(options.text("type", "sse"), options.number("scale", 1.0), options.section.line)
    if spec.type not in _COST_TYPES:
        raise options.error("type", f"expected one of {'|'.join(_COST_TYPES)}, got {spec.type!r}")
    options.reject_unknown()
    return spec


def _parse_connected(options: _Options) -> ConnectedSpec:
    spec = ConnectedSpec(
        output=options.integer("output", 1, minimum=1),
        activation=options.activation("logistic"),
        batch_normalize=options.flag("batch_normalize", False),
        line=options.section.line,
    )
    options.reject_unknown()
    return spec


def _parse_dropout(options: _Options) -> DropoutSpec:
    spec = DropoutSpec(options.number("probability", 0.5), options.section.line)
    if not 0 <= spec.probability < 1:
        raise options.error("probability", f"must lie in [0, 1), got {spec.probability:g}")
    for key in ("dropblock", "dropblock_size_rel", "dropblock_size_abs"):
        if key in options.section.options:
            raise options.error(key, f"{key} is not supported by darkyolo")
    options.reject_unknown()
    return spec


_LAYER_PARSERS: dict[str, Callable[[_Options, int], LayerSpec]] = {
    "convolutional": lambda o, i: _parse_conv(o),
    "conv": lambda o, i: _parse_conv(o),
    "maxpool": lambda o, i: _parse_maxpool(o),
    "max": lambda o, i: _parse_maxpool(o),
    "route": _parse_route,
    "shortcut": _parse_shortcut,
    "upsample": lambda o, i: _parse_upsample(o),
    "reorg": lambda o, i: _parse_reorg(o),
    "region": lambda o, i: _parse_region(o),
    "yolo": lambda o, i: _parse_yolo(o),
    "avgpool": lambda o, i: _parse_avgpool(o),
    "avg": lambda o, i: _parse_avgpool(o),
    "softmax": lambda o, i: _parse_softmax(o),
    "soft": lambda o, i: _parse_softmax(o),
    "cost": lambda o, i: _parse_cost(o),
    "connected": lambda o, i: _parse_connected(o),
    "conn": lambda o, i: _parse_connected(o),
    "dropout": lambda o, i: _parse_dropout(o),
}


def parse_cfg(text: str, file: str = "<cfg>") -> NetworkConfig:
    """Parse cfg text. Raises :class:`ConfigError` naming file, line and key on any problem."""
    sections = read_sections(text, file)
    if not sections or sections[0].kind not in ("net", "network"):
        line = sections[0].line if sections else 1
        raise ConfigError("the first section must be [net]", file, line)
    net = _parse_net(_Options(sections[0], file))
    layers: list[LayerSpec] = []
    for index, section in enumerate(sections[1:]):
        parser = _LAYER_PARSERS.get(section.kind)
        if parser is None:
            known = ", ".join(f"[{k}]" for k in _LAYER_PARSERS)
            raise ConfigError(
                f"unknown section [{section.kind}], expected one of {known}", file, section.line
            )
        layers.append(parser(_Options(section, file), index))
    if not layers:
        raise ConfigError("the cfg has no layers after [net]", file, sections[0].line)
    config = NetworkConfig(source=file, net=net, layers=tuple(layers))
    _check_heads(config)
    return config


def _check_heads(config: NetworkConfig) -> None:
    """Each head reads the conv before it: its filters must be len(mask) * (5 + classes)."""
    for index in config.head_indices:
        head = config.layers[index]
        assert isinstance(head, (RegionSpec, YoloSpec))
        expected = len(head.mask) * (5 + head.classes)
        previous = config.layers[index - 1] if index else None
        if isinstance(previous, ConvSpec) and previous.filters != expected:
            raise ConfigError(
                f"[convolutional] before the head on line {head.line} has filters={previous.filters}, "
                f"expected {len(head.mask)} anchors x (5 + {head.classes} classes) = {expected}",
                config.source,
                previous.line,
                "filters",
            )


def bundled_cfgs(task: str | None = None) -> list[str]:
    """Names of the cfgs shipped in the package (``yolov3``, ``darknet19``, ...); ``task``
    ``detect`` or ``classify`` keeps the detectors or the classifiers only."""
    folder = resources.files(_BUNDLED_PACKAGE)
    names = sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".cfg"))
    if task is None:
        return names
    return [name for name in names if load_cfg(name).is_classifier == (task == "classify")]


def resolve_cfg_path(source: str | Path) -> Path:
    """A bundled name (``yolov3``) or a path to a ``.cfg`` file -> the file's path."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source)
    if "/" not in name and "\\" not in name:
        bundled = resources.files(_BUNDLED_PACKAGE) / f"{name.removesuffix('.cfg')}.cfg"
        if bundled.is_file():
            return Path(str(bundled))
    names = ", ".join(bundled_cfgs())
    raise ConfigError(
        f"no such cfg file or bundled model name; bundled names are: {names}", str(source)
    )


def read_cfg_text(source: str | Path) -> tuple[str, Path]:
    """The text of a cfg given as a bundled name or a path, and its path; a byte-order mark
    (Windows editors write one) is dropped. Every reader of cfg files goes through here."""
    path = resolve_cfg_path(source)
    try:
        return path.read_text(encoding="utf-8-sig"), path
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"not a text file ({error.reason} at byte {error.start})", str(path)
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", str(path)) from None


def load_cfg(source: str | Path) -> NetworkConfig:
    """Load and parse a cfg given as a bundled name or a path."""
    text, path = read_cfg_text(source)
    return parse_cfg(text, str(path))


def bundled_names_file(name: str) -> Path:
    """Path of a bundled class-names list (``coco`` or ``voc``)."""
    path = resources.files(_BUNDLED_PACKAGE) / f"{name.removesuffix('.names')}.names"
    if not path.is_file():
        raise ConfigError(f"no bundled names list {name!r}; bundled: coco, voc", name)
    return Path(str(path))
