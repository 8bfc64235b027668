"""build_loss on bundled cfgs: one loss per head, named parts, a sum over the batch."""

from __future__ import annotations

import pytest
import torch

from darkyolo.darknet.cfg import load_cfg
from darkyolo.losses import DetectionLoss, RegionLoss, YoloLoss, build_loss
from darkyolo.models.darknet import Darknet


@pytest.mark.parametrize(
    ("name", "kinds", "names"),
    [
        ("yolov3-tiny", [YoloLoss, YoloLoss], ("box", "obj", "noobj", "cls")),
        ("yolov2-tiny-voc", [RegionLoss], ("box", "obj", "noobj", "cls", "prior")),
    ],
)
def test_build_loss_on_a_bundled_model(name: str, kinds: list[type], names: tuple) -> None:
    model = Darknet(load_cfg(name)).train()
    loss_fn = build_loss(model)
    assert [type(loss) for loss in loss_fn.losses] == kinds
    assert loss_fn.part_names == names
    x = torch.rand(2, 3, 64, 96)
    raw = model.forward_raw(x)
    targets = torch.tensor([[0, 3, 0.5, 0.5, 0.4, 0.6], [1, 7, 0.2, 0.7, 0.1, 0.2]])
    total, parts = loss_fn(raw, targets, (64, 96), seen=0)
    assert set(parts) == set(names)
    assert all(not v.requires_grad and v.ndim == 0 for v in parts.values())
    assert total.item() == pytest.approx(sum(v.item() for v in parts.values()), rel=1e-5)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_total_is_a_sum_over_images_not_a_mean() -> None:
    model = Darknet(load_cfg("yolov3-tiny"))
    loss_fn = build_loss(model)
    raw = [torch.randn(1, 255, 2, 2), torch.randn(1, 255, 4, 4)]
    targets = torch.tensor([[0, 1, 0.4, 0.4, 0.3, 0.3]])
    one, _ = loss_fn(raw, targets, (64, 64), 0)
    two, _ = loss_fn(
        [torch.cat([r, r]) for r in raw],
        torch.tensor([[0, 1, 0.4, 0.4, 0.3, 0.3], [1, 1, 0.4, 0.4, 0.3, 0.3]]),
        (64, 64),
        0,
    )
    assert two.item() == pytest.approx(2 * one.item(), rel=1e-6)


def test_dropped_rows_are_counted() -> None:
    loss_fn = build_loss(Darknet(load_cfg("yolov3-tiny")))
    raw = [torch.zeros(1, 255, 2, 2), torch.zeros(1, 255, 4, 4)]
    targets = torch.tensor([[0, 1, 0.4, 0.4, 0.0001, 0.3]] + [[0, 1, 0.4, 0.4, 0.3, 0.3]] * 91)
    loss_fn(raw, targets, (64, 64), 0)
    assert (loss_fn.dropped_small, loss_fn.dropped_over_max) == (1, 2)


def test_wrong_number_of_maps_is_an_error() -> None:
    loss_fn = build_loss(Darknet(load_cfg("yolov3-tiny")))
    with pytest.raises(ValueError, match="1 raw maps for 2 heads"):
        loss_fn([torch.zeros(1, 255, 2, 2)], torch.zeros(0, 6), (64, 64), 0)


def test_needs_a_head() -> None:
    with pytest.raises(ValueError):
        DetectionLoss([])


def test_autocast_does_not_reach_the_loss() -> None:
    loss_fn = build_loss(Darknet(load_cfg("yolov3-tiny")))
    raw = [torch.randn(2, 255, 2, 2), torch.randn(2, 255, 4, 4)]
    targets = torch.tensor([[0, 1, 0.4, 0.4, 0.3, 0.3], [1, 0, 0.4, 0.4, 0.2, 0.5]])
    plain, _ = loss_fn(raw, targets, (64, 64), 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = loss_fn(raw, targets, (64, 64), 0)
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(plain.item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["darknet", "scaled", "aligned"])
def test_half_precision_maps_are_scored_in_float32(mode: str) -> None:
    # under autocast the heads' maps arrive in bfloat16 (head_view widens them): the truths, the
    # targets and the deltas must not be rounded to its 8 bits (a 416 input's edges to ~1.6 px)
    loss_fn = build_loss(Darknet(load_cfg("yolov3-tiny")), mode)
    raw = [torch.randn(2, 255, 2, 2).bfloat16(), torch.randn(2, 255, 4, 4).bfloat16()]
    targets = torch.tensor([[0, 1, 0.4013, 0.4, 0.3, 0.3], [1, 0, 0.4, 0.4, 0.2, 0.5013]])
    total, parts = loss_fn(raw, targets, (64, 64), 0)
    widened, _ = loss_fn([r.float() for r in raw], targets, (64, 64), 0)
    assert total.dtype == torch.float32 and all(v.dtype == torch.float32 for v in parts.values())
    assert total.item() == widened.item()
