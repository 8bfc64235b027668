"""Darknet ``.cfg`` files, the public face: the typed specs (:mod:`~darkyolo.darknet.specs`), the
parser (:mod:`~darkyolo.darknet.parser`), the raw sections (:mod:`~darkyolo.darknet.sections`)
and the bundled files (:mod:`~darkyolo.darknet.bundled`), importable from one place. Edits of a
cfg's text are :mod:`darkyolo.darknet.edits`'. Nothing here imports torch.
"""

from __future__ import annotations

from darkyolo.darknet.bundled import (
    bundled_cfgs,
    bundled_names_file,
    load_cfg,
    read_cfg_text,
    resolve_cfg_path,
)
from darkyolo.darknet.parser import parse_cfg
from darkyolo.darknet.sections import RawSection, read_sections, render_cfg
from darkyolo.darknet.specs import (
    ACTIVATIONS,
    IOU_LOSSES,
    NMS_KINDS,
    SECTION_KINDS,
    AvgPoolSpec,
    ConnectedSpec,
    ConvSpec,
    CostSpec,
    DropoutSpec,
    HeadSpec,
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

__all__ = [
    "ACTIVATIONS", "IOU_LOSSES", "NMS_KINDS", "SECTION_KINDS", "AvgPoolSpec", "ConnectedSpec",
    "ConvSpec", "CostSpec", "DropoutSpec", "HeadSpec", "LayerSpec", "MaxPoolSpec", "NetSpec",
    "NetworkConfig", "RawSection", "RegionSpec", "ReorgSpec", "RouteSpec", "ShortcutSpec",
    "SoftmaxSpec", "UpsampleSpec", "YoloSpec", "bundled_cfgs", "bundled_names_file", "load_cfg",
    "parse_cfg", "read_cfg_text", "read_sections", "render_cfg", "resolve_cfg_path",
]  # fmt: skip
