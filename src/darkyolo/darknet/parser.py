"""Typed reading of Darknet ``.cfg`` text: :func:`parse_cfg` turns the raw sections
(:mod:`darkyolo.darknet.sections`) into the frozen specs of :mod:`darkyolo.darknet.specs`, with
every value converted and checked, every ``[route]``/``[shortcut]`` index resolved to an absolute
layer index, and every problem a :class:`~darkyolo.errors.ConfigError` naming the file, the line
and the key. A spec's plain fields are read from their defaults and types (:meth:`_Options.read`);
each kind's parse function adds only what is its own. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

from darkyolo.darknet.sections import RawSection, read_sections
from darkyolo.darknet.shapes import infer_shapes
from darkyolo.darknet.specs import (
    SECTION_KINDS,
    AvgPoolSpec,
    ConnectedSpec,
    ConvSpec,
    CostSpec,
    DropoutSpec,
    LayerSpec,
    MaxPoolSpec,
    NetSpec,
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


class _Options:
    """Typed access to one section's options; tracks which keys were used."""

    def __init__(self, section: RawSection, file: str) -> None:
        self.section, self.file, self.used = section, file, set[str]()

    def error(self, key: str | None, message: str) -> ConfigError:
        line = self.section.key_lines.get(key, self.section.line) if key else self.section.line
        return ConfigError(f"[{self.section.kind}] {message}", self.file, line, key)

    def value(self, key: str, default: Any, kind: str) -> Any:
        """``key``'s value as ``kind`` (a field's type: ``int``, ``float``, ``bool``, ``str``,
        ``tuple[int, ...]``, ``tuple[float, ...]``), or ``default`` when the cfg has none."""
        self.used.add(key)
        if key not in self.section.options:
            return default
        text = self.section.options[key]
        convert, what = _CONVERTERS[kind]
        try:
            return convert(text)
        except ValueError:
            raise self.error(key, f"expected {what}, got {text!r}") from None

    def integer(self, key: str, default: int, minimum: int | None = None) -> int:
        return self.checked(key, self.value(key, default, "int"), minimum, None)

    def checked(
        self, key: str, value: Any, minimum: int | None, choices: tuple[str, ...] | None
    ) -> Any:
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if choices is not None and value not in choices:
            raise self.error(key, f"unknown {key} {value!r}, expected {'|'.join(choices)}")
        return value

    def read(self, spec: type, **given: Any) -> Any:
        """A ``spec`` with every plain field read from the cfg (its default when absent) and the
        ``given`` values (the computed fields), at this section's line."""
        values = dict(given)
        for item in fields(spec):
            if item.name == "line" or item.name in given or item.metadata.get("computed"):
                continue
            key = item.metadata.get("key") or item.name
            raw = self.value(key, item.default, str(item.type))
            values[item.name] = self.checked(
                key, raw, item.metadata.get("minimum"), item.metadata.get("choices")
            )
        return spec(**values, line=self.section.line)

    def refuse(self, keys: Iterable[str], what: str = "is not supported by darkyolo") -> None:
        """Keys darkyolo does not implement: an error naming the first one present."""
        for key in keys:
            if key in self.section.options:
                raise self.error(key, f"'{key}' {what}")

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


def _to_flag(text: str) -> bool:
    return _to_int(text) != 0


_CONVERTERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (_to_int, "an integer"),
    "float": (_to_float, "a number"),
    "bool": (_to_flag, "an integer"),
    "str": (str, "text"),
    "tuple[int, ...]": (lambda s: tuple(_to_int(v) for v in _split(s)), "integers"),
    "tuple[float, ...]": (lambda s: tuple(_to_float(v) for v in _split(s)), "numbers"),
}


# Keys that Darknet (pjreddie or AlexeyAB) accepts and that change nothing this implementation computes:
# display and bookkeeping options, and augmentations this project does not implement. They are kept
# out of the typed sections on purpose; anything else unknown is an error.
_NET_IGNORED = frozenset(
    {"mosaic", "letter_box", "flip", "blur", "mixup", "cutmix", "max_chart_loss", "gaussian_noise", "track", "augment_speed", "sequential_subdivisions",
     "time_steps", "random_placing", "resize_step", "adversarial_lr", "max_batches_warmup"}
)  # fmt: skip
_REGION_IGNORED = frozenset({"classfix", "log", "sqrt", "map", "tree", "focus"})


def _parse_net(options: _Options, index: int) -> NetSpec:
    steps = options.value("steps", (), "tuple[int, ...]")
    scales = options.value("scales", (), "tuple[float, ...]")
    if len(steps) != len(scales):
        raise options.error("scales", f"has {len(scales)} values but steps has {len(steps)}")
    width = options.integer("width", 416, minimum=1)
    spec = options.read(
        NetSpec, steps=steps, scales=scales,
        min_crop=options.integer("min_crop", width, minimum=1),
        max_crop=options.integer("max_crop", 2 * width, minimum=1),
    )  # fmt: skip
    if spec.max_crop < spec.min_crop:
        raise options.error("max_crop", f"must be at least min_crop={spec.min_crop}")
    if spec.aspect <= 0:
        raise options.error("aspect", f"must be positive, got {spec.aspect:g}")
    if spec.batch % spec.subdivisions:
        raise options.error("subdivisions", f"batch={spec.batch} is not divisible by it")
    options.reject_unknown(_NET_IGNORED)
    return spec


def _parse_conv(options: _Options, index: int) -> ConvSpec:
    size = options.integer("size", 1, minimum=1)
    padding = options.integer("padding", 0, minimum=0)
    if options.value("pad", False, "bool"):
        padding = size // 2
    options.refuse(("dilation", "binary", "xnor", "stride_x", "stride_y", "antialiasing"))
    spec = options.read(ConvSpec, padding=padding)
    options.reject_unknown()
    return spec


def _parse_maxpool(options: _Options, index: int) -> MaxPoolSpec:
    stride = options.integer("stride", 1, minimum=1)
    size = options.integer("size", stride, minimum=1)
    padding = options.integer("padding", size - 1, minimum=0)
    spec = options.read(MaxPoolSpec, size=size, padding=padding)
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
    offsets = options.value("layers", (), "tuple[int, ...]")
    if not offsets:
        raise options.error("layers", "needs at least one layer")
    options.refuse(("groups", "group_id"), "(a grouped [route]) is not supported by darkyolo")
    spec = options.read(RouteSpec, layers=tuple(_resolve(options, "layers", index, o) for o in offsets))  # fmt: skip
    options.reject_unknown()
    return spec


def _parse_shortcut(options: _Options, index: int) -> ShortcutSpec:
    offsets = options.value("from", (), "tuple[int, ...]")
    if len(offsets) != 1:
        raise options.error("from", f"expected one layer, got {len(offsets)}")
    spec = options.read(ShortcutSpec, source=_resolve(options, "from", index, offsets[0]))
    options.reject_unknown()
    return spec


def _parse_reorg(options: _Options, index: int) -> ReorgSpec:
    for key in ("reverse", "flatten", "extra"):
        if options.integer(key, 0):
            raise options.error(key, f"[reorg] {key}=1 is not supported by darkyolo")
    spec = options.read(ReorgSpec)
    options.reject_unknown()
    return spec


def _anchors(options: _Options, num: int) -> tuple[tuple[float, float], ...]:
    values = options.value("anchors", (), "tuple[float, ...]")
    if len(values) % 2:
        raise options.error("anchors", f"needs (w, h) pairs, got {len(values)} numbers")
    pairs = tuple(zip(values[::2], values[1::2]))
    if len(pairs) != num:
        raise options.error("anchors", f"has {len(pairs)} (w, h) pairs but num={num}")
    if any(w <= 0 or h <= 0 for w, h in pairs):
        raise options.error("anchors", "every anchor width and height must be positive")
    return pairs


def _parse_region(options: _Options, index: int) -> RegionSpec:
    num = options.integer("num", 1, minimum=1)
    spec = options.read(RegionSpec, anchors=_anchors(options, num))
    if spec.coords != 4:
        raise options.error("coords", f"only coords=4 is supported, got {spec.coords}")
    options.reject_unknown(_REGION_IGNORED)
    return spec


def _parse_yolo(options: _Options, index: int) -> YoloSpec:
    num = options.integer("num", 1, minimum=1)
    anchors = _anchors(options, num)
    mask = options.value("mask", tuple(range(num)), "tuple[int, ...]")
    bad = [m for m in mask if not 0 <= m < num]
    if bad:
        raise options.error("mask", f"index {bad[0]} is outside the {num} anchors")
    kind = options.value("iou_thresh_kind", "iou", "str")
    if kind != "iou":
        raise options.error("iou_thresh_kind", f"only iou is supported by darkyolo, got {kind!r}")
    spec = options.read(YoloSpec, anchors=anchors, mask=mask)
    if spec.max_delta <= 0:
        raise options.error("max_delta", f"must be positive, got {spec.max_delta:g}")
    if spec.resize < 1.0:
        raise options.error(
            "resize", f"must be at least 1 (zoom between 1/r and r), got {spec.resize:g}"
        )
    options.reject_unknown()
    return spec


def _parse_softmax(options: _Options, index: int) -> SoftmaxSpec:
    spec = options.read(SoftmaxSpec)
    if spec.temperature <= 0:
        raise options.error("temperature", f"must be positive, got {spec.temperature:g}")
    for key in ("tree", "spatial", "noloss"):
        if options.section.options.get(key, "0") != "0":
            raise options.error(key, f"{key} is not supported by darkyolo")
        options.used.add(key)
    options.reject_unknown()
    return spec


def _parse_dropout(options: _Options, index: int) -> DropoutSpec:
    spec = options.read(DropoutSpec)
    if not 0 <= spec.probability < 1:
        raise options.error("probability", f"must lie in [0, 1), got {spec.probability:g}")
    options.refuse(("dropblock", "dropblock_size_rel", "dropblock_size_abs"))
    options.reject_unknown()
    return spec


def _parse_plain(spec: type) -> Callable[[_Options, int], LayerSpec]:
    """The parse function of a kind made of plain keys only."""

    def parse(options: _Options, index: int) -> LayerSpec:
        value = options.read(spec)
        options.reject_unknown()
        return value

    return parse


#: each spec's parse function ``(options, layer index) -> spec``; the section names are
#: :data:`~darkyolo.darknet.specs.SECTION_KINDS`'
PARSERS: dict[type, Callable[[_Options, int], Any]] = {
    ConvSpec: _parse_conv, MaxPoolSpec: _parse_maxpool, RouteSpec: _parse_route,
    ShortcutSpec: _parse_shortcut, UpsampleSpec: _parse_plain(UpsampleSpec),
    ReorgSpec: _parse_reorg, RegionSpec: _parse_region, YoloSpec: _parse_yolo,
    AvgPoolSpec: _parse_plain(AvgPoolSpec), SoftmaxSpec: _parse_softmax,
    CostSpec: _parse_plain(CostSpec), ConnectedSpec: _parse_plain(ConnectedSpec),
    DropoutSpec: _parse_dropout,
}  # fmt: skip


def parse_cfg(text: str, file: str = "<cfg>") -> NetworkConfig:
    """Parse cfg text. Raises :class:`ConfigError` naming file, line and key on any problem."""
    sections = read_sections(text, file)
    if not sections or sections[0].kind not in ("net", "network"):
        line = sections[0].line if sections else 1
        raise ConfigError("the first section must be [net]", file, line)
    net = _parse_net(_Options(sections[0], file), -1)
    layers: list[LayerSpec] = []
    for index, section in enumerate(sections[1:]):
        kind = SECTION_KINDS.get(section.kind)
        if kind is None:
            known = ", ".join(f"[{k}]" for k in SECTION_KINDS)
            raise ConfigError(
                f"unknown section [{section.kind}], expected one of {known}", file, section.line
            )
        layers.append(PARSERS[kind](_Options(section, file), index))
    if not layers:
        raise ConfigError("the cfg has no layers after [net]", file, sections[0].line)
    config = NetworkConfig(source=file, net=net, layers=tuple(layers))
    _check_heads(config)
    if not config.heads and config.softmax_index is not None:
        c, h, w = infer_shapes(config, net.height, net.width)[config.softmax_index].output
        config = NetworkConfig(file, net, config.layers, softmax_outputs=c * h * w)
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
