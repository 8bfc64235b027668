"""Transfer learning: loading weights made for other heads, freezing."""

from __future__ import annotations

import pytest
import torch

from darkyolo.darknet.cfg import parse_cfg, resolve_cfg_path
from darkyolo.darknet.edits import adapt_classes
from darkyolo.errors import OptionError, WeightsError
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import save_darknet_weights
from darkyolo.models.layers import FrozenBatchNorm2d
from darkyolo.training.transfer import freeze_layers, load_pretrained


def test_weights_for_80_classes_fill_a_3_class_model(tmp_path):
    text = resolve_cfg_path("yolov3-tiny").read_text()
    original = parse_cfg(text)
    config = parse_cfg(adapt_classes(text, 3)[0])
    donor = Darknet(original).randomize_(1)
    path = tmp_path / "coco.weights"
    save_darknet_weights(donor, path)
    model = Darknet(config)
    report = load_pretrained(model, path, original)
    head_convs = {f"layers.{i - 1}.conv" for i in config.head_indices}
    assert {s.split()[0].rsplit(".", 1)[0] for s in report.skipped} == head_convs
    assert any("skipped 4 tensors" in line for line in report.lines())
    torch.testing.assert_close(model.layers[0].conv.weight, donor.layers[0].conv.weight)
    torch.testing.assert_close(model.layers[0].bn.running_var, donor.layers[0].bn.running_var)
    with pytest.raises(WeightsError, match="before its classes are adapted"):
        load_pretrained(model, path, config)  # the file does not fit the 3-class cfg


def test_layers_left_out_keep_their_initial_values_and_are_named_once(tmp_path):
    config = parse_cfg(resolve_cfg_path("yolov3-tiny").read_text())
    donor = Darknet(config).randomize_(3)
    path = tmp_path / "coco.weights"
    save_darknet_weights(donor, path)
    model = Darknet(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    heads = tuple(config.class_layers)
    report = load_pretrained(model, path, leave=heads)
    assert report.left == [str(i) for i in heads] and not report.skipped and not report.missing
    assert f"  layers {', '.join(map(str, heads))} (the heads' last convolutions) start anew" in report.lines()  # fmt: skip
    for i in heads:
        torch.testing.assert_close(model.layers[i].conv.weight, initial[f"layers.{i}.conv.weight"])
    torch.testing.assert_close(model.layers[0].conv.weight, donor.layers[0].conv.weight)


def test_a_backbone_prefix_and_a_checkpoint(tmp_path):
    config = parse_cfg(resolve_cfg_path("yolov3-tiny").read_text())
    donor = Darknet(config).randomize_(2)
    prefix = tmp_path / "tiny.conv.5"
    save_darknet_weights(donor, prefix, cutoff=5)
    model = Darknet(config)
    report = load_pretrained(model, prefix)
    torch.testing.assert_close(model.conv_layers()[4].conv.weight, donor.conv_layers()[4].conv.weight)  # fmt: skip
    assert not torch.equal(model.conv_layers()[5].conv.weight, donor.conv_layers()[5].conv.weight)
    assert report.loaded > 0
    checkpoint = tmp_path / "c.pt"
    torch.save({"model": donor.state_dict()}, checkpoint)
    fresh = Darknet(config)
    load_pretrained(fresh, checkpoint)
    torch.testing.assert_close(fresh.state_dict()["layers.0.conv.weight"], donor.state_dict()["layers.0.conv.weight"])  # fmt: skip


def test_freeze_stops_gradients_and_keeps_bn_in_eval():
    model = Darknet(parse_cfg(resolve_cfg_path("yolov3-tiny").read_text()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = freeze_layers(model, 4)
    assert len(frozen) == 2  # layers 0..3: conv, maxpool, conv, maxpool
    assert not any(p.requires_grad for layer in list(model.layers)[:4] for p in layer.parameters())
    assert all(p.requires_grad for p in model.layers[4].parameters())
    assert isinstance(model.layers[0].bn, FrozenBatchNorm2d)
    assert model.state_dict().keys() == before.keys()  # same names: weights and checkpoints load
    model.train()  # batch statistics must not touch the frozen layers
    model(torch.rand(2, 3, 64, 64))
    after = model.state_dict()
    for key in ("layers.0.bn.running_mean", "layers.0.bn.running_var", "layers.0.bn.weight"):
        torch.testing.assert_close(after[key], before[key])
    assert not torch.equal(after["layers.4.bn.running_mean"], before["layers.4.bn.running_mean"])
    with pytest.raises(OptionError, match="--freeze 1000"):
        freeze_layers(model, 1000)


def test_a_prefix_loads_only_the_layers_it_holds(tmp_path):
    """A .conv.N file fills layers 0..N-1; the later layers keep the model's own initialisation
    (not the untouched values of the network the file was read into)."""
    import torch

    from darkyolo.export import export_prefix
    from darkyolo.models.darknet import Darknet
    from darkyolo.models.io import load_model
    from darkyolo.training.transfer import init_from_scratch, load_pretrained

    donor = load_model("yolov3-tiny").randomize_(seed=5)
    prefix, _ = export_prefix(donor, tmp_path / "tiny.conv.13", 13)
    model = Darknet(donor.config)
    init_from_scratch(model, 0.01)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pretrained(model, prefix)
    after = model.state_dict()
    assert torch.equal(after["layers.12.conv.weight"], donor.state_dict()["layers.12.conv.weight"])
    for key in ("layers.13.conv.weight", "layers.13.bn.running_var", "layers.15.conv.bias"):
        assert torch.equal(after[key], before[key]), key
    assert (
        report.loaded == 7 * 6
    )  # 7 batch-normalised convolutions: kernel and 5 batch-norm tensors
