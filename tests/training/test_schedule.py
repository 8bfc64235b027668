"""Learning-rate schedule (Darknet's burn-in and steps; epochs), parameter groups, EMA."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.models.darknet import Darknet
from darkyolo.training.schedule import (
    EMA_TAU,
    LRSchedule,
    ModelEMA,
    ema_warmup,
    parameter_groups,
)


def test_darknet_burn_in_and_steps():
    schedule = LRSchedule(lr=0.001, total=500, burn_in=100, power=4, policy="steps", steps=(300, 400), scales=(0.1, 0.1))  # fmt: skip
    assert schedule(1) == pytest.approx(0.001 * (1 / 100) ** 4)
    assert schedule(50) == pytest.approx(0.001 / 16)
    assert schedule(100) == pytest.approx(0.001)
    assert schedule(299) == pytest.approx(0.001)
    assert schedule(300) == pytest.approx(0.0001)  # the change happens exactly at the step
    assert schedule(400) == pytest.approx(0.00001)


def test_from_net_reads_the_cfg():
    text = "[net]\nlearning_rate=0.01\nburn_in=10\nmax_batches=200\npolicy=steps\nsteps=100,150\nscales=.5,.2\n[convolutional]\nfilters=6\nsize=1\n[region]\nnum=1\nanchors=1,1\nclasses=1\n"  # fmt: skip
    schedule = LRSchedule.from_net(parse_cfg(text).net)
    assert schedule.total == 200 and schedule.burn_in == 10
    assert schedule(120) == pytest.approx(0.005) and schedule(160) == pytest.approx(0.001)


def test_epoch_schedules():
    steps = LRSchedule.for_epochs(0.01, 100, 10, policy="steps")
    assert steps.steps == (80, 90)
    assert steps(79) == pytest.approx(0.01) and steps(85) == pytest.approx(0.001)
    cosine = LRSchedule.for_epochs(0.01, 110, 10, policy="cosine", final=0.05)
    assert cosine(10) == pytest.approx(0.01)
    assert cosine(60) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5))
    assert cosine(110) == pytest.approx(0.0005)
    with pytest.raises(ValueError):
        LRSchedule(0.1, 10, policy="exp")


def test_poly_is_darknets():
    """Darknet's poly: lr (k / burn_in)^power in burn-in, then lr (1 - k / total)^power."""
    poly = LRSchedule(0.1, 200, burn_in=20, power=4, policy="poly")
    assert poly(10) == pytest.approx(0.1 * 0.5**4)
    assert poly(100) == pytest.approx(0.1 * 0.5**4)
    assert poly(200) == 0.0


def test_decay_only_on_kernels():
    text = "[net]\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nactivation=leaky\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[yolo]\nmask=0\nanchors=4,4\nclasses=1\nnum=1\n"  # fmt: skip
    model = Darknet(parse_cfg(text))
    groups = parameter_groups(model, 0.0005)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.0005 and groups[1]["weight_decay"] == 0
    kernels = [layer.conv.weight for layer in model.conv_layers()]
    assert decayed == {id(k) for k in kernels}
    others = {id(p) for p in groups[1]["params"]}
    assert id(model.conv_layers()[0].bn.weight) in others and id(model.conv_layers()[1].conv.bias) in others  # fmt: skip
    model.conv_layers()[0].conv.weight.requires_grad_(False)
    assert len(parameter_groups(model, 0.1)[0]["params"]) == 1  # frozen ones are left out


def test_ema_follows_the_formula():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9, tau=0)  # tau 0: constant decay
    start = ema.module[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, 0.9 * start + 0.1 * model[0].weight)
    torch.testing.assert_close(ema.module[1].running_mean, torch.full((2,), 0.2))
    assert int(ema.module[1].num_batches_tracked) == 7
    assert not any(p.requires_grad for p in ema.module.parameters())
    ramp = ModelEMA(model, decay=0.9999, tau=EMA_TAU)
    ramp.updates = 2000
    assert ramp.factor() == pytest.approx(0.9999 * (1 - 1 / 2.718281828459045))


def test_a_short_runs_ema_averages_by_its_end():
    assert ema_warmup(100_000) == EMA_TAU  # long runs keep YOLOv5's warm-up
    for total in (840, 4000):  # aquarium's 30 epochs, a longer run
        ema = ModelEMA(nn.Linear(1, 1), tau=ema_warmup(total))
        ema.updates = total
        assert ema.factor() == pytest.approx(0.9999 * (1 - math.exp(-4)))
    fixed = ModelEMA(nn.Linear(1, 1), tau=EMA_TAU)
    fixed.updates = 390  # BCCD's 30 epochs: with 2000 alone it would barely average at all
    assert fixed.factor() < 0.2
    assert ModelEMA(nn.Linear(1, 1), tau=ema_warmup(390)).tau == 100
    tiny = ModelEMA(nn.Linear(1, 1), tau=ema_warmup(20))
    tiny.updates = 20  # a very short run keeps (nearly) its last weights
    assert tiny.factor() < 0.2
