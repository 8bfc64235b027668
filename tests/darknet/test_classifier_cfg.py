"""The classifier layers and ``[net]`` keys: parsed with Darknet's defaults, sized as the official
``.weights`` files, refused by name when wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkyolo.darknet.cfg import (
    ConnectedSpec,
    DropoutSpec,
    SoftmaxSpec,
    load_cfg,
    parse_cfg,
)
from darkyolo.darknet.weights import WeightsHeader, read_weights, weights_file_size
from darkyolo.errors import ConfigError

#: sizes of the official ImageNet .weights files (shared docs/classifier.md, section 2)
OFFICIAL_BYTES = {
    "darknet19": 83_427_124,
    "darknet19_448": 83_427_124,
    "darknet53": 166_582_580,
    "darknet53_448": 166_582_580,
    "darknet": 29_293_940,
}


@pytest.mark.parametrize(("name", "size"), OFFICIAL_BYTES.items())
def test_bundled_classifiers_have_the_official_size(name: str, size: int) -> None:
    config = load_cfg(name)
    assert config.is_classifier and config.num_classes == 1000
    assert weights_file_size(config) == size


def test_prefix_sizes() -> None:
    """darknet19_448.conv.23 and darknet53.conv.74: 79,327,124 and 162,482,580 bytes."""
    from darkyolo.darknet.weights import weighted_layer_sizes

    for name, layers, size in (("darknet19", 23, 79_327_124), ("darknet53", 74, 162_482_580)):
        held = [s for s in weighted_layer_sizes(load_cfg(name)) if s.index < layers]
        assert WeightsHeader().nbytes + 4 * sum(s.floats for s in held) == size


def test_classifier_net_keys() -> None:
    net = load_cfg("darknet19").net
    assert (net.width, net.min_crop, net.max_crop, net.aspect, net.angle) == (
        224,
        128,
        448,
        0.75,
        7,
    )
    assert net.policy == "poly" and net.power == 4
    defaults = parse_cfg("[net]\nwidth=100\n[avgpool]\n").net
    assert (defaults.min_crop, defaults.max_crop, defaults.aspect) == (100, 200, 1.0)


def test_layer_specs() -> None:
    text = (
        "[net]\nwidth=8\nheight=8\n[connected]\noutput=5\n[dropout]\n[conn]\noutput=4\n"
        "activation=linear\nbatch_normalize=1\n[soft]\ngroups=2\ntemperature=.5\n[cost]\n"
    )
    config = parse_cfg(text)
    fc, drop, _, soft, _ = config.layers
    assert isinstance(fc, ConnectedSpec) and fc.activation == "logistic"  # Darknet's default
    assert isinstance(drop, DropoutSpec) and drop.probability == 0.5
    assert isinstance(soft, SoftmaxSpec) and (soft.groups, soft.temperature) == (2, 0.5)
    assert config.num_classes == 4 and config.class_layers == [2]


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            "[softmax]\ntree=data/9k.tree\n",
            r"c.cfg:6: key 'tree': \[softmax\] tree is not supported",
        ),
        ("[cost]\ntype=wgan\n", r"c.cfg:6: key 'type': .*expected sse\|masked\|smooth"),
        ("[dropout]\nprobability=1\n", r"key 'probability': .*must lie in \[0, 1\)"),
        ("[dropout]\ndropblock=1\n", r"key 'dropblock': .*not supported"),
        (
            "[connected]\noutput=4\nlearning_rate=2\n",
            r"unknown key 'learning_rate' for \[connected\]",
        ),
        ("[avgpool]\nsize=2\n", r"unknown key 'size' for \[avgpool\]"),
    ],
)
def test_bad_keys_are_named(tail: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cfg("[net]\nwidth=8\nheight=8\n[avgpool]\n" + tail, "c.cfg")


def test_bad_net_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"key 'max_crop': .*must be at least min_crop=300"):
        parse_cfg("[net]\nmin_crop=300\nmax_crop=200\n[avgpool]\n", "c.cfg")
    with pytest.raises(ConfigError, match=r"unknown policy 'sig', expected constant\|steps\|poly"):
        parse_cfg("[net]\npolicy=sig\n[avgpool]\n", "c.cfg")


def test_connected_weights_are_in_darknets_order(tmp_path: Path) -> None:
    """biases, the matrix, then scales, mean, variance (not conv's order); bytes round-trip."""
    import torch

    from darkyolo.models.io import load_model, save_darknet_weights

    cfg = tmp_path / "fc.cfg"
    cfg.write_text(
        "[net]\nwidth=2\nheight=2\nchannels=1\n[connected]\noutput=3\nbatch_normalize=1\n"
    )
    values = np.arange(3 + 12 + 9, dtype="<f4")
    values[-3:] += 1  # variances > 0
    path = tmp_path / "fc.weights"
    path.write_bytes(WeightsHeader().to_bytes() + values.tobytes())
    model = load_model(cfg, path)
    layer = model.layers[0]
    assert torch.equal(layer.bn.bias, torch.tensor([0.0, 1, 2]))
    assert torch.equal(layer.linear.weight.flatten(), torch.arange(3, 15, dtype=torch.float32))
    assert torch.equal(layer.bn.weight, torch.tensor([15.0, 16, 17]))
    assert torch.equal(layer.bn.running_var, torch.tensor([22.0, 23, 24]))
    again = tmp_path / "again.weights"
    save_darknet_weights(model, again)
    assert again.read_bytes() == path.read_bytes()
    assert len(read_weights(path, model.config).layers) == 1
