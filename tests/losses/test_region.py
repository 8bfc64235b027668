"""YOLOv2 [region] loss: gradients equal pjreddie Darknet's deltas (independent loop reference)."""

from __future__ import annotations

import math

import pytest
import torch

from darkyolo.darknet.cfg import RegionSpec
from darkyolo.losses import DetectionLoss
from darkyolo.models.heads import RegionHead

# --------------------------------------------------------------------------------------------
# Reference: pjreddie forward_region_layer + backward_region_layer_gpu, one truth at a time.
# --------------------------------------------------------------------------------------------


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _overlap(x1: float, w1: float, x2: float, w2: float) -> float:
    return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)


def _box_iou(a: tuple, b: tuple) -> float:
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def region_reference_delta(
    raw: torch.Tensor, truths: list[list[tuple]], spec: RegionSpec, seen: int
):
    """Darknet's delta (-dL/dz) for a raw map [B, A*(5+C), H, W]; truths[b] = [(cls, x, y, w, h)]."""
    batch, _, height, width = raw.shape
    n_anchors, classes = spec.num, spec.classes
    z = raw.detach().double().view(batch, n_anchors, 5 + classes, height, width).tolist()
    delta = torch.zeros(batch, n_anchors, 5 + classes, height, width, dtype=torch.float64)
    anchors = spec.anchors

    def output(b, n, k, j, i):
        v = z[b][n][k][j][i]
        if k in (0, 1, 4):
            return _sigmoid(v)
        if k >= 5:
            logits = [z[b][n][5 + c][j][i] for c in range(classes)]
            if not spec.softmax:
                return _sigmoid(v)
            top = max(logits)
            exps = [math.exp(q - top) for q in logits]
            return exps[k - 5] / sum(exps)
        return v

    def pred_box(b, n, j, i):
        return (
            (i + output(b, n, 0, j, i)) / width,
            (j + output(b, n, 1, j, i)) / height,
            math.exp(z[b][n][2][j][i]) * anchors[n][0] / width,
            math.exp(z[b][n][3][j][i]) * anchors[n][1] / height,
        )

    def delta_box(truth, b, n, j, i, scale):
        pred = pred_box(b, n, j, i)
        tx, ty = truth[0] * width - i, truth[1] * height - j
        tw = math.log(truth[2] * width / anchors[n][0])
        th = math.log(truth[3] * height / anchors[n][1])
        for k, t in enumerate((tx, ty, tw, th)):
            delta[b, n, k, j, i] = scale * (t - output(b, n, k, j, i))
        return _box_iou(pred, truth)

    for b in range(batch):
        boxes = [t for t in truths[b][: spec.max_boxes] if t[3] >= 0.001 and t[4] >= 0.001]
        for j in range(height):
            for i in range(width):
                for n in range(n_anchors):
                    pred = pred_box(b, n, j, i)
                    best = 0.0
                    for t in boxes:
                        best = max(best, _box_iou(pred, t[1:]))
                    delta[b, n, 4, j, i] = spec.noobject_scale * (0 - output(b, n, 4, j, i))
                    if best > spec.thresh:
                        delta[b, n, 4, j, i] = 0.0
                    if seen < 12800:
                        prior = (
                            (i + 0.5) / width,
                            (j + 0.5) / height,
                            anchors[n][0] / width,
                            anchors[n][1] / height,
                        )
                        delta_box(prior, b, n, j, i, 0.01)
        for t in boxes:
            cls, truth = t[0], t[1:]
            i = min(int(truth[0] * width), width - 1)
            j = min(int(truth[1] * height), height - 1)
            best_iou, best_n = 0.0, 0
            for n in range(n_anchors):
                pred = pred_box(b, n, j, i)
                if spec.bias_match:
                    pred = (0, 0, anchors[n][0] / width, anchors[n][1] / height)
                iou = _box_iou((0, 0, pred[2], pred[3]), (0, 0, truth[2], truth[3]))
                if iou > best_iou:
                    best_iou, best_n = iou, n
            n = best_n
            iou = delta_box(truth, b, n, j, i, spec.coord_scale * (2 - truth[2] * truth[3]))
            target = iou if spec.rescore else 1.0
            delta[b, n, 4, j, i] = spec.object_scale * (target - output(b, n, 4, j, i))
            if not spec.softmax and delta[b, n, 5, j, i] != 0:
                delta[b, n, 5 + cls, j, i] = spec.class_scale * (1 - output(b, n, 5 + cls, j, i))
            else:
                for c in range(classes):
                    onehot = 1.0 if c == cls else 0.0
                    delta[b, n, 5 + c, j, i] = spec.class_scale * (
                        onehot - output(b, n, 5 + c, j, i)
                    )
    # backward_region_layer_gpu: logistic gradient on x, y and objectness.
    for k in (0, 1, 4):
        s = torch.sigmoid(raw.detach().double().view_as(delta)[:, :, k])
        delta[:, :, k] *= s * (1 - s)
    return delta.view_as(raw)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

ANCHORS = ((1.0, 1.5), (2.5, 1.0), (0.625, 0.625))  # exact in float32, like the head


def make_spec(**overrides) -> RegionSpec:
    base = dict(
        anchors=ANCHORS,
        classes=4,
        num=3,
        softmax=True,
        rescore=True,
        bias_match=True,
        thresh=0.3,
        object_scale=5.0,
        noobject_scale=1.0,
        class_scale=1.5,
        coord_scale=2.0,
    )
    base.update(overrides)
    return RegionSpec(**base)


def loss_for(spec: RegionSpec) -> DetectionLoss:
    return DetectionLoss([RegionHead(spec, ())])


def to_targets(truths: list[list[tuple]]) -> torch.Tensor:
    rows = [(b, *t) for b, image in enumerate(truths) for t in image]
    return torch.tensor(rows, dtype=torch.float64).view(-1, 6)


def grad_of(loss_fn, raw, targets, input_hw, seen):
    raw = raw.clone().requires_grad_(True)
    total, parts = loss_fn([raw], targets, input_hw, seen)
    total.backward()
    return raw.grad, total, parts


def q(v: float) -> float:
    """A value exactly representable in float32 (the truths are stored as float32)."""
    return round(v * 1024) / 1024


RANDOM_TRUTHS = [
    [
        (1, q(0.31), q(0.52), q(0.30), q(0.40)),
        (3, 0.25, q(0.70), q(0.20), q(0.10)),  # x on a cell edge (W = 4)
        (2, q(0.33), q(0.55), q(0.28), q(0.42)),  # same cell and shape as the first: overwrites
        (0, 1.0, 1.0, q(0.15), q(0.12)),  # x = y = 1: last cell
        (1, q(0.6), q(0.2), 0.0005, q(0.3)),  # too small: dropped
    ],
    [(2, q(0.62), q(0.41), q(0.55), q(0.66)), (0, q(0.12), q(0.83), q(0.08), q(0.20))],
    [],  # empty image
]


@pytest.mark.parametrize(
    ("overrides", "seen"),
    [
        ({}, 0),
        ({}, 12800),
        ({"bias_match": False, "rescore": False}, 100),
        ({"softmax": False}, 20000),
        ({"softmax": False, "bias_match": False, "max_boxes": 2}, 0),
    ],
)
def test_gradient_equals_darknet_delta(overrides: dict, seen: int) -> None:
    spec = make_spec(**overrides)
    generator = torch.Generator().manual_seed(7)
    height, width = 3, 4
    raw = torch.randn(3, 3 * 9, height, width, generator=generator, dtype=torch.float64) * 0.8
    grad, _, _ = grad_of(loss_for(spec), raw, to_targets(RANDOM_TRUTHS), (96, 128), seen)
    expected = region_reference_delta(raw, RANDOM_TRUTHS, spec, seen)
    # The case must exercise the no-object threshold: some objectness deltas are zeroed by it.
    obj = expected.view(3, 3, 9, height, width)[:, :, 4]
    assert (obj == 0).sum() > 0
    # Not 1e-12: the head keeps its anchors in float32 (anchor / grid is rounded there).
    torch.testing.assert_close(-grad, expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------


def test_single_box_targets_by_hand() -> None:
    """One anchor, 4x4 grid, raw zeros: sigma = .5, every target written out by hand."""
    spec = make_spec(anchors=((1.0, 2.0),), num=1, classes=2, rescore=False, thresh=1.0)
    raw = torch.zeros(1, 7, 4, 4, dtype=torch.float64)
    # Truth class 1 at (0.3, 0.6), w .5, h .25: cell i = 1, j = 2; tx = .2, ty = .4,
    # tw = ln(.5 * 4 / 1) = ln 2, th = ln(.25 * 4 / 2) = ln .5.
    targets = torch.tensor([[0, 1, 0.3, 0.6, 0.5, 0.25]], dtype=torch.float64)
    grad, total, parts = grad_of(loss_for(spec), raw, targets, (128, 128), seen=20000)
    k = spec.coord_scale * (2 - 0.5 * 0.25)
    d = 0.25  # sigma'(0)
    g = grad[0, :, 2, 1]
    tx, ty = 0.3 * 4 - 1, 0.6 * 4 - 2
    assert g[0].item() == pytest.approx(k * (0.5 - tx) * d)
    assert g[1].item() == pytest.approx(k * (0.5 - ty) * d)
    assert g[2].item() == pytest.approx(k * (0 - math.log(2)))
    assert g[3].item() == pytest.approx(k * (0 - math.log(0.5)))
    assert g[4].item() == pytest.approx(spec.object_scale * (0.5 - 1) * d)
    assert g[5].item() == pytest.approx(spec.class_scale * 0.5)  # softmax of (0, 0) = .5, onehot 0
    assert g[6].item() == pytest.approx(spec.class_scale * -0.5)
    box = 0.5 * k * ((0.5 - tx) ** 2 + (0.5 - ty) ** 2 + math.log(2) ** 2 + math.log(0.5) ** 2)
    assert parts["box"].item() == pytest.approx(box)
    assert parts["obj"].item() == pytest.approx(0.5 * spec.object_scale * 0.25)
    assert parts["cls"].item() == pytest.approx(spec.class_scale * math.log(2))
    assert parts["noobj"].item() == pytest.approx(0.5 * 15 * 0.25)  # the 15 other cells
    assert parts["prior"].item() == 0.0
    assert total.item() == pytest.approx(sum(v.item() for v in parts.values()))
    # Every other slot only has the no-object push on objectness.
    elsewhere = torch.ones(4, 4, dtype=torch.bool)
    elsewhere[2, 1] = False
    assert grad[0, 4][elsewhere].tolist() == pytest.approx([0.5 * 0.25] * 15)  # noobj * s * s'
    assert grad[0, [0, 1, 2, 3, 5, 6]][:, elsewhere].abs().max().item() == 0


def test_prior_term_pulls_every_unassigned_box_to_its_anchor() -> None:
    spec = make_spec(anchors=((1.0, 1.0),), num=1, classes=2)
    raw = torch.full((1, 7, 2, 2), 0.3, dtype=torch.float64)
    _, _, early = grad_of(loss_for(spec), raw, torch.zeros(0, 6), (64, 64), seen=12799)
    _, _, late = grad_of(loss_for(spec), raw, torch.zeros(0, 6), (64, 64), seen=12800)
    s = 1 / (1 + math.exp(-0.3))
    per_slot = 0.5 * 0.01 * (2 * (s - 0.5) ** 2 + 2 * 0.3**2)
    assert early["prior"].item() == pytest.approx(4 * per_slot)
    assert late["prior"].item() == 0.0


def test_empty_image_has_only_no_object_terms() -> None:
    spec = make_spec()
    raw = torch.randn(2, 27, 3, 3, dtype=torch.float64)
    grad, _, parts = grad_of(loss_for(spec), raw, torch.zeros(0, 6), (96, 96), seen=50000)
    assert parts["box"].item() == parts["obj"].item() == parts["cls"].item() == 0.0
    obj = torch.sigmoid(raw.view(2, 3, 9, 3, 3)[:, :, 4])
    assert parts["noobj"].item() == pytest.approx(0.5 * (obj**2).sum().item())
    g = grad.view(2, 3, 9, 3, 3)
    assert g[:, :, [0, 1, 2, 3, 5, 6, 7, 8]].abs().max().item() == 0


def test_two_truths_in_one_slot_the_later_wins() -> None:
    spec = make_spec(anchors=((1.0, 1.0),), num=1, classes=3, rescore=False)
    raw = torch.zeros(1, 8, 2, 2, dtype=torch.float64)
    targets = torch.tensor(
        [[0, 0, 0.1, 0.1, 0.25, 0.25], [0, 2, 0.4, 0.3, 0.5, 0.5]], dtype=torch.float64
    )
    grad, _, parts = grad_of(loss_for(spec), raw, targets, (64, 64), seen=20000)
    g = grad[0, :, 0, 0]
    k = spec.coord_scale * (2 - 0.25)
    assert g[0].item() == pytest.approx(k * (0.5 - 0.8) * 0.25)  # tx = .4 * 2 - 0 of the 2nd
    assert g[2].item() == pytest.approx(-k * math.log(0.5 * 2 / 1))
    assert g[5:].tolist() == pytest.approx([1 / 3 * 1.5, 1 / 3 * 1.5, -2 / 3 * 1.5])  # class 2 only
    assert parts["obj"].item() == pytest.approx(0.5 * 5 * 0.25)  # one positive, not two


def test_half_precision_maps_compute_in_float32() -> None:
    spec = make_spec()
    raw = torch.randn(2, 27, 3, 4)
    targets = to_targets(RANDOM_TRUTHS[:2])
    reference, _ = loss_for(spec)([raw.half().float()], targets, (96, 128), 0)
    for dtype in (torch.float16, torch.bfloat16):
        low = raw.to(dtype) if dtype == torch.bfloat16 else raw.half()
        low = low.requires_grad_(True)
        total, parts = loss_for(spec)([low], targets, (96, 128), 0)
        assert total.dtype == torch.float32
        assert all(v.dtype == torch.float32 for v in parts.values())
        total.backward()
        assert low.grad is not None and low.grad.dtype == dtype
        if dtype == torch.float16:
            assert total.item() == pytest.approx(reference.item(), rel=1e-6)
