"""Validation path (letterbox -> model -> postprocess -> evaluator) and batch-norm recalibration."""

from __future__ import annotations

import torch

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.data.dataset import load_split
from darkyolo.evaluation.validate import ValOptions, evaluate, recalibrate_batch_norm
from darkyolo.models.darknet import Darknet


def test_recalibration_averages_batch_statistics(make_cfg):
    model = Darknet(parse_cfg(make_cfg())).randomize_(0).eval()
    frozen_bn = model.layers[0].bn
    frozen_before = frozen_bn.running_mean.clone()
    batches = [torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8) for _ in range(3)]
    momentum = model.layers[2].bn.momentum
    used = recalibrate_batch_norm(model, batches, skip=[frozen_bn])
    assert used == 6 and not model.training  # the mode is restored
    assert model.layers[2].bn.momentum == momentum
    torch.testing.assert_close(frozen_bn.running_mean, frozen_before)
    # layer 2's input is fixed (earlier layers in eval mode except for BN stats of layer 0 kept):
    captured = []
    hook = model.layers[2].conv.register_forward_hook(lambda m, i, o: captured.append(o))
    model.train()
    frozen_bn.eval()
    with torch.no_grad():
        for images in batches:
            model(images.float() / 255)
    hook.remove()
    means = torch.stack([c.mean((0, 2, 3)) for c in captured]).mean(0)
    torch.testing.assert_close(model.layers[2].bn.running_mean, means, rtol=1e-4, atol=1e-5)


def test_evaluate_scores_a_model_on_records(bccd_small, make_cfg):
    records, _ = load_split(bccd_small, "val")
    model = Darknet(parse_cfg(make_cfg())).randomize_(1)
    result = evaluate(model, records, ["Platelets", "RBC", "WBC"], ValOptions(img_size=64, batch_size=3))  # fmt: skip
    assert result.num_images == len(records) == 4
    assert 0 <= result.map <= result.map50 <= 1
    assert int(result.instances_per_class.sum()) == sum(len(r) for r in records)
    assert model.training  # its mode is restored
