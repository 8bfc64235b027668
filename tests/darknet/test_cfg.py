"""The cfg parser: typed sections, resolved routes, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkyolo.darknet.cfg import (
    ConvSpec,
    MaxPoolSpec,
    RegionSpec,
    RouteSpec,
    ShortcutSpec,
    YoloSpec,
    bundled_cfgs,
    load_cfg,
    parse_cfg,
    read_sections,
    render_cfg,
)
from darkyolo.darknet.edits import with_yolo_default
from darkyolo.errors import ConfigError

HEADER = "[net]\nwidth=64\nheight=64\nchannels=3\n\n"
CONV = (
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n"
)
HEAD = "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n\n[yolo]\nmask=0\nanchors=10,14\nclasses=1\nnum=1\n"


def test_bundled_cfgs_are_all_there() -> None:
    expected = {"yolov2", "yolov2-voc", "yolov2-tiny", "yolov2-tiny-voc", "yolov3", "yolov3-voc"}
    expected |= {"yolov3-newcoords", "yolov3-tiny-newcoords"}
    assert expected | {"yolov3-tiny", "yolov3-spp"} == set(bundled_cfgs("detect"))
    classifiers = {"darknet", "darknet19", "darknet19_448", "darknet53", "darknet53_448"}
    assert classifiers == set(bundled_cfgs("classify"))
    assert set(bundled_cfgs()) == expected | {"yolov3-tiny", "yolov3-spp"} | classifiers


def test_yolov3_structure() -> None:
    config = load_cfg("yolov3")
    assert len(config.layers) == 107
    assert [type(h) for h in config.heads] == [YoloSpec] * 3
    assert [h.mask for h in config.heads] == [(6, 7, 8), (3, 4, 5), (0, 1, 2)]
    assert config.heads[0].anchors[0] == (10.0, 13.0) and config.heads[0].ignore_thresh == 0.7
    route = config.layers[86]
    assert isinstance(route, RouteSpec) and route.layers == (85, 61)
    shortcut = config.layers[4]
    assert isinstance(shortcut, ShortcutSpec) and shortcut.source == 1
    assert config.net.steps == (400000, 450000) and config.net.scales == (0.1, 0.1)


def test_yolov2_region_and_tiny_maxpool() -> None:
    region = load_cfg("yolov2-voc").heads[0]
    assert isinstance(region, RegionSpec)
    assert region.softmax and region.rescore and region.bias_match and region.thresh == 0.6
    assert region.anchors[0] == (1.3221, 1.73145) and region.classes == 20
    pool = load_cfg("yolov3-tiny").layers[11]
    assert pool == MaxPoolSpec(size=2, stride=1, padding=1, line=pool.line)


def test_yolo_training_keys() -> None:
    keys = "iou_thresh=0.213\niou_loss=ciou\niou_normalizer=0.07\nscale_x_y=1.05\nrescore=1\n"
    head = parse_cfg(HEADER + CONV + HEAD + keys).heads[0]
    assert isinstance(head, YoloSpec)
    assert (head.iou_thresh, head.iou_loss, head.iou_normalizer) == (0.213, "ciou", 0.07)
    assert head.scale_x_y == 1.05 and head.rescore
    assert not parse_cfg(HEADER + CONV + HEAD).heads[0].rescore


def test_alexeyabs_newer_yolo_keys() -> None:
    keys = (
        "new_coords=1\nmax_delta=5\nobjectness_smooth=1\niou_loss=diou\nnms_kind=greedynms\n"
        "beta_nms=0.7\nresize=1.5\niou_thresh_kind=iou\n"
    )
    head = parse_cfg(HEADER + CONV + HEAD + keys).heads[0]
    assert isinstance(head, YoloSpec)
    assert head.new_coords and head.objectness_smooth and head.iou_loss == "diou"
    assert (head.max_delta, head.nms_kind, head.beta_nms, head.resize) == (5, "greedynms", 0.7, 1.5)
    plain = parse_cfg(HEADER + CONV + HEAD).heads[0]
    assert plain.max_delta == float("inf") and plain.nms_kind == "default" and plain.resize == 1
    for name in ("yolov3-tiny-newcoords", "yolov3-newcoords"):
        heads = load_cfg(name).heads
        assert all(h.new_coords and h.scale_x_y == 2 and h.nms_kind == "diounms" for h in heads)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("nms_kind=cornersnms", "expected default|greedynms|diounms"),
        ("iou_loss=eiou", "expected mse|giou|diou|ciou"),
        ("iou_thresh_kind=giou", "only iou is supported"),
        ("max_delta=0", "must be positive"),
        ("resize=0.5", "must be at least 1"),
        ("new_coords=yes", "expected an integer"),
    ],
)
def test_bad_new_yolo_keys_name_the_key(key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_cfg(HEADER + CONV + HEAD + key + "\n")
    assert caught.value.key == key.split("=")[0]


def test_conv_padding_rules() -> None:
    config = parse_cfg(HEADER + "[convolutional]\nfilters=4\nsize=5\npadding=1\n\n" + CONV)
    first, second = config.layers
    assert isinstance(first, ConvSpec) and first.padding == 1 and first.activation == "logistic"
    assert isinstance(second, ConvSpec) and second.padding == 1  # pad=1 -> size//2


def test_round_trip_through_raw_sections() -> None:
    source = load_cfg("yolov3-tiny").source
    sections = read_sections(Path(source).read_text(), source)
    again = parse_cfg(render_cfg(sections))
    assert again.layers == tuple(
        type(layer)(**{**layer.__dict__, "line": again.layers[i].line})
        for i, layer in enumerate(load_cfg("yolov3-tiny").layers)
    )


def test_a_yolo_default_fills_only_the_heads_that_set_none() -> None:
    text = HEADER + CONV + HEAD + "\n" + HEAD.replace("num=1\n", "num=1\niou_thresh=0.7\n")
    filled, changed = with_yolo_default(text, "iou_thresh", "0.213")
    assert changed == 1
    assert [h.iou_thresh for h in parse_cfg(filled).heads] == [0.213, 0.7]
    again, none = with_yolo_default(filled, "iou_thresh", "0.5")
    assert none == 0 and again is filled


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (HEADER + "[convolutional]\nfilters=abc\n", 7, "filters", "expected an integer"),
        (HEADER + "[convolutional]\nfilters=8\nsize=3\nwhatever=1\n", 9, "whatever", "unknown key"),
        (HEADER + "[convolutional]\nactivation=gelu\n", 7, "activation", "unknown activation"),
        (HEADER + "[bogus]\nx=1\n", 6, None, "unknown section [bogus]"),
        (HEADER + CONV + "[route]\nlayers=-5\n", 15, "layers", "not an earlier layer"),
        (HEADER + CONV + "[route]\nlayers=3\n", 15, "layers", "not an earlier layer"),
        (HEADER + CONV + "[shortcut]\nfrom=-1,-2\n", 15, "from", "expected one layer"),
        (HEADER + "[convolutional]\nfilters=\n", 7, "filters", "missing value"),
        (HEADER + "[convolutional]\nfilters=8\nfilters=9\n", 8, "filters", "given twice"),
        (HEADER + "[convolutional]\nsize 3\n", 7, None, "expected key=value"),
        (HEADER + "[yolo]\nmask=0,5\nanchors=1,2,3,4\nclasses=1\nnum=2\n", 7, "mask", "outside"),
        (HEADER + "[yolo]\nmask=0\nanchors=1,2,3\nclasses=1\nnum=1\n", 8, "anchors", "pairs"),
        (HEADER + "[region]\nanchors=1,2\nclasses=1\nnum=2\n", 7, "anchors", "num=2"),
        (HEADER + "[maxpool]\nsize=-2\n", 7, "size", "at least 1"),
        ("[net]\nbatch=64\nsubdivisions=5\n", 3, "subdivisions", "not divisible"),
        ("[net]\nsteps=1,2\nscales=.1\n", 3, "scales", "has 1 values"),
        ("[convolutional]\nfilters=1\n", 1, None, "first section must be [net]"),
        ("width=3\n", 1, None, "before the first [section]"),
        (
            HEADER
            + "[convolutional]\nfilters=9\nsize=1\n\n[yolo]\nmask=0\nanchors=1,2\nclasses=1\nnum=1\n",
            6,
            "filters",
            "expected 1 anchors x (5 + 1 classes) = 6",
        ),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_cfg(text, "broken.cfg")
    error = caught.value
    assert error.file == "broken.cfg" and error.line == line, str(error)
    assert error.key == key, str(error)
    assert words in str(error) and str(error).startswith(f"broken.cfg:{line}")


def test_unknown_name_lists_bundled(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"bundled names are: darknet, .*yolov2"):
        load_cfg("yolov9000")
    binary = tmp_path / "x.cfg"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a text file"):
        load_cfg(binary)


def test_comments_and_spacing_are_tolerated() -> None:
    config = parse_cfg("# a net\n[net]  \n width = 64 # trailing\n;note\n\n" + CONV + HEAD)
    assert config.net.width == 64 and len(config.layers) == 3


def test_region_softmax_defaults_agree_between_parser_and_dataclass():
    from darkyolo.darknet.cfg import RegionSpec, parse_cfg

    text = "[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[region]\nanchors=1,1\nclasses=1\nnum=1\n"
    parsed = next(s for s in parse_cfg(text).layers if isinstance(s, RegionSpec))
    assert parsed.softmax is False
    assert RegionSpec(anchors=((1.0, 1.0),), classes=1, num=1).softmax is False
