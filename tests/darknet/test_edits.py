"""Edits of a cfg's text: classes, anchors, a [yolo] key's default, the input size."""

from __future__ import annotations

import numpy as np
import pytest

from darkyolo.darknet.cfg import parse_cfg, resolve_cfg_path
from darkyolo.darknet.edits import adapt_classes, with_anchors, with_input_size
from darkyolo.errors import ConfigError


def test_adapt_classes_rewrites_heads_and_filters():
    text = resolve_cfg_path("yolov3-tiny").read_text()
    adapted, changed = adapt_classes(text, 3)
    assert changed
    config = parse_cfg(adapted)
    assert [h.classes for h in config.heads] == [3, 3]
    for index in config.head_indices:
        assert config.layers[index - 1].filters == 3 * (5 + 3)
    assert adapt_classes(text, 80) == (text, False)
    region, _ = adapt_classes(resolve_cfg_path("yolov2-tiny").read_text(), 2)
    config = parse_cfg(region)
    assert config.heads[0].classes == 2 and config.layers[-2].filters == 5 * (5 + 2)


def test_adapt_classes_needs_a_conv_before_the_head():
    text = "[net]\n[maxpool]\nsize=2\nstride=2\n[yolo]\nmask=0\nanchors=1,1\nclasses=2\nnum=1\n"
    with pytest.raises(ConfigError, match="must follow a \\[convolutional\\] to set its filters"):
        adapt_classes(text, 3)


def test_with_anchors_writes_the_fitted_anchors_and_masks():
    text = resolve_cfg_path("yolov3-tiny").read_text()
    anchors = np.array([[5.0, 6.0], [10.0, 12.0], [20.0, 25.0], [40.0, 50.0]])
    config = parse_cfg(with_anchors(text, "t.cfg", anchors, 3))
    assert [h.anchors for h in config.heads] == [tuple(map(tuple, anchors.tolist()))] * 2
    assert sorted(m for h in config.heads for m in h.mask) == [0, 1, 2, 3]
    assert all(config.layers[i - 1].filters == 2 * (5 + 3) for i in config.head_indices)


def test_with_input_size_sets_width_and_height_once():
    text = resolve_cfg_path("yolov3-tiny").read_text()
    sized = with_input_size(text, 320)
    assert (parse_cfg(sized).net.width, parse_cfg(sized).net.height) == (320, 320)
    assert with_input_size(sized, 320) is sized
    assert with_input_size(text, 416) == text  # already that size: comments kept
